/*
 * gateway.c
 *	  The server's side of standalone gateways (src/gateway, docs/scaling.md).
 *
 *	  A gateway holds WebSockets on another host and shares no memory with
 *	  the server, so what the workers keep in shared memory it reaches
 *	  through these SQL functions, which only chat_gateway may call:
 *
 *	  - a slot with a lease (chat._gateway_attach / _renew / _detach): the
 *		gateway's node id for presence, renewed every heartbeat interval.
 *		A lease that runs out (the gateway died or stopped) is reaped by
 *		the bus relay or by any other gateway's renewal: its users leave
 *		presence and those who went offline are announced everywhere.
 *	  - presence (chat._gateway_presence / _rejoin): counted in the same
 *		shared table as the workers' connections, so chat_online(), the
 *		workers' ready frames and the gateways all see one answer.
 *	  - typing and presence events (chat._gateway_publish / _events), and
 *		the reader of a read receipt (which the NOTIFY payload leaves out): the
 *		gateway writes them into the event ring as a worker does; it reads
 *		the other nodes' ones from a cursor kept in its slot, when the bus
 *		relay's "g:" hint says there are new ones.  The NOTIFY payload never
 *		names a user; only chat_gateway reads user ids, through SQL.
 *
 *	  A handle is generation * 64 + slot: a gateway that was reaped (and
 *	  whose slot may serve another gateway since) gets SQLSTATE 55000 and
 *	  attaches again.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "core/event.h"
#include "pg/events.h"
#include "pg/gateway.h"
#include "pg/shmem.h"

#define HANDLE_SLOTS 64

typedef struct gw_slot
{
	bool		used;
	int64		gen;
	Oid			db;
	TimestampTz expires;
	uint64		cursor;			/* next event ring record to read */
	char		node[64];		/* the gateway's name, for the log */
} gw_slot;

typedef struct gw_shared
{
	LWLock	   *lock;
	int64		next_gen;
	gw_slot		slots[CHAT_MAX_GATEWAYS];
} gw_shared;

static gw_shared *gws = NULL;

StaticAssertDecl(CHAT_MAX_GATEWAYS <= HANDLE_SLOTS, "handle holds the slot");

Size
chat_gateways_shmem_size(void)
{
	return MAXALIGN(sizeof(gw_shared));
}

void
chat_gateways_shmem_init(void)
{
	bool		found;

	gws = ShmemInitStruct("chat gateways", sizeof(gw_shared), &found);
	if (!found)
	{
		memset(gws, 0, sizeof(*gws));
		gws->lock = &(GetNamedLWLockTranche("chat gateways"))->lock;
		gws->next_gen = 1;
	}
}

static void
require_gateways(void)
{
	if (gws == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("chat shared memory is not initialized"),
				 errhint("Add 'chat' to shared_preload_libraries.")));
}

static int
node_of(int slot)
{
	return CHAT_MAX_WORKERS + slot;
}

/* announce_offline tells every node that users went offline. */
static void
announce(Oid db, char **users, int n, bool online)
{
	chat_event	evs[64];
	int			k = 0;

	for (int i = 0; i < n; i++)
	{
		chat_event *ev = &evs[k++];

		memset(ev, 0, sizeof(*ev));
		ev->kind = CHAT_EV_PRESENCE;
		/* not the gateway's id: the gateway itself must relay it too */
		ev->worker = CHAT_NODE_SYSTEM;
		ev->online = online;
		strlcpy(ev->user, users[i], sizeof(ev->user));
		if (k == lengthof(evs) || i == n - 1)
		{
			chat_events_publish_db(db, evs, k);
			k = 0;
		}
	}
}

/* drop_slot frees slot (already marked unused) and announces who left. */
static void
drop_node(int slot, Oid db, const char *name, const char *why)
{
	int			n;
	char	  **users = chat_presence_drop_node(node_of(slot), &n);

	ereport(LOG,
			(errmsg("chat gateway \"%s\" (node %d) %s: %d user(s) went offline",
					name, node_of(slot), why, n)));
	announce(db, users, n, false);
}

