--
-- chat_create_channel and chat_direct_channel.
--

-- A group: repeated members count once, in the order they first appear;
-- the first becomes its admin.
INSERT INTO regress_ids
VALUES ('team', chat_create_channel('group', 'team', ARRAY['alice', 'bob', 'alice', 'carol', 'bob']));
SELECT type, name, last_seq, last_change, direct_a, direct_b, created_at <= now() AS created_now
FROM chat.channels WHERE id = ch('team');
SELECT user_id, role, last_read_seq FROM chat.channel_members
WHERE channel_id = ch('team') ORDER BY joined_at, user_id;

-- A group without a name, with a single member.
INSERT INTO regress_ids VALUES ('solo', chat_create_channel('group', NULL, ARRAY['alice']));
SELECT type, name FROM chat.channels WHERE id = ch('solo');
SELECT user_id, role FROM chat.channel_members WHERE channel_id = ch('solo');

-- Exactly chat.max_group_members (5 in these tests) distinct members; a
-- repeated one does not count against the limit.
INSERT INTO regress_ids
VALUES ('full', chat_create_channel('group', 'full', ARRAY['u1', 'u2', 'u3', 'u4', 'u5', 'u1']));
SELECT string_agg(user_id || ':' || role, ' ' ORDER BY user_id) AS members
FROM chat.channel_members WHERE channel_id = ch('full');

-- User ids are text as the application has them: numbers, uuids, any
-- case, up to 200 bytes.
INSERT INTO regress_ids
VALUES ('odd', chat_create_channel('group', 'odd ids',
	   ARRAY['42', '6f1c2b9e-0000-4000-8000-000000000000', 'Zoë', 'a:b', repeat('x', 200)]));
SELECT user_id, octet_length(user_id) AS bytes FROM chat.channel_members
WHERE channel_id = ch('odd') ORDER BY user_id COLLATE "C";

-- A direct channel is created once per unordered pair, whichever way round
-- and through whichever function it is asked for.
INSERT INTO regress_ids VALUES ('ab', chat_direct_channel('alice', 'bob'));
SELECT chat_direct_channel('alice', 'bob') = ch('ab') AS same_again,
	   chat_direct_channel('bob', 'alice') = ch('ab') AS reversed,
	   chat_create_channel('direct', NULL, ARRAY['bob', 'alice']) = ch('ab') AS via_create,
	   chat_create_channel('direct', 'a name is ignored', ARRAY['alice', 'bob', 'alice']) = ch('ab') AS repeated_member;
SELECT type, name, direct_a, direct_b FROM chat.channels WHERE id = ch('ab');
SELECT user_id, role, last_read_seq FROM chat.channel_members
WHERE channel_id = ch('ab') ORDER BY user_id;
SELECT count(*) AS direct_channels_of_alice_and_bob FROM chat.channels
WHERE type = 'direct' AND direct_a = 'alice' AND direct_b = 'bob';

-- A direct channel with the same users in another case is another pair;
-- the pair is stored byte-wise ordered ('Bob' < 'alice').
INSERT INTO regress_ids VALUES ('aB', chat_direct_channel('alice', 'Bob'));
SELECT ch('aB') <> ch('ab') AS different, direct_a, direct_b
FROM chat.channels WHERE id = ch('aB');

-- A user's direct channels with different people are different channels.
INSERT INTO regress_ids VALUES ('ac', chat_create_channel('direct', NULL, ARRAY['carol', 'alice']));
SELECT ch('ac') <> ch('ab') AS different;

SELECT type, count(*) FROM chat.channels GROUP BY type ORDER BY type;
SELECT count(*) AS channels_before_errors FROM chat.channels \gset

-- Bad input.
SELECT err($$SELECT chat_create_channel(NULL, 'x', ARRAY['a'])$$);
SELECT err($$SELECT chat_create_channel('room', 'x', ARRAY['a'])$$);
SELECT err($$SELECT chat_create_channel('Group', 'x', ARRAY['a'])$$);
SELECT err($$SELECT chat_create_channel('', 'x', ARRAY['a'])$$);
SELECT err($$SELECT chat_create_channel('group', 'x', NULL)$$);
SELECT err($$SELECT chat_create_channel('group', 'x', ARRAY['a', NULL])$$);
SELECT err($$SELECT chat_create_channel('group', 'x', ARRAY['a', ''])$$);
SELECT err($$SELECT chat_create_channel('group', 'x', ARRAY['a', repeat('x', 201)])$$);
SELECT err($$SELECT chat_create_channel('group', 'x', ARRAY['a', repeat('é', 101)])$$);
SELECT err($$SELECT chat_create_channel('group', 'x', '{}')$$);
SELECT err($$SELECT chat_create_channel('group', 'x', ARRAY['u1', 'u2', 'u3', 'u4', 'u5', 'u6'])$$);
SELECT err($$SELECT chat_create_channel('group', '', ARRAY['a'])$$);
SELECT err($$SELECT chat_create_channel('group', repeat('n', 201), ARRAY['a'])$$);
SELECT err($$SELECT chat_create_channel('group', repeat('n', 200), ARRAY['a'])$$) AS name_of_200_chars;
DELETE FROM chat.channels WHERE name = repeat('n', 200);
SELECT err($$SELECT chat_create_channel('direct', NULL, ARRAY['a'])$$);
SELECT err($$SELECT chat_create_channel('direct', NULL, ARRAY['a', 'a'])$$);
SELECT err($$SELECT chat_create_channel('direct', NULL, ARRAY['a', 'b', 'c'])$$);
SELECT err($$SELECT chat_create_channel('direct', NULL, '{}')$$);
SELECT err($$SELECT chat_direct_channel(NULL, 'b')$$);
SELECT err($$SELECT chat_direct_channel('a', NULL)$$);
SELECT err($$SELECT chat_direct_channel('a', 'a')$$);
SELECT err($$SELECT chat_direct_channel('', 'b')$$);
SELECT err($$SELECT chat_direct_channel('a', repeat('x', 201))$$);

-- The same failures at top level: the statement fails as a whole.
\set VERBOSITY sqlstate
SELECT chat_create_channel('group', 'x', ARRAY['u1', 'u2', 'u3', 'u4', 'u5', 'u6']);
SELECT chat_direct_channel('a', 'a');
\set VERBOSITY default

-- Nothing was half-written by any of the failures.
SELECT count(*) - :channels_before_errors AS new_channels FROM chat.channels;
SELECT count(*) AS orphan_members FROM chat.channel_members m
WHERE NOT EXISTS (SELECT FROM chat.channels c WHERE c.id = m.channel_id);
