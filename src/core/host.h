/*
 * host.h
 *	  The services the host gives the core beside storage (core/store.h):
 *	  what several workers share (presence, connection slots) and how events
 *	  travel between them.  The PostgreSQL side implements them over shared
 *	  memory (src/pg/worker.c, shmem.c, events.c); a standalone host could
 *	  use another shared store.  Every member may be NULL: the core then
 *	  counts on its own and hears from no other worker.
 */
#ifndef CHAT_HOST_H
#define CHAT_HOST_H

#include <stddef.h>
#include <stdbool.h>

#include "core/event.h"

typedef struct chat_host
{
	void	   *ctx;

	/*
	 * Presence across workers: the user gained (up) or lost a connection
	 * here.  Returns true when that made the user go online or offline
	 * everywhere.
	 */
	bool		(*presence) (void *ctx, const char *user_id, bool up);

	/*
	 * Connection slots across workers: admit(+1) takes one and returns false
	 * (taking nothing) when max are taken; admit(-1) gives one back.
	 */
	bool		(*admit) (void *ctx, int delta, int max);

	/* The same per client address (chat.max_connections_per_ip). */
	bool		(*admit_ip) (void *ctx, const char *addr, int delta, int max);

	/*
	 * Hand every event committed so far to chat_server_event() now, without
	 * waiting for the wake-up.  The core calls it right after a batch commit:
	 * a membership change that committed before the batch must be applied
	 * before the batch's messages are delivered.
	 */
	void		(*drain_events) (void *ctx);

	/*
	 * Hand ephemeral events (typing, presence) to the other workers; they
	 * reach every other worker through chat_server_event().  Never a channel
	 * anyone but the workers can read or write.
	 */
	void		(*publish) (void *ctx, const chat_event *evs, size_t n);
} chat_host;

#endif							/* CHAT_HOST_H */
