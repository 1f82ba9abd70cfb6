/*
 * outbox.c
 *	  Ephemeral events (typing, presence) for the other workers: queued
 *	  during an iteration by the layers that make them, handed to the host
 *	  (chat_host.publish) once at its end by the loop.
 */
#include <stdlib.h>

#include "core/server_int.h"
#include "core/vec.h"

/*
 * srv_publish queues an ephemeral event for the other workers; the queue
 * goes out in one go at the end of the iteration.
 */
void
srv_publish(chat_server *srv, const chat_event *ev)
{
	if (srv->host.publish == NULL)
		return;
	if (vec_reserve((void **) &srv->outbox, &srv->cap_outbox,
					srv->n_outbox + 1, sizeof(chat_event)) != 0)
		return;					/* ephemeral: losing one is harmless */
	srv->outbox[srv->n_outbox++] = *ev;
}

/* srv_publish_flush hands the queue to the host, once per iteration. */
void
srv_publish_flush(chat_server *srv)
{
	if (srv->n_outbox == 0)
		return;
	srv->host.publish(srv->host.ctx, srv->outbox, srv->n_outbox);
	srv->n_outbox = 0;
}
