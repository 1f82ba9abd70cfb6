/*
 * events.h
 *	  The event path between the processes of one server: a ring of event
 *	  records in shared memory.  Every backend appends the hints of its
 *	  transaction when it commits (no NOTIFY, no lock shared by the whole
 *	  cluster); workers append their ephemeral events (typing, presence);
 *	  each reader keeps its own cursor and is woken through its latch.
 *	  See docs/architecture.md, "The event path".
 */
#ifndef CHAT_PG_EVENTS_H
#define CHAT_PG_EVENTS_H

#include "postgres.h"

#include "core/event.h"
#include "pg/shmem.h"

/* Readers' slots: one per worker, and one for the bus relay. */
#define CHAT_EVENTS_RELAY_SLOT CHAT_MAX_WORKERS

/* Shared memory (called from shmem.c's hooks). */
extern Size chat_events_shmem_size(void);
extern void chat_events_shmem_init(void);

/* Registers the transaction callbacks; from _PG_init, in the postmaster. */
extern void chat_events_register_callbacks(void);

/*
 * chat_events_attach makes this process a reader in slot (a worker id or
 * CHAT_EVENTS_RELAY_SLOT): it is woken when records of its database are
 * appended, and reads from now on.  Detached at exit.
 */
extern void chat_events_attach(int slot);

typedef void (*chat_events_fn) (const chat_event *ev, void *arg);

/*
 * chat_events_read hands every record of this database appended since the
 * last call to fn, in append order.  Returns false when records were lost
 * (the ring went round past this reader): the caller must re-read every
 * table.  Never throws.
 */
extern bool chat_events_read(chat_events_fn fn, void *arg);

/*
 * chat_events_publish appends ephemeral events now (not transactional)
 * and wakes the other readers of this database.
 */
extern void chat_events_publish(const chat_event *evs, int n);

/* The same for database db (the bus relay reaping a gateway's lease). */
extern void chat_events_publish_db(Oid db, const chat_event *evs, int n);

/*
 * A reader whose cursor lives in shared memory (a gateway's, read through
 * SQL by whichever backend serves it; pg/gateway.c): chat_events_head is
 * where it starts, chat_events_read_at reads records of database db from
 * *cursor on and advances it.  false: records were lost.
 */
extern uint64 chat_events_head(void);

/*
 * How many membership changes (joins, leaves, and RESYNC records, which may
 * stand for lost ones) the ring ever took; a join or leave record carries
 * its number in ev.seq.
 */
extern uint64 chat_events_members_seq(void);
extern bool chat_events_read_at(uint64 *cursor, Oid db, chat_events_fn fn,
								void *arg);

/*
 * chat_events_note records the hint ev for this transaction's commit, as
 * the row trigger does.  For changes whose trigger does not fire in this
 * backend: on a Citus coordinator the rows are written on the nodes
 * (docs/scaling.md, "Citus tier").
 */
extern void chat_events_note(const chat_event *ev);

#endif							/* CHAT_PG_EVENTS_H */
