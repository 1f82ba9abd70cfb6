/*
 * server_int.h
 *	  The loop's shared header: struct chat_server (the state of one
 *	  worker's loop) and the services every layer may call (log.c,
 *	  outbox.c, dispatch.c's queue).  Every file of src/core may include
 *	  it; nothing outside src/core sees it.  The connection's internals are
 *	  in conn.h, the hub's in hub.h, the upper layers' entry points in
 *	  layers.h.
 */
#ifndef CHAT_SERVER_INT_H
#define CHAT_SERVER_INT_H

#include "core/event.h"
#include "core/http.h"
#include "core/map.h"
#include "core/net.h"
#include "core/outq.h"
#include "core/proto.h"
#include "core/server.h"

typedef struct chat_conn chat_conn;
typedef struct chat_room chat_room;
typedef struct chat_user chat_user;
typedef struct chat_sub chat_sub;
typedef struct pending_send pending_send;

struct chat_server
{
	chat_server_config cfg;
	char	   *origins;		/* private copy of cfg.allowed_origins */
	chat_store	store;
	chat_host	host;
	chat_log_fn log;

	/*
	 * The layers above call down; these are how a lower layer hands work up
	 * without naming it (chat_server_create installs them): a request head
	 * and a client message (conn.c to upgrade.c and handlers.c), and a
	 * message delivered from the table (hub.c to typing.c: it ends its
	 * sender's typing there).
	 */
	void		(*on_head) (chat_conn *c, const http_request *req);
	void		(*on_text) (chat_conn *c, const char *buf, size_t len);
	void		(*on_binary) (chat_conn *c);
	void		(*on_message_out) (chat_server *srv, const char *channel_id,
								   const char *sender_id);
	void	   *log_arg;

	void	   *tls_ctx;		/* SSL_CTX *, or NULL for plain ws:// */
	int			epfd;
	int			lfds[16];
	int			n_lfds;
	int64_t		accept_paused_until;	/* EMFILE back-off */
	int64_t		last_emfile_log_ms;

	chat_conn  *conns;			/* all live connections */
	size_t		n_conns;
	size_t		n_ws;
	uint64_t	next_conn_id;
	uint64_t	broadcast_mark; /* numbers broadcasts (hub_broadcast_frame) */
	chat_conn  *dirty;
	chat_conn  *dead;
	chat_conn  *resume;			/* lagging connections whose queue drained */
	chat_conn  *read_again;		/* connections to read again next pass */
	uint64_t	pass;			/* loop passes, for the read budgets */
	size_t		n_handshakes;	/* connections still reading their head */
	chat_map	handshakes_by_ip;	/* address -> that count, as (void *) */

	chat_map	rooms;
	chat_map	users;
	chat_room  *pending_rooms;	/* rooms with announced, unfetched seqs */
	bool		resync_all;

	chat_map	typing;			/* "channel/user" -> typing_entry */
	chat_event *outbox;			/* ephemeral events for the other workers */
	size_t		n_outbox;
	size_t		cap_outbox;
	chat_event *events;			/* hints and events to act on */
	size_t		n_events;
	size_t		cap_events;

	pending_send *batch;
	size_t		n_batch;
	size_t		cap_batch;
	struct inflight_batch *inflight;	/* CHAT_MAX_INFLIGHT of them */
	size_t		n_inflight;

	int64_t		now_ms;
	int64_t		last_poll_ms;
	int64_t		now_s;
	int64_t		next_sweep_ms;
	chat_server_stats stats;
};

/* log.c */
extern void srv_log(chat_server *srv, chat_log_level level,
					const char *fmt,...) __attribute__((format(printf, 3, 4)));

/* outbox.c */
extern void srv_publish(chat_server *srv, const chat_event *ev);
extern void srv_publish_flush(chat_server *srv);

/* dispatch.c */
extern void srv_process_notifications(chat_server *srv,
									  bool membership_only);

#endif							/* CHAT_SERVER_INT_H */
