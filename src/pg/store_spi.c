/*
 * store_spi.c
 *	  core/store.h over SPI.  Every transaction and subtransaction the worker
 *	  runs lives here.  Each call is one transaction with the statement
 *	  timeout armed (SPI in a background worker does not arm it); an ERROR
 *	  is caught, the transaction aborted, and the failure returned to the
 *	  core as a chat_err, so one bad request costs one error frame.
 *
 *	  A group-commit batch is first stored by one set-based statement,
 *	  chat._send_batch (the common case: nothing fails).  Only if that
 *	  fails is the batch retried through chat._send with one subtransaction
 *	  per item, so a bad item fails alone and gets its own error.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"

#include "pg/citus.h"
#include "pg/settings.h"
#include "pg/shmem.h"
#include "pg/store_spi.h"
#include "pg/spi_plan.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', " \
	"'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define MSG_COLS "m.id::text, m.channel_id::text, m.client_id::text, " \
	"m.reply_to::text, m.seq, m.sender_id, m.content, m.kind, " \
	"m.attachments::text, " TS("m.created_at") ", " TS("m.edited_at") ", " \
	TS("m.deleted_at") ", m.change_seq, " \
	"CASE WHEN m.deleted_at IS NULL THEN m.reactions::text END"
/* Columns of MSG_COLS; what a query selects after them follows. */
#define MSG_NCOLS 14
#define CH_COLS "c.id::text, c.type, c.name, cm.role, c.last_seq, " \
	"cm.last_read_seq, (SELECT count(*) FROM chat.messages x " \
	"WHERE x.channel_id = c.id AND x.seq > cm.last_read_seq " \
	"AND x.sender_id <> cm.user_id AND x.deleted_at IS NULL), c.last_change"

/* The extension's schema, where the API functions live. */
static char *ext_schema = NULL;

typedef enum call_kind
{
	CALL_READ,					/* membership errors mean not_member */
	CALL_CHANGE,				/* edit/delete: they mean forbidden */
	CALL_BATCH					/* set-based send: see batch_failure */
} call_kind;

/* --- helpers ---------------------------------------------------------- */

static char *
dup_text(const char *s)
{
	char	   *r = strdup(s ? s : "");

	if (r == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("out of memory")));
	return r;
}

static const char *
col(int row, int c)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, c);
}

static int64
col_int8(int row, int c)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row],
								  SPI_tuptable->tupdesc, c, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

static void
copy_uuid(chat_uuid dst, const char *src)
{
	snprintf(dst, sizeof(chat_uuid), "%s", src ? src : "");
}

static void
copy_ts(char *dst, const char *src)
{
	snprintf(dst, CHAT_TS_LEN, "%s", src ? src : "");
}

/* row_to_message copies row `row` of the last query (MSG_COLS) into m. */
static void
row_to_message(int row, chat_message *m)
{
	const char *att = col(row, 9);
	const char *reactions;

	copy_uuid(m->id, col(row, 1));
	copy_uuid(m->channel_id, col(row, 2));
	copy_uuid(m->client_id, col(row, 3));
	copy_uuid(m->reply_to, col(row, 4));
	m->seq = col_int8(row, 5);
	m->sender_id = dup_text(col(row, 6));
	m->content = dup_text(col(row, 7));
	m->kind = dup_text(col(row, 8));
	m->attachments = att ? dup_text(att) : NULL;
	copy_ts(m->created_at, col(row, 10));
	copy_ts(m->edited_at, col(row, 11));
	copy_ts(m->deleted_at, col(row, 12));
	m->change_seq = col_int8(row, 13);
	reactions = col(row, 14);
	m->reactions = reactions ? dup_text(reactions) : NULL;
}

static chat_message *
rows_to_messages(size_t *n)
{
	chat_message *msgs;

	*n = SPI_processed;
	msgs = calloc(*n ? *n : 1, sizeof(chat_message));
	if (msgs == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("out of memory")));
	for (size_t i = 0; i < *n; i++)
		row_to_message(i, &msgs[i]);
	return msgs;
}

static void
row_to_channel(int row, chat_channel_info *c)
{
	const char *name = col(row, 3);

	copy_uuid(c->id, col(row, 1));
	snprintf(c->type, sizeof(c->type), "%s", col(row, 2));
	c->name = name ? dup_text(name) : NULL;
	snprintf(c->role, sizeof(c->role), "%s", col(row, 4));
	c->last_seq = col_int8(row, 5);
	c->last_read_seq = col_int8(row, 6);
	c->unread = col_int8(row, 7);
	c->last_change = col_int8(row, 8);
}

/*
 * kept_plan returns the saved plan for sql, preparing and keeping it the
 * first time: the worker runs the same few statements all day, and parsing
 * and planning them on every call was a large share of a send's cost.
 * The plan cache revalidates kept plans after DDL (CREATE/DROP EXTENSION).
 */
#define KEPT_PLANS 64

