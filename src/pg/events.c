/*
 * events.c
 *	  The event path of one server (events.h): committed changes reach the
 *	  workers through a ring in shared memory, never through NOTIFY from the
 *	  application's transaction.
 *
 *	  Writers.  The triggers on chat.messages and chat.channel_members (and
 *	  chat_mark_read, through chat._hint_read) record hints in a list local
 *	  to the backend, tagged with the subtransaction that made them.  At
 *	  XACT_EVENT_COMMIT the list is appended to the ring and the workers'
 *	  latches are set.  That callback runs after the commit record is
 *	  flushed and the transaction is visible, and before its locks are
 *	  released: the next writer of the same channel (which waits for the
 *	  channel's row lock) appends after us, so per-channel order is commit
 *	  order.  Nothing in it may fail (an ERROR there is a PANIC): the ring is
 *	  preallocated, a writer never waits for a reader, and a full ring
 *	  simply overwrites what the slowest reader had not read yet.
 *
 *	  Readers.  Each worker (and the bus relay) has a cursor.  A reader the
 *	  ring went round past learns it (its cursor is older than the oldest
 *	  record kept) and re-reads every table instead: hints are only hints.
 *
 *	  Only code of this library writes the ring: no role can forge a
 *	  record, and shared memory is readable by no role.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/uuid.h"

#include "pg/events.h"
#include "pg/settings.h"
#include "pg/shmem.h"

/* Hints one transaction may queue before it asks for a full re-read. */
#define PENDING_MAX 1024
/* Records a reader copies under the lock at a time. */
#define READ_CHUNK 256

typedef struct ring_record
{
	Oid			db;
	chat_event	ev;
} ring_record;

typedef struct reader_slot
{
	int			pid;			/* 0: free */
	Oid			db;
	Latch	   *latch;
} reader_slot;

typedef struct event_ring
{
	LWLock	   *lock;
	pg_atomic_uint64 head;		/* records ever appended */
	uint64		capacity;

	/*
	 * Membership changes ever appended (under lock): each join or leave
	 * record carries its number in ev.seq, which they do not use otherwise,
	 * so that the bus relay can say how far it has relayed them ("h:").
	 */
	uint64		members_seq;
	reader_slot readers[CHAT_MAX_WORKERS + 1];
	ring_record records[FLEXIBLE_ARRAY_MEMBER];
} event_ring;

static event_ring *ring = NULL;

/* This process as a reader. */
static int	my_slot = -1;
static uint64 my_cursor = 0;

/* --- shared memory ---------------------------------------------------- */

Size
chat_events_shmem_size(void)
{
	return add_size(offsetof(event_ring, records),
					mul_size(chat_event_ring_size, sizeof(ring_record)));
}

/* Called with AddinShmemInitLock held, from the startup hook. */
void
chat_events_shmem_init(void)
{
	bool		found;

	ring = ShmemInitStruct("chat events", chat_events_shmem_size(), &found);
	if (!found)
	{
		ring->lock = &(GetNamedLWLockTranche("chat events"))->lock;
		pg_atomic_init_u64(&ring->head, 0);
		ring->capacity = chat_event_ring_size;
		ring->members_seq = 0;
		memset(ring->readers, 0, sizeof(ring->readers));
	}
}

/*
 * ring_append appends n records of database db and wakes that database's
 * readers but this process.  Never fails: more records than the ring holds
 * become one RESYNC record.
 */
