/*
 * sql_checks.c
 *	  Argument rules that several SQL functions share, each written once:
 *	  chat._kind_ok (the message-kind rule, which is core/message.c's
 *	  chat_kind_ok, the one the protocol's decoder and chat_send use) and
 *	  chat._check_page (the paging arguments of chat_history and
 *	  chat_since).
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "core/message.h"

PG_FUNCTION_INFO_V1(chat_kind_ok_sql);
PG_FUNCTION_INFO_V1(chat_check_page);

/*
 * chat_kind_ok_sql (chat._kind_ok(kind text) RETURNS boolean, STRICT):
 * whether kind is a message kind.
 */
Datum
chat_kind_ok_sql(PG_FUNCTION_ARGS)
{
	text	   *kind = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(chat_kind_ok(VARDATA_ANY(kind), VARSIZE_ANY_EXHDR(kind)));
}

/*
 * chat_check_page (chat._check_page(channel uuid, seq_name text, seq
 * bigint, seq_required boolean, max integer, max_limit integer)) raises
 * what a paging function raises for bad arguments, in this order: a NULL
 * channel, a NULL seq when it is required, a NULL max, a max outside
 * 1..max_limit, a negative seq.  seq_name names the seq argument in the
 * messages ("before_seq", "after_seq").  Not STRICT: NULLs are what it
 * checks.
 */
Datum
chat_check_page(PG_FUNCTION_ARGS)
{
	const char *seq_name = PG_ARGISNULL(1) ? "seq" :
	text_to_cstring(PG_GETARG_TEXT_PP(1));
	bool		seq_required = !PG_ARGISNULL(3) && PG_GETARG_BOOL(3);
	int32		max_limit = PG_ARGISNULL(5) ? 1000 : PG_GETARG_INT32(5);

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("channel must not be null")));
	if (seq_required && PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", seq_name)));
	if (PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("max must not be null")));
	if (PG_GETARG_INT32(4) < 1 || PG_GETARG_INT32(4) > max_limit)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max must be between 1 and %d", max_limit)));
	if (!PG_ARGISNULL(2) && PG_GETARG_INT64(2) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", seq_name)));
	PG_RETURN_VOID();
}
