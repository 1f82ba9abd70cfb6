/*
 * main.c
 *	  chat-gateway: the chat server core (src/core) as a standalone program
 *	  in front of the database, which stays the one source of truth
 *	  (docs/scaling.md).  This file owns the process: settings, signals and
 *	  the wait loop over the core's epoll fd, the LISTEN socket and a
 *	  signalfd.  Storage is store_pq.c, the node's shared state host_pq.c.
 *
 *	  chat-gateway [-c FILE]   (settings: docs/configuration.md)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "core/net.h"
#include "core/server.h"
#include "gateway/config.h"
#include "gateway/host_pq.h"
#include "gateway/store_pq.h"

static gw_config cfg;
static const char *config_path = NULL;
static chat_server *srv = NULL;
static unsigned char *hs_secret = NULL;
static size_t hs_secret_len = 0;
static void *public_key = NULL;
static int	node_id = 0;
static gw_pool pool;			/* the batch connections (chat.pool_size) */
static int	pool_fd[GW_POOL_MAX];	/* their sockets in the wait set */
static unsigned pool_gen[GW_POOL_MAX];

static int64_t
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
core_log(void *arg, chat_log_level level, const char *msg)
{
	if (level == CHAT_LOG_DEBUG)
		return;
	fprintf(stderr, "chat-gateway %s: %s%s\n", cfg.node_name,
			level == CHAT_LOG_WARNING ? "WARNING: " : "", msg);
}

static void
free_secret(void)
{
	if (hs_secret)
	{
		memset(hs_secret, 0, hs_secret_len);
		free(hs_secret);
	}
	hs_secret = NULL;
	hs_secret_len = 0;
}

/* configure pushes the settings into the core (start, SIGHUP, new node id) */
static void
configure(void)
{
	chat_server_config c;
	char		err[512];
	unsigned char *old_secret = hs_secret;
	size_t		old_len = hs_secret_len;
	void	   *old_key = public_key;

	memset(&c, 0, sizeof(c));
	c.worker_id = node_id;
	c.heartbeat_interval_ms = cfg.heartbeat_interval_ms;
	c.heartbeat_timeout_ms = cfg.heartbeat_timeout_ms;
	c.typing_timeout_ms = cfg.typing_timeout_ms;
	c.typing_debounce_ms = cfg.typing_debounce_ms;
	c.max_message_bytes = cfg.max_message_bytes;
	c.max_frame_bytes = cfg.max_frame_bytes;
	c.max_outbound_bytes = cfg.max_outbound_bytes;
	c.handshake_timeout_ms = cfg.handshake_timeout_ms;
	c.max_connections = cfg.max_connections;
	c.max_connections_per_ip = cfg.max_connections_per_ip;
	c.max_handshakes = cfg.max_handshakes;
	c.max_handshakes_per_ip = cfg.max_handshakes_per_ip;
	c.rate_limit = cfg.rate_limit;
	c.rate_burst = cfg.rate_burst;
	c.user_rate_limit = cfg.user_rate_limit;
	c.user_rate_burst = cfg.user_rate_burst;
	c.allowed_origins = cfg.allowed_origins;

	hs_secret = NULL;
	hs_secret_len = 0;
	if (cfg.jwt_secret_file && cfg.jwt_secret_file[0] &&
		gw_read_secret(cfg.jwt_secret_file, &hs_secret, &hs_secret_len, err,
					   sizeof(err)) != 0)
		fprintf(stderr, "chat-gateway: WARNING: HS256 secret refused: %s\n",
				err);
	c.keys.hs_secret = hs_secret;
	c.keys.hs_secret_len = hs_secret_len;
	public_key = NULL;
	if (cfg.jwt_public_key_file && cfg.jwt_public_key_file[0])
	{
		public_key = jwt_load_public_key(cfg.jwt_public_key_file, err,
										 sizeof(err));
		if (public_key == NULL)
			fprintf(stderr, "chat-gateway: WARNING: chat.jwt_public_key_file not loaded: %s\n",
					err);
	}
	c.keys.public_key = public_key;
	c.keys.audience = cfg.jwt_audience;
	c.keys.issuer = cfg.jwt_issuer;
	c.keys.leeway_s = cfg.jwt_leeway_s;
	if (hs_secret == NULL && public_key == NULL)
		fprintf(stderr, "chat-gateway: WARNING: no JWT key: every connection is refused\n");
	chat_server_configure(srv, &c);
	/* the core no longer points at the old keys */
	if (old_secret)
	{
		memset(old_secret, 0, old_len);
		free(old_secret);
	}
	if (old_key)
		jwt_free_public_key(old_key);
}

