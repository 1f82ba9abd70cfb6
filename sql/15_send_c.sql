--
-- chat_send in C (version 1.1, src/pg/send.c): it answers exactly as
-- chat._send (which the worker still uses) does, and nothing on the
-- caller's search_path changes what it does.  Last, the 1.0 -> 1.1 upgrade
-- of a database in use.
--
CREATE EXTENSION IF NOT EXISTS chat;
SELECT l.lanname AS language, p.prosecdef AS security_definer, p.proconfig AS config
FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.oid = 'chat_send(uuid,text,text,uuid,text,uuid,jsonb)'::regprocedure;

CREATE TEMP TABLE c_ch AS
SELECT chat_create_channel('group', 'c-one', ARRAY['alice', 'bob']) AS one,
	   chat_create_channel('group', 'c-two', ARRAY['alice', 'carol']) AS two;
SELECT seq FROM chat_send((SELECT one FROM c_ch), 'alice', 'first in one');
SELECT seq FROM chat_send((SELECT two FROM c_ch), 'alice', 'first in two');

-- same(args) calls chat_send(args) and chat._send(args) and returns their
-- error (SQLSTATE, message, detail, hint) when the two are the same, uuids
-- masked for the expected output; 'DIFFERENT: ...' otherwise.  Errors roll
-- back, so the calls leave nothing behind.
CREATE FUNCTION err_raw(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text;
	m text;
	d text;
	h text;
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT,
							d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
	RETURN st || ': ' || m || ' | DETAIL: ' || d || ' | HINT: ' || h;
END
$$;
CREATE FUNCTION same(args text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	a text := err_raw('SELECT chat_send(' || args || ')');
	b text := err_raw('SELECT chat._send(' || args || ')');
BEGIN
	IF a IS DISTINCT FROM b THEN
		RETURN 'DIFFERENT: ' || a || ' <> ' || b;
	END IF;
	RETURN regexp_replace(regexp_replace(a, ' \| (DETAIL|HINT): (?= \||$)', '', 'g'),
						  '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}',
						  '<uuid>', 'g');
END
$$;

-- Every refusal, one argument wrong at a time, and several wrong at once
-- (the first check in chat._send's order wins).
SELECT same(a) FROM (VALUES
	($$NULL, 'alice', 'x', gen_random_uuid(), 'text', NULL, NULL$$),
	($$(SELECT one FROM c_ch), NULL, 'x', gen_random_uuid(), 'text', NULL, NULL$$),
	($$(SELECT one FROM c_ch), 'alice', NULL, gen_random_uuid(), 'text', NULL, NULL$$),
	($$(SELECT one FROM c_ch), 'alice', 'x', NULL, 'text', NULL, NULL$$),
	($$(SELECT one FROM c_ch), 'alice', 'x', gen_random_uuid(), NULL, NULL, NULL$$),
	($$NULL, NULL, NULL, NULL, NULL, NULL, NULL$$),
	($$(SELECT one FROM c_ch), 'alice', NULL, gen_random_uuid(), NULL, NULL, NULL$$),
	($$(SELECT one FROM c_ch), 'alice', NULL, NULL, 'text', NULL, NULL$$),
	($$'00000000-0000-0000-0000-000000000000', 'alice', 'x', gen_random_uuid(), 'text', NULL, NULL$$),
	($$(SELECT one FROM c_ch), 'carol', 'x', gen_random_uuid(), 'text', NULL, NULL$$),
	($$(SELECT one FROM c_ch), 'alice', '', gen_random_uuid(), 'text', NULL, NULL$$),
	($$(SELECT one FROM c_ch), 'alice', repeat('x', 16385), gen_random_uuid(), 'text', NULL, NULL$$),
	($$(SELECT one FROM c_ch), 'alice', repeat('é', 8193), gen_random_uuid(), 'text', NULL, NULL$$),
	($$(SELECT one FROM c_ch), 'alice', repeat('x', 100000), gen_random_uuid(), 'text', NULL, NULL$$),
	($$(SELECT one FROM c_ch), 'alice', repeat('x', 16385), gen_random_uuid(), 'Bad', NULL, '1'$$),
	($$(SELECT one FROM c_ch), 'alice', '', gen_random_uuid(), 'Bad', NULL, NULL$$),
	($$(SELECT one FROM c_ch), 'alice', 'x', gen_random_uuid(), '', NULL, NULL$$),
	($$(SELECT one FROM c_ch), 'alice', 'x', gen_random_uuid(), 'Text', NULL, NULL$$),
	($$(SELECT one FROM c_ch), 'alice', 'x', gen_random_uuid(), 'text ', NULL, NULL$$),
	($$(SELECT one FROM c_ch), 'alice', 'x', gen_random_uuid(), E'text\n', NULL, NULL$$),
	($$(SELECT one FROM c_ch), 'alice', 'x', gen_random_uuid(), 'a' || repeat('b', 32), NULL, NULL$$),
	($$(SELECT one FROM c_ch), 'alice', 'x', gen_random_uuid(), repeat('É', 50), NULL, NULL$$),
	($$(SELECT one FROM c_ch), 'alice', 'x', gen_random_uuid(), 'Bad', NULL, '1'$$),
	($$(SELECT one FROM c_ch), 'alice', 'x', gen_random_uuid(), 'text', NULL, '1'$$),
	($$(SELECT one FROM c_ch), 'alice', 'x', gen_random_uuid(), 'text', NULL, '[{}]'$$),
	($$'00000000-0000-0000-0000-000000000000', 'alice', 'x', gen_random_uuid(), 'text', NULL, '[1]'$$),
	($$(SELECT one FROM c_ch), 'alice', 'x', gen_random_uuid(), 'text', '00000000-0000-0000-0000-000000000000', NULL$$),
	($$(SELECT one FROM c_ch), 'alice', 'x', gen_random_uuid(), 'text', (SELECT id FROM chat.messages WHERE channel_id = (SELECT two FROM c_ch)), NULL$$),
	($$(SELECT one FROM c_ch), 'carol', 'x', gen_random_uuid(), 'text', '00000000-0000-0000-0000-000000000000', NULL$$),
	($$'00000000-0000-0000-0000-000000000000', 'carol', 'x', gen_random_uuid(), 'text', '00000000-0000-0000-0000-000000000000', NULL$$),
	($$(SELECT one FROM c_ch), 'alice', 'x', gen_random_uuid(), 'text', NULL, '[{"url": "http://x", "name": "a", "size": 1, "mime": "a/b"}]'$$)
) AS t(a);

-- What is stored and returned is the same: a message by each, then each
-- one's key sent again through the other returns the stored row.
CREATE TEMP TABLE c_got AS
SELECT 'c' AS via, m FROM chat_send((SELECT one FROM c_ch), 'alice', 'via c', '00000000-0000-0000-0000-0000000000c1',
									'note', (SELECT id FROM chat.messages WHERE channel_id = (SELECT one FROM c_ch) AND seq = 1), '[{"url": "http://x", "name": "a", "size": 1, "mime": "a/b"}]') AS m
UNION ALL
SELECT 'plpgsql', (s.message) FROM chat._send((SELECT one FROM c_ch), 'alice', 'via plpgsql', '00000000-0000-0000-0000-0000000000c2',
									'note', (SELECT id FROM chat.messages WHERE channel_id = (SELECT one FROM c_ch) AND seq = 1), '[{"url": "http://x", "name": "a", "size": 1, "mime": "a/b"}]') AS s;
SELECT g.via, (g.m).seq, (g.m).sender_id, (g.m).content, (g.m).kind, (g.m).reply_to IS NOT NULL AS replies,
	   (g.m).attachments, g.m = s AS returned_as_stored
FROM c_got g JOIN chat.messages s ON s.id = (g.m).id ORDER BY (g.m).seq;
SELECT m = (SELECT x FROM chat.messages x WHERE x.client_id = '00000000-0000-0000-0000-0000000000c2') AS dup_of_plpgsql_row
FROM chat_send((SELECT two FROM c_ch), 'alice', 'again', '00000000-0000-0000-0000-0000000000c2') AS m;
SELECT s.duplicate, s.message = (SELECT x FROM chat.messages x WHERE x.client_id = '00000000-0000-0000-0000-0000000000c1') AS dup_of_c_row
FROM chat._send((SELECT two FROM c_ch), 'alice', 'again', '00000000-0000-0000-0000-0000000000c1', 'text', NULL, NULL) AS s;
-- Neither duplicate took a seq; the sender's read marker follows her sends.
SELECT c.name, c.last_seq, (SELECT max(seq) FROM chat.messages m WHERE m.channel_id = c.id) AS max_seq,
	   (SELECT last_read_seq FROM chat.channel_members x WHERE x.channel_id = c.id AND x.user_id = 'alice') AS alice_read
FROM chat.channels c WHERE c.id IN ((SELECT one FROM c_ch), (SELECT two FROM c_ch)) ORDER BY c.name;
-- Called in the select list, it returns a chat.messages value too.
SELECT pg_typeof(chat_send((SELECT one FROM c_ch), 'bob', 'in the select list')) AS type,
	   (chat_send((SELECT one FROM c_ch), 'bob', 'and its seq')).seq;

--
-- A hostile search_path: objects in a schema searched before pg_catalog
-- that would change every statement of chat_send and of
-- chat._check_attachments if they were resolved through it.
--
CREATE SCHEMA evil;
CREATE FUNCTION evil.yes(text, text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true';
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.yes);
CREATE FUNCTION evil.yes(uuid, uuid) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true';
CREATE OPERATOR evil.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = evil.yes);
CREATE FUNCTION evil.plus(bigint, integer) RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT 1000::bigint';
CREATE OPERATOR evil.+ (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = evil.plus);
CREATE FUNCTION evil.clock_timestamp() RETURNS timestamptz LANGUAGE sql AS $$SELECT '2000-01-01 00:00+00'::timestamptz$$;
CREATE FUNCTION evil.jsonb_typeof(jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$SELECT 'array'$$;
CREATE FUNCTION evil.chat_send(channel uuid, sender text, content text, client_id uuid DEFAULT NULL,
							   kind text DEFAULT 'text', reply_to uuid DEFAULT NULL, attachments jsonb DEFAULT NULL)
RETURNS chat.messages LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'shadowed'; END$$;
GRANT USAGE ON SCHEMA evil TO PUBLIC;

-- The same checks, run under the hostile path: first with the plans made
-- above, then after DISCARD PLANS, which makes the plan cache analyse
-- every statement again (under the search_path current then).
CREATE FUNCTION hostile() RETURNS TABLE (seq bigint, content text, recent boolean, not_member text, bad_attachments text, kind text)
LANGUAGE sql SET search_path = evil, pg_catalog, public AS $$
	SELECT m.seq, m.content, m.created_at > '2001-01-01',
		   public.err('SELECT public.chat_send((SELECT one FROM c_ch), ''carol'', ''x'')'),
		   public.err('SELECT public.chat_send((SELECT one FROM c_ch), ''alice'', ''x'', attachments => ''{"url": "http://x"}'')'),
		   public.err('SELECT public.chat_send((SELECT one FROM c_ch), ''alice'', ''x'', kind => ''1st'')')
	FROM public.chat_send((SELECT one FROM c_ch), 'alice', 'under evil') AS m
$$;
SELECT last_seq AS before FROM chat.channels WHERE id = (SELECT one FROM c_ch) \gset
SELECT * FROM hostile();
DISCARD PLANS;
SELECT * FROM hostile();
SELECT last_seq - :before AS seqs_taken FROM chat.channels WHERE id = (SELECT one FROM c_ch);
-- A new key is not taken for a duplicate, and a known one still is.
SET search_path = evil, pg_catalog, public;
SELECT seq - :before AS step FROM public.chat_send((SELECT one FROM c_ch), 'bob', 'new key');
SELECT content FROM public.chat_send((SELECT one FROM c_ch), 'alice', 'retry', '00000000-0000-0000-0000-0000000000c1');
SELECT err($$SELECT chat_send((SELECT one FROM c_ch), 'bob', 'the shadow')$$) AS unqualified_call;
RESET search_path;
DROP SCHEMA evil CASCADE;

--
-- The seq bump and the sender's read marker are written without their
-- statements (src/pg/row_update.c) only where the statement would do
-- nothing more.  What an application adds to the two tables sends
-- chat_send back to the statements: each addition still does what it does.
--
SELECT one FROM c_ch \gset
CREATE TABLE app_log (tab text, old bigint, new bigint);
CREATE FUNCTION app_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.app_log
	VALUES (TG_TABLE_NAME, (to_jsonb(OLD) ->> TG_ARGV[0])::bigint, (to_jsonb(NEW) ->> TG_ARGV[0])::bigint);
	RETURN NEW;
END
$$;
-- the application's triggers fire, AFTER on one table, BEFORE on the other
CREATE TRIGGER app_log AFTER UPDATE ON chat.channels
FOR EACH ROW EXECUTE FUNCTION app_log('last_seq');
CREATE TRIGGER app_log BEFORE UPDATE ON chat.channel_members
FOR EACH ROW EXECUTE FUNCTION app_log('last_read_seq');
SELECT seq - :before AS step FROM chat_send(:'one', 'alice', 'logged');
SELECT tab, new - :before AS new FROM app_log ORDER BY tab;
-- and not while they are disabled
ALTER TABLE chat.channels DISABLE TRIGGER app_log;
ALTER TABLE chat.channel_members DISABLE TRIGGER app_log;
SELECT seq - :before AS step FROM chat_send(:'one', 'alice', 'not logged');
SELECT count(*) AS logged FROM app_log;
DROP TRIGGER app_log ON chat.channels;
DROP TRIGGER app_log ON chat.channel_members;
-- the application's CHECK constraint on the seq holds
SELECT last_seq AS cap FROM chat.channels WHERE id = :'one' \gset
ALTER TABLE chat.channels ADD CONSTRAINT app_cap CHECK (id <> :'one' OR last_seq <= :cap + 1);
SELECT seq - :cap AS step FROM chat_send(:'one', 'alice', 'at the cap');
SELECT split_part(err($$SELECT chat_send('$$ || :'one' || $$', 'alice', 'past the cap')$$), ' | ', 1) AS past_the_cap;
ALTER TABLE chat.channels DROP CONSTRAINT app_cap;
-- one added NOT VALID that the row breaks, on another column: the update
-- is refused as the statement refuses it
ALTER TABLE chat.channels ADD CONSTRAINT app_name CHECK (name <> 'c-one') NOT VALID;
SELECT split_part(err($$SELECT chat_send('$$ || :'one' || $$', 'alice', 'renamed?')$$), ' | ', 1) AS not_valid;
ALTER TABLE chat.channels DROP CONSTRAINT app_name;
-- a lower bound of the seq, and a check of another column, hold
ALTER TABLE chat.channels ADD CONSTRAINT app_floor CHECK (last_seq >= -1),
	ADD CONSTRAINT app_name CHECK (length(name) < 1000);
SELECT seq - :cap AS step FROM chat_send(:'one', 'alice', 'bounded');
ALTER TABLE chat.channels DROP CONSTRAINT app_floor, DROP CONSTRAINT app_name;
-- an index on the seq: the update cannot be HOT, the index gets the row
CREATE INDEX app_seq ON chat.channels (last_seq);
SELECT seq AS indexed FROM chat_send(:'one', 'alice', 'indexed') \gset
SET enable_seqscan = off;
SELECT count(*) AS found_by_index FROM chat.channels WHERE last_seq = :indexed AND id = :'one';
RESET enable_seqscan;
DROP INDEX chat.app_seq;
-- a unique one, and row security
CREATE UNIQUE INDEX app_seq ON chat.channels (id, last_seq);
ALTER TABLE chat.channel_members ENABLE ROW LEVEL SECURITY;
SELECT seq - :indexed AS step FROM chat_send(:'one', 'alice', 'unique and secure');
ALTER TABLE chat.channel_members DISABLE ROW LEVEL SECURITY;
DROP INDEX chat.app_seq;
-- a member added and sending in one transaction (the foreign key's check
-- runs again on a row this transaction inserted)
BEGIN;
SELECT chat_add_member(:'one', 'dave');
SELECT seq - :indexed AS step FROM chat_send(:'one', 'dave', 'hello from dave');
COMMIT;
-- under REPEATABLE READ, a send sees the sends before it in its transaction
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT seq - :indexed AS step FROM chat_send(:'one', 'bob', 'rr one');
SELECT seq - :indexed AS step FROM chat_send(:'one', 'bob', 'rr two');
COMMIT;
-- every sender's marker is at their last send, and the seqs did not skip
SELECT user_id, last_read_seq - :before AS read
FROM chat.channel_members WHERE channel_id = :'one' ORDER BY user_id;
SELECT last_seq - :before AS seqs_taken FROM chat.channels WHERE id = :'one';
DROP TABLE app_log;
DROP FUNCTION app_log();

-- Nothing is left half-written: every channel's seqs are 1..last_seq.
SELECT c.name, (SELECT array_agg(m.seq ORDER BY m.seq) FROM chat.messages m WHERE m.channel_id = c.id)
		IS NOT DISTINCT FROM (SELECT array_agg(g) FROM generate_series(1, nullif(c.last_seq, 0)) g) AS gap_free
FROM chat.channels c WHERE c.id IN ((SELECT one FROM c_ch), (SELECT two FROM c_ch)) ORDER BY c.name;

--
-- ALTER EXTENSION chat UPDATE from 1.0 in a session that has already
-- used the C chat_send (its kept plans see the new tables): the messages
-- stay, chat_send becomes C, keeps its grants and goes on numbering.
--
DROP TABLE c_got;
DROP EXTENSION chat;
CREATE EXTENSION chat VERSION '1.0';
SELECT chat_create_channel('group', 'up', ARRAY['alice', 'bob']) AS up \gset
SELECT seq FROM chat_send(:'up', 'alice', 'sent by 1.0', '00000000-0000-0000-0000-0000000000a1');
SELECT l.lanname AS language FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.oid = 'chat_send(uuid,text,text,uuid,text,uuid,jsonb)'::regprocedure;
ALTER EXTENSION chat UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'chat';
SELECT l.lanname AS language, p.prosecdef AS security_definer, p.proconfig AS config,
	   has_function_privilege('chat_app', p.oid, 'EXECUTE') AS chat_app_may,
	   has_function_privilege('public', p.oid, 'EXECUTE') AS public_may
FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.oid = 'chat_send(uuid,text,text,uuid,text,uuid,jsonb)'::regprocedure;
SELECT seq, content FROM chat_send(:'up', 'bob', 'sent by 1.1');
SELECT seq, content FROM chat_send(:'up', 'alice', 'retry', '00000000-0000-0000-0000-0000000000a1');
SELECT user_id, last_read_seq FROM chat.channel_members WHERE channel_id = :'up' ORDER BY 1;

--
-- The kind rule has one home (core/message.c's chat_kind_ok, which
-- chat._kind_ok, chat_send and the protocol's decoder call): it agrees
-- with 1.0's regular expression on every edge, and the batch statement
-- refuses what chat_send refuses.
--
SELECT count(*) AS kinds,
	   count(*) FILTER (WHERE chat._kind_ok(k) IS DISTINCT FROM (k ~ '^[a-z][a-z0-9_.-]{0,31}$')) AS disagree,
	   count(*) FILTER (WHERE chat._kind_ok(k)) AS valid
FROM (VALUES ('text'), ('a'), ('z'), ('file'), ('a.b-c_d9'), ('x' || repeat('y', 31)),
			 ('x' || repeat('y', 32)), (''), ('A'), ('Text'), ('9lives'), ('_x'), ('.x'),
			 ('-x'), ('a b'), ('a/b'), ('a' || chr(10)), (chr(10) || 'a'), ('é'), ('aé'),
			 ('a' || chr(233)), ('a:b'), ('a,b'), ('a$'), ('a^'), ('a~')) AS v(k);
SELECT chat._kind_ok(NULL) IS NULL AS strict;
SELECT seq FROM chat_send(:'up', 'bob', 'kind', kind => 'Bad');
SELECT count(*) AS refused FROM chat._send_batch(ARRAY[:'up']::uuid[], ARRAY['bob'], ARRAY['x'],
	ARRAY[gen_random_uuid()], ARRAY['Bad'], ARRAY[NULL]::uuid[], ARRAY[NULL]::jsonb[]);
