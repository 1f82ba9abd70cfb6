--
-- chat._send_batch: the worker's group commit.  Whatever it stores must be
-- exactly what chat._send would have stored for the same items in array
-- order; anything chat._send would refuse makes the whole batch raise (the
-- worker then goes item by item), leaving nothing behind.
--
CREATE EXTENSION IF NOT EXISTS chat;
CREATE TEMP TABLE b_ch AS
SELECT chat_create_channel('group', 'batch-one', ARRAY['alice', 'bob', 'carol']) AS one,
	   chat_create_channel('group', 'batch-two', ARRAY['alice', 'bob']) AS two;

-- b(...) calls it with one array per column, like the worker.
CREATE FUNCTION b(chs uuid[], senders text[], contents text[], keys int[],
				  kinds text[] DEFAULT NULL, reply_tos uuid[] DEFAULT NULL,
				  atts jsonb[] DEFAULT NULL)
RETURNS TABLE (ord bigint, duplicate boolean, channel text, seq bigint, sender text,
			   content text, key int, kind text, reply_to uuid, attachments jsonb)
LANGUAGE sql AS $$
	SELECT r.ord, r.duplicate,
		   CASE (r.message).channel_id WHEN (SELECT one FROM b_ch) THEN 'one' ELSE 'two' END,
		   (r.message).seq, (r.message).sender_id, (r.message).content,
		   ('x' || right((r.message).client_id::text, 8))::bit(32)::int,
		   (r.message).kind, (r.message).reply_to, (r.message).attachments
	FROM chat._send_batch(
		chs, senders, contents,
		(SELECT array_agg(format('00000000-0000-0000-0000-%s', lpad(to_hex(k), 12, '0'))::uuid ORDER BY o)
		 FROM unnest(keys) WITH ORDINALITY AS u(k, o)),
		coalesce(kinds, array_fill('text'::text, ARRAY[cardinality(chs)])),
		coalesce(reply_tos, array_fill(NULL::uuid, ARRAY[cardinality(chs)])),
		coalesce(atts, array_fill(NULL::jsonb, ARRAY[cardinality(chs)]))) AS r
	ORDER BY r.ord
$$;
CREATE FUNCTION state() RETURNS TABLE (channel text, last_seq bigint, messages bigint, read_markers text)
LANGUAGE sql AS $$
	SELECT n, c.last_seq, (SELECT count(*) FROM chat.messages AS m WHERE m.channel_id = c.id),
		   (SELECT string_agg(user_id || '=' || last_read_seq, ' ' ORDER BY user_id)
			FROM chat.channel_members AS x WHERE x.channel_id = c.id)
	FROM b_ch, LATERAL (VALUES ('one', b_ch.one), ('two', b_ch.two)) AS v(n, id)
	JOIN chat.channels AS c ON c.id = v.id ORDER BY 1
$$;

-- Two channels interleaved: seqs count per channel in array order, last_seq
-- follows, and each sender's read marker moves to its newest message.
SELECT * FROM b(ARRAY[(SELECT one FROM b_ch), (SELECT two FROM b_ch), (SELECT one FROM b_ch),
					  (SELECT one FROM b_ch), (SELECT two FROM b_ch)],
				ARRAY['alice', 'alice', 'bob', 'alice', 'bob'],
				ARRAY['o1', 't1', 'o2', 'o3', 't2'], ARRAY[1, 2, 3, 4, 5]);
SELECT * FROM state();

-- The same batch again: every item is a duplicate of the stored message,
-- nothing is stored and no seq is taken.
SELECT ord, duplicate, channel, seq, content, key
FROM b(ARRAY[(SELECT one FROM b_ch), (SELECT two FROM b_ch), (SELECT one FROM b_ch),
			 (SELECT one FROM b_ch), (SELECT two FROM b_ch)],
	   ARRAY['alice', 'alice', 'bob', 'alice', 'bob'],
	   ARRAY['retry', 'retry', 'retry', 'retry', 'retry'], ARRAY[1, 2, 3, 4, 5]);
SELECT * FROM state();

-- New keys, a key stored before (alice's 1, even when named for the other
-- channel), and a key repeated within the batch (bob's 7: the first wins,
-- the repeat is its duplicate).  The same key of another sender is new.
SELECT ord, duplicate, channel, seq, sender, content, key
FROM b(ARRAY[(SELECT one FROM b_ch), (SELECT two FROM b_ch), (SELECT one FROM b_ch),
			 (SELECT one FROM b_ch), (SELECT one FROM b_ch)],
	   ARRAY['carol', 'alice', 'bob', 'bob', 'carol'],
	   ARRAY['c1', 'again', 'b7', 'b7 again', 'c7'], ARRAY[6, 1, 7, 7, 7]);
SELECT * FROM state();

-- Replies, kinds and attachments are stored as given.
SELECT ord, duplicate, seq, kind, reply_to = (SELECT id FROM chat.messages WHERE channel_id = (SELECT one FROM b_ch) AND seq = 1) AS replies_to_1,
	   attachments
FROM b(ARRAY[(SELECT one FROM b_ch), (SELECT one FROM b_ch)], ARRAY['alice', 'bob'],
	   ARRAY['see this', 'a file'], ARRAY[10, 11], ARRAY['text', 'file'],
	   ARRAY[(SELECT id FROM chat.messages WHERE channel_id = (SELECT one FROM b_ch) AND seq = 1), NULL],
	   ARRAY[NULL, '[{"url": "https://files.example/a.pdf", "name": "a.pdf", "size": 1, "mime": "application/pdf"}]']::jsonb[]);

