/*
 * server.c
 *	  The server core's loop: listeners, accepting, the order of work in one
 *	  iteration, notifications, timers and reaping closed connections.
 *
 *	  One iteration (chat_server_poll) is:
 *	    1. read everything readable; sends are collected, not yet stored;
 *	    2. commit the collected sends in one transaction and ack them;
 *	    3. act on notifications (new messages, edits, membership);
 *	    4. deliver announced messages, fire timers, flush output, reap.
 */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/layers.h"
#include "core/tls.h"
#include "core/vec.h"

#define EVENTS_PER_WAIT 256
/* a connection silent this long gives up its wslay context (conn_hibernate) */
#define HIBERNATE_AFTER_MS 1000
#define ACCEPT_BACKOFF_MS 100

/* The listeners' epoll tag: any non-connection pointer would do. */
static char listener_tag;

chat_server *
chat_server_create(const chat_store *store, const chat_host *host,
				   chat_log_fn log, void *log_arg)
{
	chat_server *srv = calloc(1, sizeof(chat_server));

	if (srv == NULL)
		return NULL;
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epfd < 0)
	{
		free(srv);
		return NULL;
	}
	srv->store = *store;
	if (host)
		srv->host = *host;
	/* a pipelining store: batches committed while the loop goes on */
	if (srv->store.batch_start && srv->store.batch_finish &&
		(srv->inflight = calloc(CHAT_MAX_INFLIGHT, sizeof(inflight_batch))) == NULL)
	{
		close(srv->epfd);
		free(srv);
		return NULL;
	}
	/* the layers conn.c hands its input to (it calls nothing above it) */
	srv->on_head = upgrade_on_head;
	srv->on_text = handle_text;
	srv->on_binary = handle_binary;
	srv->on_message_out = typing_stop;
	srv->log = log;
	srv->log_arg = log_arg;
	map_init(&srv->rooms);
	map_init(&srv->users);
	map_init(&srv->typing);
	map_init(&srv->handshakes_by_ip);
	return srv;
}

void
chat_server_configure(chat_server *srv, const chat_server_config *cfg)
{
	free(srv->origins);
	srv->cfg = *cfg;
	srv->origins = cfg->allowed_origins ? strdup(cfg->allowed_origins) : NULL;
	srv->cfg.allowed_origins = srv->origins;
	srv->next_sweep_ms = 0;
}

int
chat_server_listen(chat_server *srv, const char *host, int port, char *err,
				   size_t errlen)
{
	struct epoll_event ev;
	int			fd;

	if (srv->n_lfds == (int) (sizeof(srv->lfds) / sizeof(srv->lfds[0])))
	{
		snprintf(err, errlen, "too many listen addresses");
		return -1;
	}
	fd = net_listen(host, port, 4096, err, errlen);
	if (fd < 0)
		return -1;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &listener_tag;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
	{
		snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
		close(fd);
		return -1;
	}
	srv->lfds[srv->n_lfds++] = fd;
	return 0;
}

int
chat_server_tls(chat_server *srv, const char *cert_file, const char *key_file,
				char *err, size_t errlen)
{
	void	   *ctx = tls_context(cert_file, key_file, err, errlen);

	if (ctx == NULL)
		return -1;
	if (srv->tls_ctx)
		tls_context_free(srv->tls_ctx);
	srv->tls_ctx = ctx;
	return 0;
}

int
chat_server_fd(chat_server *srv)
{
	return srv->epfd;
}

/* listeners_watch adds or removes every listener from the epoll set. */
static void
listeners_watch(chat_server *srv, bool on)
{
	for (int i = 0; i < srv->n_lfds; i++)
	{
		struct epoll_event ev;

		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.ptr = &listener_tag;
		epoll_ctl(srv->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, srv->lfds[i],
				  &ev);
	}
}

/*
 * accept_all takes every waiting connection.  Out of descriptors, it stops
 * watching the listeners for a moment instead of spinning on EMFILE.
 */
static void
accept_all(chat_server *srv, int lfd)
{
	for (int i = 0; i < 256; i++)
	{
		char		addr[NET_ADDR_LEN];
		int			fd = net_accept(lfd, addr, sizeof(addr));

		if (fd < 0)
		{
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
				errno == ENOMEM)
			{
				if (srv->now_ms - srv->last_emfile_log_ms >= 10000)
				{
					srv_log(srv, CHAT_LOG_WARNING,
							"accept paused: %s", strerror(errno));
					srv->last_emfile_log_ms = srv->now_ms;
				}
				listeners_watch(srv, false);
				srv->accept_paused_until = srv->now_ms + ACCEPT_BACKOFF_MS;
			}
			return;
		}
		if (conn_new(srv, fd, addr) == NULL)
			close(fd);
	}
}

/*
 * lag_grace: how long a connection whose queue is full may go without
 * taking a single byte before it counts as not reading at all.  A client
 * that reads, however slowly, makes progress well within it.
 */