static SPIPlanPtr
kept_plan(const char *sql, int nargs, Oid *types)
{
	static struct
	{
		char	   *sql;
		int			nargs;
		SPIPlanPtr	plan;
	}			kept[KEPT_PLANS];
	static int	n_kept = 0;
	SPIPlanPtr	plan;

	for (int i = 0; i < n_kept; i++)
		if (kept[i].nargs == nargs && strcmp(kept[i].sql, sql) == 0)
			return kept[i].plan;
	if (n_kept == KEPT_PLANS)
		return NULL;
	plan = NULL;
	(void) chat_keep_plan(&plan, sql, nargs, types);
	kept[n_kept].sql = MemoryContextStrdup(TopMemoryContext, sql);
	kept[n_kept].nargs = nargs;
	kept[n_kept].plan = plan;
	n_kept++;
	return plan;
}

/*
 * inline_args returns sql with each parameter $k (k = 1..nargs) replaced by
 * its value as a quoted literal cast to its type, or NULL.  On a Citus
 * cluster (pg/citus.h) the worker sends statements without parameters:
 * Citus cannot distribute some of the statements that PL/pgSQL functions
 * run (chat._send's, called from chat._send_batch) when the calling
 * statement has parameters ("could not create distributed plan ... the use
 * of parameters"), and it routes by the values.  Values come from the
 * core's items, quoted by quote_literal_cstr; the statements are this
 * file's constants and contain no other "$".
 */
static char *
inline_args(const char *sql, int nargs, const Oid *types, const Datum *values,
			const char *nulls)
{
	StringInfoData out;
	const char *p = sql;

	initStringInfo(&out);
	while (*p)
	{
		int			k = 0;

		if (*p != '$' || p[1] < '1' || p[1] > '9')
		{
			appendStringInfoChar(&out, *p++);
			continue;
		}
		p++;
		while (*p >= '0' && *p <= '9')
			k = k * 10 + (*p++ - '0');
		if (k < 1 || k > nargs)
			elog(ERROR, "parameter $%d out of range", k);
		if (nulls && nulls[k - 1] == 'n')
			appendStringInfo(&out, "NULL::%s", format_type_be(types[k - 1]));
		else
		{
			Oid			outfn;
			bool		varlena;

			getTypeOutputInfo(types[k - 1], &outfn, &varlena);
			appendStringInfo(&out, "(%s::%s)",
							 quote_literal_cstr(OidOutputFunctionCall(outfn, values[k - 1])),
							 format_type_be(types[k - 1]));
		}
	}
	return out.data;
}

/*
 * execute runs sql with its parameters: through a kept plan, or on Citus
 * with the values inlined (inline_args).
 */
static int
execute(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls)
{
	SPIPlanPtr	plan;

	if (chat_distributed())
		return SPI_execute(inline_args(sql, nargs, types, values, nulls), false, 0);
	plan = kept_plan(sql, nargs, types);
	return plan ? SPI_execute_plan(plan, values, nulls, false, 0) :
		SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
}

/*
 * run is SPI_execute_with_args with cstring arguments (NULL for SQL NULL),
 * all passed as text and cast in the SQL (see execute).
 */
static void
run(const char *sql, int nargs, const char *const *args)
{
	Oid			types[8];
	Datum		values[8];
	char		nulls[8] = {0};
	int			rc;

	Assert(nargs <= 8);
	for (int i = 0; i < nargs; i++)
	{
		types[i] = TEXTOID;
		values[i] = args[i] ? CStringGetTextDatum(args[i]) : (Datum) 0;
		nulls[i] = args[i] ? ' ' : 'n';
	}
	rc = execute(sql, nargs, types, values, nulls);
	if (rc < 0)
		elog(ERROR, "SPI_execute_with_args failed: %s",
			 SPI_result_code_string(rc));
}

static const char *
fmt_int8(int64 v)
{
	return psprintf(INT64_FORMAT, v);
}

/*
 * online_rows answers, for column c of every row of the last query (user
 * ids), whether that user is online (chat_presence_filter).  palloc'd.
 */
static bool *
online_rows(int c)
{
	const char **users = palloc(sizeof(char *) * (SPI_processed + 1));
	bool	   *online = palloc(sizeof(bool) * (SPI_processed + 1));

	for (uint64 r = 0; r < SPI_processed; r++)
		users[r] = col(r, c);
	chat_presence_filter(users, (int) SPI_processed, online);
	return online;
}

/* --- transactions ----------------------------------------------------- */

static void
xact_begin(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
	enable_timeout_after(STATEMENT_TIMEOUT, chat_statement_timeout_ms);
}

static void
xact_commit(void)
{
	disable_timeout(STATEMENT_TIMEOUT, false);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * batch_failure classifies the failure of a set-based batch.  Almost any
 * error there is some item's doing (a non-member, a bad reply_to, a key
 * another transaction is storing right now), and the per-item path finds
 * out whose: CHAT_E_BAD_REQUEST says "retry item by item".  A timeout, a
 * cancel, a shutdown or a lack of resources would only happen again,
 * slower: CHAT_E_INTERNAL fails the batch.
 */
