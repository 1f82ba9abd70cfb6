/*
 * Prototype P3 (bench/prototypes/README.md): one set-based statement for a
 * whole group-commit batch instead of one chat_send() call per message.
 *
 * Not part of the extension: bench/prototypes/run-p3 creates it in a
 * throwaway database after CREATE EXTENSION chat, and a prototype build of
 * the worker (send-batch.patch) calls it once per batch.  It covers the
 * common case only: anything unusual (a non-member, bad content, reply_to,
 * attachments) raises, and the worker falls back to its per-item path, so
 * error reporting stays exactly as it is.
 *
 * Semantics kept from chat._send: channels are locked in id order, a
 * (sender, client_id) seen before returns the stored message with
 * duplicate = true and takes no seq, seqs are given per channel in batch
 * order, last_seq moves, and the sender's read marker moves to its message.
 * (chat._send takes the member row with SKIP LOCKED to avoid a deadlock
 * with chat_mark_read; the prototype does a plain UPDATE, which the real
 * thing would have to keep.)
 */
CREATE FUNCTION chat._send_batch(p_channels uuid[], p_senders text[], p_contents text[],
								 p_client_ids uuid[], p_kinds text[])
RETURNS TABLE (ord bigint, duplicate boolean, msg chat.messages)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	lim bigint := chat._max_message_bytes();
BEGIN
	IF EXISTS (SELECT FROM unnest(p_contents) AS c(t)
			   WHERE t IS NULL OR t = '' OR octet_length(t) > lim)
	   OR EXISTS (SELECT FROM unnest(p_kinds) AS k(t) WHERE t !~ '^[a-z][a-z0-9_.-]{0,31}$') THEN
		RAISE EXCEPTION 'batch needs the per-item path' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- lock the channels first, in id order (the order chat._send uses)
	PERFORM FROM chat.channels AS c
	WHERE c.id IN (SELECT DISTINCT x FROM unnest(p_channels) AS u(x))
	ORDER BY c.id FOR UPDATE;
	-- every sender of a new message must be a member
	IF EXISTS (SELECT FROM unnest(p_channels, p_senders, p_client_ids) AS i(ch, s, cid)
			   WHERE NOT EXISTS (SELECT FROM chat.messages AS m WHERE m.sender_id = i.s AND m.client_id = i.cid)
				 AND NOT EXISTS (SELECT FROM chat.channel_members AS cm WHERE cm.channel_id = i.ch AND cm.user_id = i.s)) THEN
		RAISE EXCEPTION 'batch needs the per-item path' USING ERRCODE = 'insufficient_privilege';
	END IF;

	RETURN QUERY
	WITH items AS (
		SELECT * FROM unnest(p_channels, p_senders, p_contents, p_client_ids, p_kinds)
			WITH ORDINALITY AS t(channel_id, sender, content, client_id, kind, ord)),
	old AS (
		SELECT i.ord, m FROM items AS i
		JOIN chat.messages AS m ON m.sender_id = i.sender AND m.client_id = i.client_id),
	fresh AS (
		-- the first of repeated keys within the batch wins
		SELECT DISTINCT ON (i.sender, i.client_id) i.*
		FROM items AS i WHERE i.ord NOT IN (SELECT o.ord FROM old AS o)
		ORDER BY i.sender, i.client_id, i.ord),
	numbered AS (
		SELECT f.*, c.last_seq + row_number() OVER (PARTITION BY f.channel_id ORDER BY f.ord) AS seq
		FROM fresh AS f JOIN chat.channels AS c ON c.id = f.channel_id),
	ins AS (
		INSERT INTO chat.messages AS m
			(channel_id, seq, sender_id, client_id, content, kind, created_at)
		SELECT n.channel_id, n.seq, n.sender, n.client_id, n.content, n.kind, clock_timestamp()
		FROM numbered AS n ORDER BY n.channel_id, n.seq
		RETURNING m.*),
	bump AS (
		UPDATE chat.channels AS c SET last_seq = x.mx
		FROM (SELECT i.channel_id, max(i.seq) AS mx FROM ins AS i GROUP BY 1) AS x
		WHERE c.id = x.channel_id
		RETURNING c.id),
	mark AS (
		UPDATE chat.channel_members AS cm SET last_read_seq = x.mx
		FROM (SELECT i.channel_id, i.sender_id, max(i.seq) AS mx FROM ins AS i GROUP BY 1, 2) AS x
		WHERE cm.channel_id = x.channel_id AND cm.user_id = x.sender_id AND cm.last_read_seq < x.mx
		RETURNING cm.user_id)
	SELECT n.ord, false, ROW(i.*)::chat.messages FROM ins AS i
		JOIN numbered AS n ON n.sender = i.sender_id AND n.client_id = i.client_id
	UNION ALL
	SELECT o.ord, true, o.m FROM old AS o
	UNION ALL
	-- a repeat within the batch: the first one's row, as a duplicate
	SELECT t.ord, true, ROW(i.*)::chat.messages FROM items AS t
		JOIN ins AS i ON i.sender_id = t.sender AND i.client_id = t.client_id
	WHERE t.ord NOT IN (SELECT n.ord FROM numbered AS n) AND t.ord NOT IN (SELECT o.ord FROM old AS o);
END
$$;
