/*
 * row_update.c
 *	  chat_send's two small updates, the channel's seq and the sender's read
 *	  marker, without the executor: the row is found through the table's
 *	  primary key and heap_update writes the new version, in place of an
 *	  UPDATE statement.
 *
 *	  A statement costs chat_send more than the row it writes: the
 *	  executor's start-up, the table's CHECK constraints parsed again from
 *	  their stored text, the trigger machinery.  Two of chat_send's four
 *	  statements change one bigint column of one row found by its key, so
 *	  they are done here when doing so is exactly what the statement would
 *	  do (updatable below):
 *
 *	  - the table is a plain heap table without rules, row security,
 *		inheritance children or stored generated columns, and the role may
 *		read and update it;
 *	  - the only triggers that fire on UPDATE are foreign-key triggers, for
 *		which the update changes no key (the column is in no unique index
 *		and no foreign key), and the extension's own, which are run here;
 *	  - every CHECK constraint is validated and holds for the new row: one
 *		that does not read the column held for the old row, whose other
 *		columns stay; one that does must be a lower bound of the column
 *		(column >= constant, or >), which a value that grows keeps
 *		(PostgreSQL, too, takes a CHECK condition to be immutable);
 *	  - the row is plainly there to update: heap_update does not wait, and
 *		a row that is locked, or was updated or deleted since the snapshot,
 *		or was changed earlier in this command, is left alone.
 *
 *	  In every other case the caller runs the SQL statement, which knows
 *	  them all: ROW_FALLBACK is returned before anything is written.  So the
 *	  rows, the errors, the locks and the triggers' effects are those of the
 *	  statement; sql/15_send_c.sql checks the fallbacks.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/int.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "nodes/primnodes.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"

#include "pg/notify_queue.h"
#include "pg/row_update.h"
#include "pg/tables.h"

/* a trigger of the extension that this file runs itself, or knows idle */
typedef struct known_trigger
{
	const char *name;
	const char *function;		/* in schema chat */
	bool		run_here;		/* false: its WHEN clause leaves it idle */
} known_trigger;

/* what one of the two updates may meet on its table */
typedef struct row_table
{
	const char *relname;
	const char *column;			/* the bigint column updated: it only grows */
	const known_trigger *triggers;
} row_table;

static const known_trigger channels_triggers[] = {{NULL, NULL, false}};

/*
 * channel_members_hint_update fires only when the key or the role changes
 * (its WHEN clause); the cancel runs after every marker that moves.
 */
static const known_trigger members_triggers[] = {
	{"channel_members_hint_update", "_hint", false},
	{"channel_members_cancel_notifications", "_cancel_notifications", true},
	{NULL, NULL, false}
};

static const row_table channels_table = {
	"channels", "last_seq", channels_triggers
};
static const row_table members_table = {
	"channel_members", "last_read_seq", members_triggers
};

/* fires tells whether trigger t fires under session_replication_role */
static bool
fires(const Trigger *t)
{
	if (t->tgenabled == TRIGGER_DISABLED)
		return false;
	if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
		return t->tgenabled != TRIGGER_FIRES_ON_ORIGIN;
	return t->tgenabled != TRIGGER_FIRES_ON_REPLICA;
}

/*
 * reads_column tells whether a CHECK constraint's stored expression reads
 * column att (or the whole row), from its text: no parse on every send.
 */
static bool
reads_column(const char *ccbin, AttrNumber att)
{
	char		var[32];

	snprintf(var, sizeof(var), ":varattno %d ", att);
	return strstr(ccbin, var) != NULL || strstr(ccbin, ":varattno 0 ") != NULL;
}

/*
 * lower_bound tells whether a CHECK expression is "column att >= constant"
 * or "column att > constant" for a bigint column: true of a value that
 * grows from one for which it was true.  The verdicts are kept per
 * expression text, so each is parsed once per backend.
 */
#define VERDICTS 16
static struct
{
	char	   *ccbin;
	AttrNumber	att;
	bool		bound;
}			verdicts[VERDICTS];

static bool
lower_bound(const char *ccbin, AttrNumber att)
{
	Node	   *expr;
	OpExpr	   *op;
	bool		bound = false;
	int			i;

	for (i = 0; i < VERDICTS && verdicts[i].ccbin; i++)
		if (verdicts[i].att == att && strcmp(verdicts[i].ccbin, ccbin) == 0)
			return verdicts[i].bound;
	expr = stringToNode(ccbin);
	op = IsA(expr, OpExpr) ? (OpExpr *) expr : NULL;
	if (op && list_length(op->args) == 2 &&
		IsA(linitial(op->args), Var) && IsA(lsecond(op->args), Const) &&
		((Var *) linitial(op->args))->varattno == att &&
		((Var *) linitial(op->args))->varlevelsup == 0 &&
		!((Const *) lsecond(op->args))->constisnull)
	{
		switch (op->opfuncid)
		{
			case F_INT8GE:
			case F_INT8GT:
			case F_INT84GE:
			case F_INT84GT:
			case F_INT82GE:
			case F_INT82GT:
				bound = true;
				break;
			default:
				break;
		}
	}
	if (i < VERDICTS)
	{
		verdicts[i].ccbin = MemoryContextStrdup(TopMemoryContext, ccbin);
		verdicts[i].att = att;
		verdicts[i].bound = bound;
	}
	return bound;
}

