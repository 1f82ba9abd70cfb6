/*
 * chat--1.0--1.1.sql
 *	  Upgrade of the chat extension from 1.0 to 1.1.  A fresh install runs
 *	  chat--1.0.sql and then this file, so both paths end in the same
 *	  objects (sql/19_upgrade.sql compares them).
 *
 * Conventions: those of chat--1.0.sql (see src/sql/README.md).  Each change
 * has its own section below, titled for it.
 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION chat UPDATE TO '1.1'" to load this file. \quit

/* ------------------------------------------------------------------------
 * The event path: no NOTIFY in the application's transactions
 * ------------------------------------------------------------------------
 *
 * In 1.0 every change announced itself with pg_notify() from the writing
 * transaction, which takes a lock shared by the whole cluster until the
 * commit is flushed (so notifying commits happen one at a time), and lets
 * any role LISTEN to, and forge, the events.  From 1.1 the triggers record
 * hints in the backend; when the transaction commits, they go to a ring in
 * shared memory that only the chat workers read (src/pg/events.c).
 */
DROP TRIGGER messages_notify_insert ON chat.messages;
DROP TRIGGER messages_notify_update ON chat.messages;
DROP TRIGGER channel_members_notify_insert_delete ON chat.channel_members;
DROP TRIGGER channel_members_notify_update ON chat.channel_members;
DROP FUNCTION chat._notify_inserted();
DROP FUNCTION chat._notify_message();
DROP FUNCTION chat._notify_member();

/*
 * chat._hint records, for the commit, the hint of one changed row:
 * "m" a new message, "u"/"d" an edit or delete (chat.messages), "j"/"l"
 * a member added (or role changed) or removed (chat.channel_members).
 */
CREATE FUNCTION chat._hint() RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'chat_hint_trigger';

/*
 * chat._hint_read records a read receipt for the commit (chat_mark_read).
 */
CREATE FUNCTION chat._hint_read(channel uuid, seq bigint, user_id text) RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'chat_hint_read';

REVOKE EXECUTE ON FUNCTION chat._hint(), chat._hint_read(uuid, bigint, text) FROM PUBLIC;

CREATE TRIGGER messages_hint_insert AFTER INSERT ON chat.messages
	FOR EACH ROW EXECUTE FUNCTION chat._hint();
CREATE TRIGGER messages_hint_update AFTER UPDATE ON chat.messages
	FOR EACH ROW
	WHEN ((OLD.content, OLD.kind, OLD.attachments, OLD.edited_at, OLD.deleted_at)
		  IS DISTINCT FROM (NEW.content, NEW.kind, NEW.attachments, NEW.edited_at, NEW.deleted_at))
	EXECUTE FUNCTION chat._hint();
CREATE TRIGGER channel_members_hint_insert_delete AFTER INSERT OR DELETE ON chat.channel_members
	FOR EACH ROW EXECUTE FUNCTION chat._hint();
CREATE TRIGGER channel_members_hint_update AFTER UPDATE ON chat.channel_members
	FOR EACH ROW
	WHEN ((OLD.channel_id, OLD.user_id, OLD.role) IS DISTINCT FROM (NEW.channel_id, NEW.user_id, NEW.role))
	EXECUTE FUNCTION chat._hint();

/*
 * chat_mark_read: as in 1.0, but the read receipt is a hint for the
 * commit instead of a NOTIFY.
 */
CREATE OR REPLACE FUNCTION chat_mark_read(channel uuid, user_id text, seq bigint) RETURNS bigint
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
	ELSIF chat._distributed() THEN
		-- what the trigger chat._cancel_notifications does on one server
		PERFORM chat._cancel_read(channel, user_id, stored);
	END IF;
	-- A read receipt: every call tells the members where the marker stands,
	-- also when it did not move.  The implicit read of a sender's own
	-- message (chat_send) is not announced: the message itself says it.
	PERFORM chat._hint_read(channel, stored, user_id);
	RETURN stored;
END
$$;

/*
 * chat._events_take returns the event records of this database appended
 * since this session's previous call: what the workers were told.  For
 * tests and operators; superuser only, as it shows user ids.
 */
CREATE FUNCTION chat._events_take(OUT kind text, OUT channel_id uuid, OUT seq bigint,
								  OUT user_id text)
RETURNS SETOF record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'chat_events_take';

REVOKE EXECUTE ON FUNCTION chat._events_take() FROM PUBLIC;

/* ------------------------------------------------------------------------
 * chat_send in C (src/pg/send.c)
 * ------------------------------------------------------------------------
 */

/*
 * chat_send does what chat._send does, with the same checks in the same
 * order, the same errors and the same statements, but in C: the PL/pgSQL
 * calls around the statements (chat_send -> chat._send ->
 * chat._check_content -> chat._max_message_bytes) cost as much as the
 * statements.  chat._send stays, for the worker.  The pinned search_path
 * stays too: PostgreSQL 15 re-plans a kept plan under the search_path
 * current when it runs, so the C function's statements must always run
 * under this one.
 *
 * enable_seqscan is off for the same reason a kept plan needs care: every
 * statement of a send finds one row by its key, and a generic plan made
 * while chat.channels or chat.channel_members held a few rows scans the
 * table.  Each send updates a row of both, so the scanned table bloats
 * with dead versions until autovacuum comes (a minute by default), and
 * every send reads all of them: a fresh install sent at half its rate.
 */
CREATE OR REPLACE FUNCTION chat_send(channel uuid, sender text, content text,
									 client_id uuid DEFAULT pg_catalog.gen_random_uuid(),
									 kind text DEFAULT 'text', reply_to uuid DEFAULT NULL,
									 attachments jsonb DEFAULT NULL)
RETURNS chat.messages
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
AS 'MODULE_PATHNAME', 'chat_send';

