-- chat_message_audit: every version of a message, for privileged roles only.
CREATE EXTENSION IF NOT EXISTS chat;
CREATE TEMP TABLE a_ids AS
SELECT chat_create_channel('group', 'audit', ARRAY['alice', 'bob', 'carol']) AS ch;
CREATE TEMP TABLE a_msg AS
SELECT id FROM chat_send((SELECT ch FROM a_ids), 'alice', 'Load 7 at dock 2', attachments =>
	'[{"url":"https://files.example/bol.pdf","name":"bol.pdf","size":1024,"mime":"application/pdf"}]');

-- Just sent: one version.
SELECT version, action, by_user, content, attachments ->> 0 IS NOT NULL AS has_attachment,
       at IS NOT NULL AS has_time
FROM chat_message_audit((SELECT id FROM a_msg));

-- Two edits by the sender, then a delete.
SELECT content FROM chat_edit((SELECT id FROM a_msg), 'alice', 'Load 7 at dock 3');
SELECT content FROM chat_edit((SELECT id FROM a_msg), 'alice', 'Load 7 at dock 4');
SELECT chat_delete((SELECT id FROM a_msg), 'alice');

-- Clients see the message deleted, without content ...
SELECT content, attachments, deleted_at IS NOT NULL AS deleted
FROM chat_history((SELECT ch FROM a_ids));
-- ... the audit shows every version, who wrote it, in order, and the times
-- never go backwards.
SELECT version, action, by_user, content, attachments IS NOT NULL AS has_attachments
FROM chat_message_audit((SELECT id FROM a_msg));
SELECT bool_and(at >= prev) AS times_in_order
FROM (SELECT at, lag(at, 1, at) OVER (ORDER BY version) AS prev
      FROM chat_message_audit((SELECT id FROM a_msg))) AS t;

-- Bad input.
\set VERBOSITY terse
SELECT * FROM chat_message_audit('00000000-0000-0000-0000-000000000000');
SELECT * FROM chat_message_audit(NULL);

-- Privileges: chat_app may not read the audit trail; chat_auditor may.
SELECT has_function_privilege('chat_app', 'chat_message_audit(uuid)', 'EXECUTE') AS app,
       has_function_privilege('chat_auditor', 'chat_message_audit(uuid)', 'EXECUTE') AS auditor,
       has_table_privilege('chat_app', 'chat.message_versions', 'SELECT') AS app_table;
SELECT id AS mid FROM a_msg \gset
CREATE ROLE regress_app IN ROLE chat_app;
CREATE ROLE regress_auditor IN ROLE chat_auditor;
SET ROLE regress_app;
SELECT count(*) FROM chat_message_audit(:'mid');
RESET ROLE;
SET ROLE regress_auditor;
SELECT count(*) AS versions FROM chat_message_audit(:'mid');
RESET ROLE;
DROP ROLE regress_app;
DROP ROLE regress_auditor;
