/*
 * node_relay.c
 *	  The Citus node relay: on a coordinator (chat.node_relay = on), one
 *	  background worker that hears what commits on the worker nodes and puts
 *	  it in this server's event ring, where the workers (and the bus relay,
 *	  for gateways) read it as they read the coordinator's own commits.
 *
 *	  A commit can happen on a node without the coordinator: chat_send
 *	  called by an application connected to the node, or a call Citus
 *	  delegated there.  Its hint lands in the node's ring, and the node's bus
 *	  relay (chat.notify_bus = on there) sends it as NOTIFY chat.  This
 *	  process LISTENs on every active primary node of pg_dist_node and
 *	  believes a payload only from that node's bus relay (its pid, from
 *	  chat._gateway_bus_pid(), as a gateway does): any role may NOTIFY chat.
 *	  A payload is only a hint to read the tables, and names no user; a
 *	  membership change then reads the channel's members.  Typing and
 *	  presence do not happen on nodes (no client connects there).
 *
 *	  Whenever hints may have been missed (a node connected for the first
 *	  time or again, its relay restarted, a connection lost, "x:" from a
 *	  node) it appends one resync, and every worker re-reads its tables.
 *
 *	  Its own process, like the bus relay: libpq calls block, and the
 *	  WebSocket workers must never wait for a node.
 */
#include "postgres.h"

#include "libpq-fe.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "core/event.h"
#include "pg/citus.h"
#include "pg/events.h"
#include "pg/settings.h"
#include "pg/shmem.h"
#include "pg/worker.h"

PGDLLEXPORT void chat_node_relay_main(Datum arg);

#define RELAY_MAX_NODES 64
#define RELAY_REFRESH_MS 5000	/* pg_dist_node read again, lost nodes
								 * reconnected */
#define RELAY_PID_RECHECK_MS 1000	/* a stranger's payload asks the pid again
									 * at most this often */
#define RELAY_BATCH 256			/* events appended to the ring at once */

typedef struct relay_node
{
	char		host[256];
	int			port;
	PGconn	   *conn;
	int			bus_pid;		/* the node's bus relay; 0: none runs */
	TimestampTz pid_checked;
	bool		listed;			/* in the last read of pg_dist_node */
	bool		warned;			/* "no bus relay there" logged */
} relay_node;

static relay_node nodes[RELAY_MAX_NODES];
static int	n_nodes;
static char *db_name;
static char *user_name;

static chat_event batch[RELAY_BATCH];
static int	n_batch;
static bool resync_pending;

static void
flush_batch(void)
{
	if (resync_pending)
	{
		chat_event	ev;

		memset(&ev, 0, sizeof(ev));
		ev.kind = CHAT_EV_RESYNC;
		batch[n_batch < RELAY_BATCH ? n_batch++ : RELAY_BATCH - 1] = ev;
		resync_pending = false;
	}
	if (n_batch > 0)
		chat_events_publish(batch, n_batch);
	n_batch = 0;
}

static void
add_event(const chat_event *ev)
{
	if (n_batch == RELAY_BATCH)
		flush_batch();
	batch[n_batch++] = *ev;
}

static void
node_close(relay_node *n)
{
	if (n->conn)
		PQfinish(n->conn);
	n->conn = NULL;
	n->bus_pid = 0;
}

/* learn_pid asks the node which pid its bus relay has; false: connection lost */
static bool
learn_pid(relay_node *n)
{
	PGresult   *r = PQexec(n->conn, "SELECT chat._gateway_bus_pid()");
	bool		ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	int			pid = 0;

	if (ok && !PQgetisnull(r, 0, 0))
		pid = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	n->pid_checked = GetCurrentTimestamp();
	if (!ok)
	{
		ereport(LOG,
				(errmsg("chat node relay: node %s:%d: %s", n->host, n->port,
						PQerrorMessage(n->conn))));
		return false;
	}
	if (pid != n->bus_pid && n->bus_pid != 0)
		resync_pending = true;	/* the relay restarted: it may have missed */
	n->bus_pid = pid;
	if (pid == 0 && !n->warned)
		ereport(WARNING,
				(errmsg("chat node relay: node %s:%d runs no chat bus relay",
						n->host, n->port),
				 errhint("Set chat.notify_bus = on on every worker node.")));
	n->warned = pid == 0;
	return true;
}