static chat_err
batch_failure(ErrorData *ed)
{
	switch (ERRCODE_TO_CATEGORY(ed->sqlerrcode))
	{
		case ERRCODE_INSUFFICIENT_RESOURCES:
		case ERRCODE_OPERATOR_INTERVENTION: /* cancel, timeout, shutdown */
		case ERRCODE_SYSTEM_ERROR:
		case ERRCODE_INTERNAL_ERROR:
			return CHAT_E_INTERNAL; /* map_error logs it */
		default:
			ereport(DEBUG1,
					(errmsg("chat: batch retried item by item: %s",
							ed->message)));
			return CHAT_E_BAD_REQUEST;
	}
}

/*
 * classify_error turns a caught ERROR into the protocol's code (and the
 * reason the client may see into msg).
 */
static chat_err
classify_error(ErrorData *ed, call_kind kind, char *msg, size_t msglen)
{
	chat_err	err;

	if (kind == CALL_BATCH)
		return batch_failure(ed);
	switch (ed->sqlerrcode)
	{
		case ERRCODE_NO_DATA_FOUND:
			err = CHAT_E_NOT_FOUND;
			break;
		case ERRCODE_INSUFFICIENT_PRIVILEGE:
			err = kind == CALL_CHANGE ? CHAT_E_FORBIDDEN : CHAT_E_NOT_MEMBER;
			break;
		case ERRCODE_PROGRAM_LIMIT_EXCEEDED:
			err = CHAT_E_TOO_LARGE;
			break;
		case ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE:	/* edit a deleted
														 * message */
		case ERRCODE_INVALID_PARAMETER_VALUE:
		case ERRCODE_NULL_VALUE_NOT_ALLOWED:
		case ERRCODE_INVALID_TEXT_REPRESENTATION:
		case ERRCODE_FOREIGN_KEY_VIOLATION:
		case ERRCODE_CHECK_VIOLATION:
		case ERRCODE_STRING_DATA_RIGHT_TRUNCATION:
		case ERRCODE_CHARACTER_NOT_IN_REPERTOIRE:
		case ERRCODE_UNTRANSLATABLE_CHARACTER:
			err = CHAT_E_BAD_REQUEST;
			break;
		default:
			err = CHAT_E_INTERNAL;
			break;
	}
	if (msg)
		snprintf(msg, msglen, "%s",
				 err == CHAT_E_INTERNAL ? "internal error" : ed->message);
	return err;
}

/*
 * map_error classifies a caught ERROR and logs what the client will not
 * see.  The message is the server's own (never content or a token).  Must
 * be called in PG_CATCH after switching out of ErrorContext.
 */
static chat_err
map_error(ErrorData *ed, call_kind kind, char *msg, size_t msglen)
{
	chat_err	err = classify_error(ed, kind, msg, msglen);

	if (err == CHAT_E_INTERNAL)
		ereport(LOG,
				(errmsg("chat worker query failed: %s", ed->message),
				 ed->detail ? errdetail_internal("%s", ed->detail) : 0,
				 ed->context ? errcontext("%s", ed->context) : 0,
				 ed->internalquery ? errcontext("query: %s", ed->internalquery) : 0));
	return err;
}

/*
 * The work of one store call: arg carries its arguments and outcome.
 * guarded() runs it inside a transaction and catches its ERROR.
 */
typedef void (*store_body) (void *arg);

/*
 * guarded runs body in its own transaction and turns an ERROR into a
 * chat_err (the transaction is then rolled back).
 */
static chat_err
guarded(const char *activity, call_kind kind, store_body body, void *arg,
		char *msg, size_t msglen)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	chat_err	err = CHAT_OK;

	PG_TRY();
	{
		xact_begin(activity);
		body(arg);
		xact_commit();
	}
	PG_CATCH();
	{
		ErrorData  *ed;

		disable_timeout(STATEMENT_TIMEOUT, false);
		MemoryContextSwitchTo(oldcxt);
		ed = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		err = map_error(ed, kind, msg, msglen);
		FreeErrorData(ed);
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	return err;
}

/* --- extension lookup -------------------------------------------------- */

static void
find_schema_body(void *arg)
{
	run("SELECT n.nspname FROM pg_catalog.pg_extension e "
		"JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
		"WHERE e.extname = 'chat'", 0, NULL);
	if (SPI_processed == 1)
	{
		const char *s = col(0, 1);

		ext_schema = MemoryContextStrdup(TopMemoryContext,
										 quote_identifier(s));
	}
}

bool
chat_store_spi_ready(void)
{
	if (ext_schema == NULL)
		guarded("chat: looking for the extension", CALL_READ,
				find_schema_body, NULL, NULL, 0);
	return ext_schema != NULL;
}

/* --- the store functions ---------------------------------------------- */

