/*
 * chat--1.0--1.1.sql
 *	  Upgrade script of the chat extension from version 1.0 to 1.1 (a fresh
 *	  install of 1.1 runs chat--1.0.sql and then this file).
 *
 * Conventions: those of chat--1.0.sql (see src/sql/README.md).  Each change
 * has its own section below, titled for it.
 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION chat UPDATE TO '1.1'" to load this file. \quit

/* ------------------------------------------------------------------------
 * chat_send in C (src/pg/send.c)
 * ------------------------------------------------------------------------
 */

/*
 * chat_send does what chat._send does, with the same checks in the same
 * order, the same errors and the same statements, but in C: the PL/pgSQL
 * calls around the statements (chat_send -> chat._send ->
 * chat._check_content -> chat._max_message_bytes) cost as much as the
 * statements.  chat._send stays, for the worker.  The pinned search_path
 * stays too: PostgreSQL 15 re-plans a kept plan under the search_path
 * current when it runs, so the C function's statements must always run
 * under this one.
 */
CREATE OR REPLACE FUNCTION chat_send(channel uuid, sender text, content text,
									 client_id uuid DEFAULT pg_catalog.gen_random_uuid(),
									 kind text DEFAULT 'text', reply_to uuid DEFAULT NULL,
									 attachments jsonb DEFAULT NULL)
RETURNS chat.messages
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_send';

REVOKE EXECUTE ON FUNCTION chat_send(uuid, text, text, uuid, text, uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION chat_send(uuid, text, text, uuid, text, uuid, jsonb) TO chat_app;