void
chat_gateways_reap(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int			dead[CHAT_MAX_GATEWAYS];
	Oid			dbs[CHAT_MAX_GATEWAYS];
	char		names[CHAT_MAX_GATEWAYS][64];
	int			n = 0;

	if (gws == NULL)
		return;
	LWLockAcquire(gws->lock, LW_EXCLUSIVE);
	for (int i = 0; i < CHAT_MAX_GATEWAYS; i++)
		if (gws->slots[i].used && gws->slots[i].expires < now)
		{
			gws->slots[i].used = false;
			dbs[n] = gws->slots[i].db;
			strlcpy(names[n], gws->slots[i].node, sizeof(names[n]));
			dead[n++] = i;
		}
	LWLockRelease(gws->lock);
	for (int i = 0; i < n; i++)
		drop_node(dead[i], dbs[i], names[i], "lease expired");
}

/*
 * lookup checks handle under the lock (held by the caller) and returns
 * its slot; SQLSTATE 55000 when the lease was lost.
 */
static gw_slot *
lookup(int64 handle)
{
	int			i = (int) (handle % HANDLE_SLOTS);
	gw_slot    *s;

	if (handle <= 0 || i >= CHAT_MAX_GATEWAYS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("not a chat gateway handle: " INT64_FORMAT, handle)));
	s = &gws->slots[i];
	if (!s->used || s->gen != handle / HANDLE_SLOTS || s->db != MyDatabaseId)
	{
		LWLockRelease(gws->lock);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("chat gateway lease lost"),
				 errhint("The gateway attaches again.")));
	}
	return s;
}

static int
slot_of(int64 handle)
{
	return (int) (handle % HANDLE_SLOTS);
}

PG_FUNCTION_INFO_V1(chat_gateway_attach);
PG_FUNCTION_INFO_V1(chat_gateway_renew);
PG_FUNCTION_INFO_V1(chat_gateway_detach);
PG_FUNCTION_INFO_V1(chat_gateway_presence);
PG_FUNCTION_INFO_V1(chat_gateway_rejoin);
PG_FUNCTION_INFO_V1(chat_gateway_publish);
PG_FUNCTION_INFO_V1(chat_gateway_events);
PG_FUNCTION_INFO_V1(chat_gateway_members_seq);

/*
 * chat._gateway_members_seq() returns bigint: how many membership changes
 * this server's event ring ever took.  A gateway compares it with the
 * number the bus relay last told it of ("h:<n>"): when it is ahead, the
 * gateway has not yet heard of a change that committed before its batch,
 * and the batch returns its group channels' members (docs/scaling.md).
 */
Datum
chat_gateway_members_seq(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64((int64) chat_events_members_seq());
}

/*
 * chat._gateway_attach(node text, lease_ms integer) returns bigint: a new
 * slot whose lease runs lease_ms (the gateway's heartbeat timeout).
 */
Datum
chat_gateway_attach(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int32		lease_ms = PG_GETARG_INT32(1);
	int64		handle = 0;

	require_gateways();
	if (lease_ms < 1000 || lease_ms > 3600 * 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a gateway lease is 1 s to 1 h")));
	chat_gateways_reap();
	LWLockAcquire(gws->lock, LW_EXCLUSIVE);
	for (int i = 0; i < CHAT_MAX_GATEWAYS; i++)
	{
		gw_slot    *s = &gws->slots[i];

		if (s->used)
			continue;
		s->used = true;
		s->gen = gws->next_gen++;
		s->db = MyDatabaseId;
		s->expires = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												 lease_ms);
		s->cursor = chat_events_head();
		strlcpy(s->node, name, sizeof(s->node));
		handle = s->gen * HANDLE_SLOTS + i;
		break;
	}
	LWLockRelease(gws->lock);
	if (handle == 0)
		ereport(ERROR,
				(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
				 errmsg("all %d chat gateway slots are taken",
						CHAT_MAX_GATEWAYS)));
	ereport(LOG, (errmsg("chat gateway \"%s\" attached as node %d", name,
						 node_of(slot_of(handle)))));
	PG_RETURN_INT64(handle);
}

