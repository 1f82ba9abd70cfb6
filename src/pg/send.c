/*
 * send.c
 *	  chat_send() in C: what chat._send (chat--1.0.sql) does for one
 *	  message, with the same checks in the same order, the same errors and
 *	  the same statements, without the PL/pgSQL around them.
 *
 *	  From SQL, chat_send was chat_send -> chat._send -> chat._check_content
 *	  -> chat._max_message_bytes, four PL/pgSQL calls and a statement per
 *	  call, around the five statements that do the work; that cost as much
 *	  as the work itself.  Here the argument checks are C (the setting is
 *	  the C variable behind chat.max_message_bytes), and the statements are
 *	  planned once per backend (SPI_prepare + SPI_keepplan) and executed
 *	  with SPI, each with a new snapshot as PL/pgSQL does (SPI in an atomic
 *	  context takes one per statement).
 *
 *	  The statements resolve their operators and functions through
 *	  search_path, when first planned and again whenever the plan cache
 *	  re-analyses them: PostgreSQL 15 re-analyses a kept plan under the
 *	  search_path current at execution (RevalidateCachedQuery), for
 *	  instance when it differs from the one the plan was made under.  So
 *	  chat_send keeps its "SET search_path = pg_catalog, pg_temp" clause:
 *	  every statement here runs under that path, whatever the caller's.
 *
 *	  The seq bump and the sender's read marker, one bigint of one row each,
 *	  are written without their statements when that is exactly what the
 *	  statement would do (row_update.c); otherwise the statement runs.
 *
 *	  chat._send stays as it is (the worker's per-item fallback calls it);
 *	  sql/15_send_c.sql holds the two to the same errors and rows.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/uuid.h"

#include "core/message.h"
#include "pg/citus.h"
#include "pg/events.h"
#include "pg/row_update.h"
#include "pg/settings.h"
#include "pg/spi_plan.h"

PG_FUNCTION_INFO_V1(chat_send);

/* The statements of chat._send, in the order they run. */
enum
{
	ST_CHECK_ATTACHMENTS,
	ST_BUMP_SEQ,
	ST_PROBE,
	ST_GIVE_BACK,
	ST_MESSAGE_BY_ID,
	ST_REPLY_TO,
	ST_INSERT,
	ST_MESSAGE_BY_KEY,
	ST_MARK_READ,
	ST_PROBE_KEY,				/* on Citus (pg/citus.h), ST_PROBE is */
	ST_PROBE_MEMBER,			/* these two */
	ST_MESSAGE_IN_CHANNEL,		/* and ST_MESSAGE_BY_ID and */
	ST_KEY_IN_CHANNEL,			/* ST_MESSAGE_BY_KEY these */
	ST_MARK_READ_LOCK,			/* and ST_MARK_READ these two */
	ST_MARK_READ_SET,
	ST_QUEUE_ROWS,				/* on Citus, what the queue's triggers do */
	ST_CANCEL,
	N_STATEMENTS
};

typedef struct Statement
{
	const char *sql;
	int			nargs;
	Oid			types[8];
} Statement;

/*
 * Every name is schema-qualified; operators and the functions the parser
 * picks for them come from pg_catalog because search_path is pinned.
 * Rows come back as their columns (RETURNING m.*, SELECT m.*), which
 * row_result makes into a chat.messages value, whatever columns later
 * versions add.  Not as one composite column (RETURNING m): on a Citus
 * cluster that is the shard's row type, which the node cannot cast to
 * chat.messages.
 */
