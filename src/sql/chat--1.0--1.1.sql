/*
 * chat--1.0--1.1.sql
 *	  Upgrade of the chat extension from 1.0 to 1.1.  A fresh install runs
 *	  chat--1.0.sql and then this file, so both paths end in the same
 *	  objects (sql/16_upgrade.sql compares them).
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
 */
CREATE OR REPLACE FUNCTION chat_send(channel uuid, sender text, content text,
									 client_id uuid DEFAULT pg_catalog.gen_random_uuid(),
									 kind text DEFAULT 'text', reply_to uuid DEFAULT NULL,
									 attachments jsonb DEFAULT NULL)
RETURNS chat.messages
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_send';

REVOKE EXECUTE ON FUNCTION chat_send(uuid, text, text, uuid, text, uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION chat_send(uuid, text, text, uuid, text, uuid, jsonb) TO chat_app;
