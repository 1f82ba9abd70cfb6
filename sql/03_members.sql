--
-- chat_add_member and chat_remove_member.
--

-- team has alice (admin), bob and carol; a new member joins as 'member'.
SELECT chat_add_member(ch('team'), 'dave');
SELECT chat_add_member(ch('team'), 'erin', 'admin');
SELECT user_id, role FROM chat.channel_members WHERE channel_id = ch('team') ORDER BY user_id;

-- Full (chat.max_group_members = 5): one more is refused ...
SELECT err($$SELECT chat_add_member(ch('team'), 'frank')$$);
-- ... but adding an existing member again, or changing a role, is not an
-- addition and works at the limit.
SELECT chat_add_member(ch('team'), 'dave');
SELECT chat_add_member(ch('team'), 'dave', 'admin');
SELECT role FROM chat.channel_members WHERE channel_id = ch('team') AND user_id = 'dave';
SELECT chat_add_member(ch('team'), 'dave', 'member');
SELECT role FROM chat.channel_members WHERE channel_id = ch('team') AND user_id = 'dave';
-- Re-adding with the default role demotes an admin: the role given is the
-- role the member ends up with.
SELECT chat_add_member(ch('team'), 'erin');
SELECT role FROM chat.channel_members WHERE channel_id = ch('team') AND user_id = 'erin';

-- Removing a member frees a place.
SELECT chat_remove_member(ch('team'), 'erin');
SELECT chat_add_member(ch('team'), 'frank');
SELECT string_agg(user_id || ':' || role, ' ' ORDER BY user_id) AS members
FROM chat.channel_members WHERE channel_id = ch('team');

-- Removing a non-member (or removing twice) does nothing.
SELECT chat_remove_member(ch('team'), 'erin');
SELECT chat_remove_member(ch('team'), 'nobody');
SELECT count(*) AS members FROM chat.channel_members WHERE channel_id = ch('team');

-- A group may lose its last member; it stays, empty.
INSERT INTO regress_ids VALUES ('temp', chat_create_channel('group', 'temp', ARRAY['zed']));
SELECT chat_remove_member(ch('temp'), 'zed');
SELECT count(*) AS channels, (SELECT count(*) FROM chat.channel_members WHERE channel_id = ch('temp')) AS members
FROM chat.channels WHERE id = ch('temp');

SELECT count(*) AS memberships_before_errors FROM chat.channel_members \gset

-- Bad input.
SELECT err($$SELECT chat_add_member(NULL, 'x')$$);
SELECT err($$SELECT chat_add_member(ch('solo'), NULL)$$);
SELECT err($$SELECT chat_add_member(ch('solo'), 'x', NULL)$$);
SELECT err($$SELECT chat_add_member(ch('solo'), 'x', 'owner')$$);
SELECT err($$SELECT chat_add_member(ch('solo'), 'x', 'Admin')$$);
SELECT err($$SELECT chat_add_member(ch('solo'), '')$$);
SELECT err($$SELECT chat_add_member(ch('solo'), repeat('x', 201))$$);
SELECT err($$SELECT chat_add_member('00000000-0000-0000-0000-000000000000', 'x')$$);
SELECT err($$SELECT chat_add_member(ch('ab'), 'carol')$$);
SELECT err($$SELECT chat_add_member(ch('ab'), 'alice', 'admin')$$);
SELECT err($$SELECT chat_remove_member(NULL, 'x')$$);
SELECT err($$SELECT chat_remove_member(ch('solo'), NULL)$$);
SELECT err($$SELECT chat_remove_member('00000000-0000-0000-0000-000000000000', 'x')$$);
SELECT err($$SELECT chat_remove_member(ch('ab'), 'bob')$$);

-- Nothing was half-written.
SELECT count(*) - :memberships_before_errors AS changed FROM chat.channel_members;
SELECT string_agg(user_id || ':' || role, ' ' ORDER BY user_id) AS direct_members
FROM chat.channel_members WHERE channel_id = ch('ab');
