/*
 * proc.c
 *	  One load-generating process: an epoll loop over its connections.
 *
 *	  The proc owns channels [c_lo, c_hi) and every member connection of
 *	  them, so it knows every seq its channels will ever get (all of them are
 *	  sent by its own senders) and can check each receiver's stream alone.
 *
 *	  Phases: RAMP (connect all, wait for each `ready`), WAIT_GO (tell the
 *	  parent, wait for the common start time), RUN (send; the measured window
 *	  is [t0 + warmup, t0 + warmup + duration)), DRAIN (no new sends; wait
 *	  for the last acks and deliveries), then the checks and the report.
 *
 *	  Every message frame carries its send time: the content starts with
 *	  "T<monotonic ns> ", and the clientId's first 16 hex digits are the same
 *	  time, so the ack's latency needs no lookup.  CLOCK_MONOTONIC is one
 *	  clock for every process of the machine.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <openssl/sha.h>
#include <wslay/wslay.h>

#include "chatload.h"

#define HS_BUF 4096
#define CTL_TAG UINT64_MAX
#define CONNECT_TIMEOUT_NS (30LL * 1000000000)
#define MAX_RECV_MSG (64 * 1024 * 1024)

typedef enum cstate
{
	S_NEW,						/* not connected yet (or waiting to retry) */
	S_CONNECTING,				/* TCP connect in progress */
	S_HS,						/* upgrade request sent, reading the 101 */
	S_WAIT_READY,				/* WebSocket open, waiting for `ready` */
	S_LIVE,						/* streaming */
	S_SYNCING,					/* reconnected: sync sent, waiting for synced */
	S_DOWN,						/* closed on purpose (storm) */
	S_FAILED,					/* gave up connecting */
	S_CLOSED					/* closed by the server or an error */
} cstate;

typedef struct conn
{
	int			fd;
	uint8_t		state;
	uint8_t		retries;
	bool		sender;
	bool		storm;
	bool		dirty;
	bool		was_ready;		/* got a ready at least once */
	bool		resync;			/* next ready starts a sync from pos */
	bool		resumed;		/* that ready said resume: nothing may come
								 * before the sync's answer */
	bool		storm_ready;
	bool		storm_synced;
	bool		storm_caught;
	uint32_t	events;
	int			lc;				/* local channel */
	int			k;				/* member index in the channel */
	int			next_dirty;
	uint32_t	inflight;
	uint32_t	counter;
	int64_t		pos;			/* last seq of the channel seen here */
	int64_t		t_start;		/* connect started (or retry not before) */
	wslay_event_context_ptr ws;
	char	   *buf;			/* handshake, then bytes after the 101 head */
	uint32_t	buf_len;
	uint32_t	buf_off;
	char		key[28];
} conn;

typedef struct chan
{
	char		id[40];			/* from the first ready */
	int64_t		initial;		/* lastSeq in that ready; -1 unknown */
	int64_t		max_acked;
	uint64_t	acks;
	int64_t		head_at_up;		/* max_acked when the storm reconnected */
} chan;

typedef enum phase
{
	P_RAMP,
	P_WAIT_GO,
	P_RUN,
	P_DRAIN,
	P_DONE
} phase;

typedef struct proc
{
	const cl_config *cfg;
	int			id;
	int			nprocs;
	int			c_lo;
	int			c_hi;
	int			ep;
	int			ctl_in;
	int			ctl_out;
	conn	   *conns;
	int			n_conns;
	chan	   *chans;
	int			n_chans;
	int		   *senders;		/* conn indices */
	int			n_senders;
	int			rr;				/* round robin over senders */

	/* connect queue: conn indices, FIFO */
	int		   *q;
	int			q_head;
	int			q_len;
	int			connecting;		/* S_CONNECTING / S_HS / S_WAIT_READY */

	int			dirty;			/* head of the dirty list, -1 none */

	phase		ph;
	int64_t		now;
	int64_t		t_ramp0;
	int64_t		t0;				/* common start */
	int64_t		t_win0;			/* measured window */
	int64_t		t_win1;
	int64_t		t_drain_end;
	int64_t		t_storm_down;
	int64_t		t_storm_up;
	bool		storm_done_down;
	bool		storm_done_up;
	double		rate;			/* this proc's sends/s */
	uint64_t	scheduled;		/* rate mode: sends due so far */
	int64_t		next_scan;

	char	   *sendbuf;
	size_t		sendcap;
	char		ctlbuf[256];
	size_t		ctl_len;
	uint32_t	rand_tag;		/* per proc, in every clientId */

	cl_result	r;
} proc;

static proc P;

/* --- small helpers --------------------------------------------------- */

static bool
in_window(int64_t t)
{
	return P.ph >= P_RUN && t >= P.t_win0 && t < P.t_win1;
}

static void
count_error(const char *code)
{
	json_t	   *v;

	if (P.r.errors == NULL)
		P.r.errors = json_object();
	v = json_object_get(P.r.errors, code);
	json_object_set_new(P.r.errors, code,
						json_integer(v ? json_integer_value(v) + 1 : 1));
}

