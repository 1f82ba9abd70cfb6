--
-- chat_send: seq, idempotency, validation, and nothing half-written.
--

-- The first message of a channel is seq 1; all columns as stored.
SELECT seq, sender_id, content, kind, reply_to, attachments, edited_at, deleted_at,
	   change_seq, created_at IS NOT NULL AS has_created_at, id IS NOT NULL AS has_id,
	   client_id IS NOT NULL AS has_client_id
FROM chat_send(ch('team'), 'alice', 'hello team');
-- The channel's last_seq follows; sending marks the channel read for the
-- sender, nobody else.
SELECT last_seq FROM chat.channels WHERE id = ch('team');
SELECT user_id, last_read_seq FROM chat.channel_members WHERE channel_id = ch('team') ORDER BY user_id;

-- Every argument, by name.
SELECT seq, sender_id, content, client_id, kind, reply_to = msg('team', 1) AS replies_to_1, attachments
FROM chat_send(channel => ch('team'), sender => 'bob', content => 'see attached',
			   client_id => '00000000-0000-0000-0000-0000000000b1', kind => 'file',
			   reply_to => msg('team', 1),
			   attachments => '[{"url": "https://files.example/a.pdf", "name": "a.pdf", "size": 1024, "mime": "application/pdf"}]');

-- Seqs count up per channel, independently.
SELECT seq FROM chat_send(ch('team'), 'carol', 'third');
SELECT seq FROM chat_send(ch('solo'), 'alice', 'first in solo');
SELECT seq FROM chat_send(ch('ab'), 'bob', 'hi alice');
SELECT seq FROM chat_send(ch('ab'), 'alice', 'hi bob');

-- Idempotency: the same (sender, client_id) returns the first message and
-- stores nothing, whatever content comes with it.
SELECT count(*) AS messages_before FROM chat.messages \gset
SELECT seq, content, id = msg('team', 2) AS same_row
FROM chat_send(ch('team'), 'bob', 'see attached (retry)', '00000000-0000-0000-0000-0000000000b1', 'file');
-- The key is per sender: another sender may use the same client_id.
SELECT seq, sender_id, content
FROM chat_send(ch('team'), 'carol', 'my own key', '00000000-0000-0000-0000-0000000000b1');
-- A key reused for another channel returns the original message too (from
-- its own channel), and takes no seq in the other one.
SELECT seq, content, channel_id = ch('team') AS in_team
FROM chat_send(ch('ab'), 'bob', 'elsewhere', '00000000-0000-0000-0000-0000000000b1');
-- Only carol's message was stored; ab is still at 2.
SELECT count(*) - :messages_before AS stored, (SELECT last_seq FROM chat.channels WHERE id = ch('ab')) AS ab_last_seq
FROM chat.messages;
-- A retry after the sender left the channel still returns the message.
SELECT seq FROM chat_send(ch('team'), 'frank', 'before leaving', '00000000-0000-0000-0000-0000000000f1');
SELECT chat_remove_member(ch('team'), 'frank');
SELECT seq, content FROM chat_send(ch('team'), 'frank', 'before leaving', '00000000-0000-0000-0000-0000000000f1');
SELECT chat_add_member(ch('team'), 'frank');

-- Kinds: a lower-case letter, then up to 31 of a-z 0-9 _ . -
SELECT kind FROM chat_send(ch('solo'), 'alice', 'k', kind => 'system.notice');
SELECT kind FROM chat_send(ch('solo'), 'alice', 'k', kind => 'x-1_2.3');
SELECT kind FROM chat_send(ch('solo'), 'alice', 'k', kind => 'a' || repeat('b', 31));

-- Content: any text up to chat.max_message_bytes (16kB) bytes.
SELECT seq, octet_length(content) FROM chat_send(ch('solo'), 'alice', repeat('x', 16384));
SELECT seq, content FROM chat_send(ch('solo'), 'alice', 'Grüße, 你好, 👋, "quotes", ''apostrophes'', \backslash');
SELECT seq, content = ' ' AS just_a_space FROM chat_send(ch('solo'), 'alice', ' ');

-- Attachments: an empty array, and ten of them.
SELECT attachments FROM chat_send(ch('solo'), 'alice', 'none', attachments => '[]');
SELECT jsonb_array_length(attachments) FROM chat_send(ch('solo'), 'alice', 'ten',
	attachments => (SELECT jsonb_agg(jsonb_build_object('url', 'http://x.example/' || i,
						'name', 'f' || i, 'size', i, 'mime', 'image/png')) FROM generate_series(0, 9) i));

-- A reply to a message of the same channel.
SELECT seq, reply_to = msg('solo', 1) AS replies_to_1 FROM chat_send(ch('solo'), 'alice', 're', reply_to => msg('solo', 1));

SELECT count(*) AS messages_before_errors FROM chat.messages \gset
SELECT string_agg(i.name || '=' || c.last_seq, ' ' ORDER BY i.name) AS last_seqs_before_errors,
	   (SELECT sum(last_read_seq) FROM chat.channel_members) AS read_before_errors
