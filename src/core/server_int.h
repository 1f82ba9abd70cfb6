/*
 * server_int.h
 *	  Internal structures of the server core, shared by server.c (loop and
 *	  accept), conn.c (per-connection I/O and WebSocket glue), upgrade.c
 *	  (HTTP routing and authentication), hub.c (rooms and delivery) and
 *	  handlers.c (protocol commands).  Nothing outside src/core sees them.
 */
#ifndef CHAT_SERVER_INT_H
#define CHAT_SERVER_INT_H

#include <wslay/wslay.h>

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

/* A connection's subscription to one room, with its delivery position. */
typedef struct chat_sub
{
	chat_room  *room;
	chat_conn  *conn;
	size_t		room_idx;		/* index in room->subs */
	int64_t		pos;			/* last seq sent on this connection */
	/*
	 * Where the connection's stream of this channel began: ready's or
	 * joined's lastSeq, or the lastSeq of the sync that last restarted it.
	 * Every seq in (start, pos] has been sent here, so a sync from a
	 * lastSeq in [start, pos] needs to send nothing twice.
	 */
	int64_t		start;
	bool		paused;			/* catching up via sync: no live delivery */
	bool		held;			/* resume: no live delivery until the client
								 * stated its position (hub_release) */
	/*
	 * The channel change (change_seq) that this connection made and was
	 * answered for right away (on_edit_or_delete); the broadcast of that
	 * change skips it.  0 for none.
	 */
	int64_t		answered_change;
} chat_sub;

/* Everyone connected here who is subscribed to one channel. */
struct chat_room
{
	chat_uuid	id;
	chat_sub  **subs;
	size_t		n_subs;
	size_t		cap_subs;
	int64_t		notified_seq;	/* highest seq known to exist (announced, or
								 * committed here) */
	int64_t		change_seen;	/* newest change_seq broadcast; -1 unknown */
	bool		pending;		/* on srv->pending_rooms */
	chat_room  *pending_next;
};

/* One user's connections on this worker. */
struct chat_user
{
	char	   *id;
	chat_conn **conns;
	size_t		n_conns;
};

typedef enum conn_state
{
	CONN_HTTP,					/* reading the request head */
	CONN_WS,					/* upgraded, authenticated */
	CONN_DRAIN,					/* HTTP response queued: close after flush */
	CONN_DEAD					/* closed; freed after this iteration */
} conn_state;

struct chat_conn
{
	chat_server *srv;
	int			fd;
	conn_state	state;
	char		id[24];
	char		addr[NET_ADDR_LEN];
	int64_t		created_ms;
	int64_t		last_recv_ms;
	int64_t		last_ping_ms;
	int64_t		token_exp;		/* unix seconds */
	int64_t		drain_since;	/* when a closed WebSocket began to linger */
	bool		wr_shut;		/* shutdown(SHUT_WR) done */
	bool		io_failed;		/* the socket failed during wslay_event_recv */
	bool		closing;		/* a close frame is queued: no more data */
	bool		out_first;		/* write our queue before wslay's frames */
	bool		admitted;		/* holds a slot from store.admit */
	bool		ip_admitted;	/* holds a slot from store.admit_ip */
	bool		lagging;		/* queue was full: catching up from the
								 * table once it drains */
	bool		on_resume;		/* on srv->resume */
	chat_conn  *resume_next;
	int64_t		last_write_ms;	/* last time bytes left the queue */
	int64_t		hold_until_ms;	/* resume: channels held until the first
								 * sync or this time; 0 when none are */
	double		tokens;			/* rate limit bucket (sends, typing) */
	int64_t		tokens_ms;		/* when the bucket was last filled */
	uint32_t	events;			/* epoll events registered */

	/* input: the HTTP head, then bytes read past it that wslay must see */
	char	   *in;
	size_t		in_len;
	size_t		in_off;

	/* output: wslay's control frames, then our shared data frames */
	wslay_event_context_ptr ws; /* NULL while hibernating (conn_hibernate) */
	uint64_t	ws_fed;			/* bytes given to this ws context */
	uint64_t	ws_framed;		/* bytes of the frames it started */
	bool		ws_in_message;	/* a fragmented message is half received */
	outq		out;
	void	   *tls;			/* SSL *, when the port speaks TLS */

	uint64_t	broadcast_mark; /* the last broadcast that reached it */

	chat_user  *user;
	chat_sub  **subs;
	size_t		n_subs;
	size_t		cap_subs;

	bool		dirty;			/* on srv->dirty: has output to flush */
	chat_conn  *dirty_next;
	chat_conn  *dead_next;
	chat_conn  *prev;			/* all connections, for sweeps */
	chat_conn  *next;
};

/* A send waiting for this iteration's group commit. */
typedef struct pending_send
{
	chat_conn  *conn;			/* NULL once the connection died */
	char		ref[PROTO_MAX_REF + 1];
	chat_cmd	cmd;			/* owns content/attachments */
} pending_send;