static void
set_events(conn *c, uint32_t ev)
{
	struct epoll_event e;

	if (c->fd < 0 || c->events == ev)
		return;
	memset(&e, 0, sizeof(e));
	e.events = ev;
	e.data.u64 = (uint64_t) (c - P.conns);
	if (epoll_ctl(P.ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->events = ev;
}

static void
mark_dirty(conn *c)
{
	if (!c->dirty)
	{
		c->dirty = true;
		c->next_dirty = P.dirty;
		P.dirty = (int) (c - P.conns);
	}
}

static void
enqueue(conn *c, int64_t not_before)
{
	c->state = S_NEW;
	c->t_start = not_before;
	P.q[(P.q_head + P.q_len) % P.n_conns] = (int) (c - P.conns);
	P.q_len++;
}

/* drop_socket closes everything of c's current connection. */
static void
drop_socket(conn *c)
{
	if (c->fd >= 0)
	{
		epoll_ctl(P.ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	if (c->ws)
	{
		wslay_event_context_free(c->ws);
		c->ws = NULL;
	}
	free(c->buf);
	c->buf = NULL;
	c->buf_len = c->buf_off = 0;
	c->events = 0;
}

/*
 * conn_fail handles a connection that broke.  Before it was ready it is
 * retried (a few times); after, it is an unexpected close.
 */
static void
conn_fail(conn *c, const char *why)
{
	bool		pre_ready = c->state == S_CONNECTING || c->state == S_HS ||
	c->state == S_WAIT_READY;

	if (c->state == S_CLOSED || c->state == S_FAILED || c->state == S_DOWN)
		return;
	drop_socket(c);
	if (pre_ready)
	{
		P.connecting--;
		if (c->retries < P.cfg->connect_retries && P.ph != P_DONE)
		{
			c->retries++;
			enqueue(c, P.now + 200000000LL * c->retries);
			return;
		}
		count_error(why);
		c->state = S_FAILED;
		if (c->storm && c->resync)
			P.r.storm_failed++;
		else
			P.r.connect_failures++;
		return;
	}
	count_error(why);
	P.r.unexpected_closes++;
	c->state = S_CLOSED;
}

/* --- wslay callbacks ------------------------------------------------- */

static ssize_t
ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
		void *user)
{
	conn	   *c = user;
	ssize_t		r;

	(void) flags;
	if (c->buf && c->buf_off < c->buf_len)
	{
		size_t		n = c->buf_len - c->buf_off;

		if (n > len)
			n = len;
		memcpy(buf, c->buf + c->buf_off, n);
		c->buf_off += (uint32_t) n;
		if (c->buf_off == c->buf_len)
		{
			free(c->buf);
			c->buf = NULL;
			c->buf_len = c->buf_off = 0;
		}
		return (ssize_t) n;
	}
	r = recv(c->fd, buf, len, 0);
	if (r > 0)
	{
		P.r.bytes_in += (uint64_t) r;
		return r;
	}
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	else
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static ssize_t
ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
		int flags, void *user)
{
	conn	   *c = user;
	ssize_t		r = send(c->fd, data, len,
						 MSG_NOSIGNAL | ((flags & WSLAY_MSG_MORE) ? MSG_MORE : 0));

	if (r >= 0)
		return r;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	else
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static int
ws_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
	(void) ctx;
	(void) user;
	return RAND_bytes(buf, (int) len) == 1 ? 0 : -1;
}

static void on_text(conn *c, const char *p, size_t n);

static void
ws_on_msg(wslay_event_context_ptr ctx,
		  const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
	conn	   *c = user;

	(void) ctx;
	if (arg->opcode == WSLAY_TEXT_FRAME)
		on_text(c, (const char *) arg->msg, arg->msg_length);
	else if (arg->opcode == WSLAY_CONNECTION_CLOSE && P.ph != P_DONE)
	{
		char		code[32];

		snprintf(code, sizeof(code), "close_%u", arg->status_code);
		count_error(code);
	}
	/* pings are answered by wslay itself */
}

static const struct wslay_event_callbacks ws_callbacks = {
	ws_recv, ws_send, ws_genmask, NULL, NULL, NULL, ws_on_msg
};

/* --- sending ---------------------------------------------------------- */

static void
ws_queue(conn *c, const char *text, size_t len)
{
	struct wslay_event_msg m;

	m.opcode = WSLAY_TEXT_FRAME;
	m.msg = (const uint8_t *) text;
	m.msg_length = len;
	if (wslay_event_queue_msg(c->ws, &m) != 0)
	{
		conn_fail(c, "queue_failed");
		return;
	}
	mark_dirty(c);
}

static void
send_one(conn *c)
{
	chan	   *ch = &P.chans[c->lc];
	int64_t		t = mono_ns();
	uint64_t	ut = (uint64_t) t;
	char	   *b = P.sendbuf;
	int			n,
				start;

	n = sprintf(b, "{\"type\":\"send\",\"clientId\":\"%08x-%04x-%04x-%04x-%04x%08x\","
				"\"channelId\":\"%s\",\"content\":\"",
				(unsigned) (ut >> 32), (unsigned) (ut >> 16) & 0xffff,
				(unsigned) ut & 0xffff, (unsigned) (P.rand_tag & 0xffff),
				(unsigned) (c - P.conns) & 0xffff, c->counter++, ch->id);
	start = n;
	n += sprintf(b + n, "T%lld ", (long long) t);
	if (n - start < P.cfg->size)
	{
		memset(b + n, 'x', (size_t) (P.cfg->size - (n - start)));
		n = start + P.cfg->size;
	}
	memcpy(b + n, "\"}", 3);
	n += 2;
	ws_queue(c, b, (size_t) n);
	c->inflight++;
	P.r.sent_total++;
	if (in_window(t))
		P.r.sent++;
}

static void
send_sync(conn *c)
{
	char		b[160];
	int			n = snprintf(b, sizeof(b),
							 "{\"type\":\"sync\",\"channels\":{\"%s\":%lld}}",
							 P.chans[c->lc].id, (long long) c->pos);

	ws_queue(c, b, (size_t) n);
}

static bool
sending(void)
{
	return P.ph == P_RUN && !P.cfg->idle && P.now < P.t_win1;
}

/* refill keeps a sender's window full (window mode). */
static void
refill(conn *c)
{
	if (P.cfg->rate <= 0 && sending() && c->sender && c->state == S_LIVE &&
		c->inflight < (uint32_t) P.cfg->window)
		send_one(c);
}

/* --- receiving --------------------------------------------------------- */

static const char *
find_key(const char *p, size_t n, const char *key, size_t klen)
{
	const char *k = memmem(p, n, key, klen);

	return k ? k + klen : NULL;
}

static int64_t
parse_int(const char *p, const char *end)
{
	int64_t		v = 0;
	bool		neg = false;

	if (p < end && *p == '-')
	{
		neg = true;
		p++;
	}
	while (p < end && *p >= '0' && *p <= '9')
		v = v * 10 + (*p++ - '0');
	return neg ? -v : v;
}

/* the send time in a clientId: its first 16 hex digits */
static int64_t
client_id_time(const char *p, size_t n)
{
	uint64_t	v = 0;
	int			digits = 0;

	for (size_t i = 0; i < n && digits < 16; i++)
	{
		char		ch = p[i];
		int			d;

		if (ch == '-')
			continue;
		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			d = ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F')
			d = ch - 'A' + 10;
		else
			return 0;
		v = v << 4 | (uint64_t) d;
		digits++;
	}
	return digits == 16 ? (int64_t) v : 0;
}

static void
check_caught_up(conn *c)
{
	if (c->storm && c->resync && !c->storm_caught && c->state == S_LIVE &&
		c->pos >= P.chans[c->lc].head_at_up)
	{
		c->storm_caught = true;
		if (P.now > P.r.storm_up_ns)
			hist_add(&P.r.storm_caught_at, (uint64_t) (P.now - P.r.storm_up_ns));
		if (P.now > P.r.storm_caught_ns)
			P.r.storm_caught_ns = P.now;
	}
}

/* CHATLOAD_DEBUG=N prints the first N stream anomalies */
static int	debug_anomalies;

/* advance applies one seq of the channel stream (a message or an ack). */
static const char *advance_kind = "message";
static bool
advance(conn *c, int64_t seq)
{
	if (c->state == S_SYNCING)
	{
		/*
		 * Before synced: the sync's answer continues the stream at pos.  A
		 * frame at or below pos is a repeat on the wire (a 1.0 server sends
		 * live frames before the answer, then restarts the stream); one
		 * further ahead is a live frame that overtook the answer, which a
		 * resuming server never sends.
		 */
		if (seq == c->pos + 1)
		{
			c->pos = seq;
			P.r.storm_replayed++;
		}
		else if (seq <= c->pos)
			P.r.storm_repeated++;
		else if (c->resumed)
			P.r.gaps++;
		return false;
	}
	if (c->resync && seq <= c->pos)
		P.r.storm_repeated++;
	if (seq == c->pos + 1)
	{
		c->pos = seq;
		check_caught_up(c);
		return true;
	}
	if (debug_anomalies > 0)
	{
		debug_anomalies--;
		fprintf(stderr, "chatload: %s: conn %d (channel %s, member %d) got %s seq %lld at %lld\n",
				seq <= c->pos ? "repeat/out of order" : "gap", (int) (c - P.conns),
				P.chans[c->lc].id, c->k, advance_kind, (long long) seq, (long long) c->pos);
	}
	if (seq <= c->pos)
		P.r.dups++;
	else
	{
		P.r.gaps++;
		c->pos = seq;
	}
	return false;
}

static bool
same_channel(conn *c, const char *id, size_t n)
{
	chan	   *ch = &P.chans[c->lc];

	if (n == strlen(ch->id) && memcmp(id, ch->id, n) == 0)
		return true;
	P.r.foreign++;
	return false;
}

static void
on_message(conn *c, const char *chid, size_t chlen, int64_t seq,
		   const char *content, size_t clen)
{
	int64_t		now;

	static unsigned long n_seen;

	if (c->state != S_LIVE && c->state != S_SYNCING)
		return;
	if (!same_channel(c, chid, chlen))
		return;
	n_seen++;
	if (P.cfg->inject_drop > 0 && n_seen % (unsigned long) P.cfg->inject_drop == 0)
		return;					/* the checker must see this as a gap */
	if (P.cfg->inject_dup > 0 && n_seen % (unsigned long) P.cfg->inject_dup == 0)
		advance(c, seq);		/* ... and this as a repeat */
	if (!advance(c, seq))
		return;
	P.r.deliveries_total++;
	now = P.now;
	if (in_window(now))
	{
		P.r.deliveries++;
		if (clen > 1 && content[0] == 'T')
		{
			int64_t		ts = parse_int(content + 1, content + clen);

			if (ts > 0 && now >= ts)
				hist_add(&P.r.lat, (uint64_t) (now - ts));
		}
	}
}

static void
on_ack(conn *c, const char *chid, size_t chlen, int64_t seq,
	   const char *cid, size_t cidlen, bool duplicate)
{
	chan	   *ch = &P.chans[c->lc];
	int64_t		ts = client_id_time(cid, cidlen);

	if (c->inflight > 0)
		c->inflight--;
	P.r.acked_total++;
	if (in_window(P.now))
	{
		P.r.acked++;
		if (ts > 0 && P.now >= ts)
			hist_add(&P.r.ack, (uint64_t) (P.now - ts));
	}
	if (duplicate)
		P.r.duplicate_acks++;
	else if (same_channel(c, chid, chlen))
	{
		advance_kind = "ack";
		advance(c, seq);
		advance_kind = "message";
		if (seq > ch->max_acked)
			ch->max_acked = seq;
		ch->acks++;
	}
	refill(c);
}

/* on_ready: the first frame of a connection. */
static void
on_ready(conn *c, json_t *j)
{
	json_t	   *chs = json_object_get(j, "channels");
	json_t	   *first = json_array_get(chs, 0);
	chan	   *ch = &P.chans[c->lc];
	const char *id = json_string_value(json_object_get(first, "id"));
	int64_t		last = (int64_t) json_integer_value(json_object_get(first, "lastSeq"));
	int64_t		took = P.now - c->t_start;

	if (id == NULL || strlen(id) >= sizeof(ch->id))
	{
		conn_fail(c, "ready_without_channel");
		return;
	}
	if (json_array_size(chs) != 1)
		count_error("ready_channel_count");
	if (ch->id[0] == '\0')
	{
		snprintf(ch->id, sizeof(ch->id), "%s", id);
		ch->initial = last;
	}
	else if (strcmp(ch->id, id) != 0)
	{
		P.r.foreign++;
		conn_fail(c, "ready_other_channel");
		return;
	}
	P.connecting--;
	if (took > 0)
		hist_add(&P.r.connect, (uint64_t) took);
	c->was_ready = true;
	if (c->resync)
	{
		/* back after a storm: catch up from our own position */
		c->state = S_SYNCING;
		c->resumed = json_is_true(json_object_get(j, "resume"));
		if (c->resumed)
			P.r.storm_resumed++;
		if (!c->storm_ready && P.now > P.r.storm_up_ns)
			hist_add(&P.r.storm_ready_at, (uint64_t) (P.now - P.r.storm_up_ns));
		c->storm_ready = true;
		if (P.now > P.r.storm_ready_ns)
			P.r.storm_ready_ns = P.now;
		send_sync(c);
		return;
	}
	c->pos = last;
	c->state = S_LIVE;
}

static void
on_synced(conn *c, json_t *j)
{
	int64_t		last = (int64_t) json_integer_value(json_object_get(j, "lastSeq"));

	if (c->state != S_SYNCING)
		return;
	if (json_is_true(json_object_get(j, "hasMore")))
	{
		send_sync(c);
		return;
	}
	if (last != c->pos)
		P.r.sync_mismatch++;
	c->state = S_LIVE;
	c->storm_synced = true;
	if (P.now > P.r.storm_synced_ns)
		P.r.storm_synced_ns = P.now;
	check_caught_up(c);
}

static void
on_error_frame(conn *c, json_t *j)
{
	const char *code = json_string_value(json_object_get(j, "code"));
	char		key[64];

	P.r.error_frames++;
	snprintf(key, sizeof(key), "frame_%s", code ? code : "?");
	count_error(key);
	if (json_object_get(j, "clientId"))
	{
		P.r.send_errors++;
		if (c->inflight > 0)
			c->inflight--;
		refill(c);
	}
}

static void
on_json(conn *c, const char *p, size_t n)
{
	json_error_t err;
	json_t	   *j = json_loadb(p, n, 0, &err);
	const char *type;

	if (j == NULL)
	{
		count_error("bad_json");
		return;
	}
	type = json_string_value(json_object_get(j, "type"));
	if (type == NULL)
		count_error("no_type");
	else if (c->state == S_WAIT_READY)
	{
		if (strcmp(type, "ready") == 0)
			on_ready(c, j);
		else
			count_error("frame_before_ready");
	}
	else if (strcmp(type, "message") == 0)
	{
		json_t	   *m = json_object_get(j, "message");
		const char *chid = json_string_value(json_object_get(m, "channelId"));
		const char *content = json_string_value(json_object_get(m, "content"));

		if (chid && content)
			on_message(c, chid, strlen(chid),
					   (int64_t) json_integer_value(json_object_get(m, "seq")),
					   content, strlen(content));
		else
			count_error("bad_message");
	}
	else if (strcmp(type, "ack") == 0)
	{
		const char *chid = json_string_value(json_object_get(j, "channelId"));
		const char *cid = json_string_value(json_object_get(j, "clientId"));

		on_ack(c, chid ? chid : "", chid ? strlen(chid) : 0,
			   (int64_t) json_integer_value(json_object_get(j, "seq")),
			   cid ? cid : "", cid ? strlen(cid) : 0,
			   json_is_true(json_object_get(j, "duplicate")));
	}
	else if (strcmp(type, "synced") == 0)
		on_synced(c, j);
	else if (strcmp(type, "error") == 0)
		on_error_frame(c, j);
	/* presence, typing, read, ...: not counted */
	json_decref(j);
}

#define PFX_MESSAGE "{\"type\":\"message\""
#define PFX_ACK "{\"type\":\"ack\""

/*
 * The fast path: a message or an ack is scanned for the few keys we need
 * instead of building a tree.  A key pattern "k": cannot occur inside a
 * JSON string value (its quotes would be escaped there); anything unusual
 * falls back to jansson.
 */
static bool
fast_message(conn *c, const char *p, size_t n)
{
	const char *end = p + n;
	const char *chid = find_key(p, n, "\"channelId\":\"", 13);
	const char *seq = find_key(p, n, "\"seq\":", 6);
	const char *content = find_key(p, n, "\"content\":\"", 11);
	const char *ce;

	if (!chid || !seq || !content || chid + 36 >= end || chid[36] != '"')
		return false;
	ce = memchr(content, '"', (size_t) (end - content));
	if (ce == NULL)
		return false;
	on_message(c, chid, 36, parse_int(seq, end), content,
			   (size_t) (ce - content));
	return true;
}

static bool
fast_ack(conn *c, const char *p, size_t n)
{
	const char *end = p + n;
	const char *chid = find_key(p, n, "\"channelId\":\"", 13);
	const char *seq = find_key(p, n, "\"seq\":", 6);
	const char *cid = find_key(p, n, "\"clientId\":\"", 12);
	const char *dup = find_key(p, n, "\"duplicate\":", 12);

	if (!chid || !seq || !cid || !dup || chid + 36 >= end || chid[36] != '"' ||
		cid + 36 >= end)
		return false;
	on_ack(c, chid, 36, parse_int(seq, end), cid, 36, *dup == 't');
	return true;
}

static void
on_text(conn *c, const char *p, size_t n)
{
	P.now = mono_ns();
	if (!P.cfg->json_full && c->state != S_WAIT_READY)
	{
		if (n > sizeof(PFX_MESSAGE) && memcmp(p, PFX_MESSAGE, sizeof(PFX_MESSAGE) - 1) == 0 &&
			fast_message(c, p, n))
			return;
		if (n > sizeof(PFX_ACK) && memcmp(p, PFX_ACK, sizeof(PFX_ACK) - 1) == 0 &&
			fast_ack(c, p, n))
			return;
	}
	on_json(c, p, n);
}

/* --- connecting -------------------------------------------------------- */

static void
user_id(int c_global, int k, char *out, size_t n)
{
	snprintf(out, n, "%s%d_%d", P.cfg->prefix, c_global, k);
}

static void
start_connect(conn *c)
{
	const cl_config *cfg = P.cfg;
	int			cg = P.c_lo + c->lc;
	long		g = (long) cg * cfg->members + c->k;
	struct sockaddr_in src,
				dst;
	struct epoll_event e;
	int			one = 1;
	int			port = cfg->spread_by_conn ? cfg->ports[g % cfg->n_ports] :
	cfg->ports[cg % cfg->n_ports];
	int			fd;

	memset(&src, 0, sizeof(src));
	src.sin_family = AF_INET;
	inet_pton(AF_INET, cfg->src_base, &src.sin_addr);
	src.sin_addr.s_addr = htonl(ntohl(src.sin_addr.s_addr) + (uint32_t) (g / cfg->per_addr));
	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t) port);
	inet_pton(AF_INET, cfg->host, &dst.sin_addr);

	c->t_start = P.now;
	c->state = S_CONNECTING;
	P.connecting++;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
	{
		conn_fail(c, errno == EMFILE ? "emfile" : "socket");
		return;
	}
	c->fd = fd;
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *) &src, sizeof(src)) != 0)
	{
		conn_fail(c, "bind");
		return;
	}
	if (connect(fd, (struct sockaddr *) &dst, sizeof(dst)) != 0 &&
		errno != EINPROGRESS)
	{
		conn_fail(c, errno == EADDRNOTAVAIL ? "no_ports" : "connect");
		return;
	}
	memset(&e, 0, sizeof(e));
	e.events = EPOLLOUT;
	e.data.u64 = (uint64_t) (c - P.conns);
	if (epoll_ctl(P.ep, EPOLL_CTL_ADD, fd, &e) != 0)
	{
		conn_fail(c, "epoll");
		return;
	}
	c->events = EPOLLOUT;
}

