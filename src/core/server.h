/*
 * server.h
 *	  The chat server core: accepts connections, upgrades them after JWT
 *	  authentication, speaks the protocol, batches sends for group commit
 *	  and fans messages out to rooms.  Single-threaded and driven from
 *	  outside: the host (the PostgreSQL worker) waits on chat_server_fd()
 *	  and calls chat_server_poll() whenever it or a timer fires.
 */
#ifndef CHAT_SERVER_H
#define CHAT_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "core/event.h"
#include "core/host.h"
#include "core/jwt.h"
#include "core/store.h"

typedef struct chat_server chat_server;

/* Logging hook: the core never writes to stderr itself. */
typedef enum chat_log_level
{
	CHAT_LOG_DEBUG,
	CHAT_LOG_INFO,
	CHAT_LOG_WARNING
} chat_log_level;

typedef void (*chat_log_fn) (void *arg, chat_log_level level,
							 const char *msg);

/* Settings the host may change at any time (chat_server_configure). */
typedef struct chat_server_config
{
	int			worker_id;
	int			heartbeat_interval_ms;
	int			heartbeat_timeout_ms;
	int			typing_timeout_ms;
	int			typing_debounce_ms;
	int			max_message_bytes;
	int			max_frame_bytes;
	int			max_outbound_bytes;
	int			handshake_timeout_ms;
	int			max_connections;
	int			max_connections_per_ip;
	int			max_handshakes; /* connections still upgrading; 0 = none */
	int			max_handshakes_per_ip;	/* the same per address; 0 = none */
	int			rate_limit;		/* frame cost per second per connection
								 * (handlers.c); 0 = none */
	int			rate_burst;
	int			user_rate_limit;	/* the same per user; 0 = none */
	int			user_rate_burst;
	const char *allowed_origins;	/* comma list, NULL/"" = any */
	jwt_keys	keys;			/* pointers must stay valid until the next
								 * configure call */
} chat_server_config;

extern chat_server *chat_server_create(const chat_store *store,
									   const chat_host *host,
									   chat_log_fn log, void *log_arg);
extern void chat_server_configure(chat_server *srv,
								  const chat_server_config *cfg);

/*
 * chat_server_tls makes the port speak TLS (wss://) with these PEM files;
 * call before the first connection.  -1 with a reason in err.
 */
extern int	chat_server_tls(chat_server *srv, const char *cert_file,
							const char *key_file, char *err, size_t errlen);

/* chat_server_listen adds a listener; -1 with a reason in err. */
extern int	chat_server_listen(chat_server *srv, const char *host, int port,
							   char *err, size_t errlen);

/* The epoll fd holding every socket: readable when work is waiting. */
extern int	chat_server_fd(chat_server *srv);

/*
 * chat_server_event hands over one event record (core/event.h): a hint of
 * a committed change, or another worker's typing or presence.  It is
 * queued and acted on by the next chat_server_poll (or by the drain after
 * a group commit).  Returns false for a record that is not valid.
 */
extern bool chat_server_event(chat_server *srv, const chat_event *ev);

/* chat_server_notify is chat_server_event of an event's text form. */
extern bool chat_server_notify(chat_server *srv, const char *payload);

/*
 * chat_server_resync says hints were lost (an overrun, a restart, an
 * error while reading them): the next poll re-reads every subscription's
 * membership and every room's newest seq and change counter.
 */
extern void chat_server_resync(chat_server *srv);

/*
 * chat_server_poll does all ready work without blocking: I/O, one group
 * commit, broadcasts, timers.  now_ms is a monotonic clock; now_s is the
 * wall clock for token checks.  Returns the milliseconds until the next
 * timer (the host's wait timeout).
 */
extern int	chat_server_poll(chat_server *srv, int64_t now_ms, int64_t now_s);

/* chat_server_shutdown closes every connection with code (1001). */
extern void chat_server_shutdown(chat_server *srv, int code);
extern void chat_server_destroy(chat_server *srv);

/* A latency histogram: buckets of 100us, 250us, 500us, 1ms ... 250ms, +Inf */
#define CHAT_HISTO_BUCKETS 12
typedef struct chat_histo
{
	uint64_t	buckets[CHAT_HISTO_BUCKETS];
	uint64_t	sum_us;
	uint64_t	count;
} chat_histo;

extern void chat_histo_add(chat_histo *h, int64_t us);
extern int64_t chat_clock_us(void);

/* Counters for /metrics and tests. */
typedef struct chat_server_stats
{
	uint64_t	connections_open;
	uint64_t	connections_total;
	uint64_t	frames_in;
	uint64_t	frames_out;
	uint64_t	messages_persisted;
	uint64_t	deliveries;
	uint64_t	acks;
	uint64_t	resyncs;		/* hints lost: everything re-read */
	uint64_t	handshakes_refused; /* over chat.max_handshakes[_per_ip] */
	uint64_t	errors[CHAT_E_INTERNAL + 1];
	chat_histo	batch;			/* time to persist one group-commit batch */
	chat_histo	loop;			/* one pass of the event loop, not waiting */
} chat_server_stats;

extern const chat_server_stats *chat_server_get_stats(chat_server *srv);

#endif							/* CHAT_SERVER_H */