static void
ring_append(Oid db, const chat_event *evs, int n)
{
	Latch	   *wake[CHAT_MAX_WORKERS + 1];
	int			n_wake = 0;
	uint64		head;

	if (ring == NULL || n <= 0)
		return;
	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	head = pg_atomic_read_u64(&ring->head);
	if ((uint64) n > ring->capacity)
	{
		ring_record *r = &ring->records[head % ring->capacity];

		r->db = db;
		memset(&r->ev, 0, sizeof(r->ev));
		r->ev.kind = CHAT_EV_RESYNC;
		/* membership changes may be among the lost */
		r->ev.seq = (int64) ++ring->members_seq;
		head++;
	}
	else
		for (int i = 0; i < n; i++)
		{
			ring_record *r = &ring->records[head % ring->capacity];

			r->db = db;
			r->ev = evs[i];
			if (r->ev.kind == CHAT_EV_JOIN || r->ev.kind == CHAT_EV_LEAVE)
				r->ev.seq = (int64) ++ring->members_seq;
			head++;
		}
	pg_atomic_write_u64(&ring->head, head);
	for (int i = 0; i <= CHAT_MAX_WORKERS; i++)
		if (ring->readers[i].pid != 0 && ring->readers[i].db == db &&
			ring->readers[i].pid != MyProcPid)
			wake[n_wake++] = ring->readers[i].latch;
	LWLockRelease(ring->lock);
	/* a latch of a process that exited since is still valid memory */
	for (int i = 0; i < n_wake; i++)
		SetLatch(wake[i]);
}

/* --- readers ------------------------------------------------------------ */

static void
detach(int code, Datum arg)
{
	if (ring == NULL || my_slot < 0)
		return;
	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	if (ring->readers[my_slot].pid == MyProcPid)
		ring->readers[my_slot].pid = 0;
	LWLockRelease(ring->lock);
	my_slot = -1;
}

void
chat_events_attach(int slot)
{
	if (ring == NULL || slot < 0 || slot > CHAT_MAX_WORKERS)
		ereport(FATAL,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("chat event ring is not initialized")));
	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	ring->readers[slot].pid = MyProcPid;
	ring->readers[slot].db = MyDatabaseId;
	ring->readers[slot].latch = MyLatch;
	my_cursor = pg_atomic_read_u64(&ring->head);
	LWLockRelease(ring->lock);
	my_slot = slot;
	before_shmem_exit(detach, (Datum) 0);
}

bool
chat_events_read(chat_events_fn fn, void *arg)
{
	ring_record buf[READ_CHUNK];
	bool		complete = true;

	if (ring == NULL || my_slot < 0)
		return true;
	while (pg_atomic_read_u64(&ring->head) != my_cursor)
	{
		int			n = 0;
		uint64		head;

		LWLockAcquire(ring->lock, LW_SHARED);
		head = pg_atomic_read_u64(&ring->head);
		if (head - my_cursor > ring->capacity)
		{
			/* the ring went round: what we had not read is gone */
			complete = false;
			my_cursor = head;
		}
		while (my_cursor < head && n < READ_CHUNK)
			buf[n++] = ring->records[my_cursor++ % ring->capacity];
		LWLockRelease(ring->lock);
		for (int i = 0; i < n; i++)
			if (buf[i].db == MyDatabaseId)
				fn(&buf[i].ev, arg);
	}
	return complete;
}

void
chat_events_publish(const chat_event *evs, int n)
{
	ring_append(MyDatabaseId, evs, n);
}

void
chat_events_publish_db(Oid db, const chat_event *evs, int n)
{
	ring_append(db, evs, n);
}

uint64
chat_events_members_seq(void)
{
	uint64		v;

	if (ring == NULL)
		return 0;
	LWLockAcquire(ring->lock, LW_SHARED);
	v = ring->members_seq;
	LWLockRelease(ring->lock);
	return v;
}

uint64
chat_events_head(void)
{
	return ring ? pg_atomic_read_u64(&ring->head) : 0;
}

bool
chat_events_read_at(uint64 *cursor, Oid db, chat_events_fn fn, void *arg)
{
	ring_record buf[READ_CHUNK];
	bool		complete = true;

	if (ring == NULL)
		return true;
	while (pg_atomic_read_u64(&ring->head) != *cursor)
	{
		int			n = 0;
		uint64		head;

		LWLockAcquire(ring->lock, LW_SHARED);
		head = pg_atomic_read_u64(&ring->head);
		if (head - *cursor > ring->capacity)
		{
			complete = false;
			*cursor = head;
		}
		while (*cursor < head && n < READ_CHUNK)
			buf[n++] = ring->records[(*cursor)++ % ring->capacity];
		LWLockRelease(ring->lock);
		for (int i = 0; i < n; i++)
			if (buf[i].db == db)
				fn(&buf[i].ev, arg);
	}
	return complete;
}