FROM regress_ids i JOIN chat.channels c USING (id) \gset

-- Bad input.
SELECT err($$SELECT chat_send(NULL, 'alice', 'x')$$);
SELECT err($$SELECT chat_send(ch('team'), NULL, 'x')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', NULL)$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', NULL)$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', kind => NULL)$$);
SELECT err($$SELECT chat_send('00000000-0000-0000-0000-000000000000', 'alice', 'x')$$);
SELECT err($$SELECT chat_send(ch('team'), 'mallory', 'x')$$);
SELECT err($$SELECT chat_send(ch('ab'), 'carol', 'x')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', '')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', repeat('x', 16385))$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', repeat('é', 8193))$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', kind => '')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', kind => 'Text')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', kind => '1st')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', kind => 'a b')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', kind => 'a' || repeat('b', 32))$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', reply_to => msg('solo', 1))$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', reply_to => '00000000-0000-0000-0000-000000000000')$$);

-- Bad attachments.
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', attachments => '{"url": "http://x"}')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', attachments => '"http://x"')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', attachments => 'null')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', attachments => '[1]')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', attachments => '[{"name": "a", "size": 1, "mime": "a/b"}]')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', attachments => '[{"url": "javascript:alert(1)", "name": "a", "size": 1, "mime": "a/b"}]')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', attachments => '[{"url": "ftp://x/y", "name": "a", "size": 1, "mime": "a/b"}]')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', attachments => '[{"url": "http://x/a b", "name": "a", "size": 1, "mime": "a/b"}]')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', attachments => '[{"url": 1, "name": "a", "size": 1, "mime": "a/b"}]')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', attachments => '[{"url": "http://x", "size": 1, "mime": "a/b"}]')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', attachments => '[{"url": "http://x", "name": "", "size": 1, "mime": "a/b"}]')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', attachments => '[{"url": "http://x", "name": "a", "size": -1, "mime": "a/b"}]')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', attachments => '[{"url": "http://x", "name": "a", "size": 1.5, "mime": "a/b"}]')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', attachments => '[{"url": "http://x", "name": "a", "size": "1", "mime": "a/b"}]')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', attachments => '[{"url": "http://x", "name": "a", "size": 1}]')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', attachments => '[{"url": "http://x", "name": "a", "size": 1, "mime": null}]')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', attachments => '[{"url": "http://x", "name": "a", "size": 1, "mime": "a/b", "onclick": "x"}]')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x', attachments => '[{"url": "http://x", "name": "a", "size": 1, "mime": "a/b"}, {}]')$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x',
	attachments => (SELECT jsonb_agg(jsonb_build_object('url', 'http://x', 'name', 'f', 'size', 1, 'mime', 'a/b'))
					FROM generate_series(1, 11)))$$);
SELECT err($$SELECT chat_send(ch('team'), 'alice', 'x',
	attachments => jsonb_build_array(jsonb_build_object('url', 'http://x/' || repeat('p', 8200), 'name', 'f', 'size', 1, 'mime', 'a/b')))$$);

-- Nothing was half-written: no message, no seq taken, no read marker moved.
SELECT count(*) - :messages_before_errors AS new_messages FROM chat.messages;
SELECT string_agg(i.name || '=' || c.last_seq, ' ' ORDER BY i.name) = :'last_seqs_before_errors' AS last_seqs_unchanged,
	   (SELECT sum(last_read_seq) FROM chat.channel_members) = :read_before_errors AS read_markers_unchanged
FROM regress_ids i JOIN chat.channels c USING (id);

-- A failed send inside a transaction (rolled back to a savepoint) and a
-- rolled-back transaction take no seq: the next message is the next number.
SELECT last_seq AS team_last FROM chat.channels WHERE id = ch('team') \gset
BEGIN;
SELECT seq - :team_last AS step FROM chat_send(ch('team'), 'alice', 'in tx 1');
SAVEPOINT s;
\set VERBOSITY sqlstate
SELECT chat_send(ch('team'), 'mallory', 'refused');
\set VERBOSITY default
ROLLBACK TO SAVEPOINT s;
SELECT seq - :team_last AS step FROM chat_send(ch('team'), 'alice', 'in tx 2');
COMMIT;
BEGIN;
SELECT seq - :team_last AS step FROM chat_send(ch('team'), 'alice', 'rolled back');
ROLLBACK;
SELECT seq - :team_last AS step FROM chat_send(ch('team'), 'alice', 'after rollback');

-- Every channel's seqs are exactly 1..last_seq.
SELECT i.name, c.last_seq,
	   (SELECT array_agg(m.seq ORDER BY m.seq) FROM chat.messages m WHERE m.channel_id = c.id)
		IS NOT DISTINCT FROM (SELECT array_agg(g) FROM generate_series(1, nullif(c.last_seq, 0)) g) AS gap_free
FROM regress_ids i JOIN chat.channels c USING (id)
ORDER BY i.name;
