/*
 * conn.c
 *	  One client connection: reading the HTTP head, the wslay session after
 *	  the upgrade, the outbound queue and closing.  A connection is never
 *	  freed inside its own callback: conn_kill marks it dead and the server
 *	  reaps it after the loop iteration, as Redis does with freeClientAsync.
 *
 *	  Output has two sources that must never interleave mid-frame: wslay's
 *	  own queue (pong, close) and our shared data frames (outq).  wslay
 *	  writes only while no data frame is half-written, and data frames are
 *	  written only while wslay has nothing pending.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/conn.h"
#include "core/tls.h"

/* The request head buffer starts small and doubles up to HTTP_MAX_HEAD. */
#define HEAD_FIRST_ALLOC 2048

/*
 * What one connection may read in one pass of the loop, so that a client
 * sending flat out cannot hold the loop while others wait (a ping flood
 * made another client's ping take a second).  Past it the connection is
 * served again in the next pass (srv->read_again).
 */
#define READ_BUDGET_BYTES 65536
#define READ_BUDGET_FRAMES 256

/*
 * wslay queues a pong for every ping, outside chat.max_outbound_bytes.  A
 * connection with this many control frames unsent stops being read until
 * half of them left (the client is not reading its pongs): the pings stay
 * in the kernel's buffers, not in ours, and the heartbeat timeout ends a
 * client that never reads.  Frames wslay already holds in its 4 kB input
 * buffer are still answered, so the bound is soft by at most that much.
 */
#define MAX_CTRL_QUEUED 64

/*
 * Fragments of one message.  wslay keeps every fragment as its own chunk
 * (two allocations even for one byte), so 60,000 one-byte fragments under
 * the message cap cost megabytes; past this many the connection is closed
 * with 1008.  Browsers and common clients send a message in one frame.
 */
#define MAX_FRAGMENTS 128

static void conn_set_events(chat_conn *c, uint32_t events);
static void conn_read_later(chat_conn *c);
static void handshake_done(chat_conn *c);
static void handshake_admit(chat_conn *c);
static void conn_closing(chat_conn *c);
static int	ws_wake(chat_conn *c);
static bool ws_awake(chat_conn *c);

/* conn_recv reads from the socket, through TLS when the port speaks it. */
static ssize_t
conn_recv(chat_conn *c, void *buf, size_t len)
{
	if (c->tls)
		return tls_read(c->tls, buf, len);
	return recv(c->fd, buf, len, 0);
}

/*
 * handshake_count adds delta to the connections from c's address that are
 * still reading their head; the map holds counts as pointers, and no
 * entry for zero.
 */
static void
handshake_count(chat_conn *c, int delta)
{
	chat_server *srv = c->srv;
	uintptr_t	n = (uintptr_t) map_get(&srv->handshakes_by_ip, c->addr);

	if (delta > 0)
	{
		if (map_put(&srv->handshakes_by_ip, c->addr, (void *) (n + 1)) != 0)
			return;				/* out of memory: not counted, not refused */
		srv->n_handshakes++;
		c->in_handshake = true;
		return;
	}
	if (n <= 1)
		map_del(&srv->handshakes_by_ip, c->addr);
	else
		map_put(&srv->handshakes_by_ip, c->addr, (void *) (n - 1));
	srv->n_handshakes--;
	c->in_handshake = false;
}

/* handshake_done: c has left the head-reading state (upgraded, answered,
 * closed). */
static void
handshake_done(chat_conn *c)
{
	if (c->in_handshake)
		handshake_count(c, -1);
}

/*
 * handshake_admit counts a new connection as upgrading, or refuses it when
 * its address (chat.max_handshakes_per_ip) or the worker
 * (chat.max_handshakes) has too many still upgrading: each holds a head
 * buffer and a descriptor until chat.handshake_timeout, whether or not it
 * ever sends a token.  The refusal is a complete HTTP response (429 or
 * 503) followed by the usual lingering close; a TLS port just closes.
 */