/* conninfo_quote escapes s for a single-quoted conninfo value */
static char *
conninfo_quote(const char *s)
{
	StringInfoData b;

	initStringInfo(&b);
	for (; *s; s++)
	{
		if (*s == '\'' || *s == '\\')
			appendStringInfoChar(&b, '\\');
		appendStringInfoChar(&b, *s);
	}
	return b.data;
}

/*
 * node_connect connects to n, LISTENs and learns its bus relay's pid.  What
 * committed there before is unheard: a resync follows.
 */
static void
node_connect(relay_node *n)
{
	char		port[16];
	const char *keys[] = {"host", "port", "user", "application_name",
	"connect_timeout", "dbname", NULL};
	const char *vals[7];
	char	   *dbname;
	PGresult   *r;

	snprintf(port, sizeof(port), "%d", n->port);
	/* dbname may carry chat.node_conninfo's options (expand_dbname) */
	dbname = psprintf("dbname='%s' %s", conninfo_quote(db_name),
					  chat_node_conninfo ? chat_node_conninfo : "");
	vals[0] = n->host;
	vals[1] = port;
	vals[2] = user_name;
	vals[3] = "chat node relay";
	vals[4] = "5";
	vals[5] = dbname;
	vals[6] = NULL;
	n->conn = PQconnectdbParams(keys, vals, 1);
	pfree(dbname);
	if (PQstatus(n->conn) != CONNECTION_OK)
	{
		ereport(LOG,
				(errmsg("chat node relay: cannot connect to node %s:%d: %s",
						n->host, n->port, PQerrorMessage(n->conn))));
		node_close(n);
		return;
	}
	r = PQexec(n->conn, "LISTEN chat");
	if (PQresultStatus(r) != PGRES_COMMAND_OK || !learn_pid(n))
	{
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			ereport(LOG,
					(errmsg("chat node relay: node %s:%d: %s", n->host,
							n->port, PQerrorMessage(n->conn))));
		PQclear(r);
		node_close(n);
		return;
	}
	PQclear(r);
	resync_pending = true;
	ereport(LOG,
			(errmsg("chat node relay: listening on node %s:%d", n->host,
					n->port)));
}

/*
 * The active primary worker nodes, read on the coordinator only: a node
 * (metadata synced) lists them too.
 */
#define NODES_SQL \
	"SELECT nodename, nodeport FROM pg_catalog.pg_dist_node " \
	"WHERE isactive AND noderole = 'primary' AND groupid <> 0 " \
	"AND pg_catalog.citus_is_coordinator() ORDER BY nodeid"

/*
 * read_nodes reads the active primary worker nodes of pg_dist_node (none
 * when this database's chat tables are not distributed).
 */
static void
read_nodes(void)
{
	for (int i = 0; i < n_nodes; i++)
		nodes[i].listed = false;
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (db_name == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		db_name = pstrdup(get_database_name(MyDatabaseId));
		user_name = pstrdup(GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false));
		MemoryContextSwitchTo(old);
	}
	if (chat_distributed())
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute(NODES_SQL,
						true, RELAY_MAX_NODES) != SPI_OK_SELECT)
			elog(ERROR, "could not read pg_dist_node");
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			char	   *host = SPI_getvalue(SPI_tuptable->vals[r],
											SPI_tuptable->tupdesc, 1);
			int			port = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r],
														   SPI_tuptable->tupdesc,
														   2, &isnull));
			int			i;

			if (host == NULL || isnull)
				continue;
			for (i = 0; i < n_nodes; i++)
				if (nodes[i].port == port && strcmp(nodes[i].host, host) == 0)
					break;
			if (i == n_nodes)
			{
				if (n_nodes == RELAY_MAX_NODES)
					continue;
				memset(&nodes[i], 0, sizeof(relay_node));
				strlcpy(nodes[i].host, host, sizeof(nodes[i].host));
				nodes[i].port = port;
				n_nodes++;
			}
			nodes[i].listed = true;
		}
		SPI_finish();
	}
	PopActiveSnapshot();
	CommitTransactionCommand();

	/* nodes no longer listed are dropped; the rest keep their place */
	for (int i = 0; i < n_nodes;)
		if (!nodes[i].listed)
		{
			node_close(&nodes[i]);
			nodes[i] = nodes[--n_nodes];
		}
		else
			i++;
}