static int64_t
lag_grace(const chat_server_config *cfg)
{
	return cfg->heartbeat_interval_ms < 5000 ? cfg->heartbeat_interval_ms : 5000;
}

/* sweep closes stalled handshakes and dead peers, and sends pings. */
static void
sweep(chat_server *srv)
{
	const chat_server_config *cfg = &srv->cfg;
	chat_conn  *c,
			   *next;
	int			hibernated = 0;

	for (c = srv->conns; c; c = next)
	{
		next = c->next;
		if (c->state == CONN_HTTP || c->state == CONN_DRAIN)
		{
			int64_t		since = c->drain_since ? c->drain_since : c->created_ms;
			int64_t		limit = c->drain_since ?
			(cfg->handshake_timeout_ms < 2000 ? cfg->handshake_timeout_ms : 2000) :
			cfg->handshake_timeout_ms;

			if (srv->now_ms - since >= limit)
				conn_kill(c);
			continue;
		}
		if (c->state != CONN_WS)
			continue;
		/* a resuming client that never said where it is: start at ready's */
		if (c->hold_until_ms != 0 && srv->now_ms >= c->hold_until_ms)
			hub_release_held(c);
		if (c->lagging && srv->now_ms - c->last_write_ms >= lag_grace(cfg))
		{
			/* its queue is full and nothing has left it: not reading */
			srv_log(srv, CHAT_LOG_DEBUG,
					"connection %s dropped: not reading", c->id);
			conn_kill(c);
			continue;
		}
		if (srv->now_ms - c->last_recv_ms >= cfg->heartbeat_timeout_ms)
		{
			srv_log(srv, CHAT_LOG_DEBUG, "connection %s timed out", c->id);
			conn_kill(c);
			continue;
		}
		if (c->token_exp > 0 &&
			srv->now_s > c->token_exp + cfg->keys.leeway_s)
		{
			conn_close(c, 4001, "token expired");
			continue;
		}
		if (srv->now_ms - c->last_ping_ms >= cfg->heartbeat_interval_ms)
			conn_ping(c);
		else if (c->ws && srv->now_ms - c->last_recv_ms >= HIBERNATE_AFTER_MS &&
				 conn_hibernate(c))
			hibernated++;
	}
#ifdef __GLIBC__
	/* give the freed wslay buffers back to the system, not just to malloc */
	if (hibernated >= 256)
		malloc_trim(0);
#endif
}

static int
sweep_period(const chat_server_config *cfg)
{
	int			p = cfg->heartbeat_interval_ms / 4;

	if (p > 1000)
		p = 1000;
	if (p < 50)
		p = 50;
	return p;
}

static void
flush_dirty(chat_server *srv)
{
	while (srv->dirty)
	{
		chat_conn  *c = srv->dirty;

		srv->dirty = c->dirty_next;
		c->dirty = false;
		c->dirty_next = NULL;
		conn_flush(c);
	}
}

/*
 * resume_lagging catches up the lagging connections whose queues drained
 * in this iteration's flush, then flushes what that queued.
 */
static void
resume_lagging(chat_server *srv)
{
	if (srv->resume == NULL)
		return;
	while (srv->resume)
	{
		chat_conn  *c = srv->resume;

		srv->resume = c->resume_next;
		c->resume_next = NULL;
		c->on_resume = false;
		if (c->state == CONN_WS)
			hub_resume(c);
	}
	flush_dirty(srv);
}

/*
 * detach_user takes c off its user: the user's last connection here ends
 * their typing here, and presence is told (offline everywhere, maybe).
 */
static void
detach_user(chat_server *srv, chat_conn *c)
{
	chat_user  *u = hub_detach(c);

	if (u == NULL)
		return;
	if (u->n_conns == 0)
		typing_stop_user(srv, u->id);
	presence_connection(srv, u->id, false);
	hub_user_release(srv, u);
}

/*
 * reap frees the connections closed during this iteration.  Detaching one
 * may broadcast (presence, typing_stopped), which is flushed before any
 * struct is freed, so the dirty list never points at freed memory; a
 * connection that dies in that flush is reaped in the next round.
 */
static void
reap(chat_server *srv)
{
	chat_conn  *kept = NULL;

	while (srv->dead)
	{
		chat_conn  *list = srv->dead,
				   *c,
				   *next;

		srv->dead = NULL;
		for (c = list; c; c = c->dead_next)
			if (c->user)
				detach_user(srv, c);
		flush_dirty(srv);
		for (c = list; c; c = next)
		{
			next = c->dead_next;

			/*
			 * A send of its is in a batch still being committed: the batch's
			 * ack looks at the connection (handlers.c finish_oldest), so it
			 * is freed in a later pass.
			 */
			if (c->sends_in_flight > 0)
			{
				c->dead_next = kept;
				kept = c;
				continue;
			}
			if (c->on_resume)
			{
				chat_conn **pp = &srv->resume;

				while (*pp && *pp != c)
					pp = &(*pp)->resume_next;
				if (*pp)
					*pp = c->resume_next;
			}
			conn_free(c);
		}
	}
	srv->dead = kept;
}

