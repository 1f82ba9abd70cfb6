/*
 * notify_queue.c
 *	  The two triggers that keep the offline notification queue
 *	  (chat.notifications, chat--1.0--1.1.sql) in step with the tables:
 *	  chat._queue_notifications on every INSERT statement into
 *	  chat.messages, and chat._cancel_notifications on every read marker
 *	  that moves forward.  Both run on every chat_send (a send marks its
 *	  sender read), so they are C with plans kept per backend.
 *
 *	  In PL/pgSQL they cost a fifth of chat_send (perf, one client): the
 *	  queue's statement was planned-and-started (an upsert over a four-way
 *	  join) even when no other member had anything to be told.  Here the
 *	  queue trigger first looks, for a statement of a few rows, whether any
 *	  row's channel has another member whose marker is behind it: one index
 *	  probe per row.  Only then does it run the upsert; for a long
 *	  statement, one that meets the members once per channel and sender,
 *	  not once per message (below).  What is queued is checked by
 *	  sql/16_notifications.sql.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "pg/settings.h"
#include "pg/notify_queue.h"
#include "pg/spi_plan.h"
#include "pg/tables.h"

PG_FUNCTION_INFO_V1(chat_queue_notifications);
PG_FUNCTION_INFO_V1(chat_cancel_notifications);

/*
 * Statements of up to this many rows are probed row by row before the
 * upsert, and run queue_sql; a longer one (a worker's batch) goes at once
 * to queue_grouped_sql, which meets the members per channel and sender.
 */
#define PROBE_MAX_ROWS 8

/*
 * The cancel runs under the caller's search_path (no SET clause, which
 * costs a GUC save and restore per call), so every name and operator in it
 * is schema-qualified.
 */
static const char *cancel_sql =
"DELETE FROM chat.notifications AS q "
"WHERE q.channel_id OPERATOR(pg_catalog.=) $1 "
"  AND q.user_id OPERATOR(pg_catalog.=) $2 "
"  AND q.last_seq OPERATOR(pg_catalog.<=) $3";

/*
 * Who wants to hear of a message that does not name them: not muted, and
 * not "direct messages only" in a group.  A mention overrides both.  (cm:
 * the member, c: the channel, s: the member's settings, $1: now.)  On
 * Citus, where these triggers do not run, chat._queue_probe and
 * chat._queue_rows (chat--1.0--1.1.sql) state this rule and UPSERT_FROM_U's
 * merge again, with values inlined: change them together.
 */
#define WANTS_MESSAGES \
	"((cm.muted_until IS NULL OR cm.muted_until <= $1) " \
	" AND (c.type = 'direct' OR NOT coalesce(s.direct_only, false)))"

/*
 * The messages x members rows of the upsert, one message at a time: every
 * member but the sender whose marker is behind the message and who wants
 * it, or whom it names.  filter narrows the messages.
 */
#define ROWS_PER_MESSAGE(filter) \
	"SELECT cm.user_id, n.channel_id, 1 AS n, n.seq AS first_seq, n.seq AS last_seq, " \
	"	   n.id AS message_id, cm.user_id = ANY (x.mentions) AS mention " \
	"FROM new_messages AS n " \
	"CROSS JOIN LATERAL ( " \
	"	SELECT CASE WHEN strpos(n.content, '@') > 0 THEN chat._mentions(n.content) " \
	"				ELSE '{}'::text[] END AS mentions) AS x " \
	"JOIN chat.channels AS c ON c.id = n.channel_id " \
	"JOIN chat.channel_members AS cm " \
	"  ON cm.channel_id = n.channel_id AND cm.user_id <> n.sender_id " \
	"LEFT JOIN chat.notify_settings AS s ON s.user_id = cm.user_id " \
	"WHERE n.deleted_at IS NULL " filter \
	"  AND cm.last_read_seq < n.seq " \
	"  AND (cm.user_id = ANY (x.mentions) OR " WANTS_MESSAGES ") "

/*
 * The upsert of the rows u (a CTE before it): one entry per (member,
 * channel) collects the statement's messages, or is added to.  $1 is the
 * time of the statement, $2 the due time of a member who is online.
 */