/* --- writers: the hints of the current transaction ------------------- */

typedef struct pending_hint
{
	int			level;			/* subtransaction nesting level */
	chat_event	ev;
} pending_hint;

static pending_hint *pending = NULL;
static int	n_pending = 0;
static int	cap_pending = 0;
static bool pending_overflow = false;

/*
 * On a Citus coordinator the rows were written on the nodes, and Citus
 * commits them there from its own XACT_EVENT_COMMIT callback, which runs
 * after ours (callbacks run newest first, and Citus is loaded first).  A
 * hint appended from ours could reach a worker before the rows are visible
 * on the node.  So the hints of chat_events_note (the coordinator's own,
 * pg/citus.h) are appended later in the same commit, when the transaction's
 * resources are released, before its locks: after every callback.
 */
static bool pending_after_callbacks = false;
static bool commit_seen = false;

static void
pending_reset(void)
{
	n_pending = 0;
	pending_overflow = false;
	pending_after_callbacks = false;
	commit_seen = false;
}

/*
 * pending_add queues ev for the commit.  A newer message hint of the same
 * channel replaces the previous one ("messages up to seq"), so a batch of
 * many messages costs one hint per channel.  Past PENDING_MAX hints the
 * transaction asks every reader for a full re-read instead.
 */
static void
pending_add(const chat_event *ev)
{
	int			level = GetCurrentTransactionNestLevel();

	if (pending_overflow)
		return;
	if (ev->kind == CHAT_EV_MESSAGE)
		for (int i = n_pending - 1; i >= 0 && i >= n_pending - 8; i--)
		{
			pending_hint *p = &pending[i];

			if (p->level == level && p->ev.kind == CHAT_EV_MESSAGE &&
				strcmp(p->ev.channel, ev->channel) == 0)
			{
				if (ev->seq > p->ev.seq)
					p->ev.seq = ev->seq;
				return;
			}
		}
	if (n_pending >= PENDING_MAX)
	{
		pending_overflow = true;
		return;
	}
	if (n_pending == cap_pending)
	{
		int			ncap = cap_pending ? cap_pending * 2 : 16;

		pending = pending == NULL ?
			MemoryContextAlloc(TopMemoryContext, ncap * sizeof(pending_hint)) :
			repalloc(pending, ncap * sizeof(pending_hint));
		cap_pending = ncap;
	}
	pending[n_pending].level = level;
	pending[n_pending].ev = *ev;
	n_pending++;
}

/*
 * at_commit appends the transaction's hints to the ring.  Runs inside
 * CommitTransaction, where nothing may fail: no allocation, no ERROR.
 */
static void
at_commit(void)
{
	chat_event	evs[64];
	int			n = 0;

	if (pending_overflow)
	{
		memset(&evs[0], 0, sizeof(evs[0]));
		evs[0].kind = CHAT_EV_RESYNC;
		ring_append(MyDatabaseId, evs, 1);
		return;
	}
	/* one append per 64 hints: the lock is held for a short copy only */
	for (int i = 0; i < n_pending; i++)
	{
		evs[n++] = pending[i].ev;
		if (n == lengthof(evs) || i == n_pending - 1)
		{
			ring_append(MyDatabaseId, evs, n);
			n = 0;
		}
	}
}

static void
xact_callback(XactEvent event, void *arg)
{
	if (n_pending == 0 && !pending_overflow)
		return;					/* the transaction did not touch chat */
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			if (pending_after_callbacks)
			{
				commit_seen = true; /* see resowner_callback */
				break;
			}
			at_commit();
			pending_reset();
			break;
		case XACT_EVENT_PRE_PREPARE:

			/*
			 * COMMIT PREPARED (maybe in another backend) runs no callback
			 * with our hints, which would then be lost.  PostgreSQL refuses
			 * PREPARE after NOTIFY for the same reason.
			 */
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot PREPARE a transaction that changed chat data"),
					 errhint("Commit it directly: the chat workers learn of a change when it commits.")));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			pending_reset();
			break;
		default:
			break;
	}
}