static const Statement statements[N_STATEMENTS] = {
	[ST_CHECK_ATTACHMENTS] = {
		"SELECT chat._check_attachments($1)",
		1, {JSONBOID}
	},
	[ST_BUMP_SEQ] = {
		"UPDATE chat.channels AS x SET last_seq = x.last_seq + 1 WHERE x.id = $1 "
		"RETURNING x.last_seq",
		1, {UUIDOID}
	},
	[ST_PROBE] = {
		"SELECT (SELECT m.id FROM chat.messages AS m "
		"        WHERE m.sender_id = $2 AND m.client_id = $3), "
		"       EXISTS (SELECT FROM chat.channel_members AS x "
		"               WHERE x.channel_id = $1 AND x.user_id = $2)",
		3, {UUIDOID, TEXTOID, UUIDOID}
	},
	[ST_GIVE_BACK] = {
		"UPDATE chat.channels AS x SET last_seq = x.last_seq - 1 WHERE x.id = $1",
		1, {UUIDOID}
	},
	[ST_MESSAGE_BY_ID] = {
		"SELECT m.* FROM chat.messages AS m WHERE m.id = $1",
		1, {UUIDOID}
	},
	[ST_REPLY_TO] = {
		"SELECT FROM chat.messages AS m WHERE m.id = $1 AND m.channel_id = $2",
		2, {UUIDOID, UUIDOID}
	},
	[ST_INSERT] = {
		"INSERT INTO chat.messages AS m "
		"    (channel_id, seq, sender_id, client_id, content, kind, reply_to, "
		"     attachments, created_at) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, pg_catalog.clock_timestamp()) "
		"ON CONFLICT ON CONSTRAINT messages_sender_client_key DO NOTHING "
		"RETURNING m.*",
		8, {UUIDOID, INT8OID, TEXTOID, UUIDOID, TEXTOID, TEXTOID, UUIDOID, JSONBOID}
	},
	[ST_MESSAGE_BY_KEY] = {
		"SELECT m.* FROM chat.messages AS m WHERE m.sender_id = $1 AND m.client_id = $2",
		2, {TEXTOID, UUIDOID}
	},

	/*
	 * Sending marks the channel read for the sender, without ever waiting for
	 * the member row (see chat._send).
	 */
	[ST_MARK_READ] = {
		"UPDATE chat.channel_members AS x SET last_read_seq = $3 "
		"WHERE (x.channel_id, x.user_id) IN ("
		"    SELECT y.channel_id, y.user_id FROM chat.channel_members AS y "
		"    WHERE y.channel_id = $1 AND y.user_id = $2 AND y.last_read_seq < $3 "
		"    FOR NO KEY UPDATE SKIP LOCKED)",
		3, {UUIDOID, TEXTOID, INT8OID}
	},

	/*
	 * On a Citus cluster the key is (channel, sender, client_id): the probe
	 * names the channel, so Citus routes it to the channel's shard instead of
	 * asking every shard; and it is two plain statements, as Citus cannot
	 * always distribute subqueries in a target list.
	 */
	[ST_PROBE_KEY] = {
		"SELECT m.id FROM chat.messages AS m "
		"WHERE m.channel_id = $1 AND m.sender_id = $2 AND m.client_id = $3",
		3, {UUIDOID, TEXTOID, UUIDOID}
	},

	/*
	 * with the notification queue's questions in the same statement, as no
	 * trigger queues on Citus (they would run on the nodes): see
	 * chat._queue_probe, and ST_QUEUE_ROWS and ST_CANCEL below
	 */
	[ST_PROBE_MEMBER] = {
		"SELECT p.is_member, p.wanting, p.covered FROM chat._queue_probe($1, $2, $3, $4) AS p",
		4, {UUIDOID, TEXTOID, INT8OID, TEXTOID}
	},
	/* on Citus a duplicate is in the same channel: naming it routes the read */
	[ST_MESSAGE_IN_CHANNEL] = {
		"SELECT m.* FROM chat.messages AS m WHERE m.channel_id = $1 AND m.id = $2",
		2, {UUIDOID, UUIDOID}
	},

	/*
	 * Citus plans ST_MARK_READ in several steps over every shard (a quarter
	 * of a second here); these two name the channel and go to its shard: the
	 * row's lock unless it is taken, then the update.
	 */
	[ST_MARK_READ_LOCK] = {
		"SELECT 1 FROM chat.channel_members AS y "
		"WHERE y.channel_id = $1 AND y.user_id = $2 AND y.last_read_seq < $3 "
		"FOR NO KEY UPDATE SKIP LOCKED",
		3, {UUIDOID, TEXTOID, INT8OID}
	},
	[ST_MARK_READ_SET] = {
		"UPDATE chat.channel_members AS x SET last_read_seq = $3 "
		"WHERE x.channel_id = $1 AND x.user_id = $2",
		3, {UUIDOID, TEXTOID, INT8OID}
	},

	[ST_QUEUE_ROWS] = {
		"SELECT chat._queue_rows($1, $2, $3, $4, $5)",
		5, {UUIDOID, INT8OID, UUIDOID, TEXTOID, TEXTARRAYOID}
	},
	[ST_CANCEL] = {
		"SELECT chat._cancel_read($1, $2, $3)",
		3, {UUIDOID, TEXTOID, INT8OID}
	},
	[ST_KEY_IN_CHANNEL] = {
		"SELECT m.* FROM chat.messages AS m "
		"WHERE m.channel_id = $1 AND m.sender_id = $2 AND m.client_id = $3",
		3, {UUIDOID, TEXTOID, UUIDOID}
	},
};