static void
handshake_admit(chat_conn *c)
{
	chat_server *srv = c->srv;
	const chat_server_config *cfg = &srv->cfg;
	int			status = 0;
	char		buf[512];
	int			n;

	if (cfg->max_handshakes > 0 && srv->n_handshakes >= (size_t) cfg->max_handshakes)
		status = 503;
	else if (cfg->max_handshakes_per_ip > 0 &&
			 (uintptr_t) map_get(&srv->handshakes_by_ip, c->addr) >=
			 (uintptr_t) cfg->max_handshakes_per_ip)
		status = 429;
	if (status == 0)
	{
		handshake_count(c, 1);
		return;
	}
	srv->stats.handshakes_refused++;
	if (c->tls)
	{
		conn_kill(c);
		return;
	}
	n = http_error_response(status, status == 429 ? "too_many_connections" :
							"unavailable",
							status == 429 ?
							"too many connections upgrading from this address" :
							"too many connections upgrading", buf, sizeof(buf));
	if (n < 0)
		conn_kill(c);
	else
		conn_send_http(c, buf, (size_t) n);
}

chat_conn  *
conn_new(chat_server *srv, int fd, const char *addr)
{
	chat_conn  *c = calloc(1, sizeof(chat_conn));
	struct epoll_event ev;

	if (c == NULL)
		return NULL;
	c->srv = srv;
	c->fd = fd;
	c->state = CONN_HTTP;
	snprintf(c->id, sizeof(c->id), "%d-%llu", srv->cfg.worker_id,
			 (unsigned long long) ++srv->next_conn_id);
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->created_ms = c->last_recv_ms = c->last_ping_ms = srv->now_ms;
	outq_init(&c->out);
	if (srv->tls_ctx && (c->tls = tls_session(srv->tls_ctx, fd)) == NULL)
	{
		free(c);
		return NULL;
	}

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
	{
		if (c->tls)
			tls_session_free(c->tls);
		free(c);
		return NULL;
	}
	c->events = EPOLLIN;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->n_conns++;
	handshake_admit(c);
	return c;
}

/*
 * head_complete scans the bytes received since the last call for the end
 * of the head (an empty line after a non-empty one; a line ends with LF or
 * CRLF, as http.c reads it), so the head is parsed once, when it is all
 * there, instead of on every read.
 */
static bool
head_complete(chat_conn *c)
{
	for (; c->head_scan < c->in_len; c->head_scan++)
	{
		size_t		len;

		if (c->in[c->head_scan] != '\n')
			continue;
		len = c->head_scan - c->head_line;
		if (len > 0 && c->in[c->head_scan - 1] == '\r')
			len--;
		c->head_line = c->head_scan + 1;
		if (len > 0)
			c->head_text = true;
		else if (c->head_text)
		{
			c->head_scan++;
			return true;
		}
	}
	return false;
}

/*
 * conn_read_head accumulates the request head and hands it to upgrade.c.
 * The buffer grows with the head (most are under 2 kB) up to
 * HTTP_MAX_HEAD.
 */
static void
conn_read_head(chat_conn *c)
{
	http_request *req;
	http_parse_status st;
	bool		complete = false;

	for (;;)
	{
		ssize_t		r;

		if (c->in_len == c->in_cap)
		{
			size_t		cap = c->in_cap ? c->in_cap * 2 : HEAD_FIRST_ALLOC;
			char	   *in;

			if (c->in_cap >= HTTP_MAX_HEAD)
				break;
			if (cap > HTTP_MAX_HEAD)
				cap = HTTP_MAX_HEAD;
			if ((in = realloc(c->in, cap)) == NULL)
			{
				conn_kill(c);
				return;
			}
			c->in = in;
			c->in_cap = cap;
		}
		r = conn_recv(c, c->in + c->in_len, c->in_cap - c->in_len);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
		{
			conn_kill(c);
			return;
		}
		if (r < 0)
			break;
		c->in_len += (size_t) r;
		if ((complete = head_complete(c)))
			break;
	}
	if (!complete && c->in_len < HTTP_MAX_HEAD)
		return;					/* more to come: nothing to parse yet */
	req = malloc(sizeof(http_request));
	if (req == NULL)
	{
		conn_kill(c);
		return;
	}
	st = http_parse_request(c->in, c->in_len, req);
	if (st == HTTP_COMPLETE)
	{
		c->in_off = req->head_len;
		c->srv->on_head(c, req);
		/* frames sent along with the upgrade: no new data will signal them */
		if (c->state == CONN_WS && c->in && c->in_off < c->in_len)
		{
			free(req);
			conn_on_readable(c);
			return;
		}
	}
	else if (st == HTTP_BAD_REQUEST ||
			 (st == HTTP_INCOMPLETE && c->in_len < HTTP_MAX_HEAD))
	{
		char		buf[512];
		int			n = http_error_response(400, "bad_request",
											"malformed HTTP request", buf,
											sizeof(buf));

		if (n < 0)
			conn_kill(c);
		else
			conn_send_http(c, buf, n);
	}
	else
	{
		char		buf[512];
		int			n = http_error_response(431, "too_large",
											"request head too large", buf,
											sizeof(buf));

		if (n < 0)
			conn_kill(c);
		else
			conn_send_http(c, buf, n);
	}
	free(req);
}