/* read_events handles everything epoll reports, without blocking. */
static void
read_events(chat_server *srv)
{
	struct epoll_event evs[EVENTS_PER_WAIT];
	int			n,
				rounds = 0;

	srv->pass++;				/* a new read budget for every connection */
	conn_read_deferred(srv);
	do
	{
		n = epoll_wait(srv->epfd, evs, EVENTS_PER_WAIT, 0);
		for (int i = 0; i < n; i++)
		{
			chat_conn  *c = evs[i].data.ptr;

			if ((void *) c == (void *) &listener_tag)
			{
				for (int l = 0; l < srv->n_lfds; l++)
					accept_all(srv, srv->lfds[l]);
				continue;
			}
			if (c->state == CONN_DEAD)
				continue;
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				conn_on_readable(c);
			if (c->state != CONN_DEAD && (evs[i].events & EPOLLOUT))
				conn_on_writable(c);
		}
		/* a full batch means more may wait; bound the work per iteration */
	} while (n == EVENTS_PER_WAIT && ++rounds < 16);

	/*
	 * Bytes OpenSSL already decrypted do not make the socket readable (Redis
	 * keeps the same list): serve them now rather than wait.
	 */
	if (srv->tls_ctx)
		for (chat_conn *c = srv->conns; c; c = c->next)
			if (conn_tls_pending(c))
				conn_on_readable(c);
}

/*
 * forgive_stall: if the loop itself was stuck (a slow query) it sent no
 * pings and read no pongs, so the silence is ours, not the clients':
 * move every connection's heartbeat clock forward by the stall.
 */
static void
forgive_stall(chat_server *srv, int64_t now_ms)
{
	int64_t		gap = now_ms - srv->last_poll_ms;

	/* idle waits are at most one sweep period (1 s): longer is a stall */
	if (srv->last_poll_ms != 0 && gap > 3000)
		for (chat_conn *c = srv->conns; c; c = c->next)
		{
			c->last_recv_ms += gap;
			c->last_ping_ms += gap;
		}
	srv->last_poll_ms = now_ms;
}

int
chat_server_poll(chat_server *srv, int64_t now_ms, int64_t now_s)
{
	int64_t		typing_next;
	int64_t		t0 = chat_clock_us();

	forgive_stall(srv, now_ms);
	srv->now_ms = now_ms;
	srv->now_s = now_s;
	if (srv->accept_paused_until && now_ms >= srv->accept_paused_until)
	{
		srv->accept_paused_until = 0;
		listeners_watch(srv, true);
	}
	read_events(srv);
	batch_commit(srv);
	srv_process_notifications(srv, false);
	hub_deliver_pending(srv);
	if (now_ms >= srv->next_sweep_ms)
	{
		sweep(srv);
		srv->next_sweep_ms = now_ms + sweep_period(&srv->cfg);
	}
	typing_next = typing_expire(srv);
	flush_dirty(srv);
	resume_lagging(srv);
	reap(srv);
	srv_publish_flush(srv);
	chat_histo_add(&srv->stats.loop, chat_clock_us() - t0);
	{
		int64_t		wait = srv->next_sweep_ms - now_ms;

		if (typing_next >= 0 && typing_next < wait)
			wait = typing_next;
		/* lagging connections with room again: keep catching up */
		if (srv->resume || srv->read_again)
			wait = 0;
		if (srv->accept_paused_until &&
			srv->accept_paused_until - now_ms < wait)
			wait = srv->accept_paused_until - now_ms;
		return wait < 0 ? 0 : (int) wait;
	}
}

void
chat_server_shutdown(chat_server *srv, int code)
{
	for (chat_conn *c = srv->conns; c; c = c->next)
		conn_close(c, code, "server shutting down");
	flush_dirty(srv);
}

void
chat_server_destroy(chat_server *srv)
{
	/* the batches in flight are committed or not: their acks are lost */
	if (srv->inflight)
		batch_finish_all(srv);
	while (srv->conns)
		conn_kill(srv->conns);
	reap(srv);
	/* the offline and typing_stopped events of those users, for the others */
	srv_publish_flush(srv);
	for (int i = 0; i < srv->n_lfds; i++)
		close(srv->lfds[i]);
	close(srv->epfd);
	for (size_t i = 0; i < srv->n_batch; i++)
		proto_cmd_free(&srv->batch[i].cmd);
	free(srv->batch);
	free(srv->inflight);
	free(srv->events);
	free(srv->outbox);
	typing_destroy(srv);
	map_destroy(&srv->rooms);
	map_destroy(&srv->users);
	map_destroy(&srv->handshakes_by_ip);
	free(srv->origins);
	if (srv->tls_ctx)
		tls_context_free(srv->tls_ctx);
	free(srv);
}

const chat_server_stats *
chat_server_get_stats(chat_server *srv)
{
	return &srv->stats;
}