struct chat_server
{
	chat_server_config cfg;
	char	   *origins;		/* private copy of cfg.allowed_origins */
	chat_store	store;
	chat_log_fn log;
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

	int64_t		now_ms;
	int64_t		last_poll_ms;
	int64_t		now_s;
	int64_t		next_sweep_ms;
	chat_server_stats stats;
};

/* server.c */
extern void srv_log(chat_server *srv, chat_log_level level,
					const char *fmt,...) __attribute__((format(printf, 3, 4)));

extern void srv_publish(chat_server *srv, const chat_event *ev);
extern void srv_process_notifications(chat_server *srv,
									  bool membership_only);

/* conn.c */
extern chat_conn *conn_new(chat_server *srv, int fd, const char *addr);
extern void conn_on_readable(chat_conn *c);
extern void conn_on_writable(chat_conn *c);
extern void conn_flush(chat_conn *c);
extern void conn_mark_dirty(chat_conn *c);
extern int	conn_start_ws(chat_conn *c);
extern void conn_send_text(chat_conn *c, const char *json, size_t len);
extern void conn_send_owned(chat_conn *c, char *json, size_t len);
extern void conn_send_frame(chat_conn *c, chat_frame *f);
extern void conn_send_http(chat_conn *c, const char *resp, size_t len);
extern void conn_close(chat_conn *c, int code, const char *reason);
extern void conn_linger(chat_conn *c);
extern void conn_close_raw(chat_conn *c, int code);
extern void conn_set_lagging(chat_conn *c);
extern void conn_kill(chat_conn *c);
extern void conn_free(chat_conn *c);
extern void conn_ping(chat_conn *c);
extern bool conn_tls_pending(chat_conn *c);
extern bool conn_hibernate(chat_conn *c);

/* upgrade.c */
extern void upgrade_on_head(chat_conn *c, const http_request *req);

/* hub.c */
extern chat_room *hub_room(chat_server *srv, const char *channel_id,
						   bool create);
extern chat_user *hub_user(chat_server *srv, const char *user_id,
						   bool create);
extern void hub_attach(chat_conn *c, const char *user_id);
extern void hub_detach(chat_conn *c);
extern chat_sub *hub_subscribe(chat_conn *c, const char *channel_id,
							   int64_t pos, int64_t last_change);
extern void hub_unsubscribe(chat_conn *c, chat_sub *s);
extern chat_sub *hub_find_sub(chat_conn *c, const char *channel_id);
extern chat_sub *hub_join_now(chat_conn *c, const char *channel_id);
extern bool hub_catch_up(chat_sub *s, int64_t upto);
extern void hub_hold(chat_conn *c, int64_t until_ms);
extern void hub_release(chat_sub *s);
extern void hub_release_held(chat_conn *c);
extern bool hub_deliver_to(chat_sub *s, chat_frame *f, int64_t seq);
extern void hub_resume(chat_conn *c);
extern void hub_announce(chat_server *srv, const char *channel_id,
						 int64_t seq);
extern void hub_deliver_pending(chat_server *srv);
extern void hub_deliver_committed(chat_server *srv, const chat_message *m,
								  chat_conn *except);
extern void hub_broadcast_frame(chat_room *room, chat_frame *f,
								const chat_user *except_user, uint64_t mark);
extern void hub_broadcast_json(chat_room *room, const char *json,
							   size_t len, const chat_user *except_user);
extern void hub_member_joined(chat_server *srv, const char *channel_id,
							  const char *user_id);
extern void hub_member_left(chat_server *srv, const char *channel_id,
							const char *user_id);
extern void hub_message_changed(chat_server *srv, const char *channel_id,
								int64_t seq, char kind);
extern void hub_read_moved(chat_server *srv, const char *channel_id,
						   int64_t seq, const char *user_id);
extern void hub_room_resync(chat_server *srv, chat_room *r);
extern void hub_resync_members(chat_server *srv);

/* typing.c */
extern void typing_event(chat_server *srv, const char *channel_id,
						 const char *user_id);
extern void typing_stop(chat_server *srv, const char *channel_id,
						const char *user_id);
extern void typing_stop_user(chat_server *srv, const char *user_id);
extern int64_t typing_expire(chat_server *srv);
extern void typing_remote(chat_server *srv, const chat_event *ev);
extern void typing_destroy(chat_server *srv);

/* presence.c */
extern void presence_changed(chat_server *srv, const char *user_id,
							 bool online);
extern void presence_remote(chat_server *srv, const chat_event *ev);

/* handlers.c */
extern void handle_text(chat_conn *c, const char *buf, size_t len);
extern void handle_binary(chat_conn *c);
extern void batch_commit(chat_server *srv);
extern void send_error(chat_conn *c, chat_err err, const char *message,
					   const char *client_id, const char *ref);

#endif							/* CHAT_SERVER_INT_H */