#define UPSERT_FROM_U \
	"INSERT INTO chat.notifications AS q " \
	"	(user_id, channel_id, count, first_seq, last_seq, message_id, mention, due_at, visible_at) " \
	"SELECT r.user_id, r.channel_id, r.n, r.first_seq, r.last_seq, r.message_id, r.mention, " \
	"	   r.due, r.due " \
	"FROM ( " \
	"	SELECT u.user_id, u.channel_id, sum(u.n)::integer AS n, " \
	"		   min(u.first_seq) AS first_seq, max(u.last_seq) AS last_seq, " \
	"		   (array_agg(u.message_id ORDER BY u.last_seq DESC))[1] AS message_id, " \
	"		   bool_or(u.mention) AS mention, " \
	"		   CASE WHEN chat._user_online(u.user_id) THEN $2 ELSE $1 END AS due " \
	"	FROM u GROUP BY u.user_id, u.channel_id " \
	") AS r " \
	"ON CONFLICT (user_id, channel_id) WHERE claims = 0 DO UPDATE " \
	"SET count = q.count + excluded.count, " \
	"	message_id = CASE WHEN excluded.last_seq > q.last_seq THEN excluded.message_id " \
	"					  ELSE q.message_id END, " \
	"	last_seq = greatest(q.last_seq, excluded.last_seq), " \
	"	first_seq = least(q.first_seq, excluded.first_seq), " \
	"	mention = q.mention OR excluded.mention, " \
	"	due_at = least(q.due_at, excluded.due_at), " \
	"	visible_at = least(q.visible_at, excluded.visible_at)"

/*
 * The queue's statement for a short statement (chat_send, a few rows): each
 * message meets the members of its channel.  Both statements run under
 * search_path = pg_catalog, pg_temp (set around them).
 */
static const char *queue_sql =
"WITH u AS (" ROWS_PER_MESSAGE("") ") " UPSERT_FROM_U;

/*
 * The queue's statement for a long one (a worker's batch): thousands of
 * messages over a few hundred channels, where joining each message with
 * each member grouped messages x members rows and halved fan-out to groups
 * of 50 (docs/performance.md).  So the messages that cannot name anyone
 * (no "@") are first grouped per channel and sender (g), and the groups
 * meet the members.  Two kinds of row still meet the members one message
 * at a time, to count exactly what queue_sql counts:
 *   - a member who sent in the same channel in the same statement: the
 *     batch moved their read marker to their own message (sending marks
 *     read), so the messages before it are not news to them;
 *   - a message with an "@": a mention notifies a muted member about that
 *     message alone.
 * Every other member's marker is older than all of the statement's new
 * messages (chat_mark_read and chat_add_member stop at the channel's
 * committed last_seq), so a group counts for them whole.
 */
static const char *queue_grouped_sql =
"WITH g AS ( "
"	SELECT n.channel_id, n.sender_id, count(*) AS n, "
"		   min(n.seq) AS first_seq, max(n.seq) AS last_seq, "
"		   (array_agg(n.id ORDER BY n.seq DESC))[1] AS message_id "
"	FROM new_messages AS n "
"	WHERE n.deleted_at IS NULL AND strpos(n.content, '@') = 0 "
"	GROUP BY n.channel_id, n.sender_id "
"), sd AS ( "
"	SELECT n.channel_id, array_agg(DISTINCT n.sender_id) AS ids "
"	FROM new_messages AS n GROUP BY n.channel_id "
"), u AS ( "
"	SELECT cm.user_id, g.channel_id, g.n, g.first_seq, g.last_seq, g.message_id, "
"		   false AS mention "
"	FROM g JOIN sd ON sd.channel_id = g.channel_id "
"	JOIN chat.channels AS c ON c.id = g.channel_id "
"	JOIN chat.channel_members AS cm "
"	  ON cm.channel_id = g.channel_id AND cm.user_id <> ALL (sd.ids) "
"	LEFT JOIN chat.notify_settings AS s ON s.user_id = cm.user_id "
"	WHERE cm.last_read_seq < g.last_seq AND " WANTS_MESSAGES " "
"	UNION ALL "
"	SELECT cm.user_id, n.channel_id, 1, n.seq, n.seq, n.id, false "
"	FROM new_messages AS n JOIN sd ON sd.channel_id = n.channel_id "
"	CROSS JOIN LATERAL unnest(sd.ids) AS o(user_id) "
"	JOIN chat.channels AS c ON c.id = n.channel_id "
"	JOIN chat.channel_members AS cm "
"	  ON cm.channel_id = n.channel_id AND cm.user_id = o.user_id "
"	LEFT JOIN chat.notify_settings AS s ON s.user_id = cm.user_id "
"	WHERE n.deleted_at IS NULL AND strpos(n.content, '@') = 0 "
"	  AND o.user_id <> n.sender_id AND cm.last_read_seq < n.seq AND " WANTS_MESSAGES " "
"	UNION ALL "
ROWS_PER_MESSAGE("AND strpos(n.content, '@') > 0")
") "
UPSERT_FROM_U;

static SPIPlanPtr cancel_plan;
static SPIPlanPtr queue_plan;
static SPIPlanPtr queue_grouped_plan;

/* the tables the triggers were last checked on (InvalidOid: none yet) */
static Oid	messages_relid = InvalidOid;
static Oid	members_relid = InvalidOid;

/*
 * check_trigger makes sure the function runs as the trigger it was written
 * for.
 */
