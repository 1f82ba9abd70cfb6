/*
 * fuzz_ws.c
 *	  libFuzzer target: the WebSocket stream as the worker consumes it.
 *
 *	  Each input runs a real chat_server (chat_server_create, the same
 *	  poll loop as the worker) over the in-memory store of fuzz_store.c.
 *	  Two clients are handed to it as accept() would (conn_new on one end of
 *	  a socketpair; no listener, no port, nothing added to the core):
 *	    - bob upgrades first and stays passive: he receives what alice's
 *	      actions broadcast;
 *	    - alice sends a valid upgrade with a valid token, then the fuzz
 *	      input as her WebSocket stream (frames must be masked, as from any
 *	      client; the seeds show how).
 *	  How the stream arrives depends on the input's length (size % 3), so
 *	  every path of the reader is reachable: 0 in the same segment as the
 *	  upgrade head (the bytes the head reader keeps for wslay), 1 in one
 *	  write after the 101, 2 in 16 pieces with a poll after each (frames
 *	  split across reads).
 *	  Then the clock runs (pings, typing expiry, alice's token expires and
 *	  the server closes with 4001), alice half-closes, both hang up, and the
 *	  server is destroyed.
 *
 *	  Built with -DFUZZ_CONN this is the "conn" target: the input is all
 *	  that alice sends, from the first byte of the request head, so the
 *	  head reader, the routing of upgrade.c (/healthz, /metrics, 400, 401,
 *	  403, 405, 426, 431...) and the upgrade itself are fuzzed too; a
 *	  response other than 101 must be one well-formed HTTP response after
 *	  which the server hangs up.  (size % 3 == 2 arrives in 16 pieces.)
 *
 *	  Checked beyond "no crash, no leak, no UB": every byte the server
 *	  writes parses as a 101 followed by well-formed server frames (text
 *	  frames are JSON objects with a type), the first
 *	  text frame is ready, every notification the server accepts is
 *	  understood, presence and admitted slots balance to zero, no
 *	  descriptor leaks, and no token reaches the log.  The 101 comes first
 *	  and no data frame follows a close, also when a client sends frames
 *	  together with the upgrade or with its close (both were found here).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE				/* memmem */
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/layers.h"
#include "fuzz_store.h"
#include "fuzz_util.h"

/* Shared with fuzz_jwt.c and gen_corpus.py: refresh seeds are signed. */
#define SECRET "fuzz-hs256-secret-0123456789abcdef"
#define T0_S INT64_C(1700000000)
#define ALICE_TTL 5				/* expires during the clock phase */
#define BOB_TTL 100000

typedef struct peer
{
	const char *name;
	int			fd;				/* the client's end */
	unsigned char *buf;			/* received, not yet parsed */
	size_t		len;
	size_t		cap;
	bool		head_done;		/* the 101 was read */
	bool		eof;
	bool		close_seen;		/* a close frame was read */
	bool		garbled;		/* an HTTP answer: not parsed further */
	int			status;			/* HTTP status of the response head */
	int			text_frames;
} peer;

static char tok_alice[1024];
static char tok_bob[1024];
static const char *sig_alice;	/* the signature part, never logged */
static char req_alice[2048];
static char req_bob[2048];
static bool trace;				/* FUZZ_WS_TRACE=1: print every frame */

/*
 * The descriptors handed to the server, by identity: libFuzzer's own
 * threads open files now and then, so a number alone proves nothing.
 */
typedef struct owned_fd
{
	int			fd;
	dev_t		dev;
	ino_t		ino;
} owned_fd;

static owned_fd owned[4];
static int	n_owned;

static fuzz_store st;
static chat_server *srv;
static peer pa,
			pb;
static int64_t now_ms;
static int64_t now_s;
static int	step_ms;

static void
on_log(void *arg, chat_log_level level, const char *msg)
{
	FZ_CHECK(level >= CHAT_LOG_DEBUG && level <= CHAT_LOG_WARNING);
	FZ_CHECK(msg != NULL);
	FZ_CHECK(strstr(msg, sig_alice) == NULL);
}

static void
make_request(char *out, size_t outlen, const char *tok)
{
	snprintf(out, outlen,
			 "GET /ws?token=%s HTTP/1.1\r\n"
			 "Host: 127.0.0.1\r\n"
			 "Upgrade: websocket\r\n"
			 "Connection: Upgrade\r\n"
			 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			 "Sec-WebSocket-Version: 13\r\n"
			 "Origin: http://localhost\r\n"
			 "\r\n", tok);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const unsigned char *key = (const unsigned char *) SECRET;

	if (jwt_sign_hs256(key, strlen(SECRET), "alice", T0_S, T0_S + ALICE_TTL,
					   tok_alice, sizeof(tok_alice)) < 0 ||
		jwt_sign_hs256(key, strlen(SECRET), "bob", T0_S, T0_S + BOB_TTL,
					   tok_bob, sizeof(tok_bob)) < 0)
		abort();
	sig_alice = strrchr(tok_alice, '.') + 1;
	make_request(req_alice, sizeof(req_alice), tok_alice);
	make_request(req_bob, sizeof(req_bob), tok_bob);
	trace = getenv("FUZZ_WS_TRACE") != NULL;
	return 0;
}

