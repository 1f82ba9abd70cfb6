/*
 * bus.c
 *	  The NOTIFY bus relay: one background worker, started only when
 *	  chat.notify_bus is on, that tells processes sharing no memory with the
 *	  workers (standalone gateways, other tools) what committed.
 *
 *	  It reads the event ring like a worker does and, once per wake-up,
 *	  sends what it read as NOTIFY chat payloads in one transaction: batched,
 *	  never one transaction per message, and never from an application's
 *	  transaction.  A payload carries no content and no user id (any role
 *	  may LISTEN): "m:<channel>:<seq>", "u:"/"d:" edits and deletes,
 *	  "j:<channel>"/"l:<channel>" membership changed, "r:<channel>:<seq>" a
 *	  read marker moved, "x:" hints were lost (re-read everything).  Typing
 *	  and presence, which mean nothing without a user id, stay in shared
 *	  memory: "g:" only says some were published, and a gateway reads them
 *	  through chat._gateway_events (gateway.c), which only chat_gateway may
 *	  call.  A listener treats every payload as a hint to read the tables.
 *
 *	  It also reaps the leases of gateways that stopped renewing them.
 *
 *	  Its own process: a NOTIFY commit waits for the cluster-wide notify
 *	  lock, which an application's notifying transaction holds across its
 *	  WAL flush; the WebSocket workers must never wait for that.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "pg/events.h"
#include "pg/gateway.h"
#include "pg/settings.h"
#include "pg/shmem.h"
#include "pg/worker.h"

PGDLLEXPORT void chat_bus_main(Datum arg);

/* Distinct payloads one transaction carries; beyond, one "x:" says it all. */
#define BUS_MAX_PAYLOADS 1000

typedef struct bus_batch
{
	HTAB	   *seen;			/* payload -> itself, for distinctness */
	char	  **payloads;
	int			n;
	bool		overflow;
	bool		ephemeral;		/* typing, presence or a receipt seen: "g:" */
	int64		members_seq;	/* newest membership change read: "h:" */
} bus_batch;

static void
batch_add(bus_batch *b, const chat_event *ev)
{
	char		text[CHAT_EVENT_TEXT_MAX];
	bool		found;
	char	   *entry;

	if ((ev->kind == CHAT_EV_JOIN || ev->kind == CHAT_EV_LEAVE ||
		 ev->kind == CHAT_EV_RESYNC) && ev->seq > b->members_seq)
		b->members_seq = ev->seq;
	if (ev->kind == CHAT_EV_TYPING || ev->kind == CHAT_EV_TYPING_STOP ||
		ev->kind == CHAT_EV_PRESENCE)
	{
		/* gateways read them through chat._gateway_events (gateway.c) */
		b->ephemeral = true;
		return;
	}
	/* the reader of a receipt too: "r:" names none */
	if (ev->kind == CHAT_EV_READ)
		b->ephemeral = true;
	if (b->overflow || chat_event_format(ev, false, text, sizeof(text)) < 0)
		return;
	if (ev->kind == CHAT_EV_RESYNC || b->n >= BUS_MAX_PAYLOADS)
	{
		b->overflow = true;
		return;
	}
	entry = hash_search(b->seen, text, HASH_ENTER, &found);
	if (!found)
		b->payloads[b->n++] = entry;
}

static void
on_event(const chat_event *ev, void *arg)
{
	batch_add((bus_batch *) arg, ev);
}

/* relay_once sends what the ring holds now, in one transaction. */
static void
relay_once(bool lost)
{
	bus_batch	b;
	HASHCTL		info;

	memset(&info, 0, sizeof(info));
	info.keysize = CHAT_EVENT_TEXT_MAX;
	info.entrysize = CHAT_EVENT_TEXT_MAX;
	info.hcxt = CurrentMemoryContext;
	memset(&b, 0, sizeof(b));
	b.seen = hash_create("chat bus payloads", 256, &info,
						 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	b.payloads = palloc(BUS_MAX_PAYLOADS * sizeof(char *));
	b.overflow = lost;
	if (!chat_events_read(on_event, &b))
		b.overflow = true;
	if (b.n > 0 || b.overflow || b.ephemeral || b.members_seq > 0)
	{
		StartTransactionCommand();
		if (b.overflow)
			Async_Notify("chat", "x:");
		else
			for (int i = 0; i < b.n; i++)
				Async_Notify("chat", b.payloads[i]);
		if (b.ephemeral)
			Async_Notify("chat", "g:");

		/*
		 * Last: every membership change up to this one was sent above (or is
		 * covered by the "x:"), so a gateway that hears this has heard them
		 * (chat._gateway_members_seq).
		 */
		if (b.members_seq > 0)
			Async_Notify("chat", psprintf("h:" INT64_FORMAT, b.members_seq));
		CommitTransactionCommand();
	}
	hash_destroy(b.seen);
	pfree(b.payloads);
}

void
chat_bus_main(Datum arg)
{
	MemoryContext cxt;

	chat_helper_start("relaying chat events to NOTIFY");
	chat_events_attach(CHAT_EVENTS_RELAY_SLOT);
	cxt = AllocSetContextCreate(TopMemoryContext, "chat bus",
								ALLOCSET_DEFAULT_SIZES);

	/* whatever happened before this start was not relayed */
	MemoryContextSwitchTo(cxt);
	relay_once(true);
	for (;;)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT |
						 WL_EXIT_ON_PM_DEATH, 1000, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextSwitchTo(cxt);
		chat_gateways_reap();
		relay_once(false);
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(cxt);
	}
}
