/*
 * tables.c
 *	  The extension's tables by name, their columns and keys; see tables.h.
 *
 *	  The relations and indexes are looked up on every call (syscache and
 *	  relcache hits): a kept OID would go stale after REINDEX CONCURRENTLY
 *	  or DROP and CREATE EXTENSION, and every send of the backend would
 *	  fail.
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "pg/tables.h"

Oid
chat_table(const char *name)
{
	Oid			relid = get_relname_relid(name, get_namespace_oid("chat", false));

	if (!OidIsValid(relid))
		elog(ERROR, "relation chat.%s does not exist", name);
	return relid;
}

AttrNumber
chat_column(Relation rel, const char *name)
{
	int			att = SPI_fnumber(RelationGetDescr(rel), name);

	if (att <= 0)
		elog(ERROR, "chat.%s has no column \"%s\"",
			 RelationGetRelationName(rel), name);
	return (AttrNumber) att;
}

/* key: column name of rel = value, compared as the index compares it */
void
chat_equal_key(ScanKey key, Relation rel, const char *name, RegProcedure eq, Datum value)
{
	AttrNumber	att = chat_column(rel, name);

	ScanKeyInit(key, att, BTEqualStrategyNumber, eq, value);
	key->sk_collation = TupleDescAttr(RelationGetDescr(rel), att - 1)->attcollation;
}

/*
 * chat_statement_snapshot is what a statement through SPI would read with:
 * this transaction's changes so far, and under READ COMMITTED a new
 * snapshot.  Under REPEATABLE READ the transaction's snapshot is reused,
 * and it is a copy of it that sees the changes made since it was taken,
 * as SPI's statements do (UpdateActiveSnapshotCommandId).  The caller
 * unregisters it.
 */
Snapshot
chat_statement_snapshot(void)
{
	Snapshot	snap;

	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	snap = RegisterSnapshot(GetActiveSnapshot());
	PopActiveSnapshot();
	return snap;
}
