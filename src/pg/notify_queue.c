/*
 * notify_queue.c
 *	  The two triggers that keep the offline notification queue
 *	  (chat.notifications, chat--1.0--1.1.sql) in step with the tables:
 *	  chat._queue_notifications on every INSERT statement into
 *	  chat.messages, and chat._cancel_notifications on every read marker
 *	  that moves forward.  Both run on every chat_send and every batch of
 *	  the worker (a send marks its sender read), so they are C, read the
 *	  indexes directly, and run a statement only when there is something
 *	  to write.
 *
 *	  An open entry stands for the messages from its first_seq on; the
 *	  claim counts them (chat.notification_queue).  So a message writes an
 *	  entry only for a member who has none: in a busy channel whose members
 *	  do not read, the first message after each claim.  Upserting every
 *	  waiting member's entry for every message was a fifth of the worker's
 *	  time in fan-out to groups of 50 (docs/performance.md).  What is
 *	  queued is checked by sql/16_notifications.sql, and the sends in
 *	  flight by test/isolation/specs/notify_inflight.spec.
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
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "pg/settings.h"
#include "pg/shmem.h"
#include "pg/notify_queue.h"
#include "pg/spi_plan.h"
#include "pg/tables.h"

PG_FUNCTION_INFO_V1(chat_queue_notifications);
PG_FUNCTION_INFO_V1(chat_cancel_notifications);
PG_FUNCTION_INFO_V1(chat__channel_newest);

/*
 * Statements of up to this many rows run queue_sql (each message meets
 * the members); a longer one (a worker's batch) runs queue_grouped_sql,
 * which meets them per channel and sender.
 */
#define GROUP_MIN_ROWS 9

/*
 * The cancel runs under the caller's search_path (no SET clause, which
 * costs a GUC save and restore per call), so every name and operator in it
 * is schema-qualified.
 */
static const char *cancel_sql =
"DELETE FROM chat.notifications AS q "
"WHERE q.channel_id OPERATOR(pg_catalog.=) $1 "
"  AND q.user_id OPERATOR(pg_catalog.=) $2 "
"  AND q.last_seq OPERATOR(pg_catalog.<=) $3 "
"  AND (q.claims OPERATOR(pg_catalog.>) 0 OR $4)";

/*
 * Who wants to hear of a message that does not name them: not muted, and
 * not "direct messages only" in a group.  A mention overrides both.  (cm:
 * the member, c: the channel, s: the member's settings, $1: now.)  On
 * Citus, where these triggers do not run, chat._queue_probe and
 * chat._queue_rows (chat--1.0--1.1.sql) state this rule and UPSERT_FROM_U's
 * merge again, with values inlined; chat.notification_queue counts an
 * entry's messages by it when it is claimed: change them together.
 */
#define WANTS_MESSAGES \
	"((cm.muted_until IS NULL OR cm.muted_until <= $1) " \
	" AND (c.type = 'direct' OR NOT coalesce(s.direct_only, false)))"

/*
 * The pairs the trigger found may need an entry ($3 channels, $4 users,
 * parallel; NULL: every pair).  Hashed once per statement.
 */
#define INCLUDED \
	"($3::uuid[] IS NULL OR (cm.channel_id, cm.user_id) IN " \
	" (SELECT k.c, k.u FROM unnest($3::uuid[], $4::text[]) AS k(c, u)))"

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
	"  AND cm.last_read_seq < n.seq AND " INCLUDED " " \
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
"	WHERE cm.last_read_seq < g.last_seq AND " INCLUDED " AND " WANTS_MESSAGES " "
"	UNION ALL "
"	SELECT cm.user_id, n.channel_id, 1, n.seq, n.seq, n.id, false "
"	FROM new_messages AS n JOIN sd ON sd.channel_id = n.channel_id "
"	CROSS JOIN LATERAL unnest(sd.ids) AS o(user_id) "
"	JOIN chat.channels AS c ON c.id = n.channel_id "
"	JOIN chat.channel_members AS cm "
"	  ON cm.channel_id = n.channel_id AND cm.user_id = o.user_id "
"	LEFT JOIN chat.notify_settings AS s ON s.user_id = cm.user_id "
"	WHERE n.deleted_at IS NULL AND strpos(n.content, '@') = 0 "
"	  AND o.user_id <> n.sender_id AND cm.last_read_seq < n.seq AND " INCLUDED " "
"	  AND " WANTS_MESSAGES " "
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
 * The trigger decides in C, reading the indexes directly (systable scans
 * serve any table), which (member, channel) pairs the statement below must
 * look at, and runs it only for those.  On every send nearly all of them
 * need nothing: a member who has read the channel has nothing to be told,
 * and a member whose open entry is already there needs no write at all,
 * because an open entry holds only where its messages begin; what it
 * counts is read from chat.messages when it is claimed
 * (chat._notification_tally).  Updating each waiting member's entry for
 * every message was a fifth of the worker's time in fan-out to groups of
 * 50 whose members do not read (docs/performance.md).
 */