void
conn_on_readable(chat_conn *c)
{
	if (c->state == CONN_HTTP)
		conn_read_head(c);
	else if (c->state == CONN_WS)
	{
		int			rc;

		c->io_failed = false;
		if (!ws_awake(c))
			return;
		rc = wslay_event_recv(c->ws);
		if (rc != 0 && !c->io_failed && rc != WSLAY_ERR_NOMEM)
		{
			/*
			 * The socket is fine, so wslay's frame layer refused a frame (a
			 * fragmented or oversized control frame).  wslay would send a
			 * close without a code; RFC 6455 wants 1002.
			 */
			conn_close_raw(c, 1002);
		}
		else if (rc != 0)
		{
			conn_kill(c);
			return;
		}
		/* wslay stopped reading: it queued a close (1007, 1009, ...) */
		if (!wslay_event_want_read(c->ws))
			conn_closing(c);
		conn_mark_dirty(c);
	}
	else if (c->state == CONN_DRAIN)
	{
		char		sink[512];

		ssize_t		r;

		/* discard what the client still sends; EOF ends it */
		while ((r = conn_recv(c, sink, sizeof(sink))) > 0)
			;
		if (r == 0 || (errno != EAGAIN && errno != EINTR))
			conn_kill(c);
	}
}

void
conn_on_writable(chat_conn *c)
{
	/* a TLS handshake may have been waiting to write its next flight */
	if (c->tls && c->state == CONN_HTTP)
		conn_on_readable(c);
	if (c->state != CONN_DEAD)
		conn_flush(c);
}

/* conn_tls_pending: OpenSSL holds decrypted bytes the socket won't signal */
bool
conn_tls_pending(chat_conn *c)
{
	return c->tls && c->state != CONN_DEAD && tls_pending(c->tls);
}

/* --- read budget ---------------------------------------------------- */

/* conn_read_later: serve c's input again in the next pass of the loop. */
static void
conn_read_later(chat_conn *c)
{
	if (c->read_deferred || c->state == CONN_DEAD)
		return;
	c->read_deferred = true;
	c->read_again_next = c->srv->read_again;
	c->srv->read_again = c;
}

/*
 * conn_read_deferred serves the connections that stopped reading in the
 * last pass with input possibly left (their budget ran out, or they were
 * paused and drained since).  Called once at the start of each pass.
 */
void
conn_read_deferred(chat_server *srv)
{
	chat_conn  *list = srv->read_again;

	srv->read_again = NULL;
	while (list)
	{
		chat_conn  *c = list;

		list = c->read_again_next;
		c->read_again_next = NULL;
		c->read_deferred = false;
		if (c->state == CONN_WS && !c->read_paused)
			conn_on_readable(c);
	}
}

/*
 * conn_may_read: whether c may read more in this pass.  When it may not,
 * it is either paused (unsent control frames at the bound: it waits for
 * its socket to drain) or put on the list for the next pass.
 */
static bool
conn_may_read(chat_conn *c)
{
	chat_server *srv = c->srv;

	if (c->read_pass != srv->pass)
	{
		c->read_pass = srv->pass;
		c->read_bytes = 0;
		c->read_frames = 0;
	}
	if (c->ws && wslay_event_get_queued_msg_count(c->ws) >= MAX_CTRL_QUEUED)
	{
		c->read_paused = true;
		return false;
	}
	if (c->read_bytes >= READ_BUDGET_BYTES ||
		c->read_frames >= READ_BUDGET_FRAMES)
	{
		conn_read_later(c);
		return false;
	}
	return true;
}