typedef struct channels_call
{
	const char *user_id;
	const char *channel_id;
	chat_channel_info *out;
	size_t		n;
	bool		found;
} channels_call;

static void
add_online(chat_channel_info *c, const char *user)
{
	char	  **n = realloc(c->online, (c->n_online + 1) * sizeof(char *));

	if (n == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("out of memory")));
	c->online = n;
	c->online[c->n_online++] = dup_text(user);
}

static void
user_channels_body(void *arg)
{
	channels_call *a = arg;
	const char *args[1] = {a->user_id};
	bool	   *online;

	run("SELECT " CH_COLS " FROM chat.channel_members cm "
		"JOIN chat.channels c ON c.id = cm.channel_id "
		"WHERE cm.user_id = $1 ORDER BY c.id", 1, args);
	a->n = SPI_processed;
	a->out = calloc(a->n ? a->n : 1, sizeof(chat_channel_info));
	if (a->out == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("out of memory")));
	for (size_t i = 0; i < a->n; i++)
		row_to_channel(i, &a->out[i]);

	/*
	 * who is online in each of them: members from the table, presence from
	 * shared memory
	 */
	run("SELECT o.channel_id::text, o.user_id FROM chat.channel_members cm "
		"JOIN chat.channel_members o ON o.channel_id = cm.channel_id "
		"WHERE cm.user_id = $1 ORDER BY o.channel_id, o.user_id", 1, args);
	online = online_rows(2);
	for (uint64 r = 0, i = 0; r < SPI_processed && i < a->n; r++)
	{
		const char *ch = col(r, 1);
		const char *user = col(r, 2);

		while (i < a->n && strcmp(a->out[i].id, ch) < 0)
			i++;
		/* the user counts as online: this connection is about to open */
		if (i < a->n && strcmp(a->out[i].id, ch) == 0 &&
			(strcmp(user, a->user_id) == 0 || online[r]))
			add_online(&a->out[i], user);
	}
}

static chat_err
spi_user_channels(void *ctx, const char *user_id, chat_channel_info **out,
				  size_t *n)
{
	channels_call a = {user_id, NULL, NULL, 0, false};
	chat_err	err = guarded("chat: ready", CALL_READ, user_channels_body,
							  &a, NULL, 0);

	if (err != CHAT_OK)
	{
		chat_channels_free(a.out, a.n);
		return err;
	}
	*out = a.out;
	*n = a.n;
	return CHAT_OK;
}

static void
channel_for_user_body(void *arg)
{
	channels_call *a = arg;
	const char *args[2] = {a->user_id, a->channel_id};

	run("SELECT " CH_COLS " FROM chat.channel_members cm "
		"JOIN chat.channels c ON c.id = cm.channel_id "
		"WHERE cm.user_id = $1 AND cm.channel_id = $2::uuid", 2, args);
	if (SPI_processed == 1)
	{
		const char *args2[1] = {a->channel_id};
		bool	   *online;

		row_to_channel(0, a->out);
		a->found = true;
		run("SELECT user_id FROM chat.channel_members "
			"WHERE channel_id = $1::uuid ORDER BY user_id", 1, args2);
		online = online_rows(1);
		for (uint64 r = 0; r < SPI_processed; r++)
			if (online[r])
				add_online(a->out, col(r, 1));
	}
}

static chat_err
spi_channel_for_user(void *ctx, const char *channel_id, const char *user_id,
					 chat_channel_info *out)
{
	channels_call a = {user_id, channel_id, out, 0, false};
	chat_err	err;

	memset(out, 0, sizeof(*out));
	err = guarded("chat: joined", CALL_READ, channel_for_user_body, &a,
				  NULL, 0);
	if (err != CHAT_OK)
	{
		chat_channel_info_clear(out);
		return err;
	}
	return a.found ? CHAT_OK : CHAT_E_NOT_MEMBER;
}

typedef struct messages_call
{
	const char *channel_id;
	const char *user_id;
	int64		seq;
	int			limit;
	bool		newest_first;
	chat_message *out;
	size_t		n;
} messages_call;

static void
require_member(const char *channel_id, const char *user_id)
{
	const char *args[2] = {channel_id, user_id};

	if (user_id == NULL)
		return;
	run("SELECT 1 FROM chat.channel_members "
		"WHERE channel_id = $1::uuid AND user_id = $2", 2, args);
	if (SPI_processed == 0)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("not a member of this channel")));
}