/* What the statement brought to one channel (key: the channel id). */
typedef struct ChannelNews
{
	pg_uuid_t	channel;
	int64		max_seq;		/* of its messages that are not deleted */
	char	   *top_sender;		/* who sent that one */
	int			top_len;
	int64		other_max;		/* the newest one somebody else sent */
	bool		has_at;			/* one of them may mention somebody */
} ChannelNews;

/* A member who may have to be queued, and whether they still are. */
typedef struct Candidate
{
	char	   *user;
	int			len;
	bool		queue;
	bool		check_online;	/* the open entry is due later than now */
} Candidate;

/* the pairs to queue, in two parallel lists of Datums */
typedef struct Pairs
{
	List	   *channels;
	List	   *users;
	bool		skipped;		/* some member behind needed nothing */
} Pairs;

static pg_uuid_t *
pg_uuid_copy(const pg_uuid_t * u)
{
	pg_uuid_t  *copy = palloc(sizeof(pg_uuid_t));

	memcpy(copy, u, sizeof(pg_uuid_t));
	return copy;
}

/* is t the user (user, len)? (user ids compare by their bytes) */
static bool
same_user(const char *user, int len, text * t)
{
	return user != NULL && len == VARSIZE_ANY_EXHDR(t) &&
		memcmp(user, VARDATA_ANY(t), len) == 0;
}

static int
candidate_cmp(const void *a, const void *b)
{
	const Candidate *x = a;
	const Candidate *y = b;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->user, y->user, x->len);
}

/*
 * statement_news groups the transition table's messages by channel.
 * Returns NULL when a row is not ours to judge (a NULL key column): then
 * every pair goes to the statement.
 */