-- An empty batch stores nothing.
SELECT count(*) FROM chat._send_batch('{}', '{}', '{}', '{}', '{}', '{}', '{}');

-- Whatever chat._send refuses fails the whole batch, and nothing of it is
-- stored (the good first item neither).
\set VERBOSITY terse
SELECT * FROM state();
-- a sender who is not a member
SELECT * FROM b(ARRAY[(SELECT one FROM b_ch), (SELECT two FROM b_ch)], ARRAY['alice', 'carol'],
				ARRAY['ok', 'not a member'], ARRAY[20, 21]);
-- a channel that does not exist
SELECT * FROM b(ARRAY[(SELECT one FROM b_ch), '00000000-0000-0000-0000-00000000dead'], ARRAY['alice', 'alice'],
				ARRAY['ok', 'nowhere'], ARRAY[20, 21]);
-- a reply_to of another channel
SELECT * FROM b(ARRAY[(SELECT one FROM b_ch), (SELECT two FROM b_ch)], ARRAY['alice', 'alice'],
				ARRAY['ok', 'wrong reply'], ARRAY[20, 21], NULL,
				ARRAY[NULL, (SELECT id FROM chat.messages WHERE channel_id = (SELECT one FROM b_ch) AND seq = 1)]);
-- empty content, content over chat.max_message_bytes, a bad kind, a NULL
SELECT * FROM b(ARRAY[(SELECT one FROM b_ch), (SELECT one FROM b_ch)], ARRAY['alice', 'alice'],
				ARRAY['ok', ''], ARRAY[20, 21]);
SELECT * FROM b(ARRAY[(SELECT one FROM b_ch), (SELECT one FROM b_ch)], ARRAY['alice', 'alice'],
				ARRAY['ok', repeat('x', 16385)], ARRAY[20, 21]);
SELECT * FROM b(ARRAY[(SELECT one FROM b_ch), (SELECT one FROM b_ch)], ARRAY['alice', 'alice'],
				ARRAY['ok', 'bad kind'], ARRAY[20, 21], ARRAY['text', 'Text']);
SELECT * FROM b(ARRAY[(SELECT one FROM b_ch), (SELECT one FROM b_ch)], ARRAY['alice', NULL],
				ARRAY['ok', 'no sender'], ARRAY[20, 21]);
-- bad attachments
SELECT * FROM b(ARRAY[(SELECT one FROM b_ch), (SELECT one FROM b_ch)], ARRAY['alice', 'alice'],
				ARRAY['ok', 'bad file'], ARRAY[20, 21], NULL, NULL,
				ARRAY[NULL, '[{"url": "ftp://x", "name": "a", "size": 1, "mime": "a/b"}]']::jsonb[]);
-- arrays of different lengths
SELECT count(*) FROM chat._send_batch(ARRAY[(SELECT one FROM b_ch)], ARRAY['alice', 'bob'], ARRAY['x'],
									  ARRAY['00000000-0000-0000-0000-000000000020'::uuid], ARRAY['text'],
									  ARRAY[NULL::uuid], ARRAY[NULL::jsonb]);
\set VERBOSITY default
SELECT * FROM state();

-- A member who left can still get the duplicate of what they sent before;
-- a new key from them fails the batch.
SELECT chat_remove_member((SELECT two FROM b_ch), 'bob');
SELECT ord, duplicate, seq, content FROM b(ARRAY[(SELECT two FROM b_ch)], ARRAY['bob'], ARRAY['retry'], ARRAY[5]);
\set VERBOSITY terse
SELECT ord, duplicate, seq, content FROM b(ARRAY[(SELECT two FROM b_ch)], ARRAY['bob'], ARRAY['new'], ARRAY[30]);
\set VERBOSITY default

-- Only the extension's owner may call it (the worker runs as superuser).
SELECT has_function_privilege('chat_app', 'chat._send_batch(uuid[],text[],text[],uuid[],text[],uuid[],jsonb[])', 'EXECUTE') AS app_may_call;

-- Message ids are version 7 UUIDs (RFC 9562: time first, then random) and
-- grow in insert order, so inserts append to the primary key's last leaf.
SELECT count(*) AS messages,
	   bool_and(substr(id::text, 15, 1) = '7') AS all_version_7,
	   bool_and(substr(id::text, 20, 1) IN ('8', '9', 'a', 'b')) AS all_variant_rfc,
	   bool_and(abs(extract(epoch FROM created_at) * 1000
					- ('x' || lpad(replace(left(id::text, 13), '-', ''), 16, '0'))::bit(64)::bigint) < 1000)
		   AS time_prefix_is_created_at
FROM chat.messages AS m WHERE m.channel_id IN (SELECT one FROM b_ch UNION ALL SELECT two FROM b_ch);
SELECT bool_and(id > prev) AS ids_increase_with_seq
FROM (SELECT id, lag(id) OVER (ORDER BY seq) AS prev FROM chat.messages
	  WHERE channel_id = (SELECT one FROM b_ch)) AS t WHERE prev IS NOT NULL;
SELECT count(DISTINCT x) AS distinct_of_10000
FROM (SELECT chat._uuid_v7() AS x FROM generate_series(1, 10000)) AS t;
SELECT bool_and(x > prev) AS strictly_increasing_within_a_backend
FROM (SELECT x, lag(x) OVER (ORDER BY g) AS prev
	  FROM (SELECT g, chat._uuid_v7() AS x FROM generate_series(1, 10000) AS g) AS s) AS t
WHERE prev IS NOT NULL;

DROP FUNCTION b(uuid[], text[], text[], int[], text[], uuid[], jsonb[]);
DROP FUNCTION state();
