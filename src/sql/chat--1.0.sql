/*
 * chat--1.0.sql
 *	  Install script of the chat extension, version 1.0: the schema `chat`
 *	  (channels, members, messages, the edit/delete audit trail), the SQL API
 *	  in the extension's schema (normally public), the NOTIFY triggers the
 *	  worker follows, and the role chat_app that applications are granted.
 *
 * Conventions (see src/sql/README.md):
 *	  - API functions are SECURITY DEFINER with a pinned search_path, so
 *	    every table below is schema-qualified.
 *	  - Internal helpers live in schema chat and start with "_"; nobody but
 *	    the extension owner (and superusers) may execute them.  They run
 *	    under the API function's pinned search_path and do not pin their own:
 *	    SET on a function costs about a fifth of chat_send's time.  Callers
 *	    that use them directly (the worker) pin search_path themselves.
 *	    The trigger functions, which also fire for direct writes (by the
 *	    owner or a superuser), schema-qualify the functions they call.
 *	  - Errors always carry an explicit SQLSTATE; messages are short and
 *	    lower-case, details and hints are sentences.
 *	  - This file is never edited once released: later versions add
 *	    chat--1.0--1.1.sql and so on.
 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION chat" to load this file. \quit

DO $$
BEGIN
	-- The settings below are read by the functions; they only exist when the
	-- library was loaded by the postmaster.
	IF pg_catalog.current_setting('chat.max_group_members', true) IS NULL THEN
		RAISE EXCEPTION 'chat must be loaded via shared_preload_libraries'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Add ''chat'' to shared_preload_libraries in postgresql.conf and restart the server.';
	END IF;
	-- Roles are cluster-wide and outlive DROP EXTENSION, so another database
	-- (or an earlier install) may have created it already.
	-- (1.1: the warnings only; no object changed.)  An existing role is
	-- adopted as it is, and its members get what this script grants it: say
	-- so, in case someone else made it, or made it for something else.
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'chat_app') THEN
		CREATE ROLE chat_app NOLOGIN;
	ELSE
		RAISE WARNING 'role "chat_app" already exists and is used as it is'
			USING DETAIL = 'Its members get every privilege this extension grants to chat_app.',
				  HINT = 'If it was not made for chat, drop the extension, drop or rename the role, and create the extension again.';
	END IF;
	-- Reads the audit trail (chat_message_audit); not granted to chat_app.
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'chat_auditor') THEN
		CREATE ROLE chat_auditor NOLOGIN;
	ELSE
		RAISE WARNING 'role "chat_auditor" already exists and is used as it is'
			USING DETAIL = 'Its members get every privilege this extension grants to chat_auditor: reading the audit trail.',
				  HINT = 'If it was not made for chat, drop the extension, drop or rename the role, and create the extension again.';
	END IF;
END
$$;

CREATE SCHEMA chat;
COMMENT ON SCHEMA chat IS 'Tables of the chat extension; write them only through the chat_* functions.';

/* ------------------------------------------------------------------------
 * Tables
 * ------------------------------------------------------------------------
 */

CREATE TABLE chat.channels (
	id			uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	type		text NOT NULL CHECK (type IN ('direct', 'group')),
	name		text,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_seq	bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
	-- Bumped by every edit and delete; messages.change_seq takes its value.
	last_change bigint NOT NULL DEFAULT 0 CHECK (last_change >= 0),
	-- The two users of a direct channel, ordered byte-wise; NULL for groups.
	direct_a	text COLLATE "C",
	direct_b	text COLLATE "C",
	CONSTRAINT channels_direct_pair_key UNIQUE (direct_a, direct_b),
	CONSTRAINT channels_direct_pair_check CHECK (
		CASE type
			WHEN 'direct' THEN direct_a IS NOT NULL AND direct_b IS NOT NULL
							   AND direct_a < direct_b
			ELSE direct_a IS NULL AND direct_b IS NULL
		END)
);
COMMENT ON TABLE chat.channels IS 'One row per conversation; last_seq is the seq of its newest message.';

CREATE TABLE chat.channel_members (
	channel_id	uuid NOT NULL REFERENCES chat.channels (id) ON DELETE CASCADE,
	user_id		text NOT NULL CHECK (pg_catalog.octet_length(user_id) BETWEEN 1 AND 200),
	role		text NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'admin')),
	joined_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_read_seq bigint NOT NULL DEFAULT 0 CHECK (last_read_seq >= 0),
	PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channel_members_user_id_idx ON chat.channel_members (user_id);
COMMENT ON TABLE chat.channel_members IS 'Membership and read state: the member has read every message with seq <= last_read_seq.';

/*
 * chat._uuid_v7 returns a time-ordered UUID (RFC 9562 version 7): message
 * ids, so that inserts append to the primary key's rightmost leaf instead
 * of a random one (see src/pg/uuid_v7.c).
 */
CREATE FUNCTION chat._uuid_v7() RETURNS uuid
LANGUAGE C VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'chat_uuid_v7';

CREATE TABLE chat.messages (
	id			uuid PRIMARY KEY DEFAULT chat._uuid_v7(),
	-- Not a declared foreign key: every insert runs under the channel's row
	-- lock, which proves the channel exists, and chat._drop_messages
	-- deletes a channel's messages with it.  The per-row check of a
	-- foreign key was a fifth of the worker's cost per message.
	channel_id	uuid NOT NULL,
	seq			bigint NOT NULL CHECK (seq >= 1),
	sender_id	text NOT NULL,
	client_id	uuid NOT NULL,
	content		text NOT NULL,
	kind		text NOT NULL DEFAULT 'text',
	reply_to	uuid,
	attachments jsonb,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	edited_at	timestamptz,
	deleted_at	timestamptz,
	-- NULL until edited or deleted; then the channel's last_change at that time.
	change_seq	bigint,
	-- The keyset index of chat_history and chat_since.
	CONSTRAINT messages_channel_seq_key UNIQUE (channel_id, seq),
	-- The idempotency key, scoped per sender.
	CONSTRAINT messages_sender_client_key UNIQUE (sender_id, client_id),
	CONSTRAINT messages_content_check CHECK (content <> '' OR deleted_at IS NOT NULL),
	CONSTRAINT messages_attachments_check CHECK (attachments IS NULL
		OR pg_catalog.jsonb_typeof(attachments) = 'array')
);
COMMENT ON TABLE chat.messages IS 'Messages; seq numbers those of one channel 1, 2, 3, ... without gaps. A deleted message keeps its row with empty content.';

