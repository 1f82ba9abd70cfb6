-- test/citus: in a database of the Citus suite, CREATE EXTENSION chat is
-- followed by chat_distribute() in the same transaction, so that the
-- regress and isolation tests, which create the extension themselves,
-- run unchanged against distributed tables.  The regress tests' own lookup
-- table regress_ids (sql/01_install.sql) becomes a reference table: its
-- helpers ch() and msg() are called inside statements that Citus runs on
-- the shards, so it must be on every node.
CREATE FUNCTION citus_test_distribute() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
	nsp text;
BEGIN
	IF EXISTS (SELECT FROM pg_event_trigger_ddl_commands() AS c
			   WHERE c.command_tag = 'CREATE EXTENSION' AND c.object_identity = 'chat') THEN
		SELECT n.nspname INTO nsp FROM pg_extension AS e
		JOIN pg_namespace AS n ON n.oid = e.extnamespace WHERE e.extname = 'chat';
		EXECUTE format('SELECT %I.chat_distribute(4)', nsp);
	ELSIF EXISTS (SELECT FROM pg_event_trigger_ddl_commands() AS c
				  WHERE c.command_tag = 'CREATE TABLE' AND c.object_identity = 'public.regress_ids') THEN
		PERFORM create_reference_table('public.regress_ids');
	END IF;
END
$$;
CREATE EVENT TRIGGER citus_test_distribute ON ddl_command_end
	WHEN TAG IN ('CREATE EXTENSION', 'CREATE TABLE') EXECUTE FUNCTION citus_test_distribute();