static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	int			kept = 0;

	if (n_pending == 0)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		/* what the rolled-back subtransaction recorded never happened */
		for (int i = 0; i < n_pending; i++)
			if (pending[i].level < level)
				pending[kept++] = pending[i];
		n_pending = kept;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		/* the parent owns them now: its rollback must drop them too */
		for (int i = 0; i < n_pending; i++)
			if (pending[i].level >= level)
				pending[i].level = level - 1;
	}
}

/*
 * resowner_callback appends the hints deferred by pending_after_callbacks:
 * CommitTransaction releases the resources after calling every transaction
 * callback, and the locks last.  It is called for every resource owner
 * released; the first call after the commit appends, the others find
 * nothing.
 */
static void
resowner_callback(ResourceReleasePhase phase, bool isCommit, bool isTopLevel,
				  void *arg)
{
	if (!commit_seen || !isCommit || phase !=RESOURCE_RELEASE_BEFORE_LOCKS)
		return;
	at_commit();
	pending_reset();
}

void
chat_events_register_callbacks(void)
{
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
	RegisterResourceReleaseCallback(resowner_callback, NULL);
}

/* --- the trigger and the read hint ----------------------------------- */

/* Where the columns the hints need are, per table (looked up once). */
typedef struct table_cols
{
	Oid			relid;
	int			channel_id;
	int			seq_or_user;	/* messages.seq, channel_members.user_id */
	int			deleted_or_role;	/* messages.deleted_at,
									 * channel_members.role */
} table_cols;

static table_cols messages_cols;
static table_cols members_cols;

/*
 * lookup_cols finds rel's columns if rel is chat.<relname>; false for any
 * other table.  A trigger elsewhere could only be made by a superuser (the
 * function is not executable by PUBLIC), but it must not forge hints.
 */
static bool
lookup_cols(Relation rel, const char *relname, const char *second,
			const char *third, table_cols *cols)
{
	Oid			nsp;
	TupleDesc	desc = RelationGetDescr(rel);

	if (cols->relid == RelationGetRelid(rel))
		return true;
	nsp = get_namespace_oid("chat", true);
	if (!OidIsValid(nsp) || RelationGetNamespace(rel) != nsp ||
		strcmp(RelationGetRelationName(rel), relname) != 0)
		return false;
	cols->channel_id = SPI_fnumber(desc, "channel_id");
	cols->seq_or_user = SPI_fnumber(desc, second);
	cols->deleted_or_role = SPI_fnumber(desc, third);
	if (cols->channel_id <= 0 || cols->seq_or_user <= 0 ||
		cols->deleted_or_role <= 0)
		return false;
	cols->relid = RelationGetRelid(rel);
	return true;
}

static void
set_channel(chat_event *ev, Datum uuid)
{
	char	   *s = DatumGetCString(DirectFunctionCall1(uuid_out, uuid));

	strlcpy(ev->channel, s, sizeof(ev->channel));
	pfree(s);
}

static void
set_user(chat_event *ev, Datum user)
{
	text_to_cstring_buffer(DatumGetTextPP(user), ev->user, sizeof(ev->user));
}

/* getcol reads a column that the table's constraints make NOT NULL. */
static Datum
getcol(HeapTuple tup, TupleDesc desc, int attnum, bool *isnull)
{
	return heap_getattr(tup, attnum, desc, isnull);
}

static void
hint_message(TriggerData *td)
{
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	HeapTuple	tup = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ?
	td->tg_newtuple : td->tg_trigtuple;
	chat_event	ev;
	bool		isnull;
	Datum		d;

	memset(&ev, 0, sizeof(ev));
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		ev.kind = CHAT_EV_MESSAGE;
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		bool		was_deleted,
					is_deleted;

		(void) getcol(td->tg_trigtuple, desc, messages_cols.deleted_or_role,
					  &was_deleted);
		(void) getcol(tup, desc, messages_cols.deleted_or_role, &is_deleted);
		/* a NULL deleted_at is "not deleted" */
		ev.kind = was_deleted && !is_deleted ? CHAT_EV_DELETE : CHAT_EV_EDIT;
	}
	else
		return;
	d = getcol(tup, desc, messages_cols.channel_id, &isnull);
	if (isnull)
		return;
	set_channel(&ev, d);
	d = getcol(tup, desc, messages_cols.seq_or_user, &isnull);
	if (isnull)
		return;
	ev.seq = DatumGetInt64(d);
	pending_add(&ev);
}