static void
messages_body(void *arg)
{
	messages_call *a = arg;
	const char *args[3];

	require_member(a->channel_id, a->user_id);
	args[0] = a->channel_id;
	args[1] = fmt_int8(a->seq);
	args[2] = fmt_int8(a->limit);
	if (!a->newest_first)
		run("SELECT " MSG_COLS " FROM chat.messages m "
			"WHERE m.channel_id = $1::uuid AND m.seq > $2::bigint "
			"ORDER BY m.seq LIMIT $3::bigint", 3, args);
	else if (a->seq > 0)
		run("SELECT " MSG_COLS " FROM chat.messages m "
			"WHERE m.channel_id = $1::uuid AND m.seq < $2::bigint "
			"ORDER BY m.seq DESC LIMIT $3::bigint", 3, args);
	else
	{
		args[1] = args[2];
		run("SELECT " MSG_COLS " FROM chat.messages m "
			"WHERE m.channel_id = $1::uuid "
			"ORDER BY m.seq DESC LIMIT $2::bigint", 2, args);
	}
	a->out = rows_to_messages(&a->n);
}

static chat_err
spi_messages(messages_call *a, chat_message **out, size_t *n)
{
	chat_err	err = guarded(a->newest_first ? "chat: history" : "chat: since",
							  CALL_READ, messages_body, a, NULL, 0);

	if (err != CHAT_OK)
	{
		chat_messages_free(a->out, a->n);
		*out = NULL;
		*n = 0;
		return err;
	}
	*out = a->out;
	*n = a->n;
	return CHAT_OK;
}

typedef struct changes_call
{
	const char *channel_id;
	const char *user_id;
	int64		after_change;
	int64		upto_seq;
	int			limit;
	chat_message *out;
	size_t		n;
	int64		channel_change;
} changes_call;

static void
changes_body(void *arg)
{
	changes_call *a = arg;
	const char *args[4] = {a->channel_id, fmt_int8(a->after_change),
	fmt_int8(a->upto_seq), fmt_int8(a->limit)};

	require_member(a->channel_id, a->user_id);
	run("SELECT last_change FROM chat.channels WHERE id = $1::uuid", 1, args);
	a->channel_change = SPI_processed == 1 ? col_int8(0, 1) : 0;
	run("SELECT " MSG_COLS " FROM chat.messages m "
		"WHERE m.channel_id = $1::uuid AND m.change_seq > $2::bigint "
		"AND m.seq <= $3::bigint ORDER BY m.change_seq LIMIT $4::bigint",
		4, args);
	a->out = rows_to_messages(&a->n);
}

static chat_err
spi_changes(void *ctx, const char *channel_id, const char *user_id,
			int64_t after_change, int64_t upto_seq, int limit,
			chat_message **out, size_t *n, int64_t *channel_change)
{
	changes_call a = {channel_id, user_id, after_change, upto_seq, limit,
	NULL, 0, 0};
	chat_err	err = guarded("chat: sync changes", CALL_READ, changes_body,
							  &a, NULL, 0);

	if (err != CHAT_OK)
	{
		chat_messages_free(a.out, a.n);
		return err;
	}
	*out = a.out;
	*n = a.n;
	*channel_change = a.channel_change;
	return CHAT_OK;
}

static chat_err
spi_since(void *ctx, const char *channel_id, const char *user_id,
		  int64_t after_seq, int limit, chat_message **out, size_t *n)
{
	messages_call a = {channel_id, user_id, after_seq, limit, false, NULL, 0};

	return spi_messages(&a, out, n);
}

static chat_err
spi_history(void *ctx, const char *channel_id, const char *user_id,
			int64_t before, int limit, chat_message **out, size_t *n)
{
	messages_call a = {channel_id, user_id, before, limit, true, NULL, 0};

	return spi_messages(&a, out, n);
}

typedef struct read_call
{
	const char *channel_id;
	const char *user_id;
	int64		seq;
	int64		stored;
} read_call;

static void
mark_read_body(void *arg)
{
	read_call  *a = arg;
	const char *args[3] = {a->channel_id, a->user_id, fmt_int8(a->seq)};

	run(psprintf("SELECT %s.chat_mark_read($1::uuid, $2, $3::bigint)",
				 ext_schema), 3, args);
	a->stored = col_int8(0, 1);
}

static chat_err
spi_mark_read(void *ctx, const char *channel_id, const char *user_id,
			  int64_t seq, int64_t *stored)
{
	read_call	a = {channel_id, user_id, seq, 0};
	chat_err	err = guarded("chat: read", CALL_READ, mark_read_body, &a,
							  NULL, 0);

	*stored = a.stored;
	return err;
}

typedef struct change_call
{
	const char *message_id;
	const char *user_id;
	const char *content;		/* NULL: delete */
	chat_message *out;
} change_call;

static void
change_body(void *arg)
{
	change_call *a = arg;
	const char *args[3] = {a->message_id, a->user_id, a->content};

	if (a->content)
	{
		run(psprintf("SELECT " MSG_COLS " FROM %s.chat_edit($1::uuid, $2, $3) m",
					 ext_schema), 3, args);
		if (SPI_processed == 1)
			row_to_message(0, a->out);
	}
	else
	{
		run(psprintf("SELECT %s.chat_delete($1::uuid, $2)", ext_schema), 2,
			args);
		/* chat_delete returns nothing: the deleted row is the result */
		run("SELECT " MSG_COLS " FROM chat.messages m WHERE m.id = $1::uuid",
			1, args);
		if (SPI_processed == 1)
			row_to_message(0, a->out);
	}
}