/*
 * chat._gateway_renew(handle, lease_ms) returns integer: extends the lease
 * and returns the gateway's node id (its worker id in events).
 */
Datum
chat_gateway_renew(PG_FUNCTION_ARGS)
{
	int64		handle = PG_GETARG_INT64(0);
	int32		lease_ms = PG_GETARG_INT32(1);
	gw_slot    *s;

	require_gateways();
	chat_gateways_reap();
	LWLockAcquire(gws->lock, LW_EXCLUSIVE);
	s = lookup(handle);
	s->expires = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											 Max(lease_ms, 1000));
	LWLockRelease(gws->lock);
	PG_RETURN_INT32(node_of(slot_of(handle)));
}

/* chat._gateway_detach(handle): a goodbye; its users leave at once. */
Datum
chat_gateway_detach(PG_FUNCTION_ARGS)
{
	int64		handle = PG_GETARG_INT64(0);
	gw_slot    *s;
	char		name[64];

	require_gateways();
	LWLockAcquire(gws->lock, LW_EXCLUSIVE);
	s = lookup(handle);
	s->used = false;
	strlcpy(name, s->node, sizeof(name));
	LWLockRelease(gws->lock);
	drop_node(slot_of(handle), MyDatabaseId, name, "detached");
	PG_RETURN_VOID();
}

/* check_handle errors out unless handle holds a lease now. */
static void
check_handle(int64 handle)
{
	require_gateways();
	LWLockAcquire(gws->lock, LW_SHARED);
	(void) lookup(handle);
	LWLockRelease(gws->lock);
}

static void
user_arg(text * t, char *user, size_t len)
{
	if (VARSIZE_ANY_EXHDR(t) < 1 || VARSIZE_ANY_EXHDR(t) >= len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("user id must be 1 to %d bytes", JWT_MAX_SUB)));
	text_to_cstring_buffer(t, user, len);
}

/*
 * chat._gateway_presence(handle, user_id, up) returns boolean: a
 * connection of user_id opened (up) or closed on the gateway; true when
 * that made the user go online or offline everywhere (the gateway then
 * announces it, as a worker does).
 */
Datum
chat_gateway_presence(PG_FUNCTION_ARGS)
{
	int64		handle = PG_GETARG_INT64(0);
	char		user[JWT_MAX_SUB + 1];
	bool		up = PG_GETARG_BOOL(2);
	int			node = node_of(slot_of(handle));

	user_arg(PG_GETARG_TEXT_PP(1), user, sizeof(user));
	check_handle(handle);
	PG_RETURN_BOOL(up ? chat_presence_add(user, node) :
				   chat_presence_remove(user, node));
}

/*
 * chat._gateway_rejoin(handle, users text[]) returns integer: after
 * attaching again, the gateway's open connections (one element each)
 * count again; the users that made go online are announced to every node,
 * the gateway included.  Returns how many went online.
 */
Datum
chat_gateway_rejoin(PG_FUNCTION_ARGS)
{
	int64		handle = PG_GETARG_INT64(0);
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
	int			node = node_of(slot_of(handle));
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				n_up = 0;
	char	  **up;

	check_handle(handle);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls,
					  &n);
	up = palloc(sizeof(char *) * (n + 1));
	for (int i = 0; i < n; i++)
	{
		char		user[JWT_MAX_SUB + 1];

		if (nulls[i])
			continue;
		user_arg(DatumGetTextPP(elems[i]), user, sizeof(user));
		if (chat_presence_add(user, node))
			up[n_up++] = pstrdup(user);
	}
	announce(MyDatabaseId, up, n_up, true);
	PG_RETURN_INT32(n_up);
}