/* kept plans, made by the backend's first chat_send */
static SPIPlanPtr plans[N_STATEMENTS];

/*
 * On a Citus cluster (pg/citus.h) each statement is planned anew with the
 * arguments' values instead (SPI_execute_with_args), as store_spi.c's run
 * does there: Citus needs the values to route, and cannot distribute a
 * kept plan of some statements.
 */
static bool oneshot = false;

/*
 * prepare_plans plans every statement not planned yet and keeps it for the
 * backend's life.  The plan cache re-analyses a kept plan after DDL on what
 * it uses (DROP and CREATE EXTENSION, say); search_path is pinned by then
 * too (see the file comment).
 */
static void
prepare_plans(void)
{
	for (int i = 0; i < N_STATEMENTS; i++)
		(void) chat_keep_plan(&plans[i], statements[i].sql, statements[i].nargs,
							  (Oid *) statements[i].types);
}

/*
 * run executes statement i with the given arguments (nulls as for
 * SPI_execute_plan: 'n' for NULL, ' ' otherwise) and checks its outcome.
 */
static void
run(int i, Datum *values, const char *nulls, int expect)
{
	const Statement *st = &statements[i];
	int			rc = oneshot ?
	SPI_execute_with_args(st->sql, st->nargs, (Oid *) st->types, values,
						  nulls, false, 0) :
	SPI_execute_plan(plans[i], values, nulls, false, 0);

	if (rc != expect)
		elog(ERROR, "chat_send: \"%s\" failed: %s", statements[i].sql,
			 SPI_result_code_string(rc));
}

/* first_column returns column 1 of the first result row, or NULL */
static Datum
first_column(bool *isnull)
{
	if (SPI_processed == 0)
	{
		*isnull = true;
		return (Datum) 0;
	}
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);
}

/*
 * row_result returns the first result row as a chat.messages value in the
 * upper executor context (it outlives SPI_finish), or sets *isnull when
 * there is none.  The row's columns fill the result type's in order,
 * skipping dropped ones.
 */
static Datum
row_result(FunctionCallInfo fcinfo, bool *isnull)
{
	TupleDesc	desc;
	TupleDesc	got = SPI_tuptable->tupdesc;
	Datum	   *values;
	bool	   *nulls;
	int			c = 0;

	if (SPI_processed == 0)
	{
		*isnull = true;
		return (Datum) 0;
	}
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "chat_send must return a row type");
	values = palloc0(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	for (int i = 0; i < desc->natts; i++)
	{
		nulls[i] = true;
		if (TupleDescAttr(desc, i)->attisdropped)
			continue;
		if (c >= got->natts)
			elog(ERROR, "chat_send: a statement returned %d columns of chat.messages",
				 got->natts);
		values[i] = SPI_getbinval(SPI_tuptable->vals[0], got, ++c, &nulls[i]);
	}
	*isnull = false;
	return PointerGetDatum(SPI_returntuple(heap_form_tuple(desc, values, nulls),
										   desc));
}

/* column_of returns the named column of the first row of tab, not null */
static Datum
column_of(SPITupleTable * tab, const char *name)
{
	int			att = SPI_fnumber(tab->tupdesc, name);
	bool		isnull;
	Datum		value;

	if (att <= 0)
		elog(ERROR, "chat_send: no column \"%s\" in the stored row", name);
	value = SPI_getbinval(tab->vals[0], tab->tupdesc, att, &isnull);
	if (isnull)
		elog(ERROR, "chat_send: the stored row's \"%s\" is null", name);
	return value;
}

static char *
uuid_text(Datum u)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, u));
}

/*
 * check_arguments raises what chat._send and chat._check_content raise for
 * bad arguments, in their order.  String comparisons use the call's input
 * collation, as PL/pgSQL's parameters did.
 */