/* node_drain hands the hints n sent to the batch; a lost connection is closed */
static void
node_drain(relay_node *n)
{
	PGnotify   *note;

	if (!PQconsumeInput(n->conn))
	{
		ereport(LOG,
				(errmsg("chat node relay: lost node %s:%d: %s", n->host,
						n->port, PQerrorMessage(n->conn))));
		node_close(n);
		return;
	}
	while (n->conn &&(note = PQnotifies(n->conn)) != NULL)
	{
		chat_event	ev;

		if (note->be_pid != n->bus_pid &&
			TimestampDifferenceExceeds(n->pid_checked, GetCurrentTimestamp(),
									   RELAY_PID_RECHECK_MS) &&
			!learn_pid(n))
		{
			PQfreemem(note);
			node_close(n);
			return;
		}
		if (note->be_pid != n->bus_pid || n->bus_pid == 0)
			;					/* not the node's bus relay: dropped */
		else if (strcmp(note->extra, "x:") == 0)
			resync_pending = true;
		else if (chat_event_parse(note->extra, strlen(note->extra), &ev) &&
				 ev.kind != CHAT_EV_TYPING && ev.kind != CHAT_EV_TYPING_STOP &&
				 ev.kind != CHAT_EV_PRESENCE && ev.kind != CHAT_EV_RESYNC)
		{
			ev.user[0] = '\0';	/* the bus names none; believe none */
			add_event(&ev);
		}
		/* "g:" (typing, presence, receipts' readers) stays on the node */
		PQfreemem(note);
	}
}

void
chat_node_relay_main(Datum arg)
{
	TimestampTz next_refresh = 0;
	MemoryContext cxt;

	chat_helper_start("relaying the Citus nodes' chat events");
	cxt = AllocSetContextCreate(TopMemoryContext, "chat node relay",
								ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		WaitEventSet *set;
		WaitEvent	events[RELAY_MAX_NODES + 2];

		MemoryContextSwitchTo(cxt);
		if (GetCurrentTimestamp() >= next_refresh)
		{
			read_nodes();
			for (int i = 0; i < n_nodes; i++)
				if (nodes[i].conn == NULL)
					node_connect(&nodes[i]);
				else if (nodes[i].bus_pid == 0 && !learn_pid(&nodes[i]))
					node_close(&nodes[i]);
			/* until the tables are distributed, look every second */
			next_refresh = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   n_nodes > 0 ? RELAY_REFRESH_MS : 1000);
		}
		flush_batch();

		set = CreateWaitEventSet(cxt, n_nodes + 2);
		AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL,
						  NULL);
		for (int i = 0; i < n_nodes; i++)
			if (nodes[i].conn)
				AddWaitEventToSet(set, WL_SOCKET_READABLE,
								  PQsocket(nodes[i].conn), NULL, NULL);
		(void) WaitEventSetWait(set, n_nodes > 0 ? RELAY_REFRESH_MS : 1000, events,
								lengthof(events), PG_WAIT_EXTENSION);
		FreeWaitEventSet(set);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		/* reading a quiet connection costs one recv(): read them all */
		for (int i = 0; i < n_nodes; i++)
			if (nodes[i].conn)
				node_drain(&nodes[i]);
		flush_batch();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(cxt);
	}
}