/* on_connected writes the upgrade request. */
static void
on_connected(conn *c)
{
	const cl_config *cfg = P.cfg;
	int			err = 0;
	socklen_t	len = sizeof(err);
	char		uid[96];
	char		token[1024];
	unsigned char rnd[16];
	int			n;
	ssize_t		w;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
	{
		conn_fail(c, err == ECONNREFUSED ? "refused" : "connect");
		return;
	}
	user_id(P.c_lo + c->lc, c->k, uid, sizeof(uid));
	if (mint_token(cfg->secret, uid, (long) time(NULL) + cfg->token_ttl,
				   token, sizeof(token)) != 0)
		fatal("cannot mint a token for %s", uid);
	RAND_bytes(rnd, sizeof(rnd));
	b64std(rnd, sizeof(rnd), c->key);
	c->buf = malloc(HS_BUF);
	if (c->buf == NULL)
		fatal("out of memory");
	n = snprintf(c->buf, HS_BUF,
				 "GET %s?token=%s%s HTTP/1.1\r\nHost: %s:%d\r\n"
				 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
				 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
				 cfg->path, token,
	/* a storm reconnect states its position before live frames */
				 c->resync && !cfg->storm_no_resume ? "&resume=1" : "",
				 cfg->host, cfg->ports[0], c->key);
	w = send(c->fd, c->buf, (size_t) n, MSG_NOSIGNAL);
	if (w != n)
	{
		conn_fail(c, "send_upgrade");
		return;
	}
	c->buf_len = 0;
	c->state = S_HS;
	set_events(c, EPOLLIN);
}