static chat_err
spi_edit(void *ctx, const char *message_id, const char *user_id,
		 const char *content, chat_message *out, char *errmsg, size_t errlen)
{
	change_call a = {message_id, user_id, content, out};

	return guarded("chat: edit", CALL_CHANGE, change_body, &a, errmsg,
				   errlen);
}

static chat_err
spi_remove(void *ctx, const char *message_id, const char *user_id,
		   chat_message *out, char *errmsg, size_t errlen)
{
	change_call a = {message_id, user_id, NULL, out};

	return guarded("chat: delete", CALL_CHANGE, change_body, &a, errmsg,
				   errlen);
}

typedef struct react_call
{
	const char *message_id;
	const char *user_id;
	const char *emoji;
	bool		add;
	chat_message *out;
} react_call;

static void
react_body(void *arg)
{
	react_call *a = arg;
	const char *args[3] = {a->message_id, a->user_id, a->emoji};

	run(psprintf("SELECT " MSG_COLS " FROM %s.%s($1::uuid, $2, $3) m",
				 ext_schema, a->add ? "chat_react" : "chat_unreact"), 3, args);
	if (SPI_processed == 1)
		row_to_message(0, a->out);
}

static chat_err
spi_react(void *ctx, const char *message_id, const char *user_id,
		  const char *emoji, bool add, chat_message *out, char *errmsg,
		  size_t errlen)
{
	react_call	a = {message_id, user_id, emoji, add, out};

	return guarded("chat: react", CALL_CHANGE, react_body, &a, errmsg,
				   errlen);
}

typedef struct search_call
{
	const char *user_id;
	const char *query;
	const char *channel_id;		/* "" for all */
	const char *before_id;		/* "" from the newest */
	int			limit;
	chat_search_hit *out;
	size_t		n;
} search_call;

static void
search_body(void *arg)
{
	search_call *a = arg;
	const char *args[5] = {a->user_id, a->query,
		a->channel_id[0] ? a->channel_id : NULL,
		a->before_id[0] ? a->before_id : NULL,
	fmt_int8(a->limit)};

	run(psprintf("SELECT s.message_id::text, s.channel_id::text, s.seq, "
				 "s.sender_id, s.content, s.headline, " TS("s.created_at") ", "
				 TS("s.edited_at") " FROM %s.chat_search($1, $2, $3::uuid, "
				 "$4::uuid, $5::integer) s", ext_schema), 5, args);
	a->n = SPI_processed;
	a->out = calloc(a->n ? a->n : 1, sizeof(chat_search_hit));
	if (a->out == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("out of memory")));
	for (size_t i = 0; i < a->n; i++)
	{
		chat_search_hit *h = &a->out[i];

		copy_uuid(h->id, col(i, 1));
		copy_uuid(h->channel_id, col(i, 2));
		h->seq = col_int8(i, 3);
		h->sender_id = dup_text(col(i, 4));
		h->content = dup_text(col(i, 5));
		h->headline = dup_text(col(i, 6));
		copy_ts(h->created_at, col(i, 7));
		copy_ts(h->edited_at, col(i, 8));
	}
}

static chat_err
spi_search(void *ctx, const char *user_id, const char *query,
		   const char *channel_id, const char *before_id, int limit,
		   chat_search_hit **out, size_t *n, char *errmsg, size_t errlen)
{
	search_call a = {user_id, query, channel_id, before_id, limit, NULL, 0};
	chat_err	err = guarded("chat: search", CALL_READ, search_body, &a,
							  errmsg, errlen);

	if (err != CHAT_OK)
	{
		chat_search_hits_free(a.out, a.n);
		*out = NULL;
		*n = 0;
		return err;
	}
	*out = a.out;
	*n = a.n;
	return CHAT_OK;
}

/* --- group commit ------------------------------------------------------ */

/*
 * item_args: an item's arguments in the order of chat._send and
 * chat._send_batch (channel, sender, content, key, kind, reply_to,
 * attachments); NULL for SQL NULL.
 */
static void
item_args(const chat_send_item *it, const char *out[7])
{
	out[0] = it->channel_id;
	out[1] = it->sender_id;
	out[2] = it->content;
	out[3] = it->client_id;
	out[4] = it->kind;
	out[5] = it->reply_to[0] ? it->reply_to : NULL;
	out[6] = it->attachments;
}

/*
 * send_one stores one item through chat._send, which checks the
 * idempotency key and stores in one step under the channel lock, so a
 * concurrent duplicate is reported as a duplicate.  An ERROR propagates to
 * the caller.
 */
