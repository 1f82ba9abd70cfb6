--
-- Offline notifications: a queue entry per (user, channel) made in the
-- sending transaction, drained with chat_notifications_claim/done.  Nobody
-- has a WebSocket connection in this cluster, so every member is offline
-- and due at once (the online delay is tested in test/integration).
--
\set SHOW_CONTEXT never

-- Start from an empty queue (the tests before sent messages too).
SELECT chat_notifications_done(ARRAY(SELECT id FROM chat.notifications)) >= 0 AS emptied;

INSERT INTO regress_ids VALUES ('nt', chat_create_channel('group', 'nt', ARRAY['alice', 'bob', 'carol', 'dave', 'erin']));
INSERT INTO regress_ids VALUES ('ntd', chat_direct_channel('alice', 'erin'));
-- What a claim would return now: chat.notification_queue (an open entry
-- is counted from the tables; the table itself is not rewritten for every
-- message).  An entry that tells nothing has count 0.
CREATE VIEW queue AS
SELECT q.user_id, i.name AS channel, q.count, q.first_seq, q.last_seq, q.mention, q.claims,
	   q.due_at <= clock_timestamp() AS due, m.content AS latest
FROM chat.notification_queue q JOIN regress_ids i ON i.id = q.channel_id
LEFT JOIN chat.messages m ON m.channel_id = q.channel_id AND m.id = q.message_id
WHERE i.name IN ('nt', 'ntd');

-- The @mention syntax.
SELECT chat._mentions('hi @sam. and @bob-2, mail x@y.z, @ alone, (@carol) @Dave_1!') AS mentions;
SELECT chat._mentions('no mention here') AS none;

-- One message: an entry for every member but the sender, due now.
SELECT seq FROM chat_send(ch('nt'), 'alice', 'Load 7 is ready');
SELECT * FROM queue ORDER BY user_id;
-- Five messages in a row are one entry per member, with a count and the
-- latest message.
SELECT seq FROM chat_send(ch('nt'), 'alice', 'Load 7 at dock 2');
SELECT seq FROM chat_send(ch('nt'), 'alice', 'Load 7 at dock 3');
SELECT * FROM queue ORDER BY user_id;

-- A rolled-back send makes no entry, and neither does a rolled-back
-- subtransaction; a committed one in the same transaction does.
BEGIN;
SELECT seq FROM chat_send(ch('nt'), 'alice', 'never sent');
SELECT count FROM queue WHERE user_id = 'bob';
ROLLBACK;
SELECT user_id, count, last_seq FROM queue ORDER BY user_id;
BEGIN;
SAVEPOINT s;
SELECT seq FROM chat_send(ch('nt'), 'alice', 'also never sent');
ROLLBACK TO SAVEPOINT s;
SELECT seq FROM chat_send(ch('nt'), 'alice', 'sent after the savepoint');
COMMIT;
SELECT user_id, count, last_seq, latest FROM queue ORDER BY user_id;
SELECT count(*) AS never_sent FROM chat.messages WHERE content LIKE '%never sent';

-- Reading the channel up to the entry's newest message cancels it; reading
-- less keeps it.  Sending marks read too (bob answers).
SELECT chat_mark_read(ch('nt'), 'carol', 4);
SELECT chat_mark_read(ch('nt'), 'dave', 2);
SELECT user_id, count, last_seq FROM queue ORDER BY user_id;
SELECT seq FROM chat_send(ch('nt'), 'bob', 'OK, on my way');
SELECT user_id, count, last_seq, latest FROM queue ORDER BY user_id;

-- Muted: no entry, until a mention names the member.
SELECT chat_mark_read(ch('nt'), 'carol', 1000);
SELECT chat_mute(ch('nt'), 'carol', 'infinity');
SELECT seq FROM chat_send(ch('nt'), 'alice', 'carol is muted');
SELECT count(*) AS carol_entries FROM queue WHERE user_id = 'carol';
SELECT seq FROM chat_send(ch('nt'), 'alice', 'but @carol, please call');
SELECT user_id, count, last_seq, mention, latest FROM queue WHERE user_id = 'carol';
-- A mute that has ended mutes nothing; NULL unmutes.
SELECT chat_mute(ch('nt'), 'carol', now() - interval '1 minute');
SELECT muted_until IS NOT NULL AS muted FROM chat.channel_members WHERE channel_id = ch('nt') AND user_id = 'carol';
SELECT chat_mute(ch('nt'), 'carol', NULL);
SELECT muted_until IS NULL AS unmuted FROM chat.channel_members WHERE channel_id = ch('nt') AND user_id = 'carol';