/* member_event builds a JOIN or LEAVE of tup's (channel, user). */
static void
member_event(TupleDesc desc, HeapTuple tup, char kind)
{
	chat_event	ev;
	bool		null1,
				null2;
	Datum		ch = getcol(tup, desc, members_cols.channel_id, &null1);
	Datum		user = getcol(tup, desc, members_cols.seq_or_user, &null2);

	if (null1 || null2)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	set_channel(&ev, ch);
	set_user(&ev, user);
	pending_add(&ev);
}

static void
hint_member(TriggerData *td)
{
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	HeapTuple	old = td->tg_trigtuple,
				new = td->tg_newtuple;

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		member_event(desc, old, CHAT_EV_JOIN);
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		member_event(desc, old, CHAT_EV_LEAVE);
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		bool		n1,
					n2;
		Datum		oc = getcol(old, desc, members_cols.channel_id, &n1),
					nc = getcol(new, desc, members_cols.channel_id, &n2);
		char	   *ou = TextDatumGetCString(getcol(old, desc,
													members_cols.seq_or_user,
													&n1));
		char	   *nu = TextDatumGetCString(getcol(new, desc,
													members_cols.seq_or_user,
													&n2));

		if (!DatumGetBool(DirectFunctionCall2(uuid_eq, oc, nc)) ||
			strcmp(ou, nu) != 0)
		{
			/* moved: it left one place and joined another */
			member_event(desc, old, CHAT_EV_LEAVE);
			member_event(desc, new, CHAT_EV_JOIN);
		}
		else
			member_event(desc, new, CHAT_EV_JOIN);	/* role changed */
	}
}

PG_FUNCTION_INFO_V1(chat_hint_trigger);

/*
 * chat_hint_trigger (chat._hint) records the hint of one changed row of
 * chat.messages or chat.channel_members, for the commit.  AFTER ROW, so
 * it sees only rows really written.
 */
Datum
chat_hint_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("chat._hint must be called as an AFTER ROW trigger")));
	if (lookup_cols(td->tg_relation, "messages", "seq", "deleted_at",
					&messages_cols))
		hint_message(td);
	else if (lookup_cols(td->tg_relation, "channel_members", "user_id",
						 "role", &members_cols))
		hint_member(td);
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("chat._hint is a trigger of chat.messages and chat.channel_members only")));
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(chat_hint_read);

/*
 * chat_hint_read (chat._hint_read(channel, seq, user_id)) records a read
 * receipt for the commit; chat_mark_read calls it.  The implicit read of a
 * sender's own message is not announced: the message itself says it.
 */
