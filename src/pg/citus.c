/*
 * citus.c
 *	  Whether chat_distribute() has run in this database, for the code that
 *	  must act differently on a Citus cluster (docs/scaling.md, "Citus
 *	  tier"): chat_send and chat._send probe the idempotency key within the
 *	  channel and record their hints on the coordinator, and the worker's
 *	  group commit stores item by item instead of through chat._send_batch.
 *
 *	  The mark is the idempotency key itself: chat_distribute() makes
 *	  messages_sender_client_key (sender_id, client_id) into (channel_id,
 *	  sender_id, client_id), because Citus needs the distribution column in
 *	  every unique key, and only chat_distribute() does.  Reading it costs
 *	  two system cache lookups, no query, and it cannot disagree with the
 *	  key that the statements meet.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_index.h"
#include "fmgr.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "pg/citus.h"

bool
chat_distributed(void)
{
	Oid			nsp = get_namespace_oid("chat", true);
	Oid			idx;
	HeapTuple	tup;
	bool		per_channel;

	if (!OidIsValid(nsp))
		return false;
	idx = get_relname_relid("messages_sender_client_key", nsp);
	if (!OidIsValid(idx))
		return false;
	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(idx));
	if (!HeapTupleIsValid(tup))
		return false;
	per_channel = ((Form_pg_index) GETSTRUCT(tup))->indnkeyatts == 3;
	ReleaseSysCache(tup);
	return per_channel;
}

PG_FUNCTION_INFO_V1(chat_distributed_sql);

/*
 * chat_distributed_sql (chat._distributed()) is chat_distributed for the
 * PL/pgSQL functions.
 */
Datum
chat_distributed_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(chat_distributed());
}
