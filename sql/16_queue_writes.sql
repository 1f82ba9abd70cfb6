--
-- The queue's cost per send, single server: what chat_send makes the queue
-- trigger run and write.  Not in the Citus run (test/citus/run), where no
-- trigger queues and every send writes its members' entries.
--
-- What a send costs the queue: its upserts (pg_stat_statements, nested
-- statements counted: test/regress/regress.conf) and its writes (this
-- session's row counts; they include earlier transactions' not yet
-- reported, hence the differences).  The first message runs the upsert once,
-- for the member who has not read it, and writes their entry; none for its
-- sender (chat_send marks its sender read only after the INSERT's queue
-- trigger has run).  The second, with that entry open, runs nothing and
-- writes nothing.
INSERT INTO regress_ids VALUES ('ntw', chat_create_channel('group', 'ntw', ARRAY['gina', 'hank']));
CREATE EXTENSION pg_stat_statements;
CREATE TEMP VIEW queue_work AS
SELECT (SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
		WHERE query LIKE '%INSERT INTO chat.notifications AS q%') AS upserts,
	   n_tup_ins AS ins, n_tup_upd AS upd, n_tup_del AS del
FROM pg_stat_xact_user_tables WHERE relid = 'chat.notifications'::regclass;
BEGIN;
SELECT upserts AS up0, ins AS ins0, upd AS upd0, del AS del0 FROM queue_work \gset
SELECT 1 AS sent FROM chat_send(ch('ntw'), 'gina', 'first');
SELECT upserts - :up0 AS upserts, ins - :ins0 AS inserted, upd - :upd0 AS updated,
	   del - :del0 AS deleted FROM queue_work;
SELECT upserts AS up0, ins AS ins0, upd AS upd0, del AS del0 FROM queue_work \gset
SELECT 1 AS sent FROM chat_send(ch('ntw'), 'gina', 'second');
SELECT upserts - :up0 AS upserts, ins - :ins0 AS inserted, upd - :upd0 AS updated,
	   del - :del0 AS deleted FROM queue_work;
COMMIT;
DROP VIEW queue_work;
DROP EXTENSION pg_stat_statements;
SELECT user_id, count FROM chat.notification_queue WHERE channel_id = ch('ntw');