static void
on_node_id(void *arg, int id)
{
	if (id != node_id)
	{
		node_id = id;
		configure();
	}
}

static int
open_listeners(void)
{
	char	   *list = strdup(cfg.listen_addresses);
	char	   *tok,
			   *save = NULL;
	char		err[256];
	int			opened = 0;

	if (list == NULL)
		return 0;
	if (net_raise_nofile() < 0)
		fprintf(stderr, "chat-gateway: WARNING: could not raise the open file limit\n");
	for (tok = strtok_r(list, ", ", &save); tok;
		 tok = strtok_r(NULL, ", ", &save))
	{
		if (chat_server_listen(srv, tok, cfg.port, err, sizeof(err)) == 0)
			opened++;
		else
			fprintf(stderr, "chat-gateway: %s\n", err);
	}
	free(list);
	return opened;
}

static void
watch(int efd, int fd, int op)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.fd = fd;
	(void) epoll_ctl(efd, op, fd, &ev);
}

/*
 * watch_pool keeps the batch connections' sockets in the wait set: a
 * batch's result wakes the loop.  A connection made again has a new
 * socket (maybe with the old number): gen tells.
 */
static void
watch_pool(int efd)
{
	for (int i = 0; i < pool.n_conns; i++)
	{
		int			fd = gw_pool_fd(&pool, i);
		unsigned	gen = pool.conns[i].pq.gen;

		if (fd == pool_fd[i] && gen == pool_gen[i])
			continue;
		/* a closed socket left the set by itself; DEL may fail, harmlessly */
		if (pool_fd[i] >= 0)
			watch(efd, pool_fd[i], EPOLL_CTL_DEL);
		if (fd >= 0)
			watch(efd, fd, EPOLL_CTL_ADD);
		pool_fd[i] = fd;
		pool_gen[i] = gen;
	}
}

