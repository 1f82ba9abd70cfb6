--
-- chat_history and chat_since: keyset paging over (channel_id, seq).
--

INSERT INTO regress_ids VALUES ('long', chat_create_channel('group', 'long', ARRAY['alice', 'bob']));
SELECT count(*) AS sent
FROM generate_series(1, 120) i,
	 LATERAL chat_send(ch('long'), CASE WHEN i % 3 = 0 THEN 'bob' ELSE 'alice' END, 'm' || i) m
WHERE m.content = 'm' || m.seq;

-- The newest page by default: 50 messages, newest first.
SELECT count(*), max(seq), min(seq) FROM chat_history(ch('long'));
SELECT string_agg(seq::text, ',') AS seqs FROM chat_history(ch('long'), max => 5);
SELECT seq, sender_id, content FROM chat_history(ch('long'), 4);
-- Paging back with before_seq = the oldest seq seen visits every message
-- exactly once.
WITH RECURSIVE pages (page, before, seqs) AS (
	SELECT 1, NULL::bigint, ARRAY(SELECT seq FROM chat_history(ch('long'), NULL, 50))
	UNION ALL
	SELECT page + 1, seqs[cardinality(seqs)],
		   ARRAY(SELECT seq FROM chat_history(ch('long'), seqs[cardinality(seqs)], 50))
	FROM pages WHERE cardinality(seqs) > 0
)
SELECT page, before, cardinality(seqs) AS n, seqs[1] AS newest, seqs[cardinality(seqs)] AS oldest
FROM pages ORDER BY page;
-- Edges: before_seq past the end, at 2, 1 and 0; the page size at 1 and 1000.
SELECT count(*), max(seq) FROM chat_history(ch('long'), 1000000);
SELECT string_agg(seq::text, ',') AS seqs FROM chat_history(ch('long'), 2);
SELECT count(*) FROM chat_history(ch('long'), 1);
SELECT count(*) FROM chat_history(ch('long'), 0);
SELECT string_agg(seq::text, ',') AS seqs FROM chat_history(ch('long'), NULL, 1);
SELECT count(*) FROM chat_history(ch('long'), NULL, 1000);
-- An empty channel has no history.
SELECT count(*) FROM chat_history(ch('full'));

-- chat_since: oldest first, after a seq the client has.
SELECT count(*), min(seq), max(seq) FROM chat_since(ch('long'), 0);
SELECT string_agg(seq::text, ',') AS seqs FROM chat_since(ch('long'), 0, 5);
SELECT seq, sender_id, content FROM chat_since(ch('long'), 117);
SELECT count(*) FROM chat_since(ch('long'), 120);
SELECT count(*) FROM chat_since(ch('long'), 5000);
SELECT count(*) FROM chat_since(ch('long'), 0, 10000);
-- Catching up in pages visits every message exactly once.
WITH RECURSIVE pages (page, after, seqs) AS (
	SELECT 1, 0::bigint, ARRAY(SELECT seq FROM chat_since(ch('long'), 0, 50))
	UNION ALL
	SELECT page + 1, seqs[cardinality(seqs)],
		   ARRAY(SELECT seq FROM chat_since(ch('long'), seqs[cardinality(seqs)], 50))
	FROM pages WHERE cardinality(seqs) > 0
)
SELECT page, after, cardinality(seqs) AS n, seqs[1] AS oldest, seqs[cardinality(seqs)] AS newest
FROM pages ORDER BY page;

-- Both return chat.messages rows: every column.
SELECT seq, sender_id, content, kind, reply_to = msg('team', 1) AS replies_to_1, attachments,
	   edited_at, deleted_at, change_seq
FROM chat_since(ch('team'), 1, 1);

-- Bad input.
SELECT err($$SELECT chat_history(NULL)$$);
SELECT err($$SELECT chat_history('00000000-0000-0000-0000-000000000000')$$);
SELECT err($$SELECT chat_history(ch('long'), -1)$$);
SELECT err($$SELECT chat_history(ch('long'), NULL, NULL)$$);
SELECT err($$SELECT chat_history(ch('long'), NULL, 0)$$);
SELECT err($$SELECT chat_history(ch('long'), NULL, -5)$$);
SELECT err($$SELECT chat_history(ch('long'), NULL, 1001)$$);
SELECT err($$SELECT chat_since(NULL, 0)$$);
SELECT err($$SELECT chat_since(ch('long'), NULL)$$);
SELECT err($$SELECT chat_since('00000000-0000-0000-0000-000000000000', 0)$$);
SELECT err($$SELECT chat_since(ch('long'), -1)$$);
SELECT err($$SELECT chat_since(ch('long'), 0, NULL)$$);
SELECT err($$SELECT chat_since(ch('long'), 0, 0)$$);
SELECT err($$SELECT chat_since(ch('long'), 0, 10001)$$);