static bool
is_chat_function(Oid fn, const char *name)
{
	char	   *fname = get_func_name(fn);
	Oid			ns = get_func_namespace(fn);
	char	   *nsname = OidIsValid(ns) ? get_namespace_name(ns) : NULL;

	return fname && nsname && strcmp(fname, name) == 0 && strcmp(nsname, "chat") == 0;
}

/*
 * updatable tells whether the UPDATE of column att of rel, for a row that
 * keeps its other columns, may be done here (the file comment's list).  It
 * sets *fk_side when a foreign-key trigger of rel's own keys fires: that
 * one checks again a row that this transaction inserted, so such a row
 * is left to the statement.  *cancel is set when the cancel trigger fires.
 */
static bool
updatable(Relation rel, const row_table *t, AttrNumber att, bool *fk_side, bool *cancel)
{
	Form_pg_attribute a = TupleDescAttr(RelationGetDescr(rel), att - 1);
	TupleConstr *constr = RelationGetDescr(rel)->constr;
	Bitmapset  *keys;
	List	   *fkeys;
	ListCell   *lc;

	*fk_side = false;
	*cancel = false;
	if (rel->rd_rel->relkind != RELKIND_RELATION ||
		rel->rd_rel->relam != HEAP_TABLE_AM_OID ||
		rel->rd_rel->relrowsecurity || rel->rd_rel->relhassubclass ||
		rel->rd_rel->relispartition ||
		rel->rd_rules != NULL ||
		a->atttypid != INT8OID || a->attgenerated || a->attisdropped)
		return false;
	if (constr && constr->has_generated_stored)
		return false;
	for (int i = 0; constr && i < constr->num_check; i++)
	{
		const ConstrCheck *c = &constr->check[i];

		if (!c->ccvalid ||
			(reads_column(c->ccbin, att) && !lower_bound(c->ccbin, att)))
			return false;
	}

	/* no key changes: the column is in no unique index, no foreign key */
	keys = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_KEY);
	if (bms_is_member(att - FirstLowInvalidHeapAttributeNumber, keys))
		return false;
	fkeys = RelationGetFKeyList(rel);
	foreach(lc, fkeys)
	{
		ForeignKeyCacheInfo *fk = lfirst_node(ForeignKeyCacheInfo, lc);

		for (int k = 0; k < fk->nkeys; k++)
			if (fk->conkey[k] == att)
				return false;
	}

	for (int i = 0; rel->trigdesc && i < rel->trigdesc->numtriggers; i++)
	{
		const Trigger *tg = &rel->trigdesc->triggers[i];
		int			ri;
		const known_trigger *k;

		if (!TRIGGER_FOR_UPDATE(tg->tgtype) || !fires(tg))
			continue;
		ri = RI_FKey_trigger_type(tg->tgfoid);
		if (ri == RI_TRIGGER_PK)
			continue;			/* no referenced key changes */
		if (ri == RI_TRIGGER_FK)
		{
			*fk_side = true;
			continue;
		}
		for (k = t->triggers; k->name; k++)
			if (strcmp(k->name, tg->tgname) == 0)
				break;
		if (!k->name || !TRIGGER_FOR_ROW(tg->tgtype) || !TRIGGER_FOR_AFTER(tg->tgtype) ||
			!is_chat_function(tg->tgfoid, k->function))
			return false;
		if (k->run_here)
		{
			if (tg->tgqual != NULL)
				return false;
			*cancel = true;
		}
		else if (tg->tgqual == NULL)
			return false;		/* its WHEN clause is what keeps it idle */
	}

	if (pg_class_aclmask(RelationGetRelid(rel), GetUserId(), ACL_SELECT | ACL_UPDATE,
						 ACLMASK_ALL) != (ACL_SELECT | ACL_UPDATE))
		return false;
	CheckCmdReplicaIdentity(rel, CMD_UPDATE);
	return true;
}

/*
 * insert_index_entries adds the new version's entries to rel's indexes,
 * as the executor does after an update that could not be HOT (the page
 * was full).
 */
static void
insert_index_entries(Relation rel, HeapTuple tup)
{
	EState	   *estate = CreateExecutorState();
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
	List	   *recheck;

	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	ExecStoreHeapTuple(tup, slot, false);

	/*
	 * update = false: with true, the index AM is told which indexes the
	 * update left unchanged, which needs the statement's range table; it is
	 * only a hint (bottom-up deletion).
	 */
	recheck = ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
	/* a deferred uniqueness check has its trigger: updatable refused it */
	if (recheck != NIL)
		elog(ERROR, "chat: a deferred unique index on chat.%s", RelationGetRelationName(rel));
	ExecDropSingleTupleTableSlot(slot);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
}