int
main(int argc, char **argv)
{
	char		err[512];
	gw_pq		pq;
	gw_node		node;
	chat_store	store;
	chat_host	host;
	sigset_t	mask;
	int			sfd,
				efd,
				listen_fd = -1,
				listen_gen = 0,
				timeout = 0;
	bool		stop = false;
	int			opt;

	while ((opt = getopt(argc, argv, "c:")) != -1)
	{
		if (opt == 'c')
			config_path = optarg;
		else
		{
			fprintf(stderr, "usage: %s [-c config-file]\n", argv[0]);
			return 2;
		}
	}
	if (gw_config_load(&cfg, config_path, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "chat-gateway: %s\n", err);
		return 2;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	efd = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || efd < 0)
	{
		perror("chat-gateway");
		return 1;
	}

	memset(&pq, 0, sizeof(pq));
	pq.conninfo = cfg.conninfo;
	pq.statement_timeout_ms = cfg.statement_timeout_ms;
	pq.label = "requests";
	/* chat.pool_size: this connection for requests, the rest for batches */
	memset(&pool, 0, sizeof(pool));
	for (int i = 0; i < GW_POOL_MAX; i++)
		pool_fd[i] = -1;
	pool.n_conns = cfg.pool_size - 1;
	for (int i = 0; i < pool.n_conns; i++)
	{
		pool.conns[i].pq.conninfo = cfg.conninfo;
		pool.conns[i].pq.label = "batches";
		pool.conns[i].pq.statement_timeout_ms = cfg.statement_timeout_ms;
	}
	pq.pool = pool.n_conns > 0 ? &pool : NULL;
	memset(&node, 0, sizeof(node));
	node.pq = &pq;
	node.listen.conninfo = cfg.conninfo;
	node.listen.label = "listen";
	node.listen.statement_timeout_ms = cfg.statement_timeout_ms;
	node.name = cfg.node_name;
	node.lease_ms = cfg.heartbeat_timeout_ms;
	node.on_node_id = on_node_id;
	map_init(&node.users);

	gw_store_init(&store, &pq);
	gw_host_init(&host, &node);
	srv = chat_server_create(&store, &host, core_log, NULL);
	if (srv == NULL)
	{
		fprintf(stderr, "chat-gateway: could not create the event loop\n");
		return 1;
	}
	node.srv = srv;
	configure();
	if (cfg.ssl_cert_file && cfg.ssl_cert_file[0] &&
		cfg.ssl_key_file && cfg.ssl_key_file[0] &&
		chat_server_tls(srv, cfg.ssl_cert_file, cfg.ssl_key_file, err,
						sizeof(err)) != 0)
	{
		fprintf(stderr, "chat-gateway: could not set up TLS: %s\n", err);
		return 1;
	}

	/* attached before the port opens: a load balancer sees it ready */
	while (gw_node_tick(&node, monotonic_ms()), node.handle == 0)
	{
		struct signalfd_siginfo si;

		sleep(1);
		if (read(sfd, &si, sizeof(si)) == sizeof(si) &&
			si.ssi_signo != SIGHUP)
			return 1;
	}
	if (gw_pq_connect(&pq, err, sizeof(err)) == false || open_listeners() == 0)
	{
		fprintf(stderr, "chat-gateway: could not listen on port %d\n",
				cfg.port);
		return 1;
	}
	watch(efd, chat_server_fd(srv), EPOLL_CTL_ADD);
	watch(efd, sfd, EPOLL_CTL_ADD);
	fprintf(stderr, "chat-gateway %s: node %d listening on port %d\n",
			cfg.node_name, node_id, cfg.port);

	while (!stop)
	{
		struct epoll_event evs[8];
		int			n = epoll_wait(efd, evs, 8, timeout);
		int			t;
		int64_t		now;

		if (n < 0 && errno != EINTR)
		{
			perror("chat-gateway: epoll_wait");
			break;
		}
		for (int i = 0; i < n; i++)
		{
			if (evs[i].data.fd == sfd)
			{
				struct signalfd_siginfo si;

				while (read(sfd, &si, sizeof(si)) == sizeof(si))
				{
					if (si.ssi_signo == SIGHUP)
					{
						gw_config	fresh;

						if (gw_config_load(&fresh, config_path, err,
										   sizeof(err)) != 0)
							fprintf(stderr, "chat-gateway: reload: %s\n", err);
						else
						{
							/* only what the core takes at any time */
							free(fresh.conninfo);
							fresh.conninfo = cfg.conninfo;
							cfg.conninfo = NULL;
							gw_config_free(&cfg);
							cfg = fresh;
							configure();
							/* tests and operators wait for this line */
							fprintf(stderr, "chat-gateway %s: reloaded %s\n",
									cfg.node_name,
									config_path ? config_path : "the environment");
						}
					}
					else
						stop = true;
				}
			}
			else if (evs[i].data.fd == listen_fd)
				gw_node_notified(&node);
			else if (evs[i].data.fd != chat_server_fd(srv))
				gw_pool_read(&pool);	/* a batch's result, read below */
		}
		if (stop)
			break;
		now = monotonic_ms();
		t = gw_node_tick(&node, now);
		if (gw_node_listen_fd(&node) != listen_fd || node.listen_gen != listen_gen)
		{
			/* a closed fd left the set by itself; DEL may fail, harmlessly */
			if (listen_fd >= 0)
				watch(efd, listen_fd, EPOLL_CTL_DEL);
			listen_fd = gw_node_listen_fd(&node);
			listen_gen = node.listen_gen;
			if (listen_fd >= 0)
				watch(efd, listen_fd, EPOLL_CTL_ADD);
		}
		timeout = chat_server_poll(srv, monotonic_ms(), (int64_t) time(NULL));
		if (t < timeout || timeout < 0)
			timeout = t;
		watch_pool(efd);
	}

	/* goodbye: close 1001, let the frames leave, then drop our presence */
	chat_server_shutdown(srv, 1001);
	{
		int64_t		deadline = monotonic_ms() + 1000;

		while (monotonic_ms() < deadline &&
			   chat_server_get_stats(srv)->connections_open > 0)
		{
			struct epoll_event ev;

			(void) epoll_wait(efd, &ev, 1, 50);
			chat_server_poll(srv, monotonic_ms(), (int64_t) time(NULL));
		}
	}
	gw_node_detach(&node);
	chat_server_destroy(srv);
	gw_pq_close(&node.listen);
	gw_pq_close(&pq);
	for (int i = 0; i < pool.n_conns; i++)
		gw_pq_close(&pool.conns[i].pq);
	map_destroy(&node.users);
	free_secret();
	if (public_key)
		jwt_free_public_key(public_key);
	gw_config_free(&cfg);
	close(efd);
	close(sfd);
	return 0;
}