static bool
accept_ok(const char *head, const char *key)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	char		in[64];
	unsigned char sha[SHA_DIGEST_LENGTH];
	char		want[40];
	const char *h = strcasestr(head, "\r\nSec-WebSocket-Accept:");

	if (h == NULL)
		return false;
	h += 23;
	while (*h == ' ')
		h++;
	snprintf(in, sizeof(in), "%s%s", key, guid);
	SHA1((const unsigned char *) in, strlen(in), sha);
	b64std(sha, sizeof(sha), want);
	return strncmp(h, want, strlen(want)) == 0;
}

/* on_handshake reads the 101 and opens the WebSocket. */
static void
on_handshake(conn *c)
{
	ssize_t		r = recv(c->fd, c->buf + c->buf_len, HS_BUF - 1 - c->buf_len, 0);
	char	   *end;
	int			status = 0;
	size_t		head;

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
	{
		conn_fail(c, r == 0 ? "eof_in_upgrade" : "recv_upgrade");
		return;
	}
	if (r < 0)
		return;
	c->buf_len += (uint32_t) r;
	c->buf[c->buf_len] = '\0';
	end = strstr(c->buf, "\r\n\r\n");
	if (end == NULL)
	{
		if (c->buf_len >= HS_BUF - 1)
			conn_fail(c, "upgrade_head_too_large");
		return;
	}
	head = (size_t) (end + 4 - c->buf);
	if (sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1 || status != 101)
	{
		char		code[32];

		snprintf(code, sizeof(code), "http_%d", status);
		P.r.http_errors++;
		/* no retry for a refusal: the server meant it */
		c->retries = (uint8_t) P.cfg->connect_retries;
		conn_fail(c, code);
		return;
	}
	*end = '\0';
	if (!accept_ok(c->buf, c->key))
	{
		c->retries = (uint8_t) P.cfg->connect_retries;
		conn_fail(c, "bad_accept");
		return;
	}
	if (wslay_event_context_client_init(&c->ws, &ws_callbacks, c) != 0)
		fatal("out of memory");
	wslay_event_config_set_max_recv_msg_length(c->ws, MAX_RECV_MSG);
	/* bytes after the head (maybe the ready frame) go to wslay first */
	c->buf_off = (uint32_t) head;
	if (c->buf_off == c->buf_len)
	{
		free(c->buf);
		c->buf = NULL;
		c->buf_len = c->buf_off = 0;
	}
	c->state = S_WAIT_READY;
	if (wslay_event_recv(c->ws) != 0)
		conn_fail(c, "ws_recv");
}