/*
 * chat._gateway_publish(handle, events text[]): the gateway's typing and
 * presence events (core/event.h text forms) for every other node.  The
 * worker id is the gateway's own whatever the text says; other kinds are
 * refused (hints come only from committed transactions).
 */
Datum
chat_gateway_publish(PG_FUNCTION_ARGS)
{
	int64		handle = PG_GETARG_INT64(0);
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	chat_event *evs;
	int			k = 0;

	check_handle(handle);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls,
					  &n);
	evs = palloc(sizeof(chat_event) * (n + 1));
	for (int i = 0; i < n; i++)
	{
		text	   *t;
		chat_event *ev = &evs[k];

		if (nulls[i])
			continue;
		t = DatumGetTextPP(elems[i]);
		if (!chat_event_parse(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), ev) ||
			(ev->kind != CHAT_EV_TYPING && ev->kind != CHAT_EV_TYPING_STOP &&
			 ev->kind != CHAT_EV_PRESENCE))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("not a typing or presence event: \"%s\"",
							text_to_cstring(t))));
		ev->worker = node_of(slot_of(handle));
		k++;
	}
	chat_events_publish(evs, k);
	PG_RETURN_VOID();
}

typedef struct events_out
{
	ReturnSetInfo *rsinfo;
	int			self;
} events_out;

static void
put_event(const chat_event *ev, void *arg)
{
	events_out *o = arg;
	char		text[CHAT_EVENT_TEXT_MAX];
	Datum		v[1];
	bool		nulls[1] = {false};

	/*
	 * Hints travel by NOTIFY, but a read receipt's NOTIFY names no reader:
	 * the reader comes from here.  A gateway's own typing and presence are
	 * not news to it.
	 */
	if (ev->kind == CHAT_EV_READ)
	{
		if (ev->user[0] == '\0')
			return;
	}
	else if ((ev->kind != CHAT_EV_TYPING && ev->kind != CHAT_EV_TYPING_STOP &&
			  ev->kind != CHAT_EV_PRESENCE) || ev->worker == o->self)
		return;
	if (chat_event_format(ev, true, text, sizeof(text)) < 0)
		return;
	v[0] = CStringGetTextDatum(text);
	tuplestore_putvalues(o->rsinfo->setResult, o->rsinfo->setDesc, v, nulls);
}

/*
 * chat._gateway_events(handle) returns setof text: the typing and
 * presence events of the other nodes and the read receipts (with their
 * reader) since the previous call, oldest first; "x:" when some were
 * overwritten unread.
 */
Datum
chat_gateway_events(PG_FUNCTION_ARGS)
{
	int64		handle = PG_GETARG_INT64(0);
	events_out	o;
	gw_slot    *s;
	uint64		cursor;
	bool		complete;

	require_gateways();
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	o.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	o.self = node_of(slot_of(handle));
	LWLockAcquire(gws->lock, LW_SHARED);
	s = lookup(handle);
	cursor = s->cursor;
	LWLockRelease(gws->lock);

	/*
	 * One reader per slot (the gateway calls from one connection), so the
	 * cursor is read and written back without holding the lock meanwhile.
	 */
	complete = chat_events_read_at(&cursor, MyDatabaseId, put_event, &o);
	if (!complete)
	{
		Datum		v[1] = {CStringGetTextDatum("x:")};
		bool		nulls[1] = {false};

		tuplestore_putvalues(o.rsinfo->setResult, o.rsinfo->setDesc, v, nulls);
	}
	LWLockAcquire(gws->lock, LW_EXCLUSIVE);
	s = lookup(handle);
	s->cursor = cursor;
	LWLockRelease(gws->lock);
	return (Datum) 0;
}