static void
check_trigger(FunctionCallInfo fcinfo, const char *name, bool for_row,
			  const char *relname, Oid *checked_relid)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(td->tg_event) ||
		(for_row != (TRIGGER_FIRED_FOR_ROW(td->tg_event) != 0)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be called as an AFTER %s trigger of chat.%s",
						name, for_row ? "ROW" : "STATEMENT", relname)));
	/* the table is looked up by name once per backend, not once per send */
	if (RelationGetRelid(td->tg_relation) == *checked_relid)
		return;
	if (strcmp(get_namespace_name(RelationGetNamespace(td->tg_relation)), "chat") != 0 ||
		strcmp(RelationGetRelationName(td->tg_relation), relname) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be called as an AFTER %s trigger of chat.%s",
						name, for_row ? "ROW" : "STATEMENT", relname)));
	*checked_relid = RelationGetRelid(td->tg_relation);
}

/*
 * The probes below read an index directly (systable_beginscan serves any
 * table), not through SPI: they run on every chat_send, where a statement
 * costs an executor start-up (for the DELETE, opening all four indexes of
 * chat.notifications) to learn, nearly always, that there is nothing to
 * do.  The statement runs only when the probe finds something.
 */

/*
 * member_behind tells whether channel has a member other than sender whose
 * read marker is below seq (chat.channel_members, by its primary key).
 */
static bool
member_behind(Datum channel, Datum sender, int64 seq)
{
	Relation	rel = table_open(chat_table("channel_members"), AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	a_user = chat_column(rel, "user_id");
	AttrNumber	a_read = chat_column(rel, "last_read_seq");
	Oid			pkey = RelationGetPrimaryKeyIndex(rel);
	ScanKeyData key;
	Snapshot	snap;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		behind = false;

	if (!OidIsValid(pkey))
		elog(ERROR, "chat.channel_members has no primary key");
	chat_equal_key(&key, rel, "channel_id", F_UUID_EQ, channel);
	snap = chat_statement_snapshot();
	scan = systable_beginscan(rel, pkey, true, snap, 1, &key);
	while (!behind && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		null_user;
		bool		null_read;
		Datum		user = heap_getattr(tup, a_user, desc, &null_user);
		Datum		read = heap_getattr(tup, a_read, desc, &null_read);

		if (null_user || null_read)
			continue;
		behind = DatumGetInt64(read) < seq &&
			!DatumGetBool(DirectFunctionCall2Coll(texteq,
												  TupleDescAttr(desc, a_user - 1)->attcollation,
												  user, sender));
	}
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return behind;
}

/*
 * entries_covered tells whether user has an entry of channel whose newest
 * message is at or below marker: one that the cancel deletes.
 */
static bool
entries_covered(Datum channel, Datum user, int64 marker)
{
	Relation	rel = table_open(chat_table("notifications"), AccessShareLock);
	AttrNumber	a_last = chat_column(rel, "last_seq");
	ScanKeyData key[2];
	Snapshot	snap;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	chat_equal_key(&key[0], rel, "channel_id", F_UUID_EQ, channel);
	chat_equal_key(&key[1], rel, "user_id", F_TEXTEQ, user);
	snap = chat_statement_snapshot();
	scan = systable_beginscan(rel, chat_table("notifications_member_idx"), true, snap, 2, key);
	while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		last = heap_getattr(tup, a_last, RelationGetDescr(rel), &isnull);

		found = !isnull && DatumGetInt64(last) <= marker;
	}
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * anyone_behind tells whether some row of the statement's new messages
 * has a channel with another member whose read marker is behind it: only
 * then can the upsert queue anything.  Statements of more than
 * PROBE_MAX_ROWS rows answer true without looking.
 */
static bool
anyone_behind(TriggerData *td)
{
	Tuplestorestate *ts = td->tg_newtable;
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	AttrNumber	a_channel = chat_column(td->tg_relation, "channel_id");
	AttrNumber	a_sender = chat_column(td->tg_relation, "sender_id");
	AttrNumber	a_seq = chat_column(td->tg_relation, "seq");
	AttrNumber	a_deleted = chat_column(td->tg_relation, "deleted_at");
	TupleTableSlot *slot;
	bool		behind = false;

	if (ts == NULL || tuplestore_tuple_count(ts) > PROBE_MAX_ROWS)
		return true;

	/*
	 * Read pointer 0 is ours to move: the executor's scans of a transition
	 * table allocate and select their own pointer before every fetch.
	 */
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	tuplestore_rescan(ts);
	while (!behind && tuplestore_gettupleslot(ts, true, false, slot))
	{
		Datum		args[3];
		bool		isnull[3];
		bool		deleted_null;

		args[0] = slot_getattr(slot, a_channel, &isnull[0]);
		args[1] = slot_getattr(slot, a_sender, &isnull[1]);
		args[2] = slot_getattr(slot, a_seq, &isnull[2]);
		(void) slot_getattr(slot, a_deleted, &deleted_null);
		if (!deleted_null)
			continue;			/* a deleted message notifies nobody */
		if (isnull[0] || isnull[1] || isnull[2])
		{
			behind = true;		/* not ours to judge: let the upsert */
			break;
		}
		behind = member_behind(args[0], args[1], DatumGetInt64(args[2]));
	}
	tuplestore_rescan(ts);
	ExecDropSingleTupleTableSlot(slot);
	return behind;
}

/*
 * chat_queue_notifications (chat._queue_notifications, AFTER INSERT FOR
 * EACH STATEMENT on chat.messages, REFERENCING NEW TABLE AS new_messages)
 * queues the new messages for every member but the sender who wants them.
 * The rules are in the upsert above and in docs/schema.md.
 */
Datum
chat_queue_notifications(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TimestampTz now;
	Datum		args[2];
	Oid			types[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	SPIPlanPtr	plan;
	int			nestlevel;
	int			rc;

	check_trigger(fcinfo, "chat._queue_notifications", false, "messages",
				  &messages_relid);

	/*
	 * chat.notifications = off: a deployment that sends no pushes does not
	 * pay for the queue.
	 */
	if (!chat_notifications)
		return PointerGetDatum(NULL);

	if (!anyone_behind(td))
		return PointerGetDatum(NULL);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "chat._queue_notifications: SPI_connect failed");

	/* what a SET search_path clause on the function would do, here only */
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);

	if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "chat._queue_notifications: could not register the transition table");
	now = GetCurrentTimestamp();
	args[0] = TimestampTzGetDatum(now);
	args[1] = TimestampTzGetDatum(now + (int64) chat_notify_delay_ms * 1000);
	if (td->tg_newtable != NULL && tuplestore_tuple_count(td->tg_newtable) > PROBE_MAX_ROWS)
		plan = chat_keep_plan(&queue_grouped_plan, queue_grouped_sql, 2, types);
	else
		plan = chat_keep_plan(&queue_plan, queue_sql, 2, types);
	rc = SPI_execute_plan(plan, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "chat._queue_notifications: the upsert failed: %s",
			 SPI_result_code_string(rc));

	AtEOXact_GUC(true, nestlevel);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/*
 * chat_cancel_covered deletes user's entries of channel that marker now
 * covers, after the user's read marker of the channel moved forward to
 * marker: whoever read the channel needs no push about it.  What the
 * trigger below does, and row_update.c after the read marker it writes.
 */