static void
on_ws_readable(conn *c)
{
	if (wslay_event_recv(c->ws) != 0)
	{
		conn_fail(c, "ws_recv");
		return;
	}
	if (!wslay_event_want_read(c->ws))
	{
		/* the server closed the WebSocket */
		conn_fail(c, "server_closed");
		return;
	}
	if (wslay_event_want_write(c->ws))
		mark_dirty(c);
}

static void
flush_dirty(void)
{
	while (P.dirty >= 0)
	{
		conn	   *c = &P.conns[P.dirty];

		P.dirty = c->next_dirty;
		c->dirty = false;
		if (c->ws == NULL || c->fd < 0)
			continue;
		if (wslay_event_send(c->ws) != 0)
		{
			conn_fail(c, "ws_send");
			continue;
		}
		set_events(c, EPOLLIN | (wslay_event_want_write(c->ws) ? EPOLLOUT : 0));
	}
}

static void
on_event(conn *c, uint32_t ev)
{
	switch (c->state)
	{
		case S_CONNECTING:
			if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
				on_connected(c);
			break;
		case S_HS:
			on_handshake(c);
			break;
		case S_WAIT_READY:
		case S_LIVE:
		case S_SYNCING:
			if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
				on_ws_readable(c);
			if (c->ws && c->fd >= 0 && (ev & EPOLLOUT))
				mark_dirty(c);
			break;
		default:
			break;
	}
}