static void
send_one(chat_send_item *it)
{
	const char *args[7];

	item_args(it, args);

	run("SELECT " MSG_COLS ", m.dup FROM (SELECT (s.message).*, "
		"s.duplicate AS dup FROM chat._send($1::uuid, $2, $3, $4::uuid, $5, "
		"$6::uuid, $7::jsonb) s) m", 7, args);
	if (SPI_processed != 1)
		elog(ERROR, "chat._send returned %d rows", (int) SPI_processed);
	row_to_message(0, &it->msg);
	it->duplicate = strcmp(col(0, MSG_NCOLS + 1), "t") == 0;
	it->status = CHAT_OK;
}

static int
item_cmp(const void *a, const void *b)
{
	const chat_send_item *const *x = a;
	const chat_send_item *const *y = b;
	int			c = strcmp((*x)->channel_id, (*y)->channel_id);

	/* stable within a channel: earlier sends get lower seqs */
	if (c != 0)
		return c;
	return (*x < *y) ? -1 : (*x > *y);
}

typedef struct batch_call
{
	chat_send_item *items;		/* as the core gave them */
	chat_send_item **order;		/* items sorted by channel: lock order */
	size_t		n;
} batch_call;

/* text_array makes a one-dimensional text[] of n values (NULL kept) */
static Datum
text_array(const char **values, size_t n)
{
	Datum	   *elems = palloc(n * sizeof(Datum));
	bool	   *nulls = palloc(n * sizeof(bool));
	int			dims[1] = {(int) n};
	int			lbs[1] = {1};

	for (size_t i = 0; i < n; i++)
	{
		nulls[i] = values[i] == NULL;
		elems[i] = values[i] ? CStringGetTextDatum(values[i]) : (Datum) 0;
	}
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
											  TEXTOID, -1, false,
											  TYPALIGN_INT));
}

/*
 * set_body stores the whole batch with one statement, chat._send_batch,
 * which stores every item or raises (then the caller goes item by item).
 * On a Citus cluster chat._send_batch stores item by item itself, without
 * a subtransaction per item (each would cost a SAVEPOINT on every node the
 * transaction has touched).
 */
static void
set_body(void *arg)
{
	static const char *sql =
	"SELECT " MSG_COLS ", m.dup, m.ord FROM (SELECT (b.message).*, "
	"b.duplicate AS dup, b.ord FROM chat._send_batch($1::uuid[], $2, $3, "
	"$4::uuid[], $5, $6::uuid[], $7::jsonb[]) b) m";
	batch_call *b = arg;
	Oid			types[7];
	Datum		values[7];
	int			rc;
	const char **cols[7];

	/* one array per argument of chat._send_batch */
	for (int k = 0; k < 7; k++)
		cols[k] = palloc(b->n * sizeof(char *));
	for (size_t i = 0; i < b->n; i++)
	{
		const char *args[7];

		item_args(&b->items[i], args);
		for (int k = 0; k < 7; k++)
			cols[k][i] = args[k];
	}
	for (int k = 0; k < 7; k++)
	{
		types[k] = TEXTARRAYOID;
		values[k] = text_array(cols[k], b->n);
	}
	rc = execute(sql, 7, types, values, NULL);
	if (rc < 0)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	if (SPI_processed != b->n)
		elog(ERROR, "chat._send_batch returned %d rows for %d items",
			 (int) SPI_processed, (int) b->n);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		int64		ord = col_int8(r, MSG_NCOLS + 2);
		chat_send_item *it;

		if (ord < 1 || ord > (int64) b->n || b->items[ord - 1].status == CHAT_OK)
			elog(ERROR, "chat._send_batch returned item %d twice or out of range",
				 (int) ord);
		it = &b->items[ord - 1];
		row_to_message(r, &it->msg);
		it->duplicate = strcmp(col(r, MSG_NCOLS + 1), "t") == 0;
		it->status = CHAT_OK;
	}
}

static void
batch_body(void *arg)
{
	batch_call *b = arg;

	for (size_t i = 0; i < b->n; i++)
	{
		chat_send_item *it = b->order[i];
		MemoryContext oldcxt = CurrentMemoryContext;
		ResourceOwner oldowner = CurrentResourceOwner;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(oldcxt);
		PG_TRY();
		{
			send_one(it);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
		}
		PG_CATCH();
		{
			ErrorData  *ed;

			MemoryContextSwitchTo(oldcxt);
			ed = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
			chat_message_clear(&it->msg);
			it->duplicate = false;
			it->status = classify_error(ed, CALL_READ, it->errmsg,
										sizeof(it->errmsg));

			/*
			 * A timeout or a lost connection is not this item's fault: fail
			 * the whole batch with the original error (FlushErrorState
			 * emptied the stack, so re-raise the copy).
			 */
			if (it->status == CHAT_E_INTERNAL)
				ReThrowError(ed);
			FreeErrorData(ed);
		}
		PG_END_TRY();
	}
}

static void
reset_items(chat_send_item *items, size_t n, chat_err status)
{
	for (size_t i = 0; i < n; i++)
	{
		chat_message_clear(&items[i].msg);
		items[i].duplicate = false;
		items[i].status = status;
		if (status != CHAT_OK)
			snprintf(items[i].errmsg, sizeof(items[i].errmsg),
					 "internal error");
	}
}