CREATE TABLE chat.message_versions (
	message_id	uuid NOT NULL REFERENCES chat.messages (id) ON DELETE CASCADE,
	version		integer NOT NULL CHECK (version >= 1),
	content		text NOT NULL,
	attachments jsonb,
	action		text NOT NULL CHECK (action IN ('edit', 'delete')),
	by_user		text NOT NULL,
	at			timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (message_id, version)
);
COMMENT ON TABLE chat.message_versions IS 'Audit trail: the content a message had before each edit, and before its deletion.';

-- The rows are the application's data: without this, pg_dump would skip
-- them, as it skips the contents of every table an extension creates.
SELECT pg_catalog.pg_extension_config_dump('chat.channels', '');
SELECT pg_catalog.pg_extension_config_dump('chat.channel_members', '');
SELECT pg_catalog.pg_extension_config_dump('chat.messages', '');
SELECT pg_catalog.pg_extension_config_dump('chat.message_versions', '');

/* ------------------------------------------------------------------------
 * Internal helpers (schema chat, names start with "_")
 * ------------------------------------------------------------------------
 */

/*
 * chat._check_user_id raises when uid is not a usable user id: NULL, empty,
 * or longer than 200 bytes.  arg names the argument in the message.
 */
CREATE FUNCTION chat._check_user_id(arg text, uid text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF uid IS NULL THEN
		RAISE EXCEPTION '% must not be null', arg USING ERRCODE = 'null_value_not_allowed';
	ELSIF uid = '' THEN
		RAISE EXCEPTION '% must not be empty', arg USING ERRCODE = 'invalid_parameter_value';
	ELSIF octet_length(uid) > 200 THEN
		RAISE EXCEPTION '% is too long', arg USING ERRCODE = 'invalid_parameter_value',
			DETAIL = format('A user id has at most 200 bytes; this one has %s.', octet_length(uid));
	END IF;
END
$$;

/*
 * chat._max_message_bytes reads chat.max_message_bytes in bytes.  The
 * setting shows as '16kB' or '100B'; pg_size_bytes() of PostgreSQL 15 does
 * not know the unit "B", so a plain byte count loses its "B" first.
 */
CREATE FUNCTION chat._max_message_bytes() RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
	s text := pg_catalog.current_setting('chat.max_message_bytes');
BEGIN
	IF pg_catalog.substr(s, pg_catalog.length(s) - 1, 1) BETWEEN '0' AND '9' THEN
		s := pg_catalog.left(s, -1);
	END IF;
	RETURN pg_catalog.pg_size_bytes(s);
END
$$;

/*
 * chat._check_content raises unless content is non-empty and at most
 * chat.max_message_bytes bytes long.
 */
CREATE FUNCTION chat._check_content(content text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	lim bigint;
BEGIN
	IF content IS NULL THEN
		RAISE EXCEPTION 'content must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF content = '' THEN
		RAISE EXCEPTION 'message content must not be empty' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	lim := chat._max_message_bytes();
	IF octet_length(content) > lim THEN
		RAISE EXCEPTION 'message content is too large' USING ERRCODE = 'program_limit_exceeded',
			DETAIL = format('The content has %s bytes; chat.max_message_bytes allows %s.',
							octet_length(content), lim);
	END IF;
END
$$;

/*
 * chat._check_attachments raises unless a is a JSON array of at most 10
 * objects {url, name, size, mime} taking at most 8192 bytes as text.  url
 * is http(s), name and mime non-empty strings, size an integer >= 0; other
 * keys are refused, so that clients can trust what they render.
 */
CREATE FUNCTION chat._check_attachments(a jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	e jsonb;
	i integer := 0;
	k text;
	why text;
BEGIN
	IF jsonb_typeof(a) IS DISTINCT FROM 'array' THEN
		RAISE EXCEPTION 'attachments must be a JSON array' USING ERRCODE = 'invalid_parameter_value';
	ELSIF jsonb_array_length(a) > 10 THEN
		RAISE EXCEPTION 'too many attachments' USING ERRCODE = 'program_limit_exceeded',
			DETAIL = format('A message has at most 10 attachments; this one has %s.', jsonb_array_length(a));
	ELSIF octet_length(a::text) > 8192 THEN
		RAISE EXCEPTION 'attachments are too large' USING ERRCODE = 'program_limit_exceeded',
			DETAIL = format('The attachments take %s bytes as JSON text; at most 8192 are allowed.',
							octet_length(a::text));
	END IF;
	FOR e IN SELECT x FROM jsonb_array_elements(a) AS t(x) LOOP
		i := i + 1;
		why := NULL;
		IF jsonb_typeof(e) <> 'object' THEN
			why := 'It is not a JSON object.';
		ELSE
			SELECT min(key) INTO k FROM jsonb_object_keys(e) AS t(key)
			WHERE key NOT IN ('url', 'name', 'size', 'mime');
			IF k IS NOT NULL THEN
				why := format('The key "%s" is not allowed; the keys are "url", "name", "size" and "mime".', left(k, 40));
			ELSIF jsonb_typeof(e->'url') IS DISTINCT FROM 'string'
				  OR (e->>'url') !~* '^https?://[^[:space:]]+$' THEN
				why := 'The "url" must be a string with an http or https URL.';
			ELSIF jsonb_typeof(e->'name') IS DISTINCT FROM 'string' OR e->>'name' = '' THEN
				why := 'The "name" must be a non-empty string.';
			ELSIF jsonb_typeof(e->'size') IS DISTINCT FROM 'number'
				  OR (e->>'size')::numeric < 0
				  OR (e->>'size')::numeric <> trunc((e->>'size')::numeric) THEN
				why := 'The "size" must be an integer of at least 0.';
			ELSIF jsonb_typeof(e->'mime') IS DISTINCT FROM 'string' OR e->>'mime' = '' THEN
				why := 'The "mime" must be a non-empty string.';
			END IF;
		END IF;
		IF why IS NOT NULL THEN
			RAISE EXCEPTION 'invalid attachment %', i USING ERRCODE = 'invalid_parameter_value',
				DETAIL = why;
		END IF;
	END LOOP;
END
$$;

/*
 * chat._lock_channel locks the channel row and returns it, or raises
 * no_data_found.  Every function that changes a channel's messages or
 * members takes this row lock first (chat._send by updating the row), which
 * orders them per channel.  FOR NO KEY UPDATE is the lock an UPDATE takes.
 */
CREATE FUNCTION chat._lock_channel(ch uuid) RETURNS chat.channels
LANGUAGE plpgsql AS $$
DECLARE
	c chat.channels;
BEGIN
	SELECT * INTO c FROM chat.channels AS x WHERE x.id = ch FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'channel % does not exist', ch USING ERRCODE = 'no_data_found';
	END IF;
	RETURN c;
END
$$;

/*
 * chat._require_channel raises no_data_found unless the channel exists.
 */
CREATE FUNCTION chat._require_channel(ch uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM FROM chat.channels AS x WHERE x.id = ch;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'channel % does not exist', ch USING ERRCODE = 'no_data_found';
	END IF;
END
$$;

/*
 * chat._require_member returns uid's membership row of channel ch, or
 * raises insufficient_privilege when uid is not a member.
 */
CREATE FUNCTION chat._require_member(ch uuid, uid text) RETURNS chat.channel_members
LANGUAGE plpgsql AS $$
DECLARE
	m chat.channel_members;
BEGIN
	SELECT * INTO m FROM chat.channel_members AS x WHERE x.channel_id = ch AND x.user_id = uid;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'user "%" is not a member of channel %', uid, ch
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	RETURN m;
END
$$;

/*
 * chat._direct_channel returns the direct channel of users a and b,
 * creating it (with both as members) if needed.  Two sessions racing on the
 * same pair meet on the unique pair key: the loser's INSERT waits for the
 * winner, does nothing, and the following SELECT (a new snapshot under READ
 * COMMITTED) finds the winner's channel.
 */
CREATE FUNCTION chat._direct_channel(a text, b text) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
	lo text COLLATE "C";
	hi text COLLATE "C";
	ch uuid;
BEGIN
	PERFORM chat._check_user_id('a', a);
	PERFORM chat._check_user_id('b', b);
	IF a = b THEN
		RAISE EXCEPTION 'a direct channel needs two different users' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	lo := least(a COLLATE "C", b COLLATE "C");
	hi := greatest(a COLLATE "C", b COLLATE "C");
	LOOP
		INSERT INTO chat.channels AS c (type, direct_a, direct_b)
		VALUES ('direct', lo, hi)
		ON CONFLICT ON CONSTRAINT channels_direct_pair_key DO NOTHING
		RETURNING c.id INTO ch;
		IF ch IS NOT NULL THEN
			INSERT INTO chat.channel_members (channel_id, user_id, role)
			VALUES (ch, lo, 'member'), (ch, hi, 'member');
			RETURN ch;
		END IF;
		SELECT c.id INTO ch FROM chat.channels AS c WHERE c.direct_a = lo AND c.direct_b = hi;
		IF ch IS NOT NULL THEN
			RETURN ch;
		END IF;
		-- The conflicting channel was deleted in between: try again.
	END LOOP;
END
$$;

/*
 * chat._send is chat_send, and also tells whether the key was a duplicate
 * (the worker's ack needs it).  See chat_send.
 *
 * The first statement locks the channel row and takes the next seq.  The
 * idempotency key is checked after it, by a statement whose snapshot is
 * newer than the lock, so a concurrent duplicate in the same channel has
 * committed and is seen.  When nothing is stored after all (a duplicate,
 * or the same key committed concurrently for another channel), the seq is
 * given back while the lock is still held; an error rolls it back.  Either
 * way no gap is left.
 */
CREATE FUNCTION chat._send(channel uuid, sender text, content text, client_id uuid,
						   kind text, reply_to uuid, attachments jsonb,
						   OUT message chat.messages, OUT duplicate boolean)
LANGUAGE plpgsql AS $$
DECLARE
	next_seq bigint;
	dup_id uuid;
	is_member boolean;
BEGIN
	IF channel IS NULL THEN
		RAISE EXCEPTION 'channel must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF sender IS NULL THEN
		RAISE EXCEPTION 'sender must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF client_id IS NULL THEN
		RAISE EXCEPTION 'client_id must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF kind IS NULL THEN
		RAISE EXCEPTION 'kind must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM chat._check_content(content);
	IF kind !~ '^[a-z][a-z0-9_.-]{0,31}$' THEN
		RAISE EXCEPTION 'invalid message kind "%"', left(kind, 40) USING ERRCODE = 'invalid_parameter_value',
			HINT = 'A kind is a lower-case letter followed by at most 31 of a-z, 0-9, "_", "." and "-".';
	END IF;
	IF attachments IS NOT NULL THEN
		PERFORM chat._check_attachments(attachments);
	END IF;

	UPDATE chat.channels AS x SET last_seq = x.last_seq + 1 WHERE x.id = channel
	RETURNING x.last_seq INTO next_seq;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'channel % does not exist', channel USING ERRCODE = 'no_data_found';
	END IF;

	SELECT (SELECT m.id FROM chat.messages AS m
			WHERE m.sender_id = sender AND m.client_id = _send.client_id),
		   EXISTS (SELECT FROM chat.channel_members AS x
				   WHERE x.channel_id = channel AND x.user_id = sender)
	INTO dup_id, is_member;
	IF dup_id IS NOT NULL THEN
		UPDATE chat.channels AS x SET last_seq = x.last_seq - 1 WHERE x.id = channel;
		SELECT * INTO message FROM chat.messages AS m WHERE m.id = dup_id;
		duplicate := true;
		RETURN;
	ELSIF NOT is_member THEN
		RAISE EXCEPTION 'user "%" is not a member of channel %', sender, channel
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	IF reply_to IS NOT NULL THEN
		PERFORM FROM chat.messages AS m WHERE m.id = _send.reply_to AND m.channel_id = channel;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'reply_to is not a message of this channel' USING ERRCODE = 'invalid_parameter_value',
				DETAIL = format('No message %s exists in channel %s.', reply_to, channel);
		END IF;
	END IF;

	INSERT INTO chat.messages AS m
		(channel_id, seq, sender_id, client_id, content, kind, reply_to, attachments, created_at)
	VALUES (channel, next_seq, sender, _send.client_id, _send.content, _send.kind,
			_send.reply_to, _send.attachments, clock_timestamp())
	ON CONFLICT ON CONSTRAINT messages_sender_client_key DO NOTHING
	RETURNING m.* INTO message;
	IF NOT FOUND THEN
		-- Another transaction committed this key (for another channel) while
		-- we waited on it: give the seq back and return that message.
		UPDATE chat.channels AS x SET last_seq = x.last_seq - 1 WHERE x.id = channel;
		SELECT * INTO STRICT message FROM chat.messages AS m
		WHERE m.sender_id = sender AND m.client_id = _send.client_id;
		duplicate := true;
		RETURN;
	END IF;

	-- Sending marks the channel read for the sender.  This never waits for
	-- the member row: a chat_mark_read of the same user in flight in another
	-- transaction (which may go on to lock this channel) keeps it, and that
	-- transaction's marker wins.  Waiting here, while holding the channel
	-- lock, could deadlock with it.
	UPDATE chat.channel_members AS x SET last_read_seq = next_seq
	WHERE (x.channel_id, x.user_id) IN (
		SELECT y.channel_id, y.user_id FROM chat.channel_members AS y
		WHERE y.channel_id = channel AND y.user_id = sender AND y.last_read_seq < next_seq
		FOR NO KEY UPDATE SKIP LOCKED);
	duplicate := false;
END
$$;

/*
 * chat._send_batch stores many messages in one go: the worker's group
 * commit calls it once per batch, instead of chat._send once per message
 * (which costs a plan execution, a trigger call and several index probes
 * for each).  Item i is (channels[i], senders[i], contents[i],
 * client_ids[i], kinds[i], reply_tos[i], attachments[i]); it returns one
 * row per item: ord = i, and what chat._send would have returned for it,
 * as if the items had been sent one after another in array order.
 *
 * It stores all of them or raises.  Whatever chat._send would refuse for
 * one item (a NULL, bad content, kind or attachments, a missing channel, a
 * sender who is not a member, a bad reply_to) raises for the batch, and so
 * does a key that another transaction is storing at the same moment (the
 * unique index makes us wait for it, then unique_violation).  The worker
 * then stores that batch item by item through chat._send, which tells each
 * sender its own error: the rare case pays, the common case does not.
 *
 * The locks are chat._send's: the channel rows, taken in id order (the
 * worker's per-item path takes them in the same order), then the sender's
 * member row with SKIP LOCKED.  The statement that reads the keys and the
 * seqs starts after the channel locks are held, so it sees everything
 * committed in those channels before.
 */
CREATE FUNCTION chat._send_batch(channels uuid[], senders text[], contents text[],
								 client_ids uuid[], kinds text[], reply_tos uuid[],
								 attachments jsonb[])
RETURNS TABLE (ord bigint, duplicate boolean, message chat.messages)
LANGUAGE plpgsql AS $$
DECLARE
	n integer := coalesce(cardinality(channels), 0);
	a jsonb;
	n_invalid integer;
	n_attached integer;
	n_channels integer;
	locked_ids uuid[];
	locked_seqs bigint[];
	locked_tids tid[];
BEGIN
	IF coalesce(cardinality(senders), 0) <> n OR coalesce(cardinality(contents), 0) <> n
	   OR coalesce(cardinality(client_ids), 0) <> n OR coalesce(cardinality(kinds), 0) <> n
	   OR coalesce(cardinality(reply_tos), 0) <> n OR coalesce(cardinality(attachments), 0) <> n THEN
		RAISE EXCEPTION 'the arrays of a batch must have the same length'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT count(*) FILTER (WHERE i.ch IS NULL OR i.s IS NULL OR i.t IS NULL OR i.cid IS NULL
								   OR i.k IS NULL OR i.t = '' OR octet_length(i.t) > l.lim
								   OR (i.k <> 'text' AND i.k !~ '^[a-z][a-z0-9_.-]{0,31}$')),
		   count(i.att), count(DISTINCT i.ch)
	INTO n_invalid, n_attached, n_channels
	FROM unnest(channels, senders, contents, client_ids, kinds, attachments) AS i(ch, s, t, cid, k, att),
		 (SELECT chat._max_message_bytes() AS lim) AS l;
	IF n_invalid > 0 THEN
		RAISE EXCEPTION 'a message of the batch is invalid' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF n_attached > 0 THEN
		FOR a IN SELECT x FROM unnest(attachments) AS u(x) WHERE x IS NOT NULL LOOP
			PERFORM chat._check_attachments(a);
		END LOOP;
	END IF;

	/*
	 * Lock the channels in id order.  A row that had to be waited for is
	 * returned as its newest version, so last_seq is current; and while we
	 * hold the lock nobody else moves the row, so its ctid stays valid for
	 * the UPDATE below.
	 */
	SELECT array_agg(l.id ORDER BY l.id), array_agg(l.last_seq ORDER BY l.id),
		   array_agg(l.ctid ORDER BY l.id)
	INTO locked_ids, locked_seqs, locked_tids
	FROM (SELECT c.id, c.last_seq, c.ctid FROM chat.channels AS c
		  WHERE c.id = ANY (channels) ORDER BY c.id FOR NO KEY UPDATE) AS l;
	IF coalesce(cardinality(locked_ids), 0) <> n_channels THEN
		RAISE EXCEPTION 'a channel of the batch does not exist' USING ERRCODE = 'no_data_found';
	END IF;

	/*
	 * One statement, with a snapshot taken under the locks: the keys and
	 * members as of now.  Every lookup is a scalar subquery, which the
	 * planner runs as one index probe per item (as a join it may choose to
	 * read a whole table into a hash, which costs more with every row the
	 * table grows).  A new item whose sender is not a member, or whose
	 * reply_to is not a message of its channel, makes chat._batch_refused
	 * raise, which undoes the whole statement.
	 */
	RETURN QUERY
	WITH items AS (
		-- old: the message stored before under the item's key (a duplicate)
		SELECT t.*, (SELECT m FROM chat.messages AS m
					 WHERE m.sender_id = t.sender_id AND m.client_id = t.client_id) AS old
		FROM unnest(channels, senders, contents, client_ids, kinds, reply_tos, attachments)
			WITH ORDINALITY AS t(channel_id, sender_id, content, client_id, kind, reply_to, attachments, ord)),
	fresh AS (
		-- the first item of each new key; a repeat within the batch is its duplicate
		SELECT DISTINCT ON (i.sender_id, i.client_id) i.*
		FROM items AS i WHERE (i.old).id IS NULL
		ORDER BY i.sender_id, i.client_id, i.ord),
	numbered AS (
		SELECT f.*, c.last_seq + row_number() OVER (PARTITION BY f.channel_id ORDER BY f.ord) AS seq
		FROM fresh AS f JOIN unnest(locked_ids, locked_seqs) AS c(id, last_seq) ON c.id = f.channel_id),
	ins AS (
		INSERT INTO chat.messages AS m
			(channel_id, seq, sender_id, client_id, content, kind, reply_to, attachments, created_at)
		SELECT x.channel_id, x.seq,
			   CASE WHEN EXISTS (SELECT FROM chat.channel_members AS y
								 WHERE y.channel_id = x.channel_id AND y.user_id = x.sender_id)
						 AND (x.reply_to IS NULL
							  OR EXISTS (SELECT FROM chat.messages AS r
										 WHERE r.id = x.reply_to AND r.channel_id = x.channel_id))
					THEN x.sender_id ELSE chat._batch_refused() END,
			   x.client_id, x.content, x.kind, x.reply_to, x.attachments, pg_catalog.clock_timestamp()
		FROM numbered AS x ORDER BY x.channel_id, x.seq
		RETURNING m.*),
	bump AS (
		UPDATE chat.channels AS c SET last_seq = x.top
		FROM (SELECT l.tid, max(i.seq) AS top
			  FROM ins AS i JOIN unnest(locked_ids, locked_tids) AS l(id, tid) ON l.id = i.channel_id
			  GROUP BY l.id, l.tid) AS x
		WHERE c.ctid = x.tid),
	mark AS (
		-- sending marks the channel read for the sender, never waiting for
		-- the member row (see chat._send)
		UPDATE chat.channel_members AS x SET last_read_seq = l.top
		FROM (SELECT t.top,
					 (SELECT y.ctid FROM chat.channel_members AS y
					  WHERE y.channel_id = t.channel_id AND y.user_id = t.sender_id
						AND y.last_read_seq < t.top
					  FOR NO KEY UPDATE SKIP LOCKED) AS tid
			  FROM (SELECT i.channel_id, i.sender_id, max(i.seq) AS top
					FROM ins AS i GROUP BY 1, 2) AS t) AS l
		WHERE x.ctid = l.tid)
	SELECT i.ord, ((i.old).id IS NOT NULL OR f.ord <> i.ord), coalesce(i.old, ROW(s.*)::chat.messages)
	FROM items AS i
	LEFT JOIN fresh AS f ON (i.old).id IS NULL AND f.sender_id = i.sender_id AND f.client_id = i.client_id
	LEFT JOIN ins AS s ON (i.old).id IS NULL AND s.sender_id = i.sender_id AND s.client_id = i.client_id
	ORDER BY i.ord;
END
$$;

/*
 * chat._batch_refused raises: chat._send_batch calls it for an item that
 * chat._send would refuse (a sender who is not a member, a reply_to that
 * is not a message of the channel), which undoes the batch.
 */
CREATE FUNCTION chat._batch_refused() RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'a sender of the batch is not a member, or a reply_to is wrong'
		USING ERRCODE = 'insufficient_privilege';
END
$$;

/*
 * chat._notify_message announces edited and deleted messages on the NOTIFY
 * channel "chat": u:<channel>:<seq>, d:<channel>:<seq> (new messages:
 * chat._notify_inserted).  NOTIFY is transactional, so nothing is
 * announced for a rolled-back (sub)transaction.
 */
CREATE FUNCTION chat._notify_message() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
		PERFORM pg_catalog.pg_notify('chat', pg_catalog.concat('d:', NEW.channel_id, ':', NEW.seq));
	ELSE
		PERFORM pg_catalog.pg_notify('chat', pg_catalog.concat('u:', NEW.channel_id, ':', NEW.seq));
	END IF;
	RETURN NULL;
END
$$;

/*
 * chat._notify_inserted announces the messages one statement inserted: one
 * m:<channel>:<seq> per channel, with its highest seq.  That is all the
 * worker needs ("the channel has messages up to seq"), and a batch of
 * hundreds of messages costs a handful of notifications, not hundreds.
 */
CREATE FUNCTION chat._notify_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_catalog.pg_notify('chat', pg_catalog.concat('m:', a.channel_id, ':', max(a.seq)))
	FROM added AS a GROUP BY a.channel_id;
	RETURN NULL;
END
$$;

CREATE TRIGGER messages_notify_insert AFTER INSERT ON chat.messages
	REFERENCING NEW TABLE AS added
	FOR EACH STATEMENT EXECUTE FUNCTION chat._notify_inserted();
CREATE TRIGGER messages_notify_update AFTER UPDATE ON chat.messages
	FOR EACH ROW
	WHEN ((OLD.content, OLD.kind, OLD.attachments, OLD.edited_at, OLD.deleted_at)
		  IS DISTINCT FROM (NEW.content, NEW.kind, NEW.attachments, NEW.edited_at, NEW.deleted_at))
	EXECUTE FUNCTION chat._notify_message();

/*
 * chat._drop_messages deletes the messages of deleted channels (what ON
 * DELETE CASCADE would do; see chat.messages.channel_id).  A send that held
 * the channel's lock has committed before the DELETE got the row, and this
 * statement's snapshot is newer than that, so its message goes too; a send
 * that comes later finds no channel.  Their audit trail goes with them
 * (message_versions cascades from messages).
 */
CREATE FUNCTION chat._drop_messages() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'TRUNCATE' THEN
		TRUNCATE chat.messages, chat.message_versions;
	ELSE
		DELETE FROM chat.messages AS m USING gone AS g WHERE m.channel_id = g.id;
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER channels_drop_messages AFTER DELETE ON chat.channels
	REFERENCING OLD TABLE AS gone
	FOR EACH STATEMENT EXECUTE FUNCTION chat._drop_messages();
CREATE TRIGGER channels_truncate_messages AFTER TRUNCATE ON chat.channels
	FOR EACH STATEMENT EXECUTE FUNCTION chat._drop_messages();

/*
 * chat._notify_member announces membership and read-state changes on the
 * NOTIFY channel "chat": j:<channel>:<user> (added, or role changed) and
 * l:<channel>:<user> (removed).  Read receipts (r:<channel>:<seq>:<user>)
 * come from chat_mark_read itself.  The user id comes last because it may
 * itself contain ':'.
 */
CREATE FUNCTION chat._notify_member() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		PERFORM pg_catalog.pg_notify('chat', pg_catalog.concat('j:', NEW.channel_id, ':', NEW.user_id));
	ELSIF TG_OP = 'DELETE' THEN
		PERFORM pg_catalog.pg_notify('chat', pg_catalog.concat('l:', OLD.channel_id, ':', OLD.user_id));
	ELSIF (OLD.channel_id, OLD.user_id) IS DISTINCT FROM (NEW.channel_id, NEW.user_id) THEN
		PERFORM pg_catalog.pg_notify('chat', pg_catalog.concat('l:', OLD.channel_id, ':', OLD.user_id));
		PERFORM pg_catalog.pg_notify('chat', pg_catalog.concat('j:', NEW.channel_id, ':', NEW.user_id));
	ELSE
		IF OLD.role IS DISTINCT FROM NEW.role THEN
			PERFORM pg_catalog.pg_notify('chat', pg_catalog.concat('j:', NEW.channel_id, ':', NEW.user_id));
		END IF;
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER channel_members_notify_insert_delete AFTER INSERT OR DELETE ON chat.channel_members
	FOR EACH ROW EXECUTE FUNCTION chat._notify_member();
CREATE TRIGGER channel_members_notify_update AFTER UPDATE ON chat.channel_members
	FOR EACH ROW
	WHEN ((OLD.channel_id, OLD.user_id, OLD.role) IS DISTINCT FROM (NEW.channel_id, NEW.user_id, NEW.role))
	EXECUTE FUNCTION chat._notify_member();

/* ------------------------------------------------------------------------
 * The SQL API (in the extension's schema)
 * ------------------------------------------------------------------------
 */

/*
 * chat_direct_channel returns the one direct channel of users a and b,
 * creating it on first use; (a, b) and (b, a) are the same channel.
 */
CREATE FUNCTION chat_direct_channel(a text, b text) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN chat._direct_channel(a, b);
END
$$;

/*
 * chat_create_channel creates a group channel with the given members (the
 * first listed becomes its admin), or gets-or-creates a direct channel
 * between exactly two users.  Repeated members count once.
 */
CREATE FUNCTION chat_create_channel(type text, name text, members text[]) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	uniq text[];
	lim integer;
	ch uuid;
	member text;
BEGIN
	IF type IS NULL THEN
		RAISE EXCEPTION 'type must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF type NOT IN ('direct', 'group') THEN
		RAISE EXCEPTION 'invalid channel type "%"', left(type, 40) USING ERRCODE = 'invalid_parameter_value',
			HINT = 'The type is "direct" or "group".';
	ELSIF members IS NULL THEN
		RAISE EXCEPTION 'members must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	FOREACH member IN ARRAY members LOOP
		IF member IS NULL THEN
			RAISE EXCEPTION 'members must not contain null' USING ERRCODE = 'null_value_not_allowed';
		END IF;
		PERFORM chat._check_user_id('member', member);
	END LOOP;
	-- Distinct members in the order of their first appearance.
	SELECT coalesce(array_agg(u ORDER BY first), '{}') INTO uniq
	FROM (SELECT u, min(n) AS first FROM unnest(members) WITH ORDINALITY AS t(u, n) GROUP BY u) AS s;

	IF type = 'direct' THEN
		IF cardinality(uniq) <> 2 THEN
			RAISE EXCEPTION 'a direct channel needs exactly 2 distinct members' USING ERRCODE = 'invalid_parameter_value',
				DETAIL = format('The members array holds %s distinct user ids.', cardinality(uniq));
		END IF;
		RETURN chat._direct_channel(uniq[1], uniq[2]);
	END IF;

	IF name = '' THEN
		RAISE EXCEPTION 'channel name must not be empty' USING ERRCODE = 'invalid_parameter_value',
			HINT = 'Pass NULL for a group without a name.';
	ELSIF char_length(name) > 200 THEN
		RAISE EXCEPTION 'channel name is too long' USING ERRCODE = 'invalid_parameter_value',
			DETAIL = format('A channel name has at most 200 characters; this one has %s.', char_length(name));
	ELSIF cardinality(uniq) = 0 THEN
		RAISE EXCEPTION 'a group channel needs at least one member' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	lim := current_setting('chat.max_group_members')::integer;
	IF cardinality(uniq) > lim THEN
		RAISE EXCEPTION 'too many members for a group channel' USING ERRCODE = 'program_limit_exceeded',
			DETAIL = format('The members array holds %s distinct user ids; chat.max_group_members allows %s.', cardinality(uniq), lim);
	END IF;

	INSERT INTO chat.channels AS c (type, name) VALUES ('group', chat_create_channel.name)
	RETURNING c.id INTO ch;
	INSERT INTO chat.channel_members (channel_id, user_id, role)
	SELECT ch, u, CASE WHEN n = 1 THEN 'admin' ELSE 'member' END
	FROM unnest(uniq) WITH ORDINALITY AS t(u, n)
	ORDER BY n;
	RETURN ch;
END
$$;

/*
 * chat_add_member adds user_id to a group channel with the given role, or
 * changes the role of an existing member.  A new member's read marker
 * starts at the channel's newest message.
 */
CREATE FUNCTION chat_add_member(channel uuid, user_id text, role text DEFAULT 'member') RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	c chat.channels;
	old_role text;
	n integer;
	lim integer;
BEGIN
	IF channel IS NULL THEN
		RAISE EXCEPTION 'channel must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM chat._check_user_id('user_id', user_id);
	IF role IS NULL THEN
		RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF role NOT IN ('member', 'admin') THEN
		RAISE EXCEPTION 'invalid role "%"', left(role, 40) USING ERRCODE = 'invalid_parameter_value',
			HINT = 'The role is "member" or "admin".';
	END IF;

	c := chat._lock_channel(channel);
	IF c.type <> 'group' THEN
		RAISE EXCEPTION 'cannot add members to a direct channel' USING ERRCODE = 'invalid_parameter_value',
			DETAIL = 'A direct channel always has exactly its two users.';
	END IF;

	SELECT m.role INTO old_role FROM chat.channel_members AS m
	WHERE m.channel_id = channel AND m.user_id = chat_add_member.user_id;
	IF FOUND THEN
		IF old_role <> role THEN
			UPDATE chat.channel_members AS m SET role = chat_add_member.role
			WHERE m.channel_id = channel AND m.user_id = chat_add_member.user_id;
		END IF;
		RETURN;
	END IF;

	SELECT count(*) INTO n FROM chat.channel_members AS m WHERE m.channel_id = channel;
	lim := current_setting('chat.max_group_members')::integer;
	IF n >= lim THEN
		RAISE EXCEPTION 'too many members for a group channel' USING ERRCODE = 'program_limit_exceeded',
			DETAIL = format('The channel has %s members; chat.max_group_members allows %s.', n, lim);
	END IF;
	INSERT INTO chat.channel_members (channel_id, user_id, role, last_read_seq)
	VALUES (channel, chat_add_member.user_id, chat_add_member.role, c.last_seq);
END
$$;

/*
 * chat_remove_member removes user_id from a group channel; removing a
 * non-member does nothing.
 */
CREATE FUNCTION chat_remove_member(channel uuid, user_id text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	c chat.channels;
BEGIN
	IF channel IS NULL THEN
		RAISE EXCEPTION 'channel must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF user_id IS NULL THEN
		RAISE EXCEPTION 'user_id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	c := chat._lock_channel(channel);
	IF c.type <> 'group' THEN
		RAISE EXCEPTION 'cannot remove members from a direct channel' USING ERRCODE = 'invalid_parameter_value',
			DETAIL = 'A direct channel always has exactly its two users.';
	END IF;
	DELETE FROM chat.channel_members AS m
	WHERE m.channel_id = channel AND m.user_id = chat_remove_member.user_id;
END
$$;

/*
 * chat_send stores a message and returns it.  It is idempotent on
 * (sender, client_id): the same key again returns the first message and
 * stores nothing, whatever channel or content it comes with.
 */
CREATE FUNCTION chat_send(channel uuid, sender text, content text,
						  client_id uuid DEFAULT pg_catalog.gen_random_uuid(),
						  kind text DEFAULT 'text', reply_to uuid DEFAULT NULL,
						  attachments jsonb DEFAULT NULL)
RETURNS chat.messages
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
BEGIN
	SELECT * INTO r FROM chat._send(channel, sender, content, client_id, kind, reply_to, attachments);
	RETURN r.message;
END
$$;

/*
 * chat_history returns up to max messages of a channel with seq below
 * before_seq (all when NULL), newest first.  Deleted messages come back as
 * tombstones (empty content, deleted_at set), so that seq stays gap-free.
 */
CREATE FUNCTION chat_history(channel uuid, before_seq bigint DEFAULT NULL, max integer DEFAULT 50)
RETURNS SETOF chat.messages
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF channel IS NULL THEN
		RAISE EXCEPTION 'channel must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF max IS NULL THEN
		RAISE EXCEPTION 'max must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF max NOT BETWEEN 1 AND 1000 THEN
		RAISE EXCEPTION 'max must be between 1 and 1000' USING ERRCODE = 'invalid_parameter_value';
	ELSIF before_seq < 0 THEN
		RAISE EXCEPTION 'before_seq must not be negative' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM chat._require_channel(channel);
	RETURN QUERY
		SELECT * FROM chat.messages AS m
		WHERE m.channel_id = channel
		  AND m.seq < coalesce(before_seq, 9223372036854775807)
		ORDER BY m.seq DESC
		LIMIT max;
END
$$;

/*
 * chat_since returns up to max messages of a channel with seq above
 * after_seq, oldest first: what a client that has seen after_seq missed.
 */
CREATE FUNCTION chat_since(channel uuid, after_seq bigint, max integer DEFAULT 1000)
RETURNS SETOF chat.messages
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF channel IS NULL THEN
		RAISE EXCEPTION 'channel must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF after_seq IS NULL THEN
		RAISE EXCEPTION 'after_seq must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF max IS NULL THEN
		RAISE EXCEPTION 'max must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF max NOT BETWEEN 1 AND 10000 THEN
		RAISE EXCEPTION 'max must be between 1 and 10000' USING ERRCODE = 'invalid_parameter_value';
	ELSIF after_seq < 0 THEN
		RAISE EXCEPTION 'after_seq must not be negative' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM chat._require_channel(channel);
	RETURN QUERY
		SELECT * FROM chat.messages AS m
		WHERE m.channel_id = channel AND m.seq > after_seq
		ORDER BY m.seq
		LIMIT max;
END
$$;

/*
 * chat._lock_message locks the channel of message msg and then the message
 * itself (the same order as chat_send: channel first) and returns the
 * message, or raises no_data_found.
 */
CREATE FUNCTION chat._lock_message(msg uuid) RETURNS chat.messages
LANGUAGE plpgsql AS $$
DECLARE
	ch uuid;
	m chat.messages;
BEGIN
	SELECT x.channel_id INTO ch FROM chat.messages AS x WHERE x.id = msg;
	IF FOUND THEN
		PERFORM chat._lock_channel(ch);
		SELECT * INTO m FROM chat.messages AS x WHERE x.id = msg FOR UPDATE;
	END IF;
	IF m.id IS NULL THEN
		RAISE EXCEPTION 'message % does not exist', msg USING ERRCODE = 'no_data_found';
	END IF;
	RETURN m;
END
$$;

/*
 * chat._archive copies the current content of message m into
 * chat.message_versions and returns the channel's next change number.
 */
CREATE FUNCTION chat._archive(m chat.messages, action text, by_user text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	change bigint;
BEGIN
	INSERT INTO chat.message_versions (message_id, version, content, attachments, action, by_user, at)
	SELECT m.id, coalesce(max(v.version), 0) + 1, m.content, m.attachments,
		   _archive.action, _archive.by_user, clock_timestamp()
	FROM chat.message_versions AS v WHERE v.message_id = m.id;
	UPDATE chat.channels AS c SET last_change = c.last_change + 1
	WHERE c.id = m.channel_id
	RETURNING c.last_change INTO change;
	RETURN change;
END
$$;

/*
 * chat_edit replaces the content of a message; only its sender may, and
 * only while the message is not deleted.  The previous content is kept in
 * chat.message_versions.  The same content again changes nothing.
 */
CREATE FUNCTION chat_edit(message uuid, editor text, content text) RETURNS chat.messages
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m chat.messages;
	change bigint;
BEGIN
	IF message IS NULL THEN
		RAISE EXCEPTION 'message must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF editor IS NULL THEN
		RAISE EXCEPTION 'editor must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM chat._check_content(content);

	m := chat._lock_message(message);
	PERFORM chat._require_member(m.channel_id, editor);
	IF m.sender_id <> editor THEN
		RAISE EXCEPTION 'only the sender can edit a message' USING ERRCODE = 'insufficient_privilege',
			DETAIL = format('Message %s was sent by another user.', message);
	ELSIF m.deleted_at IS NOT NULL THEN
		RAISE EXCEPTION 'cannot edit a deleted message' USING ERRCODE = 'object_not_in_prerequisite_state',
			DETAIL = format('Message %s was deleted.', message);
	ELSIF m.content = chat_edit.content THEN
		RETURN m;
	END IF;

	change := chat._archive(m, 'edit', editor);
	UPDATE chat.messages AS x
	SET content = chat_edit.content, edited_at = clock_timestamp(), change_seq = change
	WHERE x.id = message
	RETURNING x.* INTO m;
	RETURN m;
END
$$;

/*
 * chat_delete soft-deletes a message: its sender or an admin of its channel
 * may.  The row stays (seq stays gap-free) with empty content and no
 * attachments; what it held is kept in chat.message_versions.  Deleting a
 * deleted message does nothing.
 */
CREATE FUNCTION chat_delete(message uuid, by_user text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m chat.messages;
	who chat.channel_members;
	change bigint;
BEGIN
	IF message IS NULL THEN
		RAISE EXCEPTION 'message must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF by_user IS NULL THEN
		RAISE EXCEPTION 'by_user must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;

	m := chat._lock_message(message);
	who := chat._require_member(m.channel_id, by_user);
	IF m.sender_id <> by_user AND who.role <> 'admin' THEN
		RAISE EXCEPTION 'only the sender or a channel admin can delete a message'
			USING ERRCODE = 'insufficient_privilege',
			DETAIL = format('Message %s was sent by another user.', message);
	ELSIF m.deleted_at IS NOT NULL THEN
		RETURN;
	END IF;

	change := chat._archive(m, 'delete', by_user);
	UPDATE chat.messages AS x
	SET content = '', attachments = NULL, deleted_at = clock_timestamp(), change_seq = change
	WHERE x.id = message;
END
$$;

/*
 * chat_mark_read moves user_id's read marker in a channel forward to seq
 * (clamped to the channel's newest message; never backwards) and returns
 * the stored marker.
 */
CREATE FUNCTION chat_mark_read(channel uuid, user_id text, seq bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	target bigint;
	stored bigint;
BEGIN
	IF channel IS NULL THEN
		RAISE EXCEPTION 'channel must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF user_id IS NULL THEN
		RAISE EXCEPTION 'user_id must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF seq IS NULL THEN
		RAISE EXCEPTION 'seq must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF seq < 0 THEN
		RAISE EXCEPTION 'seq must not be negative' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT least(chat_mark_read.seq, c.last_seq) INTO target FROM chat.channels AS c WHERE c.id = channel;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'channel % does not exist', channel USING ERRCODE = 'no_data_found';
	END IF;
	-- Under READ COMMITTED a concurrent mark is re-checked by the WHERE
	-- clause, so the marker can only grow.
	UPDATE chat.channel_members AS m SET last_read_seq = target
	WHERE m.channel_id = channel AND m.user_id = chat_mark_read.user_id AND m.last_read_seq < target
	RETURNING m.last_read_seq INTO stored;
	IF stored IS NULL THEN
		stored := (chat._require_member(channel, user_id)).last_read_seq;
	END IF;
	-- A read receipt: every call tells the members where the marker stands,
	-- also when it did not move.  The implicit read of a sender's own
	-- message (chat_send) is not announced: the message itself says it.
	PERFORM pg_catalog.pg_notify('chat', pg_catalog.concat('r:', channel, ':', stored, ':', user_id));
	RETURN stored;
END
$$;

/*
 * chat_unread returns, for every channel user_id is a member of, how many
 * messages after the read marker are neither deleted nor the user's own.
 */
CREATE FUNCTION chat_unread(user_id text) RETURNS TABLE (channel_id uuid, unread bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF user_id IS NULL THEN
		RAISE EXCEPTION 'user_id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	RETURN QUERY
		SELECT cm.channel_id,
			   (SELECT count(*) FROM chat.messages AS m
				WHERE m.channel_id = cm.channel_id AND m.seq > cm.last_read_seq
				  AND m.deleted_at IS NULL AND m.sender_id <> cm.user_id)
		FROM chat.channel_members AS cm
		WHERE cm.user_id = chat_unread.user_id
		ORDER BY cm.channel_id;
END
$$;

/*
 * chat_message_audit returns every version a message has had, oldest
 * first: version 1 is what was sent, each later one what an edit made of
 * it, and a delete ends it with empty content.  Each row says who wrote
 * that version and when.  Deleted content stays readable here, and only
 * here: this function is for superusers and members of chat_auditor.
 */
CREATE FUNCTION chat_message_audit(message uuid)
RETURNS TABLE (version integer, action text, by_user text, at timestamptz,
			   content text, attachments jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m chat.messages;
BEGIN
	IF message IS NULL THEN
		RAISE EXCEPTION 'message must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO m FROM chat.messages AS x WHERE x.id = message;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'message % does not exist', message USING ERRCODE = 'no_data_found';
	END IF;
	-- message_versions keeps the content *before* each change; the content
	-- after change k is the one kept before change k+1, or the current one.
	RETURN QUERY
	WITH changes AS (
		SELECT v.version AS n, v.action AS how, v.by_user AS who, v.at AS t,
			   v.content AS before_content, v.attachments AS before_att
		FROM chat.message_versions AS v WHERE v.message_id = message
	), written AS (
		SELECT 1 AS n, 'send'::text AS how, m.sender_id AS who, m.created_at AS t
		UNION ALL
		SELECT c.n + 1, c.how, c.who, c.t FROM changes AS c
	)
	SELECT w.n, w.how, w.who, w.t,
		   coalesce(nx.before_content, m.content),
		   CASE WHEN nx.n IS NOT NULL THEN nx.before_att ELSE m.attachments END
	FROM written AS w
	LEFT JOIN changes AS nx ON nx.n = w.n
	ORDER BY w.n;
END
$$;

/* ------------------------------------------------------------------------
 * C functions (src/pg/sql_api.c)
 * ------------------------------------------------------------------------
 */

/*
 * chat_online lists the members of a channel with a live connection on
 * any worker now, from shared memory (presence never touches a table).
 */
CREATE FUNCTION chat_online(channel uuid) RETURNS SETOF text
LANGUAGE C STRICT VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_online';

/*
 * chat_mint_token signs an HS256 token for user_id with chat.jwt_secret.
 * Superusers only (checked in C as well): it is a way to act as anyone.
 * Meant for demos and tests; applications mint their own tokens.
 */
CREATE FUNCTION chat_mint_token(user_id text, ttl interval DEFAULT '1 hour')
RETURNS text
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'chat_mint_token';

/* ------------------------------------------------------------------------
 * Privileges: nothing for PUBLIC; chat_app may call the API and read the
 * tables (not the audit trail).  Grant chat_app to the application's role.
 * ------------------------------------------------------------------------
 */

REVOKE ALL ON SCHEMA chat FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA chat FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA chat FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION
	chat_direct_channel(text, text),
	chat_create_channel(text, text, text[]),
	chat_add_member(uuid, text, text),
	chat_remove_member(uuid, text),
	chat_send(uuid, text, text, uuid, text, uuid, jsonb),
	chat_history(uuid, bigint, integer),
	chat_since(uuid, bigint, integer),
	chat_edit(uuid, text, text),
	chat_delete(uuid, text),
	chat_mark_read(uuid, text, bigint),
	chat_unread(text),
	chat_online(uuid),
	chat_mint_token(text, interval),
	chat_message_audit(uuid)
FROM PUBLIC;

GRANT EXECUTE ON FUNCTION chat_message_audit(uuid) TO chat_auditor;

GRANT EXECUTE ON FUNCTION
	chat_direct_channel(text, text),
	chat_create_channel(text, text, text[]),
	chat_add_member(uuid, text, text),
	chat_remove_member(uuid, text),
	chat_send(uuid, text, text, uuid, text, uuid, jsonb),
	chat_history(uuid, bigint, integer),
	chat_since(uuid, bigint, integer),
	chat_edit(uuid, text, text),
	chat_delete(uuid, text),
	chat_mark_read(uuid, text, bigint),
	chat_unread(text),
	chat_online(uuid)
TO chat_app;

GRANT USAGE ON SCHEMA chat TO chat_app;
GRANT SELECT ON chat.channels, chat.channel_members, chat.messages TO chat_app;