/* --- the parent link --------------------------------------------------- */

static void
ctl_write(const char *s, size_t n)
{
	while (n > 0)
	{
		ssize_t		w = write(P.ctl_out, s, n);

		if (w < 0)
		{
			if (errno == EINTR)
				continue;
			fatal("proc %d: lost the parent: %s", P.id, strerror(errno));
		}
		s += w;
		n -= (size_t) w;
	}
}

static void
on_ctl(void)
{
	ssize_t		r = read(P.ctl_in, P.ctlbuf + P.ctl_len,
						 sizeof(P.ctlbuf) - 1 - P.ctl_len);
	char	   *nl;

	if (r <= 0)
		fatal("proc %d: the parent went away", P.id);
	P.ctl_len += (size_t) r;
	P.ctlbuf[P.ctl_len] = '\0';
	while ((nl = strchr(P.ctlbuf, '\n')) != NULL)
	{
		long long	t0;

		*nl = '\0';
		if (sscanf(P.ctlbuf, "G %lld", &t0) == 1 && P.ph == P_WAIT_GO)
		{
			const cl_config *cfg = P.cfg;

			P.t0 = (int64_t) t0;
			P.t_win0 = P.t0 + (int64_t) (cfg->warmup * 1e9);
			P.t_win1 = P.t_win0 + (int64_t) (cfg->duration * 1e9);
			P.r.window_s = cfg->duration;
			if (cfg->storm_at >= 0)
			{
				P.t_storm_down = P.t0 + (int64_t) (cfg->storm_at * 1e9);
				P.t_storm_up = P.t_storm_down + (int64_t) (cfg->storm_down * 1e9);
			}
			P.ph = P_RUN;
		}
		P.ctl_len -= (size_t) (nl + 1 - P.ctlbuf);
		memmove(P.ctlbuf, nl + 1, P.ctl_len + 1);
	}
}

/* --- the phases -------------------------------------------------------- */

