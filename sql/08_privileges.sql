--
-- Access rights: an application role granted chat_app calls the API and
-- reads the tables, and can do nothing else; other roles can do nothing.
--

CREATE ROLE regress_chat_app_user LOGIN;
GRANT chat_app TO regress_chat_app_user;
CREATE ROLE regress_chat_stranger LOGIN;

SET ROLE regress_chat_app_user;
-- Every API function works.
INSERT INTO regress_ids SELECT 'priv', chat_create_channel('group', 'priv', ARRAY['alice', 'bob']);
SELECT chat_direct_channel('alice', 'bob') = ch('ab') AS direct;
SELECT chat_add_member(ch('priv'), 'carol');
SELECT chat_remove_member(ch('priv'), 'carol');
SELECT seq, content FROM chat_send(ch('priv'), 'alice', 'from the app role');
SELECT seq, content FROM chat_send(ch('priv'), 'bob', 'me too');
SELECT seq, content FROM chat_edit(msg('priv', 1), 'alice', 'edited by the app role');
SELECT chat_delete(msg('priv', 2), 'bob');
SELECT string_agg(seq::text, ',') AS history FROM chat_history(ch('priv'));
SELECT string_agg(seq::text, ',') AS since FROM chat_since(ch('priv'), 0);
SELECT chat_mark_read(ch('priv'), 'bob', 2);
SELECT unread FROM chat_unread('bob') WHERE channel_id = ch('priv');
-- The three contract tables are readable.
SELECT count(*) AS messages FROM chat.messages WHERE channel_id = ch('priv');
SELECT count(*) AS members FROM chat.channel_members WHERE channel_id = ch('priv');
SELECT name FROM chat.channels WHERE id = ch('priv');
-- But not writable, and the audit trail is not readable.
SELECT err($$INSERT INTO chat.messages (channel_id, seq, sender_id, client_id, content)
			 VALUES (ch('priv'), 99, 'alice', gen_random_uuid(), 'forged')$$);
SELECT err($$UPDATE chat.channels SET last_seq = 0$$);
SELECT err($$UPDATE chat.channel_members SET last_read_seq = 0$$);
SELECT err($$DELETE FROM chat.messages$$);
SELECT err($$TRUNCATE chat.messages$$);
SELECT err($$SELECT * FROM chat.message_versions$$);
SELECT err($$CREATE TABLE chat.mine (x int)$$);
-- Internal helpers are not callable, so the membership check in chat_send
-- cannot be bypassed.
SELECT err($$SELECT chat._send(ch('priv'), 'mallory', 'x', gen_random_uuid(), 'text', NULL, NULL)$$);
SELECT err($$SELECT chat._direct_channel('a', 'b')$$);
-- The limits cannot be raised from a session.
SELECT err($$SET chat.max_message_bytes = '1MB'$$);
SELECT err($$SET chat.max_group_members = 1000$$);
-- The functions' search_path is pinned: objects of the caller's own that
-- shadow names change nothing.
CREATE TEMP TABLE messages (id int);
CREATE TEMP TABLE channels (id int);
SET search_path = pg_temp, public;
SELECT seq, content FROM chat_send(ch('priv'), 'alice', 'still the real table');
RESET search_path;
SELECT count(*) AS temp_rows FROM pg_temp.messages;
DROP TABLE pg_temp.messages, pg_temp.channels;
RESET ROLE;

-- A role without chat_app can call nothing and read nothing.
SET ROLE regress_chat_stranger;
SELECT err($$SELECT chat_send('00000000-0000-0000-0000-000000000000', 'alice', 'x')$$);
SELECT err($$SELECT chat_history('00000000-0000-0000-0000-000000000000')$$);
SELECT err($$SELECT chat_unread('alice')$$);
SELECT err($$SELECT chat_create_channel('group', 'x', ARRAY['a'])$$);
SELECT err($$SELECT count(*) FROM chat.messages$$);
RESET ROLE;

-- What happened through the app role.
SELECT seq, sender_id, content, deleted_at IS NOT NULL AS deleted
FROM chat.messages WHERE channel_id = ch('priv') ORDER BY seq;
SELECT by_user, action, content FROM chat.message_versions
WHERE message_id IN (msg('priv', 1), msg('priv', 2)) ORDER BY at;

REVOKE chat_app FROM regress_chat_app_user;
DROP ROLE regress_chat_app_user;
DROP ROLE regress_chat_stranger;