static chat_server_config
config(void)
{
	chat_server_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.worker_id = 1;
	cfg.heartbeat_interval_ms = 1000;
	cfg.heartbeat_timeout_ms = 4000;
	cfg.typing_timeout_ms = 1500;
	cfg.typing_debounce_ms = 300;
	cfg.max_message_bytes = 1024;
	cfg.max_frame_bytes = 8192;
	cfg.max_outbound_bytes = 65536;
	cfg.handshake_timeout_ms = 5000;
	cfg.max_connections = 8;
	cfg.max_connections_per_ip = 4;
	cfg.rate_limit = 50;
	cfg.rate_burst = 20;
	cfg.allowed_origins = "https://chat.example, http://localhost";
	cfg.keys.hs_secret = (const unsigned char *) SECRET;
	cfg.keys.hs_secret_len = strlen(SECRET);
	return cfg;
}

static void
remember(int fd)
{
	struct stat sb;

	FZ_CHECK(fd >= 0 && fstat(fd, &sb) == 0);
	owned[n_owned].fd = fd;
	owned[n_owned].dev = sb.st_dev;
	owned[n_owned].ino = sb.st_ino;
	n_owned++;
}

static bool
still_open(const owned_fd *o)
{
	struct stat sb;

	return fstat(o->fd, &sb) == 0 && sb.st_dev == o->dev &&
		sb.st_ino == o->ino;
}

/* --- the client side -------------------------------------------------- */

static void
peer_open(peer *p, const char *name)
{
	int			sv[2];

	memset(p, 0, sizeof(*p));
	p->name = name;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
				   sv) != 0)
		abort();
	p->fd = sv[1];
	remember(sv[0]);
	/* what accept_all does with a new socket */
	FZ_CHECK(conn_new(srv, sv[0], "127.0.0.1") != NULL);
}