static void
pump_connects(void)
{
	while (P.q_len > 0 && P.connecting < P.cfg->concurrency)
	{
		conn	   *c = &P.conns[P.q[P.q_head]];

		if (c->t_start > P.now)
			break;
		P.q_head = (P.q_head + 1) % P.n_conns;
		P.q_len--;
		start_connect(c);
	}
}

/* scan_timeouts fails connections stuck before ready. */
static void
scan_timeouts(void)
{
	if (P.now < P.next_scan || P.connecting == 0)
		return;
	P.next_scan = P.now + 1000000000LL;
	for (int i = 0; i < P.n_conns; i++)
	{
		conn	   *c = &P.conns[i];

		if ((c->state == S_CONNECTING || c->state == S_HS ||
			 c->state == S_WAIT_READY) && P.now - c->t_start > CONNECT_TIMEOUT_NS)
			conn_fail(c, "connect_timeout");
	}
}

static void
rate_sends(void)
{
	uint64_t	due;
	int			tries;

	if (!sending() || P.cfg->rate <= 0 || P.n_senders == 0 || P.now < P.t0)
		return;
	due = (uint64_t) ((double) (P.now - P.t0) * P.rate / 1e9);
	tries = 0;
	while (P.scheduled < due)
	{
		conn	   *c = &P.conns[P.senders[P.rr]];

		P.rr = (P.rr + 1) % P.n_senders;
		P.scheduled++;
		if (c->state == S_LIVE && c->inflight < (uint32_t) P.cfg->window)
			send_one(c);
		else
			P.r.skipped_sends++;
		if (++tries > 1000000)
			break;
	}
}

static void
window_start(void)
{
	for (int i = 0; i < P.n_senders; i++)
	{
		conn	   *c = &P.conns[P.senders[i]];

		while (c->state == S_LIVE && c->inflight < (uint32_t) P.cfg->window)
			send_one(c);
	}
}

static void
storm(void)
{
	if (P.cfg->storm_at < 0 || P.ph != P_RUN)
		return;
	if (!P.storm_done_down && P.now >= P.t_storm_down)
	{
		P.storm_done_down = true;
		P.r.storm_down_ns = P.now;
		for (int i = 0; i < P.n_conns; i++)
		{
			conn	   *c = &P.conns[i];

			if (!c->storm || (c->state != S_LIVE))
				continue;
			drop_socket(c);
			c->state = S_DOWN;
			P.r.storm_conns++;
		}
	}
	if (P.storm_done_down && !P.storm_done_up && P.now >= P.t_storm_up)
	{
		P.storm_done_up = true;
		P.r.storm_up_ns = P.now;
		for (int i = 0; i < P.n_chans; i++)
			P.chans[i].head_at_up = P.chans[i].max_acked;
		for (int i = 0; i < P.n_conns; i++)
		{
			conn	   *c = &P.conns[i];

			if (c->state != S_DOWN)
				continue;
			c->resync = true;
			c->retries = 0;
			enqueue(c, 0);
		}
	}
}

/* drained: nothing in flight and every stream at its channel's head. */
static bool
drained(void)
{
	if (P.q_len > 0 || P.connecting > 0)
		return false;
	for (int i = 0; i < P.n_conns; i++)
	{
		conn	   *c = &P.conns[i];
		chan	   *ch = &P.chans[c->lc];
		int64_t		head = ch->acks ? ch->max_acked : ch->initial;

		if (c->state == S_SYNCING)
			return false;
		if (c->state != S_LIVE)
			continue;
		if (c->inflight > 0 || c->pos < head)
			return false;
	}
	return true;
}

static void
final_checks(void)
{
	for (int i = 0; i < P.n_chans; i++)
	{
		chan	   *ch = &P.chans[i];

		if (ch->acks > 0 && ch->initial >= 0 &&
			(uint64_t) (ch->max_acked - ch->initial) > ch->acks)
			P.r.lost_seqs += (uint64_t) (ch->max_acked - ch->initial) - ch->acks;
	}
	for (int i = 0; i < P.n_conns; i++)
	{
		conn	   *c = &P.conns[i];
		chan	   *ch = &P.chans[c->lc];
		int64_t		head = ch->acks ? ch->max_acked : ch->initial;

		P.r.unacked += c->inflight;
		if (!c->was_ready)
			continue;
		P.r.streams++;
		if (c->state != S_LIVE || c->pos != head)
			P.r.incomplete++;
	}
}

static void
report(void)
{
	json_t	   *j = result_to_json(&P.r);
	char	   *s = json_dumps(j, JSON_COMPACT);

	if (s == NULL)
		fatal("out of memory");
	ctl_write("J ", 2);
	ctl_write(s, strlen(s));
	ctl_write("\n", 1);
	free(s);
	json_decref(j);
}

