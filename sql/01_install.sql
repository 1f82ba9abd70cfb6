--
-- Installing the extension: what it creates, where, and with which rights.
-- Also defines the helpers the later tests use.
--
CREATE EXTENSION chat;

SELECT extname, extversion, extnamespace::regnamespace AS schema, extrelocatable
FROM pg_extension WHERE extname = 'chat';

-- Every object that belongs to the extension (the C functions chat_online
-- and chat_mint_token come with the worker).
SELECT pg_describe_object(classid, objid, objsubid) AS object
FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'chat')
ORDER BY 1;

-- The tables, column by column, in the contract's order.
SELECT a.attrelid::regclass AS "table", a.attname AS "column",
	   format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
	   pg_get_expr(d.adbin, d.adrelid) AS "default"
FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid IN ('chat.channels'::regclass, 'chat.channel_members'::regclass,
					 'chat.messages'::regclass, 'chat.message_versions'::regclass)
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum;

SELECT conrelid::regclass AS "table", conname, pg_get_constraintdef(oid) AS definition
FROM pg_constraint
WHERE connamespace = 'chat'::regnamespace
ORDER BY conrelid::regclass::text, conname;

SELECT indexrelid::regclass AS index, pg_get_indexdef(indexrelid) AS definition
FROM pg_index
WHERE indrelid IN ('chat.channels'::regclass, 'chat.channel_members'::regclass,
				   'chat.messages'::regclass, 'chat.message_versions'::regclass)
ORDER BY indexrelid::regclass::text;

-- The NOTIFY triggers.
SELECT tgname, pg_get_triggerdef(oid) AS definition
FROM pg_trigger
WHERE tgrelid IN ('chat.channel_members'::regclass, 'chat.messages'::regclass)
  AND NOT tgisinternal
ORDER BY tgname;

-- Every function: API functions run as their owner with a pinned
-- search_path (the internal chat._* ones run under it); only chat_app (and
-- superusers) may execute any of them, and nobody the internal ones.
SELECT p.oid::regprocedure AS function, p.prosecdef AS security_definer,
	   p.proconfig AS config,
	   (SELECT string_agg(CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, ',')
		FROM aclexplode(p.proacl) a
		WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner) AS executable_by
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'chat'
ORDER BY p.oid::regprocedure::text;

-- Tables: chat_app may read the three contract tables, nothing else.
SELECT c.oid::regclass AS "table",
	   (SELECT string_agg(a.grantee::regrole::text || ':' || a.privilege_type, ',')
		FROM aclexplode(c.relacl) a WHERE a.grantee <> c.relowner) AS granted
FROM pg_class c
WHERE c.relnamespace = 'chat'::regnamespace AND c.relkind = 'r'
ORDER BY 1;
SELECT has_schema_privilege('chat_app', 'chat', 'USAGE') AS chat_app_usage,
	   has_schema_privilege('public', 'chat', 'USAGE') AS public_usage;

-- pg_dump dumps the rows of the tables (normally it skips an extension's).
SELECT unnest(extconfig)::regclass AS dumped_table, unnest(extcondition) AS condition
FROM pg_extension WHERE extname = 'chat' ORDER BY 1::text;

-- The role the application is granted; it cannot log in by itself.
SELECT rolname, rolcanlogin, rolsuper, rolinherit, rolcreaterole, rolcreatedb
FROM pg_roles WHERE rolname = 'chat_app';

-- Versions and the (so far empty) upgrade path.
SELECT name, version, installed, superuser, trusted, relocatable, schema
FROM pg_available_extension_versions WHERE name = 'chat';
SELECT * FROM pg_extension_update_paths('chat');
ALTER EXTENSION chat UPDATE;

-- A second install is refused.
CREATE EXTENSION chat;

-- The limits the functions read.
SELECT chat._max_message_bytes() AS max_message_bytes,
	   current_setting('chat.max_group_members') AS max_group_members;

--
-- Helpers for the following tests (not part of the extension):
--	 ch(name)		the id of a channel the tests created under that name
--	 msg(name, seq)	the id of the message with that seq in that channel
--	 err(sql)		runs sql; returns "SQLSTATE: message" (uuids masked,
--					detail and hint appended) or "no error"
--
CREATE TABLE regress_ids (name text PRIMARY KEY, id uuid NOT NULL);
GRANT SELECT, INSERT ON regress_ids TO PUBLIC;

CREATE FUNCTION ch(name text) RETURNS uuid LANGUAGE plpgsql STABLE AS $$
DECLARE
	r uuid;
BEGIN
	SELECT i.id INTO STRICT r FROM regress_ids i WHERE i.name = ch.name;
	RETURN r;
END
$$;

CREATE FUNCTION msg(name text, seq bigint) RETURNS uuid LANGUAGE plpgsql STABLE AS $$
DECLARE
	r uuid;
BEGIN
	SELECT m.id INTO STRICT r FROM chat.messages m
	WHERE m.channel_id = ch(msg.name) AND m.seq = msg.seq;
	RETURN r;
END
$$;

CREATE FUNCTION err(q text) RETURNS text LANGUAGE plpgsql AS $$
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
	m := st || ': ' || m;
	IF d <> '' THEN m := m || ' | DETAIL: ' || d; END IF;
	IF h <> '' THEN m := m || ' | HINT: ' || h; END IF;
	RETURN regexp_replace(m, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}',
						  '<uuid>', 'g');
END
$$;

SELECT err('SELECT 1/0') AS err_works, err('SELECT 1') AS no_error;