static HTAB *
statement_news(TriggerData *td, bool *judged)
{
	Tuplestorestate *ts = td->tg_newtable;
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	AttrNumber	a_channel = chat_column(td->tg_relation, "channel_id");
	AttrNumber	a_seq = chat_column(td->tg_relation, "seq");
	AttrNumber	a_deleted = chat_column(td->tg_relation, "deleted_at");
	AttrNumber	a_content = chat_column(td->tg_relation, "content");
	AttrNumber	a_sender = chat_column(td->tg_relation, "sender_id");
	TupleTableSlot *slot;
	HASHCTL		ctl;
	HTAB	   *news;

	*judged = true;
	ctl.keysize = sizeof(pg_uuid_t);
	ctl.entrysize = sizeof(ChannelNews);
	ctl.hcxt = CurrentMemoryContext;
	news = hash_create("chat queue news", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	/*
	 * Read pointer 0 is ours to move: the executor's scans of a transition
	 * table allocate and select their own pointer before every fetch.
	 */
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	tuplestore_rescan(ts);
	while (*judged && tuplestore_gettupleslot(ts, true, false, slot))
	{
		bool		null_channel;
		bool		null_seq;
		bool		null_deleted;
		bool		null_content;
		bool		null_sender;
		Datum		channel = slot_getattr(slot, a_channel, &null_channel);
		Datum		seq = slot_getattr(slot, a_seq, &null_seq);
		Datum		content;
		Datum		sender;
		text	   *who;
		int64		s;
		ChannelNews *n;
		bool		found;
		bool		same;

		(void) slot_getattr(slot, a_deleted, &null_deleted);
		if (!null_deleted)
			continue;			/* a deleted message notifies nobody */
		content = slot_getattr(slot, a_content, &null_content);
		sender = slot_getattr(slot, a_sender, &null_sender);
		if (null_channel || null_seq || null_content || null_sender)
		{
			*judged = false;
			break;
		}
		n = hash_search(news, DatumGetUUIDP(channel), HASH_ENTER, &found);
		if (!found)
		{
			n->max_seq = PG_INT64_MIN;
			n->other_max = PG_INT64_MIN;
			n->top_sender = NULL;
			n->top_len = 0;
			n->has_at = false;
		}

		/*
		 * A message is not news to its sender: keep the newest message and
		 * its sender, and the newest one that anybody else sent.
		 */
		who = DatumGetTextPP(sender);
		s = DatumGetInt64(seq);
		same = same_user(n->top_sender, n->top_len, who);
		if (s > n->max_seq)
		{
			if (!same)
			{
				n->other_max = Max(n->other_max, n->max_seq);
				n->top_len = VARSIZE_ANY_EXHDR(who);
				n->top_sender = pnstrdup(VARDATA_ANY(who), n->top_len);
			}
			n->max_seq = s;
		}
		else if (!same)
			n->other_max = Max(n->other_max, s);
		if (!n->has_at)
		{
			text	   *t = DatumGetTextPP(content);

			n->has_at = memchr(VARDATA_ANY(t), '@', VARSIZE_ANY_EXHDR(t)) != NULL;
		}
	}
	tuplestore_rescan(ts);
	ExecDropSingleTupleTableSlot(slot);
	return news;
}

/*
 * members_behind returns, sorted, the members of the channel whose read
 * marker is below its newest new message and who may want to hear of it:
 * not muted now, unless the statement may mention them.  Whether they want
 * it in the end (direct-only, mentions) the statement decides.
 */
static Candidate *
members_behind(ChannelNews *n, Snapshot snap, TimestampTz now, int *count)
{
	Relation	rel = table_open(chat_table("channel_members"), AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	a_user = chat_column(rel, "user_id");
	AttrNumber	a_read = chat_column(rel, "last_read_seq");
	AttrNumber	a_muted = chat_column(rel, "muted_until");
	Oid			pkey = RelationGetPrimaryKeyIndex(rel);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	int			cap = 16;
	Candidate  *out = palloc(sizeof(Candidate) * cap);

	*count = 0;
	if (!OidIsValid(pkey))
		elog(ERROR, "chat.channel_members has no primary key");
	chat_equal_key(&key, rel, "channel_id", F_UUID_EQ, UUIDPGetDatum(&n->channel));
	scan = systable_beginscan(rel, pkey, true, snap, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		null_user;
		bool		null_read;
		bool		null_muted;
		Datum		user = heap_getattr(tup, a_user, desc, &null_user);
		Datum		read = heap_getattr(tup, a_read, desc, &null_read);
		Datum		muted = heap_getattr(tup, a_muted, desc, &null_muted);
		text	   *t;

		if (null_user)
			continue;
		t = DatumGetTextPP(user);
		if (!null_read &&
			DatumGetInt64(read) >= (same_user(n->top_sender, n->top_len, t) ?
									n->other_max : n->max_seq))
			continue;			/* read, or nothing from anybody else */
		if (!n->has_at && !null_muted && DatumGetTimestampTz(muted) > now)
			continue;
		if (*count == cap)
		{
			cap *= 2;
			out = repalloc(out, sizeof(Candidate) * cap);
		}
		out[*count].len = VARSIZE_ANY_EXHDR(t);
		out[*count].user = pnstrdup(VARDATA_ANY(t), out[*count].len);
		out[*count].queue = true;
		out[*count].check_online = false;
		(*count)++;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (*count > 1)
		qsort(out, *count, sizeof(Candidate), candidate_cmp);
	return out;
}

/*
 * drop_settled clears queue for the candidates that have an open entry of
 * the channel that nothing is changing, due no later than a new one would
 * be.  It reads with a dirty snapshot, as a unique check does: an entry
 * that another transaction is claiming, cancelling or inserting right now
 * does not count, and those candidates go to the statement, whose upsert
 * waits for that transaction.  An entry that was open when looked at and
 * is claimed afterwards is the claim's business: it sees this send still
 * in flight and opens a new entry for it (chat_notifications_claim).
 */
static void
drop_settled(ChannelNews *n, Candidate *cands, int count, TimestampTz now)
{
	Relation	rel = table_open(chat_table("notifications"), AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	a_user = chat_column(rel, "user_id");
	AttrNumber	a_claims = chat_column(rel, "claims");
	AttrNumber	a_due = chat_column(rel, "due_at");
	ScanKeyData key;
	SnapshotData dirty;
	SysScanDesc scan;
	HeapTuple	tup;
	const char **later = NULL;
	int			n_later = 0;

	InitDirtySnapshot(dirty);
	chat_equal_key(&key, rel, "channel_id", F_UUID_EQ, UUIDPGetDatum(&n->channel));
	scan = systable_beginscan(rel, chat_table("notifications_member_idx"), true,
							  &dirty, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		settled = !TransactionIdIsValid(dirty.xmin) &&
		!TransactionIdIsValid(dirty.xmax);
		bool		isnull[3];
		Datum		user = heap_getattr(tup, a_user, desc, &isnull[0]);
		Datum		claims = heap_getattr(tup, a_claims, desc, &isnull[1]);
		Datum		due = heap_getattr(tup, a_due, desc, &isnull[2]);
		text	   *t;
		Candidate	probe;
		Candidate  *c;

		if (!settled || isnull[0] || isnull[1] || isnull[2] || DatumGetInt32(claims) != 0)
			continue;
		t = DatumGetTextPP(user);
		probe.user = VARDATA_ANY(t);
		probe.len = VARSIZE_ANY_EXHDR(t);
		c = bsearch(&probe, cands, count, sizeof(Candidate), candidate_cmp);
		if (c == NULL || !c->queue)
			continue;
		c->queue = false;
		/* due later (the user was online): sooner if they are gone now */
		if (DatumGetTimestampTz(due) > now)
			c->check_online = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	for (int i = 0; i < count; i++)
		if (cands[i].check_online)
		{
			if (later == NULL)
				later = palloc(sizeof(char *) * count);
			later[n_later++] = cands[i].user;
		}
	if (n_later > 0)
	{
		bool	   *online = palloc(sizeof(bool) * n_later);
		int			j = 0;

		chat_presence_filter(later, n_later, online);
		for (int i = 0; i < count; i++)
			if (cands[i].check_online && !online[j++])
				cands[i].queue = true;
	}
}

/*
 * pairs_to_queue collects, over the statement's channels, the members
 * that the statement must look at.
 */
static void
pairs_to_queue(HTAB *news, TimestampTz now, Pairs *pairs)
{
	HASH_SEQ_STATUS it;
	ChannelNews *n;
	Snapshot	snap = chat_statement_snapshot();

	hash_seq_init(&it, news);
	while ((n = hash_seq_search(&it)) != NULL)
	{
		int			count;
		Candidate  *cands = members_behind(n, snap, now, &count);

		if (count == 0)
			continue;
		drop_settled(n, cands, count, now);
		for (int i = 0; i < count; i++)
		{
			if (!cands[i].queue)
			{
				pairs->skipped = true;
				continue;
			}
			/* copied: the hash table goes before the arrays are made */
			pairs->channels = lappend(pairs->channels,
									  pg_uuid_copy(&n->channel));
			pairs->users = lappend(pairs->users,
								   cstring_to_text_with_len(cands[i].user, cands[i].len));
		}
	}
	UnregisterSnapshot(snap);
}

static Datum
datum_array(List * values, Oid type, int16 len, bool byval, char align)
{
	int			n = list_length(values);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, values)
		elems[i++] = PointerGetDatum(lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, type, len, byval, align));
}

/*
 * channel_newest returns the channel's newest seq as the next writer will
 * find it: with a dirty snapshot, a send still in flight counts (its
 * update of chat.channels is the first thing it does).  -1 if there is no
 * such channel.
 */
int64
chat_channel_newest(Datum channel)
{
	Relation	rel = table_open(chat_table("channels"), AccessShareLock);
	AttrNumber	a_last = chat_column(rel, "last_seq");
	Oid			pkey = RelationGetPrimaryKeyIndex(rel);
	ScanKeyData key;
	SnapshotData dirty;
	SysScanDesc scan;
	HeapTuple	tup;
	int64		newest = -1;

	if (!OidIsValid(pkey))
		elog(ERROR, "chat.channels has no primary key");
	InitDirtySnapshot(dirty);
	chat_equal_key(&key, rel, "id", F_UUID_EQ, channel);
	scan = systable_beginscan(rel, pkey, true, &dirty, 1, &key);
	/* every version a writer could still make the newest: the highest */
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		last = heap_getattr(tup, a_last, RelationGetDescr(rel), &isnull);

		if (!isnull)
			newest = Max(newest, DatumGetInt64(last));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return newest;
}

/*
 * chat__channel_newest (chat._channel_newest(uuid)): chat_channel_newest
 * for chat_notifications_claim.
 */
Datum
chat__channel_newest(PG_FUNCTION_ARGS)
{
	int64		newest = chat_channel_newest(PG_GETARG_DATUM(0));

	if (newest < 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(newest);
}

/*
 * entries_covered tells whether user has an entry of channel that the
 * cancel deletes after the user's marker moved to marker: a claimed one
 * whose newest message is at or below it, or an open one when the marker
 * reached the channel's newest message.  *all_read says which of the two.
 */
static bool
entries_covered(Datum channel, Datum user, int64 marker, bool *all_read)
{
	Relation	rel = table_open(chat_table("notifications"), AccessShareLock);
	AttrNumber	a_last = chat_column(rel, "last_seq");
	AttrNumber	a_claims = chat_column(rel, "claims");
	ScanKeyData key[2];
	Snapshot	snap;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;
	int			newest_known = 0;	/* 0: not read yet, 1: *all_read holds */

	*all_read = false;
	chat_equal_key(&key[0], rel, "channel_id", F_UUID_EQ, channel);
	chat_equal_key(&key[1], rel, "user_id", F_TEXTEQ, user);
	snap = chat_statement_snapshot();
	scan = systable_beginscan(rel, chat_table("notifications_member_idx"), true, snap, 2, key);
	while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		null_last;
		bool		null_claims;
		Datum		last = heap_getattr(tup, a_last, RelationGetDescr(rel), &null_last);
		Datum		claims = heap_getattr(tup, a_claims, RelationGetDescr(rel), &null_claims);

		if (null_last || null_claims || DatumGetInt64(last) > marker)
			continue;
		if (DatumGetInt32(claims) > 0)
		{
			found = true;
			continue;
		}

		/*
		 * An open entry holds only where its messages begin: it goes when
		 * nothing after the marker can be counted in it, including a send in
		 * flight that found the entry and so wrote none.
		 */
		if (newest_known == 0)
		{
			int64		newest = chat_channel_newest(channel);

			*all_read = newest >= 0 && newest <= marker;
			newest_known = 1;
		}
		found = *all_read;
	}
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return found;
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
	Datum		args[4];
	char		nulls[4] = {' ', ' ', 'n', 'n'};
	Oid			types[4] = {TIMESTAMPTZOID, TIMESTAMPTZOID, UUIDARRAYOID, TEXTARRAYOID};
	Pairs		pairs = {NIL, NIL, false};
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

	now = GetCurrentTimestamp();
	if (td->tg_newtable != NULL)
	{
		bool		judged;
		HTAB	   *news = statement_news(td, &judged);

		if (judged)
		{
			pairs_to_queue(news, now, &pairs);
			if (pairs.channels == NIL)
			{
				hash_destroy(news);
				return PointerGetDatum(NULL);
			}
		}
		hash_destroy(news);
		if (judged && pairs.skipped)
		{
			args[2] = datum_array(pairs.channels, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR);
			args[3] = datum_array(pairs.users, TEXTOID, -1, false, TYPALIGN_INT);
			nulls[2] = nulls[3] = ' ';
		}
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "chat._queue_notifications: SPI_connect failed");

	/* what a SET search_path clause on the function would do, here only */
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);

	if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "chat._queue_notifications: could not register the transition table");
	args[0] = TimestampTzGetDatum(now);
	args[1] = TimestampTzGetDatum(now + (int64) chat_notify_delay_ms * 1000);
	if (td->tg_newtable != NULL && tuplestore_tuple_count(td->tg_newtable) >= GROUP_MIN_ROWS)
		plan = chat_keep_plan(&queue_grouped_plan, queue_grouped_sql, 4, types);
	else
		plan = chat_keep_plan(&queue_plan, queue_sql, 4, types);
	rc = SPI_execute_plan(plan, args, nulls, false, 0);
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
	bool		all_read;
	Datum		args[4];
	Oid			types[4] = {UUIDOID, TEXTOID, INT8OID, BOOLOID};
	int			rc;

	if (!entries_covered(channel, user, marker, &all_read))
		return;
	args[0] = channel;
	args[1] = user;
	args[2] = Int64GetDatum(marker);
	args[3] = BoolGetDatum(all_read);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "chat._cancel_notifications: SPI_connect failed");
	rc = SPI_execute_plan(chat_keep_plan(&cancel_plan, cancel_sql, 4, types),
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