static void
peer_close(peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

/* peer_read takes everything the server wrote; returns the byte count. */
static size_t
peer_read(peer *p)
{
	size_t		total = 0;

	while (p->fd >= 0 && !p->eof)
	{
		ssize_t		r;

		if (p->cap - p->len < 65536)
		{
			p->cap = p->cap * 2 + 65536;
			p->buf = realloc(p->buf, p->cap);
			FZ_CHECK(p->buf != NULL);
		}
		r = recv(p->fd, p->buf + p->len, p->cap - p->len, MSG_DONTWAIT);
		if (r > 0)
		{
			p->len += (size_t) r;
			total += (size_t) r;
		}
		else if (r < 0 && errno == EAGAIN)
			break;
		else
			p->eof = true;		/* EOF or reset: the server closed */
	}
	return total;
}

/*
 * check_status_line returns the status of an "HTTP/1.1 NNN Reason" head of
 * n bytes with CRLF line ends, or 0 when it is not one.
 */
static int
check_status_line(const unsigned char *h, size_t n)
{
	if (n < 13 || memcmp(h, "HTTP/1.1 ", 9) != 0 ||
		h[9] < '1' || h[9] > '5' || h[10] < '0' || h[10] > '9' ||
		h[11] < '0' || h[11] > '9' || h[12] != ' ')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (h[i] == '\n' && (i == 0 || h[i - 1] != '\r'))
			return 0;
	return (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
}

/*
 * peer_parse checks what arrived: the 101, then whole frames.  A partial
 * frame stays for later (the server may also die in the middle of one,
 * when it drops a slow consumer).
 */
static void
peer_parse(peer *p)
{
	size_t		off = 0;
	fz_frame	f;
	int			rc;

	if (p->garbled)
	{
		p->len = 0;
		return;
	}
	if (!p->head_done)
	{
		unsigned char *end = p->len >= 4 ?
		memmem(p->buf, p->len, "\r\n\r\n", 4) : NULL;

		if (end == NULL)
		{
			FZ_CHECK(p->len < 1024);
			return;
		}
		p->status = check_status_line(p->buf, (size_t) (end - p->buf));
		/* whatever came first, a response head is well formed */
		FZ_CHECK(p->status != 0 || p->buf[0] != 'H');
#ifdef FUZZ_CONN
		if (p == &pa && p->status != 101 && p->status != 0)
		{
			/* an HTTP answer: nothing of WebSocket may follow */
			p->head_done = true;
			p->garbled = true;
			p->len = 0;
			return;
		}
#endif
		/* the 101 comes first, even when frames came with the upgrade */
		FZ_CHECK(p->status == 101);
		off = (size_t) (end - p->buf) + 4;
		p->head_done = true;
	}
	while ((rc = fz_ws_next_frame(p->buf, p->len, &off, &f)) == 1)
	{
		if (trace)
			fprintf(stderr, "%s <- op %d len %zu: %.*s\n", p->name, f.opcode,
					f.len, f.opcode == 1 ? (int) (f.len > 300 ? 300 : f.len) : 0,
					(const char *) f.payload);
		/* RFC 6455 5.5.1: the close is the last frame */
		FZ_CHECK(!p->close_seen);
		fz_check_server_frame(&f);
		if (f.opcode == 0x1 && p->text_frames++ == 0)
			FZ_CHECK(f.len > 15 &&
					 memcmp(f.payload, "{\"type\":\"ready\"", 15) == 0);
		if (f.opcode == 0x8)
			p->close_seen = true;
	}
	FZ_CHECK(rc == 0);
	memmove(p->buf, p->buf + off, p->len - off);
	p->len -= off;
}

/* --- driving the server ---------------------------------------------- */

/*
 * pump runs one iteration of the worker's loop and hands over what the
 * database would have notified.  Returns whether anything happened.
 */
static bool
pump(void)
{
	char	  **notes;
	size_t		n;
	size_t		got;

	now_ms += step_ms;
	(void) chat_server_poll(srv, now_ms, now_s);
	notes = fs_take_notes(&st, &n);
	for (size_t i = 0; i < n; i++)
	{
		FZ_CHECK(chat_server_notify(srv, notes[i]));
		free(notes[i]);
	}
	free(notes);
	if (st.resync)
	{
		chat_server_resync(srv);
		st.resync = false;
	}
	got = peer_read(&pa) + peer_read(&pb);
	peer_parse(&pa);
	peer_parse(&pb);
	return n > 0 || got > 0;
}

/* settle polls until two iterations in a row do nothing. */
static void
settle(void)
{
	int			quiet = 0;

	for (int i = 0; i < 200 && quiet < 2; i++)
		quiet = pump() ? 0 : quiet + 1;
}

/*
 * write_all sends buf in pieces of at most chunk bytes, polling after
 * each, until all is written or the server stops reading.
 */
static void
write_all(peer *p, const void *buf, size_t len, size_t chunk)
{
	size_t		off = 0;
	int			stalls = 0;

	while (off < len && stalls < 8 && p->fd >= 0)
	{
		size_t		want = len - off < chunk ? len - off : chunk;
		ssize_t		n = send(p->fd, (const char *) buf + off, want,
							 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0)
		{
			off += (size_t) n;
			stalls = 0;
			if (chunk < len)
				(void) pump();
		}
		else if (n < 0 && errno == EAGAIN)
			stalls += pump() ? 0 : 1;
		else
			break;				/* the server closed its end */
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	chat_store	store;
	chat_host	host;
	chat_server_config cfg = config();
	int			mode = (int) (size % 3);

	fs_init(&st, &store, &host);
	srv = chat_server_create(&store, &host, on_log, NULL);
	FZ_CHECK(srv != NULL);
	chat_server_configure(srv, &cfg);
	n_owned = 0;
	remember(chat_server_fd(srv));
	now_ms = 1000;
	now_s = T0_S;
	step_ms = 10;
	peer_open(&pb, "bob");
	peer_open(&pa, "alice");

	write_all(&pb, req_bob, strlen(req_bob), SIZE_MAX);
	settle();
	FZ_CHECK(pb.head_done && pb.text_frames >= 1);

#ifdef FUZZ_CONN
	write_all(&pa, data, size, mode == 2 ? (size / 16 > 0 ? size / 16 : 1) :
			  SIZE_MAX);
#else
	if (mode == 0)
	{
		size_t		hl = strlen(req_alice);
		char	   *all = malloc(hl + size + 1);

		memcpy(all, req_alice, hl);
		memcpy(all + hl, data, size);
		write_all(&pa, all, hl + size, SIZE_MAX);
		free(all);
	}
	else
	{
		write_all(&pa, req_alice, strlen(req_alice), SIZE_MAX);
		settle();
		FZ_CHECK(pa.head_done && pa.text_frames >= 1);
		write_all(&pa, data, size, mode == 1 ? SIZE_MAX :
				  (size / 16 > 0 ? size / 16 : 1));
	}
#endif
	settle();

	/* the clock runs: pings, typing expiry, heartbeat and token expiry */
	step_ms = 700;
	for (int i = 0; i < 10; i++)
	{
		now_s++;
		(void) pump();
	}
	step_ms = 10;
	settle();
#ifdef FUZZ_CONN
	/* an HTTP answer (or a head that never completed) ends the connection */
	if (pa.status != 101)
		FZ_CHECK(pa.eof);
#endif

	/* alice half-closes, then both hang up */
	if (pa.fd >= 0)
		shutdown(pa.fd, SHUT_WR);
	settle();
	peer_close(&pa);
	settle();
	peer_close(&pb);
	settle();

	chat_server_destroy(srv);
	srv = NULL;
	FZ_CHECK(st.online[0] == 0 && st.online[1] == 0);
	for (int i = 0; i < 8; i++)
		FZ_CHECK(st.others_online[i] == 0);
	FZ_CHECK(st.admitted == 0);
	fs_free(&st);
	free(pa.buf);
	free(pb.buf);

	/* every descriptor the server was given or made is closed */
	for (int i = 0; i < n_owned; i++)
		FZ_CHECK(!still_open(&owned[i]));
	return 0;
}