-- Direct messages only: erin gets nothing from the group, but her direct
-- messages and mentions of her.
SELECT chat_notify_direct_only('erin');
SELECT * FROM chat.notify_settings;
SELECT chat_mark_read(ch('nt'), 'erin', 1000);
SELECT seq FROM chat_send(ch('nt'), 'alice', 'group news');
SELECT count(*) AS erin_entries FROM queue WHERE user_id = 'erin';
SELECT seq FROM chat_send(ch('ntd'), 'alice', 'a direct word');
SELECT seq FROM chat_send(ch('nt'), 'alice', '@erin see above');
SELECT user_id, channel, count, mention, latest FROM queue WHERE user_id = 'erin' ORDER BY channel;
SELECT chat_notify_direct_only('erin', false);

-- Draining.  Claim returns due entries and hides them; a second claim
-- gets the others; done deletes.
SELECT chat_mark_read(ch('nt'), 'bob', 1000), chat_mark_read(ch('nt'), 'carol', 1000),
	   chat_mark_read(ch('nt'), 'dave', 1000), chat_mark_read(ch('nt'), 'erin', 1000),
	   chat_mark_read(ch('ntd'), 'erin', 1000);
SELECT count(*) AS left_over FROM queue;
SELECT seq FROM chat_send(ch('nt'), 'alice', 'Truck 4 is at the depot');
SELECT user_id, channel, count FROM queue ORDER BY user_id;
CREATE TEMP TABLE first_claim AS
SELECT * FROM chat_notifications_claim(2, '1 hour');
SELECT user_id, channel_type, channel_name, count, sender_id, preview, mention, claims FROM first_claim ORDER BY user_id;
CREATE TEMP TABLE second_claim AS
SELECT * FROM chat_notifications_claim(10, '1 hour');
SELECT user_id, count, claims FROM second_claim ORDER BY user_id;
SELECT count(*) AS overlap FROM first_claim f JOIN second_claim s USING (id);
SELECT count(*) AS nothing_left FROM chat_notifications_claim(10, '1 hour');

-- A message while an entry is claimed opens a new entry: done on the
-- claimed one must not lose it.
SELECT seq FROM chat_send(ch('nt'), 'alice', 'one more thing');
SELECT user_id, count, claims FROM queue ORDER BY user_id, claims;
SELECT chat_notifications_done(ARRAY(SELECT id FROM first_claim UNION ALL SELECT id FROM second_claim)) AS done;
SELECT chat_notifications_done(ARRAY(SELECT id FROM first_claim)) AS done_again;
SELECT user_id, count, claims, latest FROM queue ORDER BY user_id;

-- An entry not done reappears after the visibility timeout, claimed once
-- more (a crashed sender loses nothing).
CREATE TEMP TABLE short_claim AS SELECT * FROM chat_notifications_claim(1, '1 millisecond');
SELECT count(*) AS claimed FROM short_claim;
SELECT pg_sleep(0.05);
SELECT s.user_id = c.user_id AS same_entry, c.claims
FROM short_claim s JOIN chat_notifications_claim(10, '1 hour') c USING (id);

-- Claim never returns an entry whose user has read up to its newest
-- message, even if the cancel was bypassed (a marker moved by a plain
-- UPDATE with triggers off; on Citus chat_mark_read cancels, not a trigger).
SELECT chat_notifications_done(ARRAY(SELECT id FROM chat.notifications));
SELECT seq AS read_seq FROM chat_send(ch('nt'), 'alice', 'read it already') \gset
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE chat.channel_members SET last_read_seq = :read_seq
WHERE channel_id = ch('nt') AND user_id = 'bob';
SELECT count(*) AS entries FROM queue WHERE user_id = 'bob';
SELECT count(*) AS bob_claimed FROM chat_notifications_claim(10, '1 hour') WHERE user_id = 'bob';
ROLLBACK;

-- Leaving the channel drops the member's entries.
SELECT count(*) AS dave_before FROM chat.notifications WHERE user_id = 'dave';
SELECT chat_remove_member(ch('nt'), 'dave');
SELECT count(*) AS dave_after FROM chat.notifications WHERE user_id = 'dave';

-- A batch from the worker (chat._send_batch) adds each member once.
SELECT chat_notifications_done(ARRAY(SELECT id FROM chat.notifications));
SELECT count(*) FROM chat._send_batch(ARRAY[ch('nt'), ch('nt'), ch('nt')], ARRAY['alice', 'alice', 'bob'],
	ARRAY['b1', 'b2', 'b3 @alice'], ARRAY[gen_random_uuid(), gen_random_uuid(), gen_random_uuid()],
	ARRAY['text', 'text', 'text'], ARRAY[NULL, NULL, NULL]::uuid[], ARRAY[NULL, NULL, NULL]::jsonb[]);