void
chat_cancel_covered(Datum channel, Datum user, int64 marker)
{
	Datum		args[3] = {channel, user, Int64GetDatum(marker)};
	Oid			types[3] = {UUIDOID, TEXTOID, INT8OID};
	int			rc;

	if (!entries_covered(channel, user, marker))
		return;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "chat._cancel_notifications: SPI_connect failed");
	rc = SPI_execute_plan(chat_keep_plan(&cancel_plan, cancel_sql, 3, types),
						  args, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "chat._cancel_notifications: the delete failed: %s",
			 SPI_result_code_string(rc));
	SPI_finish();
}

/*
 * chat_cancel_notifications (chat._cancel_notifications, AFTER UPDATE OF
 * last_read_seq FOR EACH ROW on chat.channel_members, when the marker
 * moves forward): chat_cancel_covered.
 */
Datum
chat_cancel_notifications(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	AttrNumber	a_read;
	Datum		args[3];
	bool		isnull[3];
	Datum		old_read;
	bool		old_null;

	check_trigger(fcinfo, "chat._cancel_notifications", true, "channel_members",
				  &members_relid);
	if (!TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("chat._cancel_notifications must be called on UPDATE")));

	desc = RelationGetDescr(td->tg_relation);
	a_read = chat_column(td->tg_relation, "last_read_seq");
	args[0] = heap_getattr(td->tg_newtuple, chat_column(td->tg_relation, "channel_id"), desc, &isnull[0]);
	args[1] = heap_getattr(td->tg_newtuple, chat_column(td->tg_relation, "user_id"), desc, &isnull[1]);
	args[2] = heap_getattr(td->tg_newtuple, a_read, desc, &isnull[2]);
	old_read = heap_getattr(td->tg_trigtuple, a_read, desc, &old_null);

	/*
	 * Only a marker that moved forward cancels (the trigger has no WHEN
	 * clause: PostgreSQL would parse it again for every statement).  The key
	 * columns are NOT NULL; a NULL one matches no entry.
	 */
	if (isnull[2] || (!old_null && DatumGetInt64(args[2]) <= DatumGetInt64(old_read)))
		return PointerGetDatum(NULL);
	if (!isnull[0] && !isnull[1])
		chat_cancel_covered(args[0], args[1], DatumGetInt64(args[2]));
	return PointerGetDatum(NULL);
}
