/*
 * conn.h
 *	  One connection: its socket, WebSocket (wslay) and TLS state, queues
 *	  and timers.  For conn.c, and for the layers that act on connections
 *	  (upgrade.c, handlers.c, hub.c, server.c); nothing below them.
 */
#ifndef CHAT_CONN_H
#define CHAT_CONN_H

#include <wslay/wslay.h>

#include "core/server_int.h"

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
	bool		lagging;		/* queue was full: catching up from the table
								 * once it drains */
	bool		on_resume;		/* on srv->resume */
	chat_conn  *resume_next;
	int64_t		last_write_ms;	/* last time bytes left the queue */
	int64_t		hold_until_ms;	/* resume: channels held until the first sync
								 * or this time; 0 when none are */
	double		tokens;			/* rate limit bucket (handlers.c rate_ok) */
	int64_t		tokens_ms;		/* when the bucket was last filled */

	/*
	 * Reading is budgeted per loop pass (conn_may_read): a connection that
	 * used its budget, or whose unsent control frames hit the bound, stops
	 * reading; wslay may still hold whole frames it read, so the connection
	 * is put on srv->read_again to be served in the next pass.
	 */
	uint64_t	read_pass;		/* srv->pass the counters below belong to */
	size_t		read_bytes;		/* bytes read in that pass */
	chat_conn  *read_again_next;

	/*
	 * The small fields of every part, side by side so that no padding follows
	 * each (an idle connection costs its struct; see docs/performance.md,
	 * "Idle connections").
	 */
	uint32_t	events;			/* epoll events registered */
	uint32_t	sends_in_flight;	/* in a batch not finished: kept after
									 * death until it is (handlers.c) */
	int			read_frames;	/* frames begun in the read pass */
	int			ws_fragments;	/* frames of the message being received */
	bool		read_paused;	/* control frames queued: EPOLLIN off */
	bool		read_deferred;	/* on srv->read_again */
	bool		head_text;		/* a non-empty head line came before */
	bool		in_handshake;	/* counted in srv->n_handshakes */
	bool		ws_in_message;	/* a fragmented message is half received */
	bool		dirty;			/* on srv->dirty: has output to flush */

	/* input: the HTTP head, then bytes read past it that wslay must see */
	char	   *in;
	size_t		in_len;
	size_t		in_off;
	size_t		in_cap;			/* allocated size of in, while reading the
								 * head */
	size_t		head_scan;		/* bytes of the head searched for its end */
	size_t		head_line;		/* where the line being scanned starts */

	/* output: wslay's control frames, then our shared data frames */
	wslay_event_context_ptr ws; /* NULL while hibernating (conn_hibernate) */
	uint64_t	ws_fed;			/* bytes given to this ws context */
	uint64_t	ws_framed;		/* bytes of the frames it started */
	outq		out;
	void	   *tls;			/* SSL *, when the port speaks TLS */

	uint64_t	broadcast_mark; /* the last broadcast that reached it */

	chat_user  *user;
	chat_sub  **subs;
	size_t		n_subs;
	size_t		cap_subs;

	chat_conn  *dirty_next;
	chat_conn  *dead_next;
	chat_conn  *prev;			/* all connections, for sweeps */
	chat_conn  *next;
};

/* conn.c */
extern chat_conn *conn_new(chat_server *srv, int fd, const char *addr);
extern void conn_on_readable(chat_conn *c);
extern void conn_on_writable(chat_conn *c);
extern void conn_flush(chat_conn *c);
extern void conn_mark_dirty(chat_conn *c);
extern int	conn_start_ws(chat_conn *c);
extern void conn_send_text(chat_conn *c, const char *json, size_t len);
extern void conn_send_owned(chat_conn *c, proto_text t);
extern void conn_send_frame(chat_conn *c, chat_frame *f);
extern void conn_send_http(chat_conn *c, const char *resp, size_t len);
extern int	conn_send_upgrade(chat_conn *c, const char *resp, size_t len);
extern void conn_close(chat_conn *c, int code, const char *reason);
extern void conn_linger(chat_conn *c);
extern void conn_close_raw(chat_conn *c, int code);
extern void conn_set_lagging(chat_conn *c);
extern void conn_kill(chat_conn *c);
extern void conn_free(chat_conn *c);
extern void conn_ping(chat_conn *c);
extern bool conn_tls_pending(chat_conn *c);
extern bool conn_hibernate(chat_conn *c);
extern void conn_read_deferred(chat_server *srv);

#endif							/* CHAT_CONN_H */
