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
 *
 *	  On a Citus worker node the mark is not there: the node's own CREATE
 *	  EXTENSION made its chat tables with the single-node key, yet Citus
 *	  (with metadata synced to the nodes, the default since Citus 11)
 *	  treats them as the coordinator's distributed tables and routes their
 *	  statements to the shards.  A call that runs there (a function that
 *	  Citus delegates to the channel's node, or an application connected
 *	  to a node) must take the Citus path too, or Citus refuses its
 *	  statements ("a column definition list is required ...").  There the
 *	  node's copy of Citus's metadata, pg_dist_partition, names
 *	  chat.messages.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_index.h"
#include "catalog/pg_namespace.h"
#include "fmgr.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "pg/citus.h"

/* pg_dist_partition's logicalrelid (Citus's distributed/pg_dist_partition.h) */
#define CITUS_LOGICALRELID 1

/*
 * citus_distributes tells whether Citus's metadata in this database
 * (pg_dist_partition, in pg_catalog) has a row for relid; false where
 * Citus is not installed, at the cost of one system cache miss.
 */
static bool
citus_distributes(Oid relid)
{
	Oid			catalog = get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE);
	Oid			index;
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	bool		found;

	if (!OidIsValid(catalog))
		return false;
	index = get_relname_relid("pg_dist_partition_logical_relid_index",
							  PG_CATALOG_NAMESPACE);
	rel = table_open(catalog, AccessShareLock);
	ScanKeyInit(&key, CITUS_LOGICALRELID, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, index, OidIsValid(index), NULL, 1, &key);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

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
	if (per_channel)
		return true;
	/* a worker node of a Citus cluster whose coordinator distributed chat */
	return citus_distributes(get_relname_relid("messages", nsp));
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