static void
setup(const cl_config *cfg, int id, int nprocs, int ctl_in, int ctl_out)
{
	struct epoll_event e;
	int			S = cfg->idle ? 0 : cfg->senders;

	memset(&P, 0, sizeof(P));
	P.cfg = cfg;
	P.id = id;
	P.nprocs = nprocs;
	P.ctl_in = ctl_in;
	P.ctl_out = ctl_out;
	P.c_lo = (int) ((long) cfg->channels * id / nprocs);
	P.c_hi = (int) ((long) cfg->channels * (id + 1) / nprocs);
	P.n_chans = P.c_hi - P.c_lo;
	P.n_conns = P.n_chans * cfg->members;
	P.dirty = -1;
	P.ep = epoll_create1(EPOLL_CLOEXEC);
	if (P.ep < 0)
		fatal("epoll_create1: %s", strerror(errno));
	P.conns = calloc((size_t) (P.n_conns ? P.n_conns : 1), sizeof(conn));
	P.chans = calloc((size_t) (P.n_chans ? P.n_chans : 1), sizeof(chan));
	P.senders = calloc((size_t) (P.n_conns ? P.n_conns : 1), sizeof(int));
	P.q = calloc((size_t) (P.n_conns ? P.n_conns : 1), sizeof(int));
	P.sendcap = (size_t) cfg->size + 512;
	P.sendbuf = malloc(P.sendcap);
	if (!P.conns || !P.chans || !P.senders || !P.q || !P.sendbuf)
		fatal("out of memory");
	RAND_bytes((unsigned char *) &P.rand_tag, sizeof(P.rand_tag));
	for (int i = 0; i < P.n_chans; i++)
		P.chans[i].initial = -1;
	for (int i = 0; i < P.n_conns; i++)
	{
		conn	   *c = &P.conns[i];
		int			cg;
		long		rank;

		c->fd = -1;
		c->lc = i / cfg->members;
		c->k = i % cfg->members;
		c->next_dirty = -1;
		c->sender = c->k < S;
		cg = P.c_lo + c->lc;
		rank = (long) cg * (cfg->members - S) + (c->k - S);
		c->storm = cfg->storm_at >= 0 && !c->sender &&
			(cfg->storm_count <= 0 || rank < cfg->storm_count);
		if (c->sender)
			P.senders[P.n_senders++] = i;
		enqueue(c, 0);
	}
	/* this proc's share of the total rate */
	{
		long		total_senders = (long) cfg->channels * S;

		P.rate = total_senders ? cfg->rate * P.n_senders / (double) total_senders : 0;
	}
	memset(&e, 0, sizeof(e));
	e.events = EPOLLIN;
	e.data.u64 = CTL_TAG;
	if (epoll_ctl(P.ep, EPOLL_CTL_ADD, ctl_in, &e) != 0)
		fatal("epoll_ctl: %s", strerror(errno));
	P.r.conns_wanted = (uint64_t) P.n_conns;
	if (getenv("CHATLOAD_DEBUG"))
		debug_anomalies = atoi(getenv("CHATLOAD_DEBUG"));
}

int
proc_main(const cl_config *cfg, int id, int nprocs, int ctl_in, int ctl_out)
{
	struct epoll_event *evs;
	const int	max_ev = 1024;
	bool		window_started = false;
	int64_t		next_drain_check = 0;

	setup(cfg, id, nprocs, ctl_in, ctl_out);
	evs = calloc(max_ev, sizeof(*evs));
	if (evs == NULL)
		fatal("out of memory");
	P.now = P.t_ramp0 = mono_ns();
	P.ph = P_RAMP;

	while (P.ph != P_DONE)
	{
		int			timeout,
					n;

		P.now = mono_ns();
		pump_connects();
		if (P.ph == P_RUN && sending() && cfg->rate > 0)
			timeout = 1;
		else if (P.q_len > 0 || P.ph == P_RUN || P.ph == P_DRAIN)
			timeout = 5;
		else
			timeout = 100;
		n = epoll_wait(P.ep, evs, max_ev, timeout);
		if (n < 0 && errno != EINTR)
			fatal("epoll_wait: %s", strerror(errno));
		P.now = mono_ns();
		for (int i = 0; i < n; i++)
		{
			if (evs[i].data.u64 == CTL_TAG)
			{
				on_ctl();
				continue;
			}
			on_event(&P.conns[evs[i].data.u64], evs[i].events);
		}
		P.now = mono_ns();
		scan_timeouts();

		switch (P.ph)
		{
			case P_RAMP:
				if ((P.q_len == 0 && P.connecting == 0) ||
					P.now - P.t_ramp0 > (int64_t) (cfg->ramp_timeout * 1e9))
				{
					char		line[96];
					int			len;

					for (int i = 0; i < P.n_conns; i++)
						if (P.conns[i].state == S_LIVE)
							P.r.conns_ready++;
					P.r.ramp_ns = P.now - P.t_ramp0;
					len = snprintf(line, sizeof(line), "R %llu %llu\n",
								   (unsigned long long) P.r.conns_ready,
								   (unsigned long long) P.r.connect_failures);
					ctl_write(line, (size_t) len);
					P.ph = P_WAIT_GO;
				}
				break;
			case P_WAIT_GO:
				break;
			case P_RUN:
				if (P.now < P.t0)
					break;
				if (!window_started && cfg->rate <= 0 && !cfg->idle)
				{
					window_started = true;
					window_start();
				}
				storm();
				rate_sends();
				if (P.now >= P.t_win1)
				{
					P.ph = P_DRAIN;
					P.t_drain_end = P.now + (int64_t) (cfg->drain * 1e9);
				}
				break;
			case P_DRAIN:
				if (P.now >= P.t_drain_end)
					P.ph = P_DONE;
				else if (P.now >= next_drain_check)
				{
					next_drain_check = P.now + 20000000;
					if (drained())
						P.ph = P_DONE;
				}
				break;
			case P_DONE:
				break;
		}
		flush_dirty();
	}
	final_checks();
	report();
	/* the kernel closes the sockets; freeing 100k contexts is wasted time */
	if (getenv("CHATLOAD_FREE"))
	{
		for (int i = 0; i < P.n_conns; i++)
			drop_socket(&P.conns[i]);
		free(P.conns);
		free(P.chans);
		free(P.senders);
		free(P.q);
		free(P.sendbuf);
		json_decref(P.r.errors);
		close(P.ep);
	}
	free(evs);
	return 0;
}