SELECT user_id, count, first_seq < last_seq AS spans, mention, latest FROM queue ORDER BY user_id;
-- A batch of 12 over two channels and two senders, with a muted member
-- named once.  A batch of more than 8 rows meets the members per channel
-- and sender, except for members who sent in the batch and messages that
-- may name someone; it queues what message by message queues: carol
-- (muted) gets the mention only; alice gets erin's three (her g9 marks
-- bob's g5 read); bob gets alice's four after his g5; erin all nine of nt.
SELECT chat_notifications_done(ARRAY(SELECT id FROM chat.notifications));
SELECT chat_mute(ch('nt'), 'carol', 'infinity');
WITH b(channel, sender, content) AS (
	SELECT ch('nt'), CASE WHEN i = 5 THEN 'bob' ELSE 'alice' END,
		   CASE WHEN i = 5 THEN 'g5 @carol' ELSE 'g' || i END
	FROM generate_series(1, 9) i
	UNION ALL SELECT ch('ntd'), 'erin', 'd' || i FROM generate_series(1, 3) i
), a AS (
	SELECT array_agg(b.channel) AS channels, array_agg(b.sender) AS senders,
		   array_agg(b.content) AS contents FROM b)
SELECT count(*) FROM a, chat._send_batch(a.channels, a.senders, a.contents,
	ARRAY(SELECT gen_random_uuid() FROM generate_series(1, 12)),
	array_fill('text'::text, ARRAY[12]), array_fill(NULL::uuid, ARRAY[12]),
	array_fill(NULL::jsonb, ARRAY[12])) AS r;
SELECT user_id, channel, count, last_seq - first_seq AS span, mention, latest FROM queue ORDER BY user_id, channel;
SELECT chat_mute(ch('nt'), 'carol', NULL);

-- The triggers read chat.channel_members' primary key and
-- notifications_member_idx directly; after REINDEX CONCURRENTLY (new index
-- OIDs) this session's sends, reads and queueing still work.
REINDEX INDEX CONCURRENTLY chat.notifications_member_idx;
REINDEX TABLE CONCURRENTLY chat.channel_members;
SELECT chat_notifications_done(ARRAY(SELECT id FROM chat.notifications)) >= 0 AS emptied;
SELECT seq > 0 AS sent FROM chat_send(ch('ntd'), 'erin', 'after the reindex');
SELECT user_id, channel, count, latest FROM queue WHERE channel = 'ntd' ORDER BY user_id;
SELECT chat_mark_read(ch('ntd'), 'alice', 1000);
SELECT count(*) AS left_for_alice FROM queue WHERE channel = 'ntd' AND user_id = 'alice';

-- Errors.
SELECT err($$SELECT * FROM chat_notifications_claim(0)$$);
SELECT err($$SELECT * FROM chat_notifications_claim(1001)$$);
SELECT err($$SELECT * FROM chat_notifications_claim(NULL)$$);
SELECT err($$SELECT * FROM chat_notifications_claim(1, '0 seconds')$$);
SELECT err($$SELECT * FROM chat_notifications_claim(1, '2 days')$$);
SELECT err($$SELECT chat_notifications_done(NULL)$$);
SELECT err($$SELECT chat_mute(ch('nt'), 'mallory', 'infinity')$$);
SELECT err($$SELECT chat_mute(NULL, 'bob', 'infinity')$$);
SELECT err($$SELECT chat_mute('00000000-0000-0000-0000-000000000000', 'bob', 'infinity')$$);
SELECT err($$SELECT chat_mute(ch('nt'), '', 'infinity')$$);
SELECT err($$SELECT chat_notify_direct_only(NULL)$$);
SELECT err($$SELECT chat_notify_direct_only('bob', NULL)$$);

-- chat.notifications = off: messages queue nothing (a deployment that
-- sends no pushes does not pay for the queue); on again, they do.
SET chat.notifications = off;
SELECT seq AS off_seq FROM chat_send(ch('nt'), 'alice', 'while the queue is off') \gset
SELECT count(*) AS queued_while_off FROM chat.notifications
WHERE channel_id = ch('nt') AND last_seq >= :off_seq;
RESET chat.notifications;
SELECT seq AS on_seq FROM chat_send(ch('nt'), 'alice', 'with the queue on again') \gset
SELECT count(*) > 0 AS queued_again FROM chat.notifications
WHERE channel_id = ch('nt') AND last_seq = :on_seq;

-- chat_app drains the queue through the functions, and can read it, but
-- cannot write it.
SET ROLE chat_app;
SELECT count(*) >= 0 AS can_claim FROM chat_notifications_claim(1, '1 second');
SELECT has_table_privilege('chat.notifications', 'SELECT') AS can_read;
SELECT err($$DELETE FROM chat.notifications$$);
SELECT err($$INSERT INTO chat.notify_settings VALUES ('x', true)$$);
SELECT err($$SELECT chat._user_online('bob')$$);
RESET ROLE;
SELECT chat._user_online('bob') AS bob_online;
