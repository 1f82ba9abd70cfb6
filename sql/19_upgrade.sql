--
-- Upgrade from 1.0: ALTER EXTENSION chat UPDATE keeps the data and ends in
-- the same objects as a fresh install; then the 1.1 event path at work.
--

-- Every object of the extension, with what defines it: functions by their
-- definition and privileges, tables by their columns and privileges, and
-- the triggers, constraints and indexes of schema chat.
CREATE FUNCTION pg_temp.chat_objects() RETURNS TABLE (object text, definition text)
LANGUAGE sql AS $$
	SELECT pg_describe_object(d.classid, d.objid, d.objsubid),
		   CASE d.classid
			   WHEN 'pg_proc'::regclass THEN
				   (SELECT md5(pg_get_functiondef(p.oid)) || ' ' || coalesce(p.proacl::text, '')
					FROM pg_proc AS p WHERE p.oid = d.objid)
			   WHEN 'pg_class'::regclass THEN
				   (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
									  || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
									  ', ' ORDER BY a.attnum)
					FROM pg_attribute AS a WHERE a.attrelid = d.objid AND a.attnum > 0
					  AND NOT a.attisdropped)
				   || ' ' || coalesce((SELECT c.relacl::text FROM pg_class AS c WHERE c.oid = d.objid), '')
			   ELSE ''
		   END
	FROM pg_depend AS d
	WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
	  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'chat')
	UNION ALL
	SELECT 'trigger ' || t.tgname, pg_get_triggerdef(t.oid)
	FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
	WHERE c.relnamespace = 'chat'::regnamespace AND NOT t.tgisinternal
	UNION ALL
	SELECT 'constraint ' || co.conname, pg_get_constraintdef(co.oid)
	FROM pg_constraint AS co WHERE co.connamespace = 'chat'::regnamespace
	UNION ALL
	SELECT 'index ' || i.indexrelid::regclass, pg_get_indexdef(i.indexrelid)
	FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indrelid
	WHERE c.relnamespace = 'chat'::regnamespace
$$;

-- (the roles exist from earlier tests: CREATE EXTENSION's warning about
-- adopting them is tested in 10_reinstall)
SET client_min_messages = error;
DROP EXTENSION IF EXISTS chat CASCADE;
CREATE EXTENSION chat;
SELECT extversion FROM pg_extension WHERE extname = 'chat';
CREATE TEMP TABLE fresh AS SELECT * FROM pg_temp.chat_objects();
SELECT count(*) > 50 AS many_objects FROM fresh;
DROP EXTENSION chat;

-- A 1.0 install with data in it.
CREATE EXTENSION chat VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'chat';
SELECT count(*) AS notify_triggers FROM pg_trigger WHERE tgname LIKE '%notify%';
SELECT seq, content FROM chat_send(chat_direct_channel('alice', 'bob'), 'alice', 'written by 1.0');
SELECT chat_mark_read(chat_direct_channel('alice', 'bob'), 'bob', 1);

ALTER EXTENSION chat UPDATE;
RESET client_min_messages;
SELECT extversion FROM pg_extension WHERE extname = 'chat';

-- The same objects as the fresh install, none more, none less.
SELECT 'only in the fresh install' AS side, * FROM
	(SELECT * FROM fresh EXCEPT SELECT * FROM pg_temp.chat_objects()) AS a
UNION ALL
SELECT 'only in the upgraded one', * FROM
	(SELECT * FROM pg_temp.chat_objects() EXCEPT SELECT * FROM fresh) AS b;

-- The data is kept, and the upgraded extension works.
SELECT seq, sender_id, content FROM chat.messages ORDER BY seq;
SELECT last_read_seq FROM chat.channel_members WHERE user_id = 'bob';

-- Its changes now go to the event ring at commit, not to NOTIFY.
SELECT count(*) >= 0 AS started FROM chat._events_take();
SELECT seq, content FROM chat_send(chat_direct_channel('alice', 'bob'), 'bob', 'written by 1.1');
SELECT chat_mark_read(chat_direct_channel('alice', 'bob'), 'alice', 2);
SELECT kind, seq, user_id FROM chat._events_take();

-- A transaction that changed chat data cannot be prepared: COMMIT PREPARED
-- would not tell the workers.  One that did not can.
BEGIN;
SELECT seq FROM chat_send(chat_direct_channel('alice', 'bob'), 'alice', 'prepared?');
PREPARE TRANSACTION 'chat_prepared';
SELECT count(*) AS stored FROM chat.messages WHERE content = 'prepared?';
BEGIN;
SELECT count(*) > 0 AS read_only FROM chat.messages;
PREPARE TRANSACTION 'not_chat';
COMMIT PREPARED 'not_chat';
