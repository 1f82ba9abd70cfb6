/*
 * worker.c
 *	  The chat background worker: signals, the wait loop and the glue
 *	  between PostgreSQL and the server core.  Only this file owns signals
 *	  and waiting; only store_spi.c opens transactions.
 *
 *	  WaitEventSet in PG15 cannot remove a socket, so every client socket
 *	  lives in the core's own epoll set, and that one fd sits in a small
 *	  WaitEventSet next to the latch and postmaster death.
 */
#include "postgres.h"

#include <time.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "core/net.h"
#include "core/server.h"
#include "pg/events.h"
#include "pg/secret.h"
#include "pg/settings.h"
#include "pg/shmem.h"
#include "pg/store_spi.h"
#include "pg/worker.h"

PGDLLEXPORT void chat_worker_main(Datum arg);

static volatile sig_atomic_t shutdown_requested = false;
static int	worker_id;
static chat_server *server = NULL;
static void *public_key = NULL;
static char *hs_secret = NULL;	/* in TopMemoryContext, wiped when replaced */
static size_t hs_secret_len = 0;

static void
handle_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	shutdown_requested = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

static int64
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
core_log(void *arg, chat_log_level level, const char *msg)
{
	ereport(level == CHAT_LOG_WARNING ? WARNING :
			level == CHAT_LOG_INFO ? LOG : DEBUG1,
			(errmsg_internal("chat worker %d: %s", worker_id, msg)));
}

static bool
host_presence(void *ctx, const char *user_id, bool up)
{
	return up ? chat_presence_add(user_id, worker_id) :
		chat_presence_remove(user_id, worker_id);
}

static bool
host_admit_ip(void *ctx, const char *addr, int delta, int max)
{
	return chat_ip_admit(worker_id, addr, delta, max);
}

static void
on_event(const chat_event *ev, void *arg)
{
	(void) chat_server_event(server, ev);
}

/*
 * drain_events hands the ring's new records to the core; if the ring went
 * round past us, the core re-reads every table instead.
 */
static void
drain_events(void)
{
	if (!chat_events_read(on_event, NULL))
	{
		ereport(LOG,
				(errmsg("chat worker %d: event ring overrun, re-reading every subscription",
						worker_id)));
		chat_server_resync(server);
	}
}

static void
host_drain_events(void *ctx)
{
	drain_events();
}

/* host_publish hands typing and presence to the other workers. */
static void
host_publish(void *ctx, const chat_event *evs, size_t n)
{
	chat_events_publish(evs, (int) n);
}

static bool
host_admit(void *ctx, int delta, int max)
{
	return chat_conn_admit(worker_id, delta, max);
}

/* configure pushes the current settings into the core (start, SIGHUP). */
static void
configure(void)
{
	chat_server_config cfg;
	char		err[256];
	char	   *old_secret;
	size_t		old_secret_len;

	memset(&cfg, 0, sizeof(cfg));
	cfg.worker_id = worker_id;
	cfg.heartbeat_interval_ms = chat_heartbeat_interval_ms;
	cfg.heartbeat_timeout_ms = chat_heartbeat_timeout_ms;
	cfg.typing_timeout_ms = chat_typing_timeout_ms;
	cfg.typing_debounce_ms = chat_typing_debounce_ms;
	cfg.max_message_bytes = chat_max_message_bytes;
	cfg.max_frame_bytes = chat_max_frame_bytes;
	cfg.max_outbound_bytes = chat_max_outbound_bytes;
	cfg.handshake_timeout_ms = chat_handshake_timeout_ms;
	/* counted across workers in shared memory (host_admit) */
	cfg.max_connections = chat_max_connections;
	cfg.max_connections_per_ip = chat_max_connections_per_ip;
	cfg.rate_limit = chat_rate_limit;
	cfg.rate_burst = chat_rate_burst;
	cfg.user_rate_limit = chat_user_rate_limit;
	cfg.user_rate_burst = chat_user_rate_burst;
	cfg.max_handshakes = chat_max_handshakes;
	cfg.max_handshakes_per_ip = chat_max_handshakes_per_ip;
	cfg.allowed_origins = chat_allowed_origins;

	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		char	   *secret;
		size_t		len;

		if (chat_hs_secret(&secret, &len, err, sizeof(err)) == CHAT_SECRET_BAD)
			ereport(WARNING,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("chat: HS256 secret refused: %s", err),
					 errdetail("Every HS256 token is refused until it is fixed.")));
		MemoryContextSwitchTo(old);
		old_secret = hs_secret;
		old_secret_len = hs_secret_len;
		hs_secret = secret;
		hs_secret_len = len;
		if (secret)
		{
			cfg.keys.hs_secret = (const unsigned char *) secret;
			cfg.keys.hs_secret_len = len;
		}
	}
	if (public_key)
	{
		jwt_free_public_key(public_key);
		public_key = NULL;
	}
	if (chat_jwt_public_key_file && chat_jwt_public_key_file[0])
	{
		public_key = jwt_load_public_key(chat_jwt_public_key_file, err,
										 sizeof(err));
		if (public_key == NULL)
			ereport(WARNING,
					(errmsg("chat.jwt_public_key_file not loaded: %s", err)));
	}
	cfg.keys.public_key = public_key;
	cfg.keys.audience = chat_jwt_audience;
	cfg.keys.issuer = chat_jwt_issuer;
	cfg.keys.leeway_s = chat_jwt_leeway_s;
	if (cfg.keys.hs_secret == NULL && public_key == NULL)
		ereport(WARNING,
				(errmsg("chat has no JWT key: every connection is refused"),
				 errhint("Set chat.jwt_secret_file, chat.jwt_secret or chat.jwt_public_key_file.")));
	chat_server_configure(server, &cfg);
	/* the core no longer points at the old secret */
	chat_secret_free(old_secret, old_secret_len);
}

