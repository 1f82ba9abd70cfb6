--
-- DROP EXTENSION / CREATE EXTENSION: clean both ways.
--

SELECT count(*) > 0 AS has_messages FROM chat.messages;

-- DROP EXTENSION is transactional.
BEGIN;
DROP EXTENSION chat;
ROLLBACK;
SELECT count(*) > 0 AS has_messages FROM chat.messages;

-- An object of the application that depends on the tables blocks it.
CREATE VIEW my_view AS SELECT id FROM chat.messages;
DROP EXTENSION chat;
DROP VIEW my_view;

-- It removes everything it created, data included, but not the role
-- chat_app (roles belong to the cluster, not to a database).
DROP EXTENSION chat;
SELECT count(*) AS chat_schemas FROM pg_namespace WHERE nspname = 'chat';
SELECT count(*) AS chat_functions FROM pg_proc
WHERE proname LIKE 'chat\_%' OR pronamespace IN (SELECT oid FROM pg_namespace WHERE nspname = 'chat');
SELECT count(*) AS chat_tables FROM pg_class WHERE relname IN ('channels', 'channel_members', 'messages', 'message_versions');
SELECT count(*) AS chat_types FROM pg_type WHERE typname IN ('channels', 'channel_members', 'messages', 'message_versions');
SELECT count(*) AS chat_triggers FROM pg_trigger WHERE tgname LIKE '%notify%' OR tgname LIKE '%hint%';
SELECT rolname FROM pg_roles WHERE rolname = 'chat_app';

-- CREATE again: a clean, empty install, granted to the existing role.
CREATE EXTENSION chat;
SELECT (SELECT count(*) FROM chat.channels) AS channels,
	   (SELECT count(*) FROM chat.channel_members) AS members,
	   (SELECT count(*) FROM chat.messages) AS messages,
	   (SELECT count(*) FROM chat.message_versions) AS versions;
SELECT count(*) AS objects FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'chat');
SELECT has_function_privilege('chat_app', 'chat_send(uuid,text,text,uuid,text,uuid,jsonb)', 'EXECUTE') AS can_send,
	   has_table_privilege('chat_app', 'chat.messages', 'SELECT') AS can_read,
	   has_function_privilege('public', 'chat_send(uuid,text,text,uuid,text,uuid,jsonb)', 'EXECUTE') AS public_can_send;
SELECT seq, content FROM chat_send(chat_direct_channel('alice', 'bob'), 'alice', 'after reinstall');

-- Installed into another schema: the API lands there, the tables stay in
-- chat.
DROP EXTENSION chat;
CREATE SCHEMA regress_api;
CREATE EXTENSION chat SCHEMA regress_api;
SELECT extnamespace::regnamespace AS schema FROM pg_extension WHERE extname = 'chat';
SELECT p.pronamespace::regnamespace AS schema, count(*) AS functions
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'chat'
GROUP BY 1 ORDER BY 1::text;
SELECT seq, content FROM regress_api.chat_send(regress_api.chat_direct_channel('a', 'b'), 'a', 'from regress_api');
DROP EXTENSION chat;
DROP SCHEMA regress_api;

-- The application's own tables called messages and channels do not
-- collide.
CREATE TABLE public.messages (id int);
CREATE TABLE public.channels (id int);
CREATE EXTENSION chat;
SELECT seq, content FROM chat_send(chat_direct_channel('a', 'b'), 'a', 'next to public.messages');
SELECT count(*) AS public_messages FROM public.messages;
DROP TABLE public.messages, public.channels;

-- A schema called chat that the extension does not own is not taken over.
DROP EXTENSION chat;
CREATE SCHEMA chat;
CREATE EXTENSION chat;
DROP SCHEMA chat;
CREATE EXTENSION chat;
SELECT extversion FROM pg_extension WHERE extname = 'chat';