Datum
chat_hint_read(PG_FUNCTION_ARGS)
{
	chat_event	ev;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_VOID();
	memset(&ev, 0, sizeof(ev));
	ev.kind = CHAT_EV_READ;
	set_channel(&ev, PG_GETARG_DATUM(0));
	ev.seq = PG_GETARG_INT64(1);
	set_user(&ev, PG_GETARG_DATUM(2));
	if (ev.seq >= 0 && ev.user[0] != '\0')
		pending_add(&ev);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(chat_hint_reaction);

/*
 * chat_hint_reaction (chat._hint_reaction(channel, seq)) records, for the
 * commit, that the reactions of a message changed; chat_react and
 * chat_unreact call it.  A reaction changes no column the update trigger
 * watches (only the summary and change_seq), so it needs its own hint: the
 * workers then send "reaction" frames instead of "message_updated".
 */
Datum
chat_hint_reaction(PG_FUNCTION_ARGS)
{
	chat_event	ev;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_VOID();
	memset(&ev, 0, sizeof(ev));
	ev.kind = CHAT_EV_REACTION;
	set_channel(&ev, PG_GETARG_DATUM(0));
	ev.seq = PG_GETARG_INT64(1);
	if (ev.seq >= 1)
		pending_add(&ev);
	PG_RETURN_VOID();
}

void
chat_events_note(const chat_event *ev)
{
	pending_add(ev);
	pending_after_callbacks = true;
}

PG_FUNCTION_INFO_V1(chat_hint_change);

/*
 * chat_hint_change (chat._hint_change(kind, channel, seq, user_id))
 * records, for the commit, the hint the row trigger would have recorded:
 * 'm', 'u', 'd' with a seq, 'j', 'l' with a user id.  On a Citus cluster
 * the rows live on the nodes and the triggers are gone (chat_distribute),
 * so the functions that write them call this on the coordinator.
 */
Datum
chat_hint_change(PG_FUNCTION_ARGS)
{
	chat_event	ev;
	char		kind;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_VOID();
	kind = PG_GETARG_CHAR(0);
	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	set_channel(&ev, PG_GETARG_DATUM(1));
	switch (kind)
	{
		case CHAT_EV_MESSAGE:
		case CHAT_EV_EDIT:
		case CHAT_EV_DELETE:
			if (PG_ARGISNULL(2) || PG_GETARG_INT64(2) < 1)
				PG_RETURN_VOID();
			ev.seq = PG_GETARG_INT64(2);
			break;
		case CHAT_EV_JOIN:
		case CHAT_EV_LEAVE:
			if (PG_ARGISNULL(3))
				PG_RETURN_VOID();
			set_user(&ev, PG_GETARG_DATUM(3));
			if (ev.user[0] == '\0')
				PG_RETURN_VOID();
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid hint kind \"%c\"", kind),
					 errhint("The kinds are m, u, d (with a seq) and j, l (with a user id).")));
	}
	chat_events_note(&ev);
	PG_RETURN_VOID();
}

/* --- inspection -------------------------------------------------------- */

static uint64 take_cursor = 0;
static bool take_started = false;

PG_FUNCTION_INFO_V1(chat_events_take);

/*
 * chat_events_take (chat._events_take()) returns the records of this
 * database appended since this session's previous call (none on its first
 * call): what the workers were told.  For tests and for an operator who
 * wants to see the event path at work; superuser only (it shows user ids).
 * A kind 'x' row with nothing else says records were overwritten unread.
 */
Datum
chat_events_take(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ring_record *copy;
	int			n = 0;
	bool		lost = false;
	uint64		head;

	InitMaterializedSRF(fcinfo, 0);
	if (ring == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("chat event ring is not initialized"),
				 errhint("Add 'chat' to shared_preload_libraries.")));
	copy = palloc(ring->capacity * sizeof(ring_record));
	LWLockAcquire(ring->lock, LW_SHARED);
	head = pg_atomic_read_u64(&ring->head);
	if (!take_started)
	{
		take_cursor = head;
		take_started = true;
	}
	if (head - take_cursor > ring->capacity)
	{
		lost = true;
		take_cursor = head - ring->capacity;
	}
	for (; take_cursor < head; take_cursor++)
	{
		ring_record *r = &ring->records[take_cursor % ring->capacity];

		if (r->db == MyDatabaseId)
			copy[n++] = *r;
	}
	LWLockRelease(ring->lock);
	for (int i = -1; i < n; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {true, true, true, true};
		const chat_event *ev = i >= 0 ? &copy[i].ev : NULL;
		char		kind[2] = {CHAT_EV_RESYNC, '\0'};

		if (ev == NULL && !lost)
			continue;
		if (ev)
			kind[0] = ev->kind;
		values[0] = CStringGetTextDatum(kind);
		nulls[0] = false;
		if (ev && ev->channel[0])
		{
			values[1] = DirectFunctionCall1(uuid_in,
											CStringGetDatum(ev->channel));
			nulls[1] = false;
		}
		if (ev && (ev->kind == CHAT_EV_MESSAGE || ev->kind == CHAT_EV_EDIT ||
				   ev->kind == CHAT_EV_DELETE || ev->kind == CHAT_EV_REACTION ||
				   ev->kind == CHAT_EV_READ))
		{
			values[2] = Int64GetDatum(ev->seq);
			nulls[2] = false;
		}
		if (ev && ev->user[0])
		{
			values[3] = CStringGetTextDatum(ev->user);
			nulls[3] = false;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	pfree(copy);
	return (Datum) 0;
}
