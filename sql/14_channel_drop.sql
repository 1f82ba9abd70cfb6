--
-- Deleting a channel deletes its messages and their audit trail (the
-- cascade is a trigger: messages.channel_id is not a declared foreign
-- key, see docs/schema.md), and nothing else.
--
CREATE EXTENSION IF NOT EXISTS chat;
CREATE TEMP TABLE d_ch AS
SELECT chat_create_channel('group', 'drop-me', ARRAY['alice', 'bob']) AS gone,
	   chat_create_channel('group', 'keep-me', ARRAY['alice', 'bob']) AS kept;
SELECT count(*) FROM (SELECT chat_send((SELECT gone FROM d_ch), 'alice', 'm' || g) FROM generate_series(1, 3) AS g) AS s;
SELECT count(*) FROM (SELECT chat_send((SELECT kept FROM d_ch), 'bob', 'k' || g) FROM generate_series(1, 2) AS g) AS s;
SELECT content FROM chat_edit((SELECT id FROM chat.messages WHERE channel_id = (SELECT gone FROM d_ch) AND seq = 1),
							  'alice', 'm1, edited');
SELECT content FROM chat_edit((SELECT id FROM chat.messages WHERE channel_id = (SELECT kept FROM d_ch) AND seq = 1),
							  'bob', 'k1, edited');
CREATE TEMP TABLE d_before AS
SELECT (SELECT count(*) FROM chat.messages) AS messages,
	   (SELECT count(*) FROM chat.message_versions) AS versions,
	   (SELECT count(*) FROM chat.channel_members) AS members;

DELETE FROM chat.channels WHERE id = (SELECT gone FROM d_ch);

-- The deleted channel's 3 messages, its 1 old version and 2 members are gone.
SELECT b.messages - (SELECT count(*) FROM chat.messages) AS messages_deleted,
	   b.versions - (SELECT count(*) FROM chat.message_versions) AS versions_deleted,
	   b.members - (SELECT count(*) FROM chat.channel_members) AS members_deleted
FROM d_before AS b;
SELECT count(*) AS left_in_deleted FROM chat.messages WHERE channel_id = (SELECT gone FROM d_ch);
-- The other channel keeps everything.
SELECT seq, content FROM chat_history((SELECT kept FROM d_ch)) ORDER BY seq;
SELECT count(*) AS kept_versions FROM chat.message_versions AS v
JOIN chat.messages AS m ON m.id = v.message_id WHERE m.channel_id = (SELECT kept FROM d_ch);

-- A send to the deleted channel finds no channel.
\set VERBOSITY sqlstate
SELECT chat_send((SELECT gone FROM d_ch), 'alice', 'too late');
\set VERBOSITY default

-- TRUNCATE ... CASCADE of the channels takes the messages along (in a
-- transaction rolled back, so later tests keep their rows).
BEGIN;
TRUNCATE chat.channels CASCADE;
SELECT (SELECT count(*) FROM chat.messages) AS messages, (SELECT count(*) FROM chat.message_versions) AS versions;
ROLLBACK;
SELECT count(*) > 0 AS messages_back FROM chat.messages;