/*
 * update_row finds the row of t's table whose primary key is keys[0..nkeys)
 * and, if it is there and accept(old value, arg) says so, sets t's column
 * to the value that accept returns in *value.
 */
static row_outcome
update_row(const row_table *t, Datum *keys, int nkeys,
		   bool (*accept) (int64 old, int64 arg, int64 *value), int64 arg,
		   int64 *value, bool *cancel)
{
	Relation	rel = table_open(chat_table(t->relname), RowExclusiveLock);
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	att = chat_column(rel, t->column);
	Oid			pkey = RelationGetPrimaryKeyIndex(rel);
	ScanKeyData key[2];
	Snapshot	snap;
	SysScanDesc scan;
	HeapTuple	tup;
	HeapTuple	newtup = NULL;
	ItemPointerData tid;
	row_outcome outcome = ROW_ABSENT;
	bool		fk_side;
	bool		isnull;
	Relation	idx;

	if (!OidIsValid(pkey) || !updatable(rel, t, att, &fk_side, cancel))
	{
		table_close(rel, NoLock);
		return ROW_FALLBACK;
	}
	idx = index_open(pkey, RowExclusiveLock);
	if (idx->rd_index->indnkeyatts != nkeys)
	{
		index_close(idx, NoLock);
		table_close(rel, NoLock);
		return ROW_FALLBACK;
	}
	for (int i = 0; i < nkeys; i++)
	{
		AttrNumber	heap_att = idx->rd_index->indkey.values[i];
		Oid			type = TupleDescAttr(desc, heap_att - 1)->atttypid;

		if (type != UUIDOID && type != TEXTOID)
		{
			index_close(idx, NoLock);
			table_close(rel, NoLock);
			return ROW_FALLBACK;
		}
		ScanKeyInit(&key[i], heap_att, BTEqualStrategyNumber,
					type == UUIDOID ? F_UUID_EQ : F_TEXTEQ, keys[i]);
		key[i].sk_collation = idx->rd_indcollation[i];
	}

	snap = chat_statement_snapshot();
	scan = systable_beginscan(rel, pkey, true, snap, nkeys, key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		Datum		v = heap_getattr(tup, att, desc, &isnull);

		if (isnull)
			outcome = ROW_FALLBACK;
		else if (fk_side && TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tup->t_data)))
			outcome = ROW_FALLBACK;
		else if (accept(DatumGetInt64(v), arg, value))
		{
			Datum		nv = Int64GetDatum(*value);
			bool		nn = false;
			int			col = att;

			newtup = heap_modify_tuple_by_cols(tup, desc, 1, &col, &nv, &nn);
			tid = tup->t_self;
		}
	}
	systable_endscan(scan);

	if (newtup != NULL)
	{
		TM_FailureData tmfd;
		LockTupleMode lockmode;
		TM_Result	r = heap_update(rel, &tid, newtup, GetCurrentCommandId(true),
									InvalidSnapshot, false, &tmfd, &lockmode);

		if (r == TM_Ok)
		{
			if (!HeapTupleIsHeapOnly(newtup))
				insert_index_entries(rel, newtup);
			outcome = ROW_UPDATED;
		}
		else
			outcome = ROW_FALLBACK; /* nothing written: the statement decides */
		heap_freetuple(newtup);
	}
	UnregisterSnapshot(snap);
	index_close(idx, NoLock);
	table_close(rel, NoLock);
	return outcome;
}

static bool
next_seq(int64 old, int64 arg, int64 *value)
{
	(void) arg;
	if (pg_add_s64_overflow(old, 1, value))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("bigint out of range")));
	return true;
}

row_outcome
chat_bump_seq(Datum channel, int64 *seq)
{
	bool		cancel;

	return update_row(&channels_table, &channel, 1, next_seq, 0, seq, &cancel);
}

static bool
marker_behind(int64 old, int64 seq, int64 *value)
{
	*value = seq;
	return old < seq;
}

row_outcome
chat_mark_sent(Datum channel, Datum user, int64 seq)
{
	Datum		keys[2] = {channel, user};
	int64		value;
	bool		cancel;
	row_outcome outcome;

	/* the marker only moves forward, and seq is a message's: positive */
	if (seq < 1)
		return ROW_FALLBACK;
	outcome = update_row(&members_table, keys, 2, marker_behind, seq, &value, &cancel);
	if (outcome == ROW_UPDATED)
	{
		/* the AFTER ROW trigger, which the statement would fire now */
		CommandCounterIncrement();
		if (cancel)
			chat_cancel_covered(channel, user, value);
	}
	return outcome;
}