static void
check_arguments(FunctionCallInfo fcinfo)
{
	Oid			coll = OidIsValid(PG_GET_COLLATION()) ?
	PG_GET_COLLATION() : DEFAULT_COLLATION_OID;
	Datum		content;
	int64		bytes;
	text	   *kind;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("channel must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("sender must not be null")));
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("client_id must not be null")));
	if (PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("kind must not be null")));

	/* chat._check_content */
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("content must not be null")));
	content = PG_GETARG_DATUM(2);
	if (DatumGetBool(DirectFunctionCall2Coll(texteq, coll, content,
											 CStringGetTextDatum(""))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("message content must not be empty")));
	/* octet_length(), which does not decompress */
	bytes = (int64) toast_raw_datum_size(content) - VARHDRSZ;
	if (bytes > chat_max_message_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("message content is too large"),
				 errdetail("The content has %lld bytes; chat.max_message_bytes allows %d.",
						   (long long) bytes, chat_max_message_bytes)));

	kind = PG_GETARG_TEXT_PP(4);
	if (!chat_kind_ok(VARDATA_ANY(kind), VARSIZE_ANY_EXHDR(kind)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid message kind \"%s\"",
						TextDatumGetCString(DirectFunctionCall2(text_left,
																PG_GETARG_DATUM(4),
																Int32GetDatum(40)))),
				 errhint("A kind is a lower-case letter followed by at most 31 of a-z, 0-9, \"_\", \".\" and \"-\".")));
}

/*
 * chat_send(channel uuid, sender text, content text, client_id uuid,
 * kind text, reply_to uuid, attachments jsonb) RETURNS chat.messages
 *
 * See chat._send for why the statements come in this order: the channel's
 * row lock and seq first, then the idempotency key and the membership in a
 * newer snapshot, the seq given back when nothing is stored.
 */