REVOKE EXECUTE ON FUNCTION chat_send(uuid, text, text, uuid, text, uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION chat_send(uuid, text, text, uuid, text, uuid, jsonb) TO chat_app;

/* ------------------------------------------------------------------------
 * Offline notifications (issue 16)
 * ------------------------------------------------------------------------
 *
 * A durable queue the application drains from SQL and sends through its own
 * push or e-mail provider; the extension never calls out.  Entries are made
 * by a statement trigger on chat.messages in the sending transaction, so an
 * entry exists if and only if its message committed.  One open entry per
 * (user, channel) collects every message until it is claimed.
 */

-- A member's mute: no notifications from the channel before this time
-- (mentions still notify).  NULL: not muted.
ALTER TABLE chat.channel_members ADD COLUMN muted_until timestamptz;

-- Per-user notification preferences.
CREATE TABLE chat.notify_settings (
	user_id		text PRIMARY KEY CHECK (pg_catalog.octet_length(user_id) BETWEEN 1 AND 200),
	-- Only direct messages (and mentions) notify.
	direct_only boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE chat.notify_settings IS 'Notification preferences per user (chat_notify_direct_only).';

CREATE TABLE chat.notifications (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id		text NOT NULL,
	channel_id	uuid NOT NULL,
	-- Where the entry's messages begin (first_seq).  The claim counts them
	-- from chat.messages (chat.notification_queue) and stores what it
	-- returned: how many, the first and the newest, whether one named the
	-- user (@user).  An open entry is not rewritten for every message: its
	-- figures are those of when it was last written (a claim's own
	-- reopening writes count 0 and no message); chat.notification_queue
	-- shows what a claim would return now.
	count		integer NOT NULL CHECK (count >= 0),
	first_seq	bigint NOT NULL,
	last_seq	bigint NOT NULL,
	message_id	uuid,
	mention		boolean NOT NULL DEFAULT false,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	-- When it first became claimable: at once for an offline user,
	-- chat.notify_delay later for an online one.
	due_at		timestamptz NOT NULL,
	-- When it may be claimed (again): due_at, then the end of a claim's
	-- visibility timeout.
	visible_at	timestamptz NOT NULL,
	claims		integer NOT NULL DEFAULT 0 CHECK (claims >= 0),
	-- Leaving the channel (or its deletion) drops the user's entries.
	CONSTRAINT notifications_member_fkey FOREIGN KEY (channel_id, user_id)
		REFERENCES chat.channel_members (channel_id, user_id) ON DELETE CASCADE
)
-- A claim updates an entry (visible_at, an indexed column); the upsert of
-- a statement that names members without a settled entry updates theirs
-- (no indexed column).  Half of each page free keeps the latter HOT.
WITH (fillfactor = 50);
-- The open entry of a (user, channel): new messages are added to it.  A
-- claimed entry is being sent; a message after the claim opens a new one.
CREATE UNIQUE INDEX notifications_open_key ON chat.notifications (user_id, channel_id)
	WHERE claims = 0;
-- Reading a channel cancels (and leaving it drops) the member's entries.
CREATE INDEX notifications_member_idx ON chat.notifications (channel_id, user_id);
-- chat_notifications_claim takes the oldest visible entries.
CREATE INDEX notifications_visible_idx ON chat.notifications (visible_at);
COMMENT ON TABLE chat.notifications IS 'Notification queue: one entry per user and channel collects the messages the user has not seen; drained with chat_notifications_claim/done.';

/*
 * chat._user_online tells whether user_id has a live WebSocket connection
 * on any worker now (shared memory, as chat_online).
 */
CREATE FUNCTION chat._user_online(user_id text) RETURNS boolean
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'chat_user_online';

/*
 * chat._mentions returns the user ids named in content with "@": an "@" at
 * the start or after a character that is not a letter, digit or "_",
 * followed by letters, digits, "_", "." and "-"; a trailing "." or "-" is
 * punctuation, not part of the id ("@sam." names sam).
 */
CREATE FUNCTION chat._mentions(content text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT coalesce(array_agg(DISTINCT rtrim(x.m[1], '.-')) FILTER (WHERE rtrim(x.m[1], '.-') <> ''),
					'{}'::text[])
	FROM regexp_matches(content, '(?:^|[^[:alnum:]_])@([[:alnum:]_.-]+)', 'g') AS x(m)
$$;

/*
 * chat._channel_newest returns the channel's last_seq as its next writer
 * finds it, a send still in flight included (a dirty read of its row;
 * NULL: no such channel).  chat_notifications_claim opens a new entry for
 * such a send, which may have found the claimed entry open and so written
 * none.
 */
CREATE FUNCTION chat._channel_newest(channel uuid) RETURNS bigint
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'chat__channel_newest';

/*
 * chat.notification_queue: the entries as a claim would return them now.
 * An open entry is not rewritten for every message, so its figures are
 * counted here from the tables: the messages from its first_seq to the
 * channel's newest that the member has not read and wants, by the rules
 * of the queue (WANTS_MESSAGES in src/pg/notify_queue.c, and
 * chat._queue_probe on Citus): not their own, not deleted, and either
 * naming them or sent while the channel was not muted for them and, in a
 * group, while they take more than direct messages.  count 0: nothing to
 * tell (a claim drops such an entry).  A claimed entry shows what it was
 * claimed with.  chat_notifications_claim reads its counts from here.
 */
CREATE VIEW chat.notification_queue AS
SELECT q.id, q.user_id, q.channel_id,
	   CASE WHEN q.claims = 0 THEN t.count ELSE q.count END AS count,
	   CASE WHEN q.claims = 0 THEN coalesce(t.first_seq, q.first_seq) ELSE q.first_seq END AS first_seq,
	   CASE WHEN q.claims = 0 THEN coalesce(t.last_seq, q.last_seq) ELSE q.last_seq END AS last_seq,
	   CASE WHEN q.claims = 0 THEN t.message_id ELSE q.message_id END AS message_id,
	   CASE WHEN q.claims = 0 THEN t.mention ELSE q.mention END AS mention,
	   q.created_at, q.due_at, q.visible_at, q.claims
FROM chat.notifications AS q
JOIN chat.channels AS c ON c.id = q.channel_id
JOIN chat.channel_members AS cm ON cm.channel_id = q.channel_id AND cm.user_id = q.user_id
LEFT JOIN chat.notify_settings AS s ON s.user_id = q.user_id
CROSS JOIN LATERAL (
	SELECT count(*)::integer AS count, min(m.seq) AS first_seq, max(m.seq) AS last_seq,
		   (array_agg(m.id ORDER BY m.seq DESC))[1] AS message_id,
		   coalesce(bool_or(x.named), false) AS mention
	FROM chat.messages AS m
	CROSS JOIN LATERAL (
		SELECT strpos(m.content, '@') > 0 AND q.user_id = ANY (chat._mentions(m.content)) AS named
	) AS x
	WHERE q.claims = 0 AND m.channel_id = q.channel_id
	  AND m.seq > greatest(q.first_seq - 1, cm.last_read_seq) AND m.seq <= c.last_seq
	  AND m.sender_id <> q.user_id AND m.deleted_at IS NULL
	  AND (x.named
		   OR ((cm.muted_until IS NULL OR cm.muted_until <= m.created_at)
			   AND (c.type = 'direct' OR NOT coalesce(s.direct_only, false))))
) AS t;
COMMENT ON VIEW chat.notification_queue IS 'The notification queue''s entries with what a claim would return now (open entries counted from the tables).';

/*
 * chat._queue_notifications (AFTER INSERT, per statement; unless
 * chat.notifications is off) queues the new
 * messages for every member but the sender who wants them: not muted (or
 * named by a mention), and not "direct messages only" in a group (unless
 * named).  A member with no live connection is due now; one who is online
 * is due chat.notify_delay later, unless reading the channel cancels it
 * first.  One statement of a batch adds each (user, channel) once.  In C
 * (src/pg/notify_queue.c): it runs on every send, and a short statement
 * whose channels have no member behind is let go after one index probe
 * per row.
 */
CREATE FUNCTION chat._queue_notifications() RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'chat_queue_notifications';

CREATE TRIGGER messages_queue_notifications AFTER INSERT ON chat.messages
	REFERENCING NEW TABLE AS new_messages
	FOR EACH STATEMENT EXECUTE FUNCTION chat._queue_notifications();

/*
 * chat._cancel_notifications (AFTER UPDATE of a read marker) deletes the
 * member's entries of the channel that the marker now covers: whoever read
 * the channel needs no push about it.  Sending marks read too, so it runs
 * on every send: C (src/pg/notify_queue.c).
 */
CREATE FUNCTION chat._cancel_notifications() RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'chat_cancel_notifications';

-- No WHEN clause (NEW.last_read_seq > OLD.last_read_seq): the function
-- tests that itself, where PostgreSQL would parse the clause again for
-- every statement that moves a marker, that is, every send.
CREATE TRIGGER channel_members_cancel_notifications AFTER UPDATE OF last_read_seq ON chat.channel_members
	FOR EACH ROW EXECUTE FUNCTION chat._cancel_notifications();

/*
 * chat_notifications_claim returns up to max due entries and hides them for
 * visibility: the caller sends them, then calls chat_notifications_done.
 * An entry not done by then is returned again (at most a duplicate push).
 * Concurrent claimers skip each other's rows (SKIP LOCKED), so two never
 * get the same entry.  An entry whose user has read up to its newest
 * message is never returned.
 */
CREATE FUNCTION chat_notifications_claim(max integer DEFAULT 100,
										 visibility interval DEFAULT '30 seconds')
RETURNS TABLE (id bigint, user_id text, channel_id uuid, channel_type text,
			   channel_name text, count integer, first_seq bigint, last_seq bigint,
			   message_id uuid, sender_id text, preview text, mention boolean,
			   due_at timestamptz, claims integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	t timestamptz := clock_timestamp();
	cand record;
	r record;
	locked bigint[];
	channels uuid[] := '{}';
	claimed bigint[] := '{}';
	fresh bigint[];
	fresh_upto bigint[];
	dropped bigint[];
BEGIN
	IF max IS NULL THEN
		RAISE EXCEPTION 'max must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF visibility IS NULL THEN
		RAISE EXCEPTION 'visibility must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF max NOT BETWEEN 1 AND 1000 THEN
		RAISE EXCEPTION 'max must be between 1 and 1000' USING ERRCODE = 'invalid_parameter_value';
	ELSIF visibility <= interval '0' OR visibility > interval '1 day' THEN
		RAISE EXCEPTION 'visibility must be more than 0 and at most 1 day'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF chat._distributed() THEN
		-- Citus takes no row locks in a statement over many shards (FOR
		-- UPDATE ... SKIP LOCKED below), nor in a subquery of an UPDATE
		-- routed to one.  So: the candidates without locks; then per
		-- channel, on its node, the rows still visible locked unless a
		-- concurrent claimer holds them (SKIP LOCKED, as below), counted
		-- (chat.notification_queue) and claimed.  Here every send writes
		-- its members' entries (chat._queue_rows), so an entry's last_seq
		-- is its newest message, and a send in flight holds its entries:
		-- none is skipped by a send, and none needs opening again.
		FOR cand IN EXECUTE format(
			'SELECT p.channel_id, array_agg(p.id) AS ids FROM ('
			'	SELECT q.channel_id, q.id FROM chat.notifications AS q '
			'	WHERE q.visible_at <= %L '
			'	  AND EXISTS (SELECT FROM chat.channel_members AS cm '
			'				  WHERE cm.channel_id = q.channel_id AND cm.user_id = q.user_id '
			'					AND cm.last_read_seq < q.last_seq) '
			'	ORDER BY q.visible_at, q.id LIMIT %s) AS p '
			'GROUP BY p.channel_id ORDER BY p.channel_id', t, max) LOOP
			locked := '{}';
			FOR r IN EXECUTE format(
				'SELECT q.id FROM chat.notifications AS q '
				'WHERE q.channel_id = %L AND q.id = ANY (%L::bigint[]) AND q.visible_at <= %L '
				'FOR UPDATE SKIP LOCKED', cand.channel_id, cand.ids, t) LOOP
				locked := locked || r.id;
			END LOOP;
			IF cardinality(locked) = 0 THEN
				CONTINUE;
			END IF;
			FOR r IN EXECUTE format(
				'SELECT v.id, v.claims, v.count, v.first_seq, v.last_seq, v.message_id, v.mention '
				'FROM chat.notification_queue AS v '
				'WHERE v.channel_id = %L AND v.id = ANY (%L::bigint[])',
				cand.channel_id, locked) LOOP
				IF r.claims = 0 AND r.count = 0 THEN
					EXECUTE format('DELETE FROM chat.notifications AS q '
								   'WHERE q.channel_id = %L AND q.id = %s', cand.channel_id, r.id);
					CONTINUE;
				END IF;
				EXECUTE format(
					'UPDATE chat.notifications AS q SET visible_at = %L, claims = q.claims + 1, '
					'	count = %s, first_seq = %s, last_seq = %s, message_id = %L, mention = %L '
					'WHERE q.channel_id = %L AND q.id = %s',
					t + visibility, r.count, r.first_seq, r.last_seq, r.message_id, r.mention,
					cand.channel_id, r.id);
				claimed := claimed || r.id;
			END LOOP;
			channels := channels || cand.channel_id;
		END LOOP;
		IF cardinality(claimed) = 0 THEN
			RETURN;
		END IF;
		RETURN QUERY EXECUTE format(
			'SELECT c.id, c.user_id, c.channel_id, ch.type, ch.name, c.count, c.first_seq, '
			'	   c.last_seq, c.message_id, m.sender_id, left(nullif(m.content, %L), 200), '
			'	   c.mention, c.due_at, c.claims '
			'FROM chat.notifications AS c '
			'JOIN chat.channels AS ch ON ch.id = c.channel_id '
			'LEFT JOIN chat.messages AS m ON m.channel_id = c.channel_id AND m.id = c.message_id '
			'WHERE c.channel_id = ANY (%L::uuid[]) AND c.id = ANY (%L::bigint[]) '
			'ORDER BY c.due_at, c.id', '', channels, claimed);
		RETURN;
	END IF;

	/*
	 * Claim, and count what each entry claimed for the first time tells
	 * (chat.notification_queue: up to the channel's newest message this
	 * statement sees).  An open entry is claimed only if the member has
	 * not read the channel's newest message; a claimed one (claimed again
	 * after its visibility ran out) only if they have not read its own
	 * newest, and it keeps what it was claimed with.  From here on a send
	 * that meets one of these entries finds it being changed: its upsert
	 * waits for this transaction, then opens a new entry.
	 */
	WITH picked AS (
		SELECT q.id FROM chat.notifications AS q
		WHERE q.visible_at <= t
		  AND EXISTS (SELECT FROM chat.channel_members AS cm
					  JOIN chat.channels AS ch ON ch.id = cm.channel_id
					  WHERE cm.channel_id = q.channel_id AND cm.user_id = q.user_id
						AND cm.last_read_seq < CASE WHEN q.claims = 0 THEN ch.last_seq
													ELSE q.last_seq END)
		ORDER BY q.visible_at, q.id
		LIMIT max
		FOR UPDATE OF q SKIP LOCKED
	), counted AS (
		SELECT v.*, ch.last_seq AS upto
		FROM picked AS p
		JOIN chat.notification_queue AS v ON v.id = p.id
		JOIN chat.channels AS ch ON ch.id = v.channel_id
	), claimed AS (
		UPDATE chat.notifications AS q
		SET visible_at = t + visibility, claims = q.claims + 1, count = c.count,
			first_seq = c.first_seq, last_seq = c.last_seq, message_id = c.message_id,
			mention = c.mention
		FROM counted AS c WHERE q.id = c.id
		RETURNING q.id, c.claims AS claims_before, c.count, c.upto
	)
	SELECT coalesce(array_agg(c.id) FILTER (WHERE c.count > 0), '{}'),
		   array_agg(c.id) FILTER (WHERE c.claims_before = 0),
		   array_agg(c.upto) FILTER (WHERE c.claims_before = 0),
		   array_agg(c.id) FILTER (WHERE c.count = 0)
	INTO claimed, fresh, fresh_upto, dropped FROM claimed AS c;

	/*
	 * A send still in flight (chat._channel_newest, read now, beyond what
	 * was counted) may have found an entry open before it was claimed and
	 * so written nothing: a new entry starts after the counted messages for
	 * it.  An entry that tells nothing (read, deleted, muted since) goes.
	 */
	IF fresh IS NOT NULL THEN
		WITH f AS (
			SELECT q.user_id, q.channel_id, u.upto, chat._channel_newest(q.channel_id) AS newest
			FROM unnest(fresh, fresh_upto) AS u(id, upto)
			JOIN chat.notifications AS q ON q.id = u.id
		), gone AS (
			DELETE FROM chat.notifications AS q WHERE q.id = ANY (dropped)
		)
		INSERT INTO chat.notifications AS q
			(user_id, channel_id, count, first_seq, last_seq, mention, due_at, visible_at)
		SELECT f.user_id, f.channel_id, 0, f.upto + 1, f.newest, false, d.due, d.due
		FROM f CROSS JOIN LATERAL (
			SELECT CASE WHEN chat._user_online(f.user_id)
						THEN t + current_setting('chat.notify_delay')::interval
						ELSE t END AS due) AS d
		WHERE f.newest > f.upto
		  -- (a member who left meanwhile has nobody to notify)
		  AND EXISTS (SELECT FROM chat.channel_members AS cm
					  WHERE cm.channel_id = f.channel_id AND cm.user_id = f.user_id)
		ON CONFLICT (user_id, channel_id) WHERE claims = 0 DO UPDATE
		SET first_seq = least(q.first_seq, excluded.first_seq),
			last_seq = greatest(q.last_seq, excluded.last_seq),
			due_at = least(q.due_at, excluded.due_at),
			visible_at = least(q.visible_at, excluded.visible_at);
	END IF;
	IF cardinality(claimed) = 0 THEN
		RETURN;
	END IF;

	RETURN QUERY
	SELECT c.id, c.user_id, c.channel_id, ch.type, ch.name, c.count, c.first_seq, c.last_seq,
		   c.message_id, m.sender_id, left(nullif(m.content, ''), 200), c.mention,
		   c.due_at, c.claims
	FROM chat.notifications AS c
	JOIN chat.channels AS ch ON ch.id = c.channel_id
	LEFT JOIN chat.messages AS m ON m.id = c.message_id
	WHERE c.id = ANY (claimed)
	ORDER BY c.due_at, c.id;
END
$$;

/*
 * chat_notifications_done deletes the entries ids (sent, or given up) and
 * returns how many were still there.
 */
CREATE FUNCTION chat_notifications_done(ids bigint[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n integer;
BEGIN
	IF ids IS NULL THEN
		RAISE EXCEPTION 'ids must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	DELETE FROM chat.notifications AS q WHERE q.id = ANY (ids);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

/*
 * chat_mute mutes a channel for a member until a time ('infinity': for
 * good); NULL unmutes.  Mentions of the member still notify.
 */
CREATE FUNCTION chat_mute(channel uuid, user_id text, "until" timestamptz) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF channel IS NULL THEN
		RAISE EXCEPTION 'channel must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM chat._check_user_id('user_id', user_id);
	PERFORM chat._require_channel(channel);
	UPDATE chat.channel_members AS m SET muted_until = chat_mute."until"
	WHERE m.channel_id = channel AND m.user_id = chat_mute.user_id;
	IF NOT FOUND THEN
		PERFORM chat._require_member(channel, user_id);
	END IF;
END
$$;

/*
 * chat_notify_direct_only sets whether only direct messages (and mentions)
 * notify user_id.
 */
CREATE FUNCTION chat_notify_direct_only(user_id text, direct_only boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM chat._check_user_id('user_id', user_id);
	IF direct_only IS NULL THEN
		RAISE EXCEPTION 'direct_only must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	INSERT INTO chat.notify_settings AS s (user_id, direct_only)
	VALUES (chat_notify_direct_only.user_id, chat_notify_direct_only.direct_only)
	ON CONFLICT ON CONSTRAINT notify_settings_pkey
	DO UPDATE SET direct_only = excluded.direct_only;
END
$$;

SELECT pg_catalog.pg_extension_config_dump('chat.notify_settings', '');

/* ------------------------------------------------------------------------
 * Search (issue 16)
 * ------------------------------------------------------------------------
 *
 * Full-text search over the channels a user is a member of, with a GIN
 * index.  The text search configuration is chat.search_config ('simple'
 * by default: no stemming, no stop words, so every language is found); the
 * index is on that configuration (see docs/sql-api.md to change it).
 */
CREATE INDEX messages_search_idx ON chat.messages
	USING gin (pg_catalog.to_tsvector('simple'::regconfig, content));

/*
 * chat_search returns up to max messages of user_id's channels (or of one
 * of them) that match query (websearch syntax: words, "a phrase", or, -not),
 * newest first, with the matches highlighted.  Page with before: the
 * message_id of the last row of the previous page (keyset on created_at
 * and id).  Deleted messages are
 * never returned; edited ones are found by their current text.
 */
CREATE FUNCTION chat_search(user_id text, query text, channel uuid DEFAULT NULL,
							before uuid DEFAULT NULL, max integer DEFAULT 20)
RETURNS TABLE (message_id uuid, channel_id uuid, seq bigint, sender_id text,
			   content text, headline text, created_at timestamptz,
			   edited_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	cfg regconfig;
	tsq tsquery;
	b_at timestamptz;
BEGIN
	PERFORM chat._check_user_id('user_id', user_id);
	IF query IS NULL THEN
		RAISE EXCEPTION 'query must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF max IS NULL THEN
		RAISE EXCEPTION 'max must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF max NOT BETWEEN 1 AND 100 THEN
		RAISE EXCEPTION 'max must be between 1 and 100' USING ERRCODE = 'invalid_parameter_value';
	ELSIF octet_length(query) > 1000 THEN
		RAISE EXCEPTION 'query is too long' USING ERRCODE = 'program_limit_exceeded',
			DETAIL = format('A query has at most 1000 bytes; this one has %s.', octet_length(query));
	END IF;
	cfg := current_setting('chat.search_config')::regconfig;
	tsq := websearch_to_tsquery(cfg, query);
	IF numnode(tsq) = 0 THEN
		RAISE EXCEPTION 'query has no words to search for' USING ERRCODE = 'invalid_parameter_value',
			HINT = 'Search for at least one word.';
	END IF;
	IF channel IS NOT NULL THEN
		PERFORM chat._require_channel(channel);
		PERFORM chat._require_member(channel, user_id);
	END IF;
	IF before IS NOT NULL THEN
		SELECT m.created_at INTO b_at FROM chat.messages AS m WHERE m.id = before;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'message % does not exist', before USING ERRCODE = 'no_data_found';
		END IF;
	END IF;
	-- Newest first is (created_at, id) descending: created_at is taken
	-- under the channel lock and grows with seq; the id breaks ties.
	-- Dynamic, so that the configuration is a constant the GIN index's
	-- expression matches, and the plan sees the actual words.  The headline
	-- is made for the rows returned only, from HTML-escaped text.
	RETURN QUERY EXECUTE format($q$
		SELECT r.id, r.channel_id, r.seq, r.sender_id, r.content,
			   ts_headline(%1$L::regconfig,
						   replace(replace(replace(r.content, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),
						   $1, 'StartSel=<mark>, StopSel=</mark>, MaxWords=35, MinWords=15'),
			   r.created_at, r.edited_at
		FROM (SELECT m.* FROM chat.messages AS m
			  WHERE to_tsvector(%1$L::regconfig, m.content) @@ $1
				AND m.deleted_at IS NULL
				AND m.channel_id IN (SELECT cm.channel_id FROM chat.channel_members AS cm
									 WHERE cm.user_id = $2
									   AND ($3::uuid IS NULL OR cm.channel_id = $3))
				AND ($4::uuid IS NULL OR (m.created_at, m.id) < ($6, $4))
			  ORDER BY m.created_at DESC, m.id DESC
			  LIMIT $5) AS r
		ORDER BY r.created_at DESC, r.id DESC$q$, cfg::text)
	USING tsq, user_id, channel, before, max, b_at;
END
$$;

/* ------------------------------------------------------------------------
 * Reactions (issue 16)
 * ------------------------------------------------------------------------
 *
 * One row per (message, user, emoji) in chat.reactions; the message keeps
 * the summary (chat.messages.reactions) that history and sync send.  A
 * reaction change is a change of the message: it bumps the channel's
 * last_change and the message's change_seq, so that a reconnecting client
 * catches up on it like on an edit, and it is announced to the workers by
 * an "e" hint (chat._hint_reaction).
 */
ALTER TABLE chat.messages ADD COLUMN reactions jsonb;

CREATE TABLE chat.reactions (
	message_id	uuid NOT NULL,
	user_id		text NOT NULL,
	emoji		text NOT NULL,
	-- Deleted with the channel (messages are never deleted otherwise).
	channel_id	uuid NOT NULL REFERENCES chat.channels (id) ON DELETE CASCADE,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	PRIMARY KEY (message_id, user_id, emoji)
);
CREATE INDEX reactions_channel_id_idx ON chat.reactions (channel_id);
COMMENT ON TABLE chat.reactions IS 'Reactions: one row per message, user and emoji.';
SELECT pg_catalog.pg_extension_config_dump('chat.reactions', '');

/*
 * chat._hint_reaction records, for the commit, that the reactions of the
 * message (channel, seq) changed.
 */
CREATE FUNCTION chat._hint_reaction(channel uuid, seq bigint) RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'chat_hint_reaction';

/*
 * chat._react adds (add) or removes a reaction of user_id to message and
 * returns the message with its new summary.  Members only; not on a
 * deleted message; at most 20 distinct emoji per message.
 */
CREATE FUNCTION chat._react(message uuid, user_id text, emoji text, add boolean)
RETURNS chat.messages
LANGUAGE plpgsql AS $$
DECLARE
	m chat.messages;
	change bigint;
	n integer;
BEGIN
	IF message IS NULL THEN
		RAISE EXCEPTION 'message must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSIF emoji IS NULL THEN
		RAISE EXCEPTION 'emoji must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM chat._check_user_id('user_id', user_id);
	IF emoji = '' OR octet_length(emoji) > 32 OR char_length(emoji) > 16
	   OR emoji ~ '[[:space:][:cntrl:]]' THEN
		RAISE EXCEPTION 'invalid emoji' USING ERRCODE = 'invalid_parameter_value',
			DETAIL = 'An emoji is 1 to 16 characters (at most 32 bytes) without spaces or control characters.';
	END IF;
	m := chat._lock_message(message);
	PERFORM chat._require_member(m.channel_id, user_id);
	IF m.deleted_at IS NOT NULL THEN
		RAISE EXCEPTION 'cannot react to a deleted message' USING ERRCODE = 'object_not_in_prerequisite_state',
			DETAIL = format('Message %s was deleted.', message);
	END IF;
	IF add THEN
		PERFORM FROM chat.reactions AS r
		WHERE r.message_id = message AND r.emoji = _react.emoji;
		IF NOT FOUND THEN
			SELECT count(DISTINCT r.emoji) INTO n FROM chat.reactions AS r WHERE r.message_id = message;
			IF n >= 20 THEN
				RAISE EXCEPTION 'too many different reactions' USING ERRCODE = 'program_limit_exceeded',
					DETAIL = 'A message has at most 20 different emoji.';
			END IF;
		END IF;
		INSERT INTO chat.reactions AS r (message_id, user_id, emoji, channel_id)
		VALUES (message, user_id, emoji, m.channel_id)
		ON CONFLICT ON CONSTRAINT reactions_pkey DO NOTHING;
	ELSE
		DELETE FROM chat.reactions AS r
		WHERE r.message_id = message AND r.user_id = _react.user_id AND r.emoji = _react.emoji;
	END IF;
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n = 0 THEN
		RETURN m;				-- nothing changed, nothing to announce
	END IF;
	UPDATE chat.channels AS c SET last_change = c.last_change + 1
	WHERE c.id = m.channel_id
	RETURNING c.last_change INTO change;
	UPDATE chat.messages AS x
	SET change_seq = change,
		reactions = (SELECT jsonb_agg(jsonb_build_object('emoji', e.emoji, 'count', e.n, 'users', e.users)
									  ORDER BY e.first, e.emoji)
					 FROM (SELECT r.emoji, count(*) AS n, min(r.created_at) AS first,
								  jsonb_agg(r.user_id ORDER BY r.created_at, r.user_id) AS users
						   FROM chat.reactions AS r WHERE r.message_id = message
						   GROUP BY r.emoji) AS e)
	WHERE x.id = message
	RETURNING x.* INTO m;
	PERFORM chat._hint_reaction(m.channel_id, m.seq);
	RETURN m;
END
$$;

/*
 * chat_react adds user_id's reaction emoji to message (again: nothing
 * changes) and returns the message.
 */
CREATE FUNCTION chat_react(message uuid, user_id text, emoji text) RETURNS chat.messages
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN chat._react(message, user_id, emoji, true);
END
$$;

/*
 * chat_unreact removes user_id's reaction emoji from message (none:
 * nothing changes) and returns the message.
 */
CREATE FUNCTION chat_unreact(message uuid, user_id text, emoji text) RETURNS chat.messages
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN chat._react(message, user_id, emoji, false);
END
$$;

/* ------------------------------------------------------------------------
 * Privileges of the issue 16 objects
 * ------------------------------------------------------------------------
 */
REVOKE ALL ON chat.notify_settings, chat.notifications, chat.notification_queue,
	chat.reactions FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION
	chat._user_online(text),
	chat._mentions(text),
	chat._channel_newest(uuid),
	chat._queue_notifications(),
	chat._cancel_notifications(),
	chat._hint_reaction(uuid, bigint),
	chat._react(uuid, text, text, boolean),
	chat_notifications_claim(integer, interval),
	chat_notifications_done(bigint[]),
	chat_mute(uuid, text, timestamptz),
	chat_notify_direct_only(text, boolean),
	chat_search(text, text, uuid, uuid, integer),
	chat_react(uuid, text, text),
	chat_unreact(uuid, text, text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	chat_notifications_claim(integer, interval),
	chat_notifications_done(bigint[]),
	chat_mute(uuid, text, timestamptz),
	chat_notify_direct_only(text, boolean),
	chat_search(text, text, uuid, uuid, integer),
	chat_react(uuid, text, text),
	chat_unreact(uuid, text, text)
TO chat_app;
GRANT SELECT ON chat.notify_settings, chat.notifications, chat.notification_queue,
	chat.reactions TO chat_app;

/* ------------------------------------------------------------------------
 * One home per rule (issue 15)
 * ------------------------------------------------------------------------
 *
 * chat._kind_ok is the message-kind rule (^[a-z][a-z0-9_.-]{0,31}$) in C:
 * core/message.c's chat_kind_ok, which the protocol's decoder and chat_send
 * call too.  chat._check_page holds the paging arguments' checks that
 * chat_history and chat_since each wrote out.  chat_history and chat_since
 * below are 1.0's with the checks replaced by the call and nothing else
 * changed: the same errors, in the same order (sql/05_history.sql).
 * chat._send and chat._send_batch call chat._kind_ok where 1.0 had the
 * regular expression; they are re-created in the Citus section below.
 */
CREATE FUNCTION chat._kind_ok(kind text) RETURNS boolean
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'chat_kind_ok_sql';

CREATE FUNCTION chat._check_page(channel uuid, seq_name text, seq bigint, seq_required boolean,
								 max integer, max_limit integer) RETURNS void
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'chat_check_page';

REVOKE EXECUTE ON FUNCTION chat._kind_ok(text),
	chat._check_page(uuid, text, bigint, boolean, integer, integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION chat_history(channel uuid, before_seq bigint DEFAULT NULL, max integer DEFAULT 50)
RETURNS SETOF chat.messages
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM chat._check_page(channel, 'before_seq', before_seq, false, max, 1000);
	PERFORM chat._require_channel(channel);
	RETURN QUERY
		SELECT * FROM chat.messages AS m
		WHERE m.channel_id = channel
		  AND m.seq < coalesce(before_seq, 9223372036854775807)
		ORDER BY m.seq DESC
		LIMIT max;
END
$$;

CREATE OR REPLACE FUNCTION chat_since(channel uuid, after_seq bigint, max integer DEFAULT 1000)
RETURNS SETOF chat.messages
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM chat._check_page(channel, 'after_seq', after_seq, true, max, 10000);
	PERFORM chat._require_channel(channel);
	RETURN QUERY
		SELECT * FROM chat.messages AS m
		WHERE m.channel_id = channel AND m.seq > after_seq
		ORDER BY m.seq
		LIMIT max;
END
$$;

/* ------------------------------------------------------------------------
 * Issue 17: standalone gateways (src/gateway, src/pg/gateway.c,
 * docs/scaling.md).  The role chat_gateway is what a gateway logs in as (a
 * LOGIN role granted chat_gateway): it may call the API as any user, like
 * chat_app, plus the group-commit batch and the gateway's shared-memory
 * functions below.  Nothing else gets them.
 * ------------------------------------------------------------------------
 */
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'chat_gateway') THEN
		CREATE ROLE chat_gateway NOLOGIN;
	ELSE
		RAISE WARNING 'role "chat_gateway" already exists and is used as it is'
			USING DETAIL = 'Its members get every privilege this extension grants to chat_gateway: acting as any chat user.';
	END IF;
END
$$;

/*
 * chat._gateway_send_batch / _gateway_send: the worker's group-commit
 * statements (chat._send_batch, chat._send) for a gateway, which runs
 * them over libpq in one transaction per batch.
 *
 * A gateway hears of a membership change only through the bus relay,
 * which may be later than its own commit, and a member removed before a
 * send must not receive it.  So when the server took a membership change
 * that the gateway has not heard of (chat._gateway_members_seq() above
 * heard, the number the relay's last "h:" said), _gateway_send_batch also
 * returns, after the messages (rows with ord 0), the members of each group
 * channel of the batch, read once the sends held their channel locks.
 */
CREATE FUNCTION chat._gateway_send_batch(channels uuid[], senders text[], contents text[],
										 client_ids uuid[], kinds text[], reply_tos uuid[],
										 attachments jsonb[], heard bigint)
RETURNS TABLE (ord bigint, duplicate boolean, message chat.messages, channel uuid,
			   members json)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN QUERY
	SELECT b.ord, b.duplicate, b.message, NULL::uuid, NULL::json
	FROM chat._send_batch(channels, senders, contents, client_ids, kinds,
						  reply_tos, attachments) AS b;
	-- a statement of its own, so a snapshot taken after the locks: it sees
	-- every change that committed before them
	RETURN QUERY
	SELECT 0::bigint, NULL::boolean, NULL::chat.messages, g.channel, g.members
	FROM chat._gateway_members(channels, heard) AS g;
END
$$;

/*
 * chat._gateway_members lists the members of the group channels among
 * channels (direct channels never change members), as JSON arrays; none
 * when the server took no membership change after the heard-th.
 */
CREATE FUNCTION chat._gateway_members_seq() RETURNS bigint
LANGUAGE C STRICT VOLATILE AS 'MODULE_PATHNAME', 'chat_gateway_members_seq';
CREATE FUNCTION chat._gateway_members(channels uuid[], heard bigint)
RETURNS TABLE (channel uuid, members json)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF chat._gateway_members_seq() > heard THEN
		RETURN QUERY
		SELECT c.id,
			   coalesce(json_agg(m.user_id) FILTER (WHERE m.user_id IS NOT NULL), '[]'::json)
		FROM chat.channels AS c
		LEFT JOIN chat.channel_members AS m ON m.channel_id = c.id
		WHERE c.id = ANY (channels) AND c.type = 'group'
		GROUP BY c.id;
	END IF;
END
$$;

CREATE FUNCTION chat._gateway_send(channel uuid, sender text, content text, client_id uuid,
								   kind text, reply_to uuid, attachments jsonb,
								   OUT message chat.messages, OUT duplicate boolean)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	SELECT * FROM chat._send(channel, sender, content, client_id, kind, reply_to,
							 attachments)
$$;

CREATE FUNCTION chat._gateway_attach(node text, lease_ms integer) RETURNS bigint
LANGUAGE C STRICT VOLATILE AS 'MODULE_PATHNAME', 'chat_gateway_attach';
CREATE FUNCTION chat._gateway_renew(handle bigint, lease_ms integer) RETURNS integer
LANGUAGE C STRICT VOLATILE AS 'MODULE_PATHNAME', 'chat_gateway_renew';
CREATE FUNCTION chat._gateway_detach(handle bigint) RETURNS void
LANGUAGE C STRICT VOLATILE AS 'MODULE_PATHNAME', 'chat_gateway_detach';
CREATE FUNCTION chat._gateway_presence(handle bigint, user_id text, up boolean) RETURNS boolean
LANGUAGE C STRICT VOLATILE AS 'MODULE_PATHNAME', 'chat_gateway_presence';
CREATE FUNCTION chat._gateway_rejoin(handle bigint, users text[]) RETURNS integer
LANGUAGE C STRICT VOLATILE AS 'MODULE_PATHNAME', 'chat_gateway_rejoin';
CREATE FUNCTION chat._gateway_publish(handle bigint, events text[]) RETURNS void
LANGUAGE C STRICT VOLATILE AS 'MODULE_PATHNAME', 'chat_gateway_publish';
CREATE FUNCTION chat._gateway_events(handle bigint) RETURNS SETOF text
LANGUAGE C STRICT VOLATILE AS 'MODULE_PATHNAME', 'chat_gateway_events';
-- The pid of the bus relay, the only process that emits NOTIFY chat: a
-- gateway believes no payload from any other (any role may NOTIFY chat).
-- SECURITY DEFINER: pg_stat_activity shows another role's backend_type
-- only to roles with pg_read_all_stats.
CREATE FUNCTION chat._gateway_bus_pid() RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	SELECT a.pid FROM pg_catalog.pg_stat_activity AS a
	WHERE a.backend_type = 'chat bus relay'
	ORDER BY a.backend_start DESC LIMIT 1
$$;

REVOKE EXECUTE ON FUNCTION
	chat._gateway_send_batch(uuid[], text[], text[], uuid[], text[], uuid[], jsonb[], bigint),
	chat._gateway_members(uuid[], bigint),
	chat._gateway_members_seq(),
	chat._gateway_send(uuid, text, text, uuid, text, uuid, jsonb),
	chat._gateway_attach(text, integer),
	chat._gateway_renew(bigint, integer),
	chat._gateway_detach(bigint),
	chat._gateway_presence(bigint, text, boolean),
	chat._gateway_rejoin(bigint, text[]),
	chat._gateway_publish(bigint, text[]),
	chat._gateway_events(bigint),
	chat._gateway_bus_pid()
FROM PUBLIC;
GRANT chat_app TO chat_gateway;
GRANT USAGE ON SCHEMA chat TO chat_gateway;
GRANT EXECUTE ON FUNCTION
	chat._gateway_send_batch(uuid[], text[], text[], uuid[], text[], uuid[], jsonb[], bigint),
	chat._gateway_members(uuid[], bigint),
	chat._gateway_members_seq(),
	chat._gateway_send(uuid, text, text, uuid, text, uuid, jsonb),
	chat._gateway_attach(text, integer),
	chat._gateway_renew(bigint, integer),
	chat._gateway_detach(bigint),
	chat._gateway_presence(bigint, text, boolean),
	chat._gateway_rejoin(bigint, text[]),
	chat._gateway_publish(bigint, text[]),
	chat._gateway_events(bigint),
	chat._gateway_bus_pid(),
	chat._user_online(text)
TO chat_gateway;

/* ------------------------------------------------------------------------
 * The Citus tier (issue 18): chat_distribute()
 * ------------------------------------------------------------------------
 *
 * chat_distribute() distributes the chat tables of this database over a
 * Citus cluster, on channel_id, co-located (docs/scaling.md, "Citus tier").
 * Nothing below changes how a single server behaves: the functions that
 * must act differently on Citus ask chat._distributed() first.
 *
 * On Citus every unique key must contain the distribution column, so
 * chat_distribute() changes the keys that do not:
 *   - the idempotency key messages_sender_client_key becomes (channel_id,
 *     sender_id, client_id), under the same name (a retried send names the
 *     same channel, so clients see no difference; the same client_id sent
 *     to two channels stores two messages there);
 *   - messages_pkey becomes (id, channel_id), message_versions_pkey
 *     (channel_id, message_id, version), reactions_pkey (channel_id,
 *     message_id, user_id, emoji), notifications_pkey (channel_id, id);
 *   - channels_direct_pair_key is dropped: chat.direct_pairs, a reference
 *     table keyed by the pair, is the direct channels' home.
 * The rows are written on the nodes, where the triggers of this extension
 * would run on the shards: chat_distribute() drops them.  The event hints
 * are recorded on the coordinator by the functions that write (chat_send,
 * chat._send, chat._archive, the member functions: chat._hint_change), a
 * deleted channel's messages go by foreign keys (ON DELETE CASCADE), and
 * the offline notification queue is not filled on Citus (see scaling.md).
 */

/*
 * chat._distributed tells whether chat_distribute() has run here (its
 * mark is the idempotency key with channel_id; src/pg/citus.c).
 */
CREATE FUNCTION chat._distributed() RETURNS boolean
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'chat_distributed_sql';

/*
 * chat._hint_change records, for the commit, the hint a row trigger would
 * have recorded ('m', 'u', 'd' with a seq; 'j', 'l' with a user id).
 */
CREATE FUNCTION chat._hint_change(kind "char", channel uuid, seq bigint, user_id text) RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'chat_hint_change';

-- The channel of an archived version, so that the audit trail can live
-- with its message on the channel's shard.  Filled by chat._archive from
-- 1.1 on; the rows of 1.0 get it here.
ALTER TABLE chat.message_versions ADD COLUMN channel_id uuid;
UPDATE chat.message_versions AS v SET channel_id = m.channel_id
FROM chat.messages AS m WHERE m.id = v.message_id;
ALTER TABLE chat.message_versions ALTER COLUMN channel_id SET NOT NULL;

/*
 * The direct channel of each pair of users, on Citus (where the unique key
 * of chat.channels cannot be the pair).  Empty on a single server.
 */
CREATE TABLE chat.direct_pairs (
	direct_a	text COLLATE "C" NOT NULL,
	direct_b	text COLLATE "C" NOT NULL,
	channel_id	uuid NOT NULL,
	PRIMARY KEY (direct_a, direct_b)
);
COMMENT ON TABLE chat.direct_pairs IS 'On Citus: the direct channel of each pair of users (a reference table).';
SELECT pg_catalog.pg_extension_config_dump('chat.direct_pairs', '');

/*
 * chat._direct_channel_citus is chat._direct_channel on Citus, for the
 * ordered pair (lo, hi).  Two sessions racing on the pair meet on
 * direct_pairs' key: the loser's INSERT waits for the winner, does nothing,
 * and the next loop finds the winner's channel.  A pair whose channel was
 * deleted is forgotten and made again.
 */
CREATE FUNCTION chat._direct_channel_citus(lo text, hi text) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
	ch uuid;
	found_ch uuid;
BEGIN
	LOOP
		SELECT p.channel_id INTO ch FROM chat.direct_pairs AS p
		WHERE p.direct_a = lo AND p.direct_b = hi;
		IF ch IS NOT NULL THEN
			SELECT c.id INTO found_ch FROM chat.channels AS c WHERE c.id = ch;
			IF found_ch IS NOT NULL THEN
				RETURN ch;
			END IF;
			DELETE FROM chat.direct_pairs AS p
			WHERE p.direct_a = lo AND p.direct_b = hi AND p.channel_id = ch;
		END IF;
		ch := pg_catalog.gen_random_uuid();
		INSERT INTO chat.direct_pairs AS p (direct_a, direct_b, channel_id)
		VALUES (lo, hi, ch)
		ON CONFLICT ON CONSTRAINT direct_pairs_pkey DO NOTHING;
		IF FOUND THEN
			INSERT INTO chat.channels (id, type, direct_a, direct_b) VALUES (ch, 'direct', lo, hi);
			INSERT INTO chat.channel_members (channel_id, user_id, role)
			VALUES (ch, lo, 'member'), (ch, hi, 'member');
			PERFORM chat._hint_change('j', ch, NULL, lo);
			PERFORM chat._hint_change('j', ch, NULL, hi);
			RETURN ch;
		END IF;
	END LOOP;
END
$$;

/*
 * The functions that write messages and members, as in 1.0 (or above),
 * with what they do on Citus: chat._direct_channel uses direct_pairs,
 * chat._send probes the key within the channel, and each records the hint
 * its row's trigger would have recorded.  chat._archive also keeps the
 * channel of each version.
 */
CREATE OR REPLACE FUNCTION chat._direct_channel(a text, b text) RETURNS uuid
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
	IF chat._distributed() THEN
		RETURN chat._direct_channel_citus(lo, hi);
	END IF;
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

CREATE OR REPLACE FUNCTION chat._send(channel uuid, sender text, content text, client_id uuid,
						   kind text, reply_to uuid, attachments jsonb,
						   OUT message chat.messages, OUT duplicate boolean)
LANGUAGE plpgsql AS $$
DECLARE
	next_seq bigint;
	dup_id uuid;
	is_member boolean;
	distributed boolean := chat._distributed();
	locked bigint;
	probe record;
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
	IF NOT chat._kind_ok(kind) THEN
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

	IF distributed THEN
		-- Citus: the key is per channel, and naming the channel routes
		-- each probe to the channel's shard (two plain statements: Citus
		-- cannot always distribute subqueries in a target list)
		SELECT m.id INTO dup_id FROM chat.messages AS m
		WHERE m.channel_id = channel AND m.sender_id = sender AND m.client_id = _send.client_id;
		-- the membership, and the notification queue's questions with it
		SELECT * INTO probe FROM chat._queue_probe(channel, sender, next_seq, content);
		is_member := probe.is_member;
	ELSE
		SELECT (SELECT m.id FROM chat.messages AS m
				WHERE m.sender_id = sender AND m.client_id = _send.client_id),
			   EXISTS (SELECT FROM chat.channel_members AS x
					   WHERE x.channel_id = channel AND x.user_id = sender)
		INTO dup_id, is_member;
	END IF;
	IF dup_id IS NOT NULL THEN
		UPDATE chat.channels AS x SET last_seq = x.last_seq - 1 WHERE x.id = channel;
		IF distributed THEN
			-- Citus: the duplicate is in this channel; naming it routes the read
			SELECT * INTO message FROM chat.messages AS m WHERE m.channel_id = channel AND m.id = dup_id;
		ELSE
			SELECT * INTO message FROM chat.messages AS m WHERE m.id = dup_id;
		END IF;
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
		IF distributed THEN
			SELECT * INTO STRICT message FROM chat.messages AS m
			WHERE m.channel_id = channel AND m.sender_id = sender AND m.client_id = _send.client_id;
		ELSE
			SELECT * INTO STRICT message FROM chat.messages AS m
			WHERE m.sender_id = sender AND m.client_id = _send.client_id;
		END IF;
		duplicate := true;
		RETURN;
	END IF;

	-- Sending marks the channel read for the sender.  This never waits for
	-- the member row: a chat_mark_read of the same user in flight in another
	-- transaction (which may go on to lock this channel) keeps it, and that
	-- transaction's marker wins.  Waiting here, while holding the channel
	-- lock, could deadlock with it.
	IF distributed THEN
		-- Citus plans the UPDATE below in several steps over every shard
		-- (a quarter of a second here); as two statements that name the
		-- channel, each goes to its shard: take the row's lock unless it is
		-- taken, then update it.  The values go in as literals: Citus does
		-- not always distribute these statements with PL/pgSQL's variables
		-- as parameters ("could not create distributed plan").
		EXECUTE format('SELECT 1 FROM chat.channel_members AS y '
					   'WHERE y.channel_id = %L AND y.user_id = %L AND y.last_read_seq < %s '
					   'FOR NO KEY UPDATE SKIP LOCKED', channel, sender, next_seq);
		GET DIAGNOSTICS locked = ROW_COUNT;
		IF locked > 0 THEN
			EXECUTE format('UPDATE chat.channel_members AS x SET last_read_seq = %s '
						   'WHERE x.channel_id = %L AND x.user_id = %L', next_seq, channel, sender);
		END IF;
		IF locked > 0 AND probe.covered THEN
			PERFORM chat._cancel_read(channel, sender, next_seq);
		END IF;
		PERFORM chat._queue_rows(channel, next_seq, message.id, message.content, probe.wanting);
		PERFORM chat._hint_change('m', channel, next_seq, NULL);
	ELSE
		UPDATE chat.channel_members AS x SET last_read_seq = next_seq
		WHERE (x.channel_id, x.user_id) IN (
			SELECT y.channel_id, y.user_id FROM chat.channel_members AS y
			WHERE y.channel_id = channel AND y.user_id = sender AND y.last_read_seq < next_seq
			FOR NO KEY UPDATE SKIP LOCKED);
	END IF;
	duplicate := false;
END
$$;

CREATE OR REPLACE FUNCTION chat_create_channel(type text, name text, members text[]) RETURNS uuid
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
	IF chat._distributed() THEN
		PERFORM chat._hint_change('j', ch, NULL, u) FROM unnest(uniq) AS t(u);
	END IF;
	RETURN ch;
END
$$;

CREATE OR REPLACE FUNCTION chat_add_member(channel uuid, user_id text, role text DEFAULT 'member') RETURNS void
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
			IF chat._distributed() THEN
				PERFORM chat._hint_change('j', channel, NULL, user_id);
			END IF;
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
	IF chat._distributed() THEN
		PERFORM chat._hint_change('j', channel, NULL, user_id);
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION chat_remove_member(channel uuid, user_id text) RETURNS void
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
	IF FOUND AND chat._distributed() THEN
		PERFORM chat._hint_change('l', channel, NULL, user_id);
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION chat._archive(m chat.messages, action text, by_user text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	change bigint;
BEGIN
	INSERT INTO chat.message_versions (message_id, version, content, attachments, action, by_user, at,
									   channel_id)
	SELECT m.id, coalesce(max(v.version), 0) + 1, m.content, m.attachments,
		   _archive.action, _archive.by_user, clock_timestamp(), m.channel_id
	FROM chat.message_versions AS v WHERE v.channel_id = m.channel_id AND v.message_id = m.id;
	UPDATE chat.channels AS c SET last_change = c.last_change + 1
	WHERE c.id = m.channel_id
	RETURNING c.last_change INTO change;
	IF chat._distributed() THEN
		-- the UPDATE of the message that follows is hinted here: on Citus no
		-- trigger records it (the hint is for the commit either way)
		PERFORM chat._hint_change((CASE action WHEN 'delete' THEN 'd' ELSE 'u' END)::"char", m.channel_id, m.seq, NULL);
	END IF;
	RETURN change;
END
$$;

CREATE OR REPLACE FUNCTION chat._lock_message(msg uuid) RETURNS chat.messages
LANGUAGE plpgsql AS $$
DECLARE
	ch uuid;
	m chat.messages;
BEGIN
	SELECT x.channel_id INTO ch FROM chat.messages AS x WHERE x.id = msg;
	IF FOUND THEN
		PERFORM chat._lock_channel(ch);
		-- naming the channel routes the lock to its shard on Citus
		SELECT * INTO m FROM chat.messages AS x WHERE x.id = msg AND x.channel_id = ch FOR UPDATE;
	END IF;
	IF m.id IS NULL THEN
		RAISE EXCEPTION 'message % does not exist', msg USING ERRCODE = 'no_data_found';
	END IF;
	RETURN m;
END
$$;

/*
 * chat_edit and chat_delete name the message's channel in their UPDATE,
 * which routes it to the channel's shard on Citus, and take the time
 * before it (Citus refuses a volatile function in an UPDATE's SET).
 */
CREATE OR REPLACE FUNCTION chat_edit(message uuid, editor text, content text) RETURNS chat.messages
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m chat.messages;
	change bigint;
	now timestamptz;
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
	now := clock_timestamp();
	UPDATE chat.messages AS x
	SET content = chat_edit.content, edited_at = now, change_seq = change
	WHERE x.id = message AND x.channel_id = m.channel_id
	RETURNING x.* INTO m;
	RETURN m;
END
$$;

CREATE OR REPLACE FUNCTION chat_delete(message uuid, by_user text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m chat.messages;
	who chat.channel_members;
	change bigint;
	now timestamptz;
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
	now := clock_timestamp();
	UPDATE chat.messages AS x
	SET content = '', attachments = NULL, deleted_at = now, change_seq = change
	WHERE x.id = message AND x.channel_id = m.channel_id;
END
$$;

/*
 * chat._send_batch, on Citus, stores item by item through chat._send.
 */
CREATE OR REPLACE FUNCTION chat._send_batch(channels uuid[], senders text[], contents text[],
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
	batch_item record;
	batch_sent record;
	ords bigint[] := '{}';
	dups boolean[] := '{}';
	msgs chat.messages[] := '{}';
BEGIN
	IF coalesce(cardinality(senders), 0) <> n OR coalesce(cardinality(contents), 0) <> n
	   OR coalesce(cardinality(client_ids), 0) <> n OR coalesce(cardinality(kinds), 0) <> n
	   OR coalesce(cardinality(reply_tos), 0) <> n OR coalesce(cardinality(attachments), 0) <> n THEN
		RAISE EXCEPTION 'the arrays of a batch must have the same length'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF chat._distributed() THEN
		/*
		 * Citus cannot distribute the statement below (row locks over many
		 * channels, writes joined by ctid).  chat._send can: each of its
		 * statements names one channel and goes to that channel's node.
		 * So item by item, in channel id order (the lock order below), each
		 * as chat._send stores it, in one transaction: an error raises for
		 * the whole batch, as below.  The worker's batches span channels on
		 * several nodes; Citus commits them with two-phase commit.
		 */
		FOR batch_item IN SELECT t.* FROM unnest(channels, senders, contents, client_ids, kinds, reply_tos,
										attachments) WITH ORDINALITY AS t(ch, s, c, cid, k, rt, att, o)
				 ORDER BY t.ch, t.o LOOP
			SELECT x.message AS m, x.duplicate AS d INTO batch_sent
			FROM chat._send(batch_item.ch, batch_item.s, batch_item.c, batch_item.cid,
							batch_item.k, batch_item.rt, batch_item.att) AS x;
			ords := ords || batch_item.o;
			dups := dups || batch_sent.d;
			msgs := msgs || batch_sent.m;
		END LOOP;
		RETURN QUERY SELECT u.o, u.d, msgs[u.i]
			FROM unnest(ords, dups) WITH ORDINALITY AS u(o, d, i) ORDER BY u.o;
		RETURN;
	END IF;
	SELECT count(*) FILTER (WHERE i.ch IS NULL OR i.s IS NULL OR i.t IS NULL OR i.cid IS NULL
								   OR i.k IS NULL OR i.t = '' OR octet_length(i.t) > l.lim
								   OR (i.k <> 'text' AND NOT chat._kind_ok(i.k))),
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
 * chat._citus_prepare makes the changes chat_distribute() needs before the
 * tables can be distributed.  Only on the coordinator: Citus makes each
 * shard from the coordinator's table.  The nodes keep the tables their own
 * CREATE EXTENSION made, empty and unused (queries go to the shards), and
 * no DDL runs on the distributed tables afterwards, so that nothing is sent
 * to those copies.
 */
CREATE FUNCTION chat._citus_prepare() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	-- The rows are written on the nodes: the hints are recorded on the
	-- coordinator instead (chat._hint_change), a deleted channel takes its
	-- rows by foreign keys, and the notification queue is filled by the
	-- functions that write (chat._queue_probe, chat._queue_rows,
	-- chat._cancel_read).
	DROP TRIGGER messages_hint_insert ON chat.messages;
	DROP TRIGGER messages_hint_update ON chat.messages;
	DROP TRIGGER channel_members_hint_insert_delete ON chat.channel_members;
	DROP TRIGGER channel_members_hint_update ON chat.channel_members;
	DROP TRIGGER messages_queue_notifications ON chat.messages;
	DROP TRIGGER channel_members_cancel_notifications ON chat.channel_members;
	DROP TRIGGER channels_drop_messages ON chat.channels;
	DROP TRIGGER channels_truncate_messages ON chat.channels;

	-- The unique keys, each with the distribution column.
	INSERT INTO chat.direct_pairs (direct_a, direct_b, channel_id)
	SELECT c.direct_a, c.direct_b, c.id FROM chat.channels AS c WHERE c.type = 'direct';
	ALTER TABLE chat.channels DROP CONSTRAINT channels_direct_pair_key;
	ALTER TABLE chat.message_versions DROP CONSTRAINT message_versions_message_id_fkey,
		DROP CONSTRAINT message_versions_pkey,
		ADD CONSTRAINT message_versions_pkey PRIMARY KEY (channel_id, message_id, version);
	ALTER TABLE chat.messages DROP CONSTRAINT messages_pkey,
		ADD CONSTRAINT messages_pkey PRIMARY KEY (id, channel_id),
		DROP CONSTRAINT messages_sender_client_key,
		ADD CONSTRAINT messages_sender_client_key UNIQUE (channel_id, sender_id, client_id);
	ALTER TABLE chat.reactions DROP CONSTRAINT reactions_pkey,
		ADD CONSTRAINT reactions_pkey PRIMARY KEY (channel_id, message_id, user_id, emoji);
	ALTER TABLE chat.notifications DROP CONSTRAINT notifications_pkey,
		ADD CONSTRAINT notifications_pkey PRIMARY KEY (channel_id, id);
	-- What the dropped trigger did for a deleted channel (co-located keys).
	ALTER TABLE chat.messages ADD CONSTRAINT messages_channel_id_fkey
		FOREIGN KEY (channel_id) REFERENCES chat.channels (id) ON DELETE CASCADE;
	ALTER TABLE chat.message_versions ADD CONSTRAINT message_versions_message_id_fkey
		FOREIGN KEY (message_id, channel_id) REFERENCES chat.messages (id, channel_id) ON DELETE CASCADE;
END
$$;

/*
 * chat_distribute distributes the chat tables over the Citus cluster this
 * database is the coordinator of: channels on id; channel_members,
 * messages, message_versions, reactions and notifications on channel_id,
 * co-located with channels; notify_settings and direct_pairs as reference
 * tables.  shard_count: Citus's citus.shard_count when NULL.  Run it once,
 * as a superuser, after CREATE EXTENSION citus and citus_add_node(), before
 * the application writes (the tables' rows are moved to the shards, and
 * the chat workers and sessions see the change at their next statement).
 * Refuses when Citus is absent, or when it has run already.
 */
CREATE FUNCTION chat_distribute(shard_count integer DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
-- Citus moves the rows into the shards; its notices say so at length
SET client_min_messages = warning AS $$
DECLARE
	t text;
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
		RAISE EXCEPTION 'chat_distribute needs the citus extension'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Add ''citus'' first in shared_preload_libraries on every node, run CREATE EXTENSION citus here, and add the worker nodes with citus_add_node().';
	ELSIF chat._distributed() THEN
		RAISE EXCEPTION 'the chat tables are distributed already'
			USING ERRCODE = 'object_not_in_prerequisite_state';
	ELSIF shard_count IS NOT NULL AND shard_count NOT BETWEEN 1 AND 64000 THEN
		RAISE EXCEPTION 'shard_count must be between 1 and 64000' USING ERRCODE = 'invalid_parameter_value';
	END IF;

	PERFORM chat._citus_prepare();

	-- One connection per node: in parallel mode Citus could not run the
	-- propagation of CREATE EXTENSION chat later in the same transaction
	-- (when chat_distribute() runs right after it).  Until the transaction
	-- ends.
	PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
	IF shard_count IS NOT NULL THEN
		PERFORM pg_catalog.set_config('citus.shard_count', shard_count::text, true);
	END IF;
	PERFORM create_reference_table('chat.notify_settings');
	PERFORM create_reference_table('chat.direct_pairs');
	PERFORM create_distributed_table('chat.channels', 'id');
	FOREACH t IN ARRAY ARRAY['chat.channel_members', 'chat.messages', 'chat.message_versions',
							 'chat.reactions', 'chat.notifications'] LOOP
		PERFORM create_distributed_table(t, 'channel_id', colocate_with => 'chat.channels');
	END LOOP;
END
$$;

REVOKE EXECUTE ON FUNCTION chat._distributed(), chat._hint_change("char", uuid, bigint, text),
	chat._direct_channel_citus(text, text), chat._citus_prepare(), chat_distribute(integer) FROM PUBLIC;

/*
 * The notification queue on Citus.  The two triggers of a single server
 * (chat._queue_notifications, chat._cancel_notifications) would run on the
 * shards, on the worker nodes, where no chat worker knows who is online;
 * chat_distribute() drops them.  The functions that write a message or
 * move a read marker do their work instead, on the coordinator, and queue
 * what the triggers queue (sql/16_notifications.sql runs on Citus too).
 *
 * chat._queue_probe(channel, sender, seq, content) is the membership probe
 * of a send (chat_send, chat._send) with the queue's questions in the same
 * statement, on the channel's node: is the sender a member; which other
 * members are behind the message and want it (wanting: the rules of
 * queue_sql in src/pg/notify_queue.c; NULL for none); has the sender an
 * entry that a marker at seq covers (covered).
 */
CREATE FUNCTION chat._queue_probe(channel uuid, sender text, seq bigint, content text,
								  OUT is_member boolean, OUT wanting text[], OUT covered boolean)
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format(
		'SELECT coalesce(bool_or(cm.user_id = %2$L), false), '
		'	   array_agg(cm.user_id) FILTER ('
		'		WHERE cm.user_id <> %2$L AND cm.last_read_seq < %3$s '
		'		  AND (cm.user_id = ANY (%4$L::text[]) '
		'			   OR ((cm.muted_until IS NULL OR cm.muted_until <= %5$L::timestamptz) '
		'				   AND (c.type = ''direct'' OR NOT coalesce(s.direct_only, false))))), '
		'	   EXISTS (SELECT FROM chat.notifications AS q '
		'			   WHERE q.channel_id = %1$L AND q.user_id = %2$L AND q.last_seq <= %3$s) '
		'FROM chat.channel_members AS cm '
		'JOIN chat.channels AS c ON c.id = cm.channel_id '
		'LEFT JOIN chat.notify_settings AS s ON s.user_id = cm.user_id '
		'WHERE cm.channel_id = %1$L AND c.id = %1$L',
		channel, sender, seq,
		CASE WHEN strpos(content, '@') > 0 THEN chat._mentions(content) ELSE '{}' END,
		clock_timestamp()) INTO is_member, wanting, covered;
END
$$;

/*
 * chat._queue_rows(channel, seq, message_id, content, wanting) queues the
 * message for the members wanting it (from chat._queue_probe), due after
 * chat.notify_delay for a member online here, at once otherwise; nothing
 * when chat.notifications is off.  With VALUES, not INSERT ... SELECT:
 * Citus runs that into a table with a sequence (chat.notifications.id) by
 * pulling the rows to the coordinator (8 ms a send here), and whether a
 * member is online is known here, on the coordinator, not on the node.
 */
CREATE FUNCTION chat._queue_rows(channel uuid, seq bigint, message_id uuid, content text,
								 wanting text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	mentions text[];
	t timestamptz := clock_timestamp();
	later timestamptz;
	rows text;
BEGIN
	IF wanting IS NULL OR cardinality(wanting) = 0
	   OR NOT current_setting('chat.notifications')::boolean THEN
		RETURN;
	END IF;
	mentions := CASE WHEN strpos(content, '@') > 0 THEN chat._mentions(content) ELSE '{}' END;
	later := t + current_setting('chat.notify_delay')::interval;
	SELECT string_agg(format('(%L, %L, 1, %s, %s, %L, %L, %L, %L)', u, channel, seq, seq, message_id,
							 u = ANY (mentions), d.due, d.due), ', ')
	INTO rows FROM unnest(wanting) AS u,
		LATERAL (SELECT CASE WHEN chat._user_online(u) THEN later ELSE t END AS due) AS d;
	EXECUTE
		'INSERT INTO chat.notifications AS q '
		'	(user_id, channel_id, count, first_seq, last_seq, message_id, mention, due_at, visible_at) '
		'VALUES ' || rows || ' '
		'ON CONFLICT (user_id, channel_id) WHERE claims = 0 DO UPDATE '
		'SET count = q.count + excluded.count, '
		'	message_id = CASE WHEN excluded.last_seq > q.last_seq THEN excluded.message_id '
		'					  ELSE q.message_id END, '
		'	last_seq = greatest(q.last_seq, excluded.last_seq), '
		'	first_seq = least(q.first_seq, excluded.first_seq), '
		'	mention = q.mention OR excluded.mention, '
		'	due_at = least(q.due_at, excluded.due_at), '
		'	visible_at = least(q.visible_at, excluded.visible_at)';
END
$$;

/*
 * chat._cancel_read(channel, user_id, marker) is chat._cancel_notifications
 * on Citus: the member read up to marker, so the entries it covers go.
 */
CREATE FUNCTION chat._cancel_read(channel uuid, user_id text, marker bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('DELETE FROM chat.notifications AS q '
				   'WHERE q.channel_id = %L AND q.user_id = %L AND q.last_seq <= %s',
				   channel, user_id, marker);
END
$$;

REVOKE EXECUTE ON FUNCTION chat._queue_probe(uuid, text, bigint, text),
	chat._queue_rows(uuid, bigint, uuid, text, text[]),
	chat._cancel_read(uuid, text, bigint) FROM PUBLIC;
REVOKE ALL ON chat.direct_pairs FROM PUBLIC;
