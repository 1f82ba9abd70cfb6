/*
 * host_pq.h
 *	  core/host.h for the gateway: its node's lease in the server, presence
 *	  counted in the server's shared memory, typing and presence events
 *	  through the server's event ring, and the NOTIFY listener that turns
 *	  the bus's hints into chat_server_notify() calls.
 */
#ifndef CHAT_GATEWAY_HOST_PQ_H
#define CHAT_GATEWAY_HOST_PQ_H

#include <stdint.h>

#include "core/host.h"
#include "core/map.h"
#include "core/server.h"
#include "gateway/pq.h"

typedef struct gw_node
{
	gw_pq	   *pq;				/* requests (shared with the store) */
	gw_pq		listen;			/* LISTEN chat, nothing else */
	int			listen_gen;		/* +1 per new LISTEN connection: the fd number
								 * may be the same */
	chat_server *srv;
	const char *name;
	int			lease_ms;		/* chat.heartbeat_timeout */
	int64_t		handle;			/* 0: not attached */
	int			node_id;		/* the worker id in events */
	chat_map	users;			/* user id -> connections here (intptr_t) */
	bool		events_pending; /* "g:" seen: read chat._gateway_events */
	bool		resync_pending; /* the next attach must resync */
	int64_t		next_renew_ms;
	int64_t		next_listen_ms; /* reconnect backoff */
	int			bus_pid;		/* the server's bus relay, the only sender of
								 * NOTIFY chat believed; 0: not known */
	int64_t		bus_pid_checked_us; /* when it was last looked up */
	uint64_t	forged;			/* payloads from any other process, dropped */
	void		(*on_node_id) (void *arg, int node_id);
	void	   *on_node_id_arg;
} gw_node;

extern void gw_host_init(chat_host *host, gw_node *node);

/*
 * gw_node_tick does the node's periodic work (attach, renew, listen,
 * events) and returns the milliseconds until it wants to run again.
 */
extern int	gw_node_tick(gw_node *node, int64_t now_ms);

/*
 * gw_node_listen_fd: the LISTEN socket to wait on, -1 while none;
 * node->listen_gen changes whenever it is a new connection.
 */
extern int	gw_node_listen_fd(gw_node *node);

/* gw_node_notified reads what the LISTEN socket brought. */
extern void gw_node_notified(gw_node *node);

/* gw_node_detach says goodbye (shutdown): its users go offline at once. */
extern void gw_node_detach(gw_node *node);

#endif							/* CHAT_GATEWAY_HOST_PQ_H */
