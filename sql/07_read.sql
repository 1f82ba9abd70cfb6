--
-- chat_mark_read and chat_unread: a marker per member, never backwards.
--

INSERT INTO regress_ids VALUES ('rd', chat_create_channel('group', 'rd', ARRAY['alice', 'bob', 'carol']));
SELECT seq FROM chat_send(ch('rd'), 'alice', 'one');
SELECT seq FROM chat_send(ch('rd'), 'alice', 'two');
SELECT seq FROM chat_send(ch('rd'), 'bob', 'three');
SELECT seq FROM chat_send(ch('rd'), 'alice', 'four');
SELECT seq FROM chat_send(ch('rd'), 'alice', 'five');

-- Sending moved the senders' markers; carol has read nothing.
SELECT user_id, last_read_seq FROM chat.channel_members WHERE channel_id = ch('rd') ORDER BY user_id;
-- Unread: after the marker, not one's own.  bob read up to his 3 and has
-- alice's 4 and 5; carol has all 5; alice none.
CREATE VIEW unread_in_rd AS
SELECT u.user_id, x.unread
FROM unnest(ARRAY['alice', 'bob', 'carol']) AS u(user_id),
	 LATERAL chat_unread(u.user_id) x
WHERE x.channel_id = ch('rd');
SELECT * FROM unread_in_rd ORDER BY user_id;

-- chat_unread lists every channel of the user, also those with nothing new.
SELECT i.name, u.unread FROM chat_unread('carol') u JOIN regress_ids i ON i.id = u.channel_id ORDER BY i.name;
SELECT i.name, u.unread FROM chat_unread('bob') u JOIN regress_ids i ON i.id = u.channel_id ORDER BY i.name;
-- A user in no channel has no rows.
SELECT count(*) FROM chat_unread('nobody');

-- The marker moves forward and returns what is stored.
SELECT chat_mark_read(ch('rd'), 'carol', 2);
SELECT * FROM unread_in_rd WHERE user_id = 'carol';
-- Never backwards: a lower seq (or the same) leaves it and returns it.
SELECT chat_mark_read(ch('rd'), 'carol', 1);
SELECT chat_mark_read(ch('rd'), 'carol', 0);
SELECT chat_mark_read(ch('rd'), 'carol', 2);
-- Past the newest message it is clamped to the newest.
SELECT chat_mark_read(ch('rd'), 'carol', 1000);
SELECT last_read_seq FROM chat.channel_members WHERE channel_id = ch('rd') AND user_id = 'carol';
SELECT * FROM unread_in_rd WHERE user_id = 'carol';
-- Marking an empty channel read stays at 0.
SELECT chat_mark_read(ch('full'), 'u1', 10);

-- Deleted messages do not count.
SELECT seq FROM chat_send(ch('rd'), 'bob', 'six');
SELECT seq FROM chat_send(ch('rd'), 'bob', 'seven');
SELECT * FROM unread_in_rd ORDER BY user_id;
SELECT chat_delete(msg('rd', 7), 'bob');
SELECT * FROM unread_in_rd ORDER BY user_id;

-- A new member starts at the newest message: the past is readable through
-- history, but not unread.
SELECT chat_add_member(ch('rd'), 'dave');
SELECT last_read_seq FROM chat.channel_members WHERE channel_id = ch('rd') AND user_id = 'dave';
SELECT unread FROM chat_unread('dave') WHERE channel_id = ch('rd');
SELECT seq FROM chat_send(ch('rd'), 'alice', 'welcome dave');
SELECT unread FROM chat_unread('dave') WHERE channel_id = ch('rd');

SELECT sum(last_read_seq) AS read_before_errors FROM chat.channel_members \gset

-- Bad input.
SELECT err($$SELECT chat_mark_read(NULL, 'carol', 1)$$);
SELECT err($$SELECT chat_mark_read(ch('rd'), NULL, 1)$$);
SELECT err($$SELECT chat_mark_read(ch('rd'), 'carol', NULL)$$);
SELECT err($$SELECT chat_mark_read(ch('rd'), 'carol', -1)$$);
SELECT err($$SELECT chat_mark_read('00000000-0000-0000-0000-000000000000', 'carol', 1)$$);
SELECT err($$SELECT chat_mark_read(ch('rd'), 'mallory', 1)$$);
SELECT err($$SELECT chat_unread(NULL)$$);

-- Nothing was half-written.
SELECT sum(last_read_seq) - :read_before_errors AS moved FROM chat.channel_members;
DROP VIEW unread_in_rd;