static chat_err
spi_send_batch(void *ctx, chat_send_item *items, size_t n)
{
	batch_call	b;
	chat_err	err;

	b.order = malloc(n * sizeof(chat_send_item *));
	if (b.order == NULL)
	{
		reset_items(items, n, CHAT_E_INTERNAL);
		return CHAT_E_INTERNAL;
	}
	for (size_t i = 0; i < n; i++)
		b.order[i] = &items[i];
	qsort(b.order, n, sizeof(chat_send_item *), item_cmp);
	b.items = items;
	b.n = n;

	/* optimistic: the whole batch in one statement (the common case) */
	reset_items(items, n, CHAT_E_INTERNAL);
	err = guarded("chat: send batch", CALL_BATCH, set_body, &b, NULL, 0);

	/*
	 * A bad item (not a member, a bad reply_to, ...) fails the set-based
	 * pass: retry with each item isolated, so that each gets its own answer.
	 * A timeout or a lost connection would only fail again, slower: then the
	 * whole batch is internal.
	 */
	if (err != CHAT_OK && err != CHAT_E_INTERNAL)
	{
		reset_items(items, n, CHAT_OK);
		err = guarded("chat: send batch (isolated)", CALL_READ, batch_body,
					  &b, NULL, 0);
	}
	/* nothing was stored: items that looked done must not be acked */
	if (err != CHAT_OK)
		reset_items(items, n, CHAT_E_INTERNAL);
	free(b.order);
	return err;
}

/* --- presence ---------------------------------------------------------- */

typedef struct ids_call
{
	const char *key;
	char	  **users;
	chat_uuid  *ids;
	size_t		n;
	bool		online_only;	/* channel_members_body: only those online */
} ids_call;

static void
channel_members_body(void *arg)
{
	ids_call   *a = arg;
	const char *args[1] = {a->key};
	bool	   *online = NULL;

	run("SELECT user_id FROM chat.channel_members "
		"WHERE channel_id = $1::uuid ORDER BY user_id", 1, args);
	a->users = calloc(SPI_processed + 1, sizeof(char *));
	if (a->users == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("out of memory")));
	if (a->online_only)
		online = online_rows(1);
	for (uint64 r = 0; r < SPI_processed; r++)
		if (online == NULL || online[r])
			a->users[a->n++] = dup_text(col(r, 1));
}

/* members_of: channel_id's members (only those online when online_only) */
static chat_err
members_of(const char *channel_id, bool online_only, char ***users, size_t *n)
{
	ids_call	a = {channel_id, NULL, NULL, 0, online_only};
	chat_err	err = guarded(online_only ? "chat: presence" : "chat: membership",
							  CALL_READ, channel_members_body, &a, NULL, 0);

	if (err != CHAT_OK)
	{
		chat_strings_free(a.users, a.n);
		return err;
	}
	*users = a.users;
	*n = a.n;
	return CHAT_OK;
}

static chat_err
spi_channel_members(void *ctx, const char *channel_id, char ***users,
					size_t *n)
{
	return members_of(channel_id, false, users, n);
}

static chat_err
spi_channel_online(void *ctx, const char *channel_id, char ***users,
				   size_t *n)
{
	return members_of(channel_id, true, users, n);
}

static void
user_channel_ids_body(void *arg)
{
	ids_call   *a = arg;
	const char *args[1] = {a->key};

	run("SELECT channel_id::text FROM chat.channel_members "
		"WHERE user_id = $1", 1, args);
	a->ids = calloc(SPI_processed + 1, sizeof(chat_uuid));
	if (a->ids == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("out of memory")));
	for (uint64 r = 0; r < SPI_processed; r++)
		copy_uuid(a->ids[a->n++], col(r, 1));
}

static chat_err
spi_user_channel_ids(void *ctx, const char *user_id, chat_uuid * *ids,
					 size_t *n)
{
	ids_call	a = {user_id, NULL, NULL, 0, false};
	chat_err	err = guarded("chat: presence", CALL_READ,
							  user_channel_ids_body, &a, NULL, 0);

	if (err != CHAT_OK)
	{
		free(a.ids);
		return err;
	}
	*ids = a.ids;
	*n = a.n;
	return CHAT_OK;
}

void
chat_store_spi_init(chat_store *store)
{
	memset(store, 0, sizeof(*store));
	store->user_channels = spi_user_channels;
	store->channel_for_user = spi_channel_for_user;
	store->send_batch = spi_send_batch;
	store->since = spi_since;
	store->changes = spi_changes;
	store->history = spi_history;
	store->mark_read = spi_mark_read;
	store->edit = spi_edit;
	store->remove = spi_remove;
	store->react = spi_react;
	store->search = spi_search;
	store->channel_online = spi_channel_online;
	store->channel_members = spi_channel_members;
	store->user_channel_ids = spi_user_channel_ids;
}