/* open_listeners binds every address of chat.listen_addresses. */
static void
open_listeners(void)
{
	char	   *list = pstrdup(chat_listen_addresses);
	char	   *tok,
			   *save = NULL;
	char		err[256];
	int			opened = 0;

	if (net_raise_nofile() < 0)
		ereport(WARNING, (errmsg("chat: could not raise the open file limit")));
	for (tok = strtok_r(list, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
	{
		if (chat_server_listen(server, tok, chat_port, err, sizeof(err)) == 0)
			opened++;
		else
			ereport(WARNING, (errmsg("chat: %s", err)));
	}
	if (opened == 0)
		ereport(FATAL,
				(errmsg("chat worker could not listen on port %d", chat_port)));
}

/*
 * find_database looks chat.database up without being connected to one: a
 * plain heap scan of the shared catalog pg_database, as the autovacuum
 * launcher does (an index scan would need a database's pg_class).
 */
static Oid
find_database(const char *name)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	Oid			db = InvalidOid;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database d = (Form_pg_database) GETSTRUCT(tup);

		if (strcmp(NameStr(d->datname), name) == 0)
		{
			db = d->oid;
			break;
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return db;
}

/*
 * connect_database connects to chat.database, or, while it does not exist,
 * waits without a database and exits so the postmaster restarts us: a
 * background worker can bind a database only once.  The OID seen is kept
 * in shared memory for the next start.
 */
static bool db_connected = false;

/*
 * forget_database runs at exit: if connecting by the kept OID failed (the
 * database was dropped meanwhile: a FATAL), the next start looks the name
 * up again.  Clearing the OID before connecting instead would send every
 * worker starting at the same moment down the slow path (one more
 * restart each), and under load one of them missed the bench's deadline.
 */
static void
forget_database(int code, Datum arg)
{
	if (!db_connected)
		chat_set_shared_database(InvalidOid);
}

static void
connect_database(void)
{
	Oid			db = chat_shared_database();

	if (OidIsValid(db))
	{
		before_shmem_exit(forget_database, (Datum) 0);
		BackgroundWorkerInitializeConnectionByOid(db, InvalidOid, 0);
		db_connected = true;
		return;
	}
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (shutdown_requested)
			proc_exit(1);
		db = find_database(chat_database);
		if (OidIsValid(db))
		{
			chat_set_shared_database(db);
			ereport(LOG,
					(errmsg("chat worker %d: database \"%s\" found, restarting to connect to it",
							worker_id, chat_database)));
			proc_exit(1);		/* restarted at once, then connects by OID */
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT |
						 WL_EXIT_ON_PM_DEATH, 1000, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* wait_for_extension waits, quietly, until CREATE EXTENSION chat ran. */
static void
wait_for_extension(void)
{
	while (!chat_store_spi_ready())
	{
		CHECK_FOR_INTERRUPTS();
		if (shutdown_requested)
			proc_exit(1);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT |
						 WL_EXIT_ON_PM_DEATH, 1000, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

static void
shutdown_server(void)
{
	int64		deadline = monotonic_ms() + 1000;

	/* close 1001, then give the close frames a moment to leave */
	chat_server_shutdown(server, 1001);
	while (monotonic_ms() < deadline)
	{
		(void) WaitLatchOrSocket(NULL, WL_SOCKET_READABLE | WL_TIMEOUT,
								 chat_server_fd(server), 50,
								 PG_WAIT_EXTENSION);
		chat_server_poll(server, monotonic_ms(), (int64) time(NULL));
		if (chat_server_get_stats(server)->connections_open == 0)
			break;
	}
	chat_server_destroy(server);
	server = NULL;
}

/* main_loop waits on the latch, postmaster death and the core's epoll fd */
static void
main_loop(void)
{
	WaitEventSet *set = CreateWaitEventSet(TopMemoryContext, 3);
	MemoryContext loop_cxt = AllocSetContextCreate(TopMemoryContext,
												   "chat loop",
												   ALLOCSET_DEFAULT_SIZES);
	volatile int timeout = 0;
	sigjmp_buf	local_sigjmp_buf;

	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(set, WL_SOCKET_READABLE, chat_server_fd(server), NULL,
					  NULL);

	/*
	 * Last line of defence: store_spi.c catches every ERROR of a request, so
	 * only something outside a request (reading notifications, reloading the
	 * configuration) can land here.  Report it, clean up, carry on: the
	 * worker must not drop its connections over it.
	 */
	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
	{
		error_context_stack = NULL;
		HOLD_INTERRUPTS();
		EmitErrorReport();
		AbortOutOfAnyTransaction();
		FlushErrorState();
		MemoryContextSwitchTo(TopMemoryContext);
		RESUME_INTERRUPTS();
		/* events may have been lost: re-read every subscription */
		chat_server_resync(server);
		timeout = 0;
	}
	PG_exception_stack = &local_sigjmp_buf;

	for (;;)
	{
		WaitEvent	ev;

		(void) WaitEventSetWait(set, timeout, &ev, 1, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (shutdown_requested)
			break;
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			configure();
		}
		MemoryContextSwitchTo(loop_cxt);
		drain_events();
		timeout = chat_server_poll(server, monotonic_ms(),
								   (int64) time(NULL));
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(loop_cxt);
	}
	FreeWaitEventSet(set);
}

void
chat_worker_main(Datum arg)
{
	chat_store	store;
	chat_host	host;
	char		activity[64];

	worker_id = DatumGetInt32(arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, handle_sigterm);
	BackgroundWorkerUnblockSignals();

	connect_database();

	/*
	 * The worker runs as the bootstrap superuser: never resolve a name
	 * through a schema an application can write (every statement is
	 * schema-qualified anyway).
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);

	/*
	 * The worker runs the same few statements all day.  With custom plans
	 * (the default for a plan whose generic cost looks worse) the group
	 * commit's statements were planned again on every batch, about 1 ms of
	 * CPU each time; every lookup they make is written so that the generic
	 * plan probes an index per row anyway.
	 */
	SetConfigOption("plan_cache_mode", "force_generic_plan", PGC_USERSET,
					PGC_S_OVERRIDE);
	/* a restarted worker lost every socket: drop its share of presence */
	chat_presence_reset_worker(worker_id);
	wait_for_extension();

	chat_store_spi_init(&store);
	memset(&host, 0, sizeof(host));
	host.presence = host_presence;
	host.admit = host_admit;
	host.admit_ip = host_admit_ip;
	host.drain_events = host_drain_events;
	host.publish = host_publish;
	server = chat_server_create(&store, &host, core_log, NULL);
	if (server == NULL)
		ereport(FATAL, (errmsg("chat worker could not create its event loop")));
	configure();
	if (chat_ssl_cert_file && chat_ssl_cert_file[0] &&
		chat_ssl_key_file && chat_ssl_key_file[0])
	{
		char		err[512];

		if (chat_server_tls(server, chat_ssl_cert_file, chat_ssl_key_file,
							err, sizeof(err)) != 0)
			ereport(FATAL,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("chat could not set up TLS: %s", err)));
	}
	open_listeners();

	/*
	 * Read the event ring from now on; anything committed before is in the
	 * tables, which every subscription reads when it starts.
	 */
	chat_events_attach(worker_id);
	chat_server_resync(server);

	snprintf(activity, sizeof(activity), "listening on port %d", chat_port);
	pgstat_report_activity(STATE_IDLE, activity);
	ereport(LOG, (errmsg("chat worker %d listening on port %d", worker_id,
						 chat_port)));
	main_loop();
	shutdown_server();
	chat_presence_reset_worker(worker_id);
	/* exit code 1: the postmaster restarts us unless it is shutting down */
	proc_exit(1);
}

/*
 * chat_helper_start starts a helper process (the bus relay, the node
 * relay): its signal handlers, then a connection to chat.database once a
 * worker has found it (worker.c, connect_database).
 */
void
chat_helper_start(const char *activity)
{
	Oid			db;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	while (!OidIsValid(db = chat_shared_database()))
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT |
						 WL_EXIT_ON_PM_DEATH, 1000, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	BackgroundWorkerInitializeConnectionByOid(db, InvalidOid, 0);
	pgstat_report_activity(STATE_IDLE, activity);
}

/*
 * chat_register_bgworker registers one of chat's background workers: each
 * reads shared memory, connects to chat.database, and restarts restart_s
 * seconds after it ended.
 */
void
chat_register_bgworker(const char *function, const char *name,
					   const char *type, int restart_s, Datum arg)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = restart_s;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "chat");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "%s", type);
	worker.bgw_main_arg = arg;
	RegisterBackgroundWorker(&worker);
}

void
chat_register_workers(void)
{
	for (int i = 0; i < chat_workers; i++)
	{
		char		name[BGW_MAXLEN];

		snprintf(name, sizeof(name), "chat worker %d", i);
		chat_register_bgworker("chat_worker_main", name, "chat worker", 1,
							   Int32GetDatum(i));
	}
	/* an ERROR (a full NOTIFY queue) ends it; it restarts with "x:" */
	if (chat_notify_bus)
		chat_register_bgworker("chat_bus_main", "chat bus relay",
							   "chat bus relay", 1, (Datum) 0);
	/* an ERROR ends it; it restarts, reconnects and resyncs */
	if (chat_node_relay)
		chat_register_bgworker("chat_node_relay_main", "chat node relay",
							   "chat node relay", 5, (Datum) 0);
}