/* --- wslay callbacks ------------------------------------------------- */

static ssize_t
ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
		   void *user_data)
{
	chat_conn  *c = user_data;
	ssize_t		r;

	if (!conn_may_read(c))
	{
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (len > READ_BUDGET_BYTES - c->read_bytes)
		len = READ_BUDGET_BYTES - c->read_bytes;
	/* bytes that arrived together with the HTTP head come first */
	if (c->in && c->in_off < c->in_len)
	{
		size_t		n = c->in_len - c->in_off;

		if (n > len)
			n = len;
		memcpy(buf, c->in + c->in_off, n);
		c->in_off += n;
		if (c->in_off == c->in_len)
		{
			free(c->in);
			c->in = NULL;
			c->in_cap = 0;
		}
		c->ws_fed += n;
		c->read_bytes += n;
		return (ssize_t) n;
	}
	r = conn_recv(c, buf, len);
	if (r > 0)
	{
		c->last_recv_ms = c->srv->now_ms;
		c->ws_fed += (uint64_t) r;
		c->read_bytes += (size_t) r;
		return r;
	}
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	else
	{
		c->io_failed = true;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	}
	return -1;
}

static ssize_t
ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
		   int flags, void *user_data)
{
	chat_conn  *c = user_data;
	struct iovec iov = {(void *) data, len};
	ssize_t		r = c->tls ? tls_writev(c->tls, &iov, 1) :
	send(c->fd, data, len, MSG_NOSIGNAL);

	if (r >= 0)
		return r;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	else
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static void
ws_on_msg(wslay_event_context_ptr ctx,
		  const struct wslay_event_on_msg_recv_arg *arg, void *user_data)
{
	chat_conn  *c = user_data;

	c->last_recv_ms = c->srv->now_ms;
	/* closing (a close we sent from a frame callback): nothing more acts */
	if (c->state != CONN_WS || c->closing)
		return;
	switch (arg->opcode)
	{
		case WSLAY_TEXT_FRAME:
			c->srv->stats.frames_in++;
			c->srv->on_text(c, (const char *) arg->msg, arg->msg_length);
			break;
		case WSLAY_BINARY_FRAME:
			c->srv->stats.frames_in++;
			c->srv->on_binary(c);
			break;
		case WSLAY_CONNECTION_CLOSE:
			/* wslay echoes the close: queued data goes out before it */
			conn_closing(c);
			break;
		default:
			/* ping is answered by wslay */
			break;
	}
}

/*
 * The frame callbacks only keep count: every byte wslay was given must
 * belong to a whole frame, and no message may be half received, before the
 * context can be dropped (conn_hibernate).  A client frame's header is 2
 * bytes, the extended length (2 or 8) and the 4-byte mask; a client that
 * encodes a length in more bytes than needed is only never hibernated.
 */
static void
ws_on_frame_start(wslay_event_context_ptr ctx,
				  const struct wslay_event_on_frame_recv_start_arg *arg,
				  void *user_data)
{
	chat_conn  *c = user_data;
	uint64_t	len = arg->payload_length;

	c->ws_framed += 2 + (len >= 65536 ? 8 : len >= 126 ? 2 : 0) + 4 + len;
	c->read_frames++;
	if (c->closing)
		return;
	if (arg->opcode < 0x8)		/* data or continuation, not control */
	{
		c->ws_in_message = !arg->fin;
		c->ws_fragments = arg->opcode == 0 ? c->ws_fragments + 1 : 1;
		if (c->ws_fragments > MAX_FRAGMENTS)
			conn_close_raw(c, 1008);
	}
	else if (arg->opcode == WSLAY_CONNECTION_CLOSE && len == 1)
	{
		/*
		 * A close payload is empty or a 2-byte code (RFC 6455 5.5.1); wslay
		 * would echo an empty close.  The frame is still read, but the answer
		 * is ours.
		 */
		conn_close_raw(c, 1002);
	}
}

static const struct wslay_event_callbacks ws_callbacks = {
	ws_recv_cb, ws_send_cb, NULL, ws_on_frame_start, NULL, NULL, ws_on_msg
};

/*
 * ws_wake gives the connection its wslay context.  The context costs two
 * 4 KB buffers (wslay's input and control-frame output), more than all the
 * rest of a connection; an idle connection does without it
 * (conn_hibernate), and it is made again when the peer sends a byte or we
 * send a control frame.  A fresh context is between frames, which is all
 * an idle one ever was.
 */
static int
ws_wake(chat_conn *c)
{
	if (c->ws)
		return 0;
	if (wslay_event_context_server_init(&c->ws, &ws_callbacks, c) != 0)
	{
		c->ws = NULL;
		return -1;
	}
	/* wslay would otherwise allocate whatever a frame header claims */
	wslay_event_config_set_max_recv_msg_length(c->ws,
											   (uint64_t) c->srv->cfg.max_frame_bytes);
	c->ws_fed = c->ws_framed = 0;
	c->ws_in_message = false;
	c->ws_fragments = 0;
	return 0;
}

/*
 * ws_awake: ws_wake for a connection about to use its context; one that
 * cannot have it (out of memory) is killed, and false returned.
 */
static bool
ws_awake(chat_conn *c)
{
	if (ws_wake(c) == 0)
		return true;
	conn_kill(c);
	return false;
}

/*
 * conn_hibernate drops the wslay context of a quiet connection: nothing
 * queued for wslay to send, no partial frame or message received.  Returns
 * whether it did.
 */
bool
conn_hibernate(chat_conn *c)
{
	if (c->state != CONN_WS || c->ws == NULL || c->closing ||
		c->in != NULL || c->ws_in_message || c->ws_fed != c->ws_framed ||
		wslay_event_want_write(c->ws) || !wslay_event_want_read(c->ws) ||
		wslay_event_get_queued_msg_count(c->ws) != 0)
		return false;
	wslay_event_context_free(c->ws);
	c->ws = NULL;
	return true;
}

int
conn_start_ws(chat_conn *c)
{
	/* bytes that came with the head are for wslay: it must exist now */
	if (c->in && c->in_off < c->in_len && ws_wake(c) != 0)
		return -1;
	handshake_done(c);
	c->state = CONN_WS;
	c->last_recv_ms = c->last_ping_ms = c->srv->now_ms;
	c->tokens_ms = 0;			/* the bucket starts full (rate_ok) */
	return 0;
}

/* --- output ---------------------------------------------------------- */

void
conn_mark_dirty(chat_conn *c)
{
	if (!c->dirty && c->state != CONN_DEAD)
	{
		c->dirty = true;
		c->dirty_next = c->srv->dirty;
		c->srv->dirty = c;
	}
}

void
conn_set_lagging(chat_conn *c)
{
	if (!c->lagging)
	{
		c->lagging = true;
		c->last_write_ms = c->srv->now_ms;
	}
}

void
conn_send_frame(chat_conn *c, chat_frame *f)
{
	if (c->state != CONN_WS || c->closing)
		return;

	/*
	 * Messages stop at the bound (hub_deliver_to); the small frames that
	 * still come (acks, typing, errors) get as much again.  Past that the
	 * client is not reading at all: drop it, it will reconnect and sync.
	 */
	if (c->out.bytes + f->len > 2 * (size_t) c->srv->cfg.max_outbound_bytes)
	{
		srv_log(c->srv, CHAT_LOG_DEBUG,
				"connection %s dropped: outbound queue full", c->id);
		conn_kill(c);
		return;
	}
	if (outq_push(&c->out, f) != 0)
	{
		conn_kill(c);
		return;
	}
	c->srv->stats.frames_out++;
	conn_mark_dirty(c);
}

/*
 * conn_closing: a close frame is queued or sent.  From here on no data
 * frame may be added, and what is already queued goes out before it.
 */
static void
conn_closing(chat_conn *c)
{
	c->closing = true;
	c->out_first = true;
}

void
conn_send_text(chat_conn *c, const char *json, size_t len)
{
	chat_frame *f;

	if (json == NULL)
	{
		/* out of memory: the connection cannot keep its guarantees */
		conn_kill(c);
		return;
	}
	f = frame_text(json, len);
	if (f == NULL)
	{
		conn_kill(c);
		return;
	}
	conn_send_frame(c, f);
	frame_unref(f);
}

/* conn_send_owned sends an encoder's text and frees it. */
void
conn_send_owned(chat_conn *c, proto_text t)
{
	conn_send_text(c, t.ptr, t.len);
	free(t.ptr);
}

/*
 * conn_send_upgrade queues the 101 response as raw bytes ahead of every
 * frame, and drops the request head's buffer unless bytes that followed
 * the head (the first frames) still wait in it.  -1 when out of memory.
 */
int
conn_send_upgrade(chat_conn *c, const char *resp, size_t len)
{
	chat_frame *f = frame_raw(resp, len);

	if (f == NULL)
		return -1;
	if (outq_push(&c->out, f) != 0)
	{
		frame_unref(f);
		return -1;
	}
	frame_unref(f);
	c->out_first = true;		/* nothing may precede the 101 */
	if (c->in_off >= c->in_len)
	{
		free(c->in);
		c->in = NULL;
		c->in_len = c->in_off = c->in_cap = 0;
	}
	return 0;
}

/* conn_send_http queues a complete HTTP response; the connection closes
 * once it is written. */
void
conn_send_http(chat_conn *c, const char *resp, size_t len)
{
	chat_frame *f;

	if (c->state != CONN_HTTP)
		return;
	f = frame_raw(resp, len);
	if (f == NULL)
	{
		conn_kill(c);
		return;
	}
	handshake_done(c);
	c->state = CONN_DRAIN;
	if (outq_push(&c->out, f) != 0)
		conn_kill(c);
	frame_unref(f);
	conn_mark_dirty(c);
}

static ssize_t
conn_writev(void *arg, const struct iovec *iov, int iovcnt)
{
	chat_conn  *c = arg;
	struct msghdr msg;

	if (c->tls)
		return tls_writev(c->tls, iov, iovcnt);
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = (struct iovec *) iov;
	msg.msg_iovlen = iovcnt;
	return sendmsg(c->fd, &msg, MSG_NOSIGNAL);
}

void
conn_flush(chat_conn *c)
{
	bool		blocked = false;
	size_t		before;

	if (c->state == CONN_DEAD)
		return;
	for (;;)
	{
		int			rc;

		/*
		 * wslay's frames (pong, close) go first, except while our queue must
		 * lead: it holds the 101 that opens the stream, or the connection is
		 * closing and our data must precede the close.
		 */
		if (c->out_first && c->out.count == 0)
			c->out_first = false;
		if (c->ws && c->out.offset == 0 && !c->out_first &&
			wslay_event_want_write(c->ws))
		{
			if (wslay_event_send(c->ws) != 0)
			{
				conn_kill(c);
				return;
			}
			if (wslay_event_want_write(c->ws))
			{
				blocked = true;
				break;
			}
			continue;
		}
		if (c->out.count == 0)
			break;
		before = c->out.bytes;
		rc = outq_write(&c->out, conn_writev, c);
		if (c->out.bytes < before)
			c->last_write_ms = c->srv->now_ms;
		if (rc < 0)
		{
			conn_kill(c);
			return;
		}
		if (rc == 0)
		{
			blocked = true;
			break;
		}
	}
	if (c->tls && tls_wants_write(c->tls))
		blocked = true;
	/* a lagging connection whose queue drained to half catches up */
	if (c->lagging && !c->on_resume && c->state == CONN_WS &&
		c->out.bytes <= (size_t) c->srv->cfg.max_outbound_bytes / 2)
	{
		c->on_resume = true;
		c->resume_next = c->srv->resume;
		c->srv->resume = c;
	}
	if (c->state == CONN_WS && c->ws && !wslay_event_want_read(c->ws) &&
		!wslay_event_want_write(c->ws) && c->out.count == 0)
		conn_linger(c);			/* close handshake finished */
	if (c->state == CONN_DRAIN && !blocked && !c->wr_shut)
	{
		/*
		 * Lingering close: stop writing but keep reading until the peer
		 * closes, so unread input does not turn our last frame into a TCP
		 * reset (RFC 6455 7.1.1).
		 */
		shutdown(c->fd, SHUT_WR);
		c->wr_shut = true;
	}

	/*
	 * A connection paused for its unsent control frames reads again once half
	 * of them are out (or it no longer reads frames at all); wslay may hold
	 * whole frames from before the pause, so it is served in the next pass
	 * even if the socket stays quiet.
	 */
	if (c->read_paused &&
		(!blocked || c->state != CONN_WS || c->ws == NULL ||
		 wslay_event_get_queued_msg_count(c->ws) < MAX_CTRL_QUEUED / 2))
	{
		c->read_paused = false;
		conn_read_later(c);
	}
	conn_set_events(c, (c->read_paused ? 0 : EPOLLIN) |
					(blocked ? EPOLLOUT : 0));
}

static void
conn_set_events(chat_conn *c, uint32_t events)
{
	struct epoll_event ev;

	if (c->events == events)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = c;
	if (epoll_ctl(c->srv->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = events;
}

void
conn_ping(chat_conn *c)
{
	struct wslay_event_msg msg = {WSLAY_PING, NULL, 0};

	if (c->state != CONN_WS || !ws_awake(c))
		return;
	wslay_event_queue_msg(c->ws, &msg);
	c->last_ping_ms = c->srv->now_ms;
	conn_mark_dirty(c);
}

/*
 * conn_linger turns a WebSocket whose close frames are done into a
 * draining socket: no longer counted as open, closed on EOF or timeout.
 */
void
conn_linger(chat_conn *c)
{
	chat_server *srv = c->srv;

	if (c->state != CONN_WS)
		return;
	srv->n_ws--;
	srv->stats.connections_open--;
	c->state = CONN_DRAIN;
	c->drain_since = srv->now_ms;
}

/*
 * conn_close_raw sends a close frame with code ourselves, bypassing the
 * wslay session (which is shut down for both directions), then lingers.
 */
void
conn_close_raw(chat_conn *c, int code)
{
	chat_frame *f;
	unsigned char close_frame[4] = {
		0x88,					/* FIN + close */
		2,
		(unsigned char) (code >> 8),
		(unsigned char) code
	};

	if (!ws_awake(c))
		return;
	f = frame_raw(close_frame, sizeof(close_frame));
	wslay_event_shutdown_read(c->ws);
	wslay_event_shutdown_write(c->ws);
	if (f == NULL)
	{
		conn_kill(c);
		return;
	}
	if (outq_push(&c->out, f) != 0)
		conn_kill(c);
	frame_unref(f);
	conn_closing(c);
	conn_mark_dirty(c);
}

/* conn_close starts the close handshake with code (RFC 6455 7.4). */
void
conn_close(chat_conn *c, int code, const char *reason)
{
	if (c->state != CONN_WS)
	{
		conn_kill(c);
		return;
	}
	if (!ws_awake(c))
		return;
	wslay_event_queue_close(c->ws, (uint16_t) code, (const uint8_t *) reason,
							reason ? strlen(reason) : 0);
	wslay_event_shutdown_read(c->ws);
	conn_closing(c);
	conn_mark_dirty(c);
}

/* conn_kill closes the socket now and queues the struct for reaping. */
void
conn_kill(chat_conn *c)
{
	chat_server *srv = c->srv;

	if (c->state == CONN_DEAD)
		return;

	/*
	 * Rooms and users keep pointing at c until the reap (hub_detach there):
	 * callers may be iterating over them right now.
	 */
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	handshake_done(c);
	if (c->read_deferred)
	{
		chat_conn **pp = &srv->read_again;

		while (*pp && *pp != c)
			pp = &(*pp)->read_again_next;
		if (*pp)
			*pp = c->read_again_next;
		c->read_deferred = false;
	}
	if (c->state == CONN_WS)
	{
		srv->n_ws--;
		srv->stats.connections_open--;
	}
	if (c->admitted && srv->host.admit)
		srv->host.admit(srv->host.ctx, -1, 0);
	if (c->ip_admitted && srv->host.admit_ip)
		srv->host.admit_ip(srv->host.ctx, c->addr, -1, 0);
	c->admitted = c->ip_admitted = false;
	c->state = CONN_DEAD;
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->n_conns--;
	c->dead_next = srv->dead;
	srv->dead = c;
}

void
conn_free(chat_conn *c)
{
	if (c->ws)
		wslay_event_context_free(c->ws);
	outq_clear(&c->out);
	if (c->tls)
		tls_session_free(c->tls);
	free(c->in);
	free(c->subs);
	free(c);
}