Datum
chat_send(PG_FUNCTION_ARGS)
{
	Datum		channel = PG_GETARG_DATUM(0);
	Datum		sender;
	Datum		client_id;
	Datum		args[8];
	char		nulls[8];
	Datum		result;
	Datum		next_seq;
	Datum		dup_id;
	bool		dup_null;
	bool		isnull;
	bool		distributed;
	bool		is_member;
	Datum		message_id = (Datum) 0;
	Datum		wanting = (Datum) 0;	/* on Citus: see chat._queue_probe */
	bool		wanting_null = true;
	bool		covered = false;
	int64		seq = 0;
	row_outcome bumped;

	check_arguments(fcinfo);
	sender = PG_GETARG_DATUM(1);
	client_id = PG_GETARG_DATUM(3);
	memset(nulls, ' ', sizeof(nulls));

	SPI_connect();
	distributed = chat_distributed();
	oneshot = distributed;
	if (!oneshot)
		prepare_plans();

	if (!PG_ARGISNULL(6))
	{
		args[0] = PG_GETARG_DATUM(6);
		run(ST_CHECK_ATTACHMENTS, args, nulls, SPI_OK_SELECT);
	}

	bumped = distributed ? ROW_FALLBACK : chat_bump_seq(channel, &seq);
	if (bumped == ROW_FALLBACK)
	{
		args[0] = channel;
		run(ST_BUMP_SEQ, args, nulls, SPI_OK_UPDATE_RETURNING);
		bumped = SPI_processed == 0 ? ROW_ABSENT : ROW_UPDATED;
		if (bumped == ROW_UPDATED)
			seq = DatumGetInt64(first_column(&isnull));
	}
	if (bumped == ROW_ABSENT)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("channel %s does not exist", uuid_text(channel))));
	next_seq = Int64GetDatum(seq);

	args[0] = channel;
	args[1] = sender;
	args[2] = client_id;
	if (distributed)
	{
		run(ST_PROBE_KEY, args, nulls, SPI_OK_SELECT);
		dup_id = first_column(&dup_null);
	}
	else
	{
		run(ST_PROBE, args, nulls, SPI_OK_SELECT);
		dup_id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &dup_null);
	}
	if (!dup_null)
	{
		/* SPI_getbinval points into SPI_tuptable, which the next run frees */
		dup_id = SPI_datumTransfer(dup_id, false, UUID_LEN);
		args[0] = channel;
		run(ST_GIVE_BACK, args, nulls, SPI_OK_UPDATE);
		if (distributed)
		{
			args[0] = channel;
			args[1] = dup_id;
			run(ST_MESSAGE_IN_CHANNEL, args, nulls, SPI_OK_SELECT);
		}
		else
		{
			args[0] = dup_id;
			run(ST_MESSAGE_BY_ID, args, nulls, SPI_OK_SELECT);
		}
		goto done;
	}
	if (distributed)
	{
		args[2] = next_seq;
		args[3] = PG_GETARG_DATUM(2);
		run(ST_PROBE_MEMBER, args, nulls, SPI_OK_SELECT);
		is_member = DatumGetBool(first_column(&isnull));
		wanting = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &wanting_null);
		if (!wanting_null)
			wanting = SPI_datumTransfer(wanting, false, -1);
		covered = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 3, &isnull));
	}
	else
		is_member = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 2, &isnull));
	if (!is_member)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("user \"%s\" is not a member of channel %s",
						TextDatumGetCString(sender), uuid_text(channel))));

	if (!PG_ARGISNULL(5))
	{
		args[0] = PG_GETARG_DATUM(5);
		args[1] = channel;
		run(ST_REPLY_TO, args, nulls, SPI_OK_SELECT);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("reply_to is not a message of this channel"),
					 errdetail("No message %s exists in channel %s.",
							   uuid_text(PG_GETARG_DATUM(5)), uuid_text(channel))));
	}

	args[0] = channel;
	args[1] = next_seq;
	args[2] = sender;
	args[3] = client_id;
	args[4] = PG_GETARG_DATUM(2);
	args[5] = PG_GETARG_DATUM(4);
	args[6] = PG_GETARG_DATUM(5);
	nulls[6] = PG_ARGISNULL(5) ? 'n' : ' ';
	args[7] = PG_GETARG_DATUM(6);
	nulls[7] = PG_ARGISNULL(6) ? 'n' : ' ';
	run(ST_INSERT, args, nulls, SPI_OK_INSERT_RETURNING);
	nulls[6] = nulls[7] = ' ';
	if (SPI_processed == 0)
	{
		/*
		 * Another transaction committed this key (for another channel) while
		 * we waited on it: give the seq back and return that message (SELECT
		 * ... INTO STRICT in chat._send, hence its error).
		 */
		args[0] = channel;
		run(ST_GIVE_BACK, args, nulls, SPI_OK_UPDATE);
		if (distributed)
		{
			args[0] = channel;
			args[1] = sender;
			args[2] = client_id;
			run(ST_KEY_IN_CHANNEL, args, nulls, SPI_OK_SELECT);
		}
		else
		{
			args[0] = sender;
			args[1] = client_id;
			run(ST_MESSAGE_BY_KEY, args, nulls, SPI_OK_SELECT);
		}
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("query returned no rows")));
		goto done;
	}
	/* keep the inserted row across the next statement */
	result = row_result(fcinfo, &isnull);
	if (distributed)
		message_id = SPI_datumTransfer(column_of(SPI_tuptable, "id"), false, UUID_LEN);

	args[0] = channel;
	args[1] = sender;
	args[2] = next_seq;
	if (!distributed)
	{
		if (chat_mark_sent(channel, sender, seq) == ROW_FALLBACK)
			run(ST_MARK_READ, args, nulls, SPI_OK_UPDATE);
	}
	else
	{
		bool		marked;

		run(ST_MARK_READ_LOCK, args, nulls, SPI_OK_SELECT);
		marked = SPI_processed > 0;
		if (marked)
			run(ST_MARK_READ_SET, args, nulls, SPI_OK_UPDATE);
		if (marked && covered)
			run(ST_CANCEL, args, nulls, SPI_OK_SELECT);
		if (!wanting_null)
		{
			args[0] = channel;
			args[1] = next_seq;
			args[2] = message_id;
			args[3] = PG_GETARG_DATUM(2);
			args[4] = wanting;
			run(ST_QUEUE_ROWS, args, nulls, SPI_OK_SELECT);
		}
	}

	/*
	 * On Citus the row was written on a node, where no trigger records the
	 * hint any more: record it here, on the coordinator, whose workers serve
	 * the channel's clients.
	 */
	if (distributed)
	{
		chat_event	ev;
		char	   *ch = uuid_text(channel);

		memset(&ev, 0, sizeof(ev));
		ev.kind = CHAT_EV_MESSAGE;
		strlcpy(ev.channel, ch, sizeof(ev.channel));
		ev.seq = DatumGetInt64(next_seq);
		chat_events_note(&ev);
	}
	SPI_finish();
	PG_RETURN_DATUM(result);

done:
	/* the stored message in the last statement's result, if any */
	result = row_result(fcinfo, &isnull);
	SPI_finish();
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}
