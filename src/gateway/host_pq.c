/*
 * host_pq.c
 *	  The gateway's node (host_pq.h): what a worker finds in shared memory,
 *	  the gateway asks of the server through the chat._gateway_* functions
 *	  (src/pg/gateway.c), and what the bus relay NOTIFYs it reads on a
 *	  dedicated LISTEN connection.  Every payload is a hint; after losing
 *	  that connection, or the lease (the server restarted, or this process
 *	  was stopped past chat.heartbeat_timeout), it re-reads everything:
 *	  chat_server_resync().
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/host_pq.h"

#define LISTEN_BACKOFF_MS 1000

/*
 * hints_lost: hints may have been lost (a new lease, LISTEN again, a new
 * relay): every table is re-read, and what the relay said it relayed of
 * the membership changes no longer counts.
 */
static void
hints_lost(gw_node *n)
{
	n->pq->members_heard = 0;
	chat_server_resync(n->srv);
}

static void
warn(gw_node *n, const char *what, PGresult *r)
{
	fprintf(stderr, "chat-gateway %s: %s: %s", n->name, what,
			r ? PQresultErrorMessage(r) : "no connection to the database\n");
}

/* lease_lost: the server no longer knows our handle */
static bool
lease_lost(const PGresult *r)
{
	return r && strcmp(gw_pq_sqlstate(r), "55000") == 0;
}

/* --- users connected here -------------------------------------------------- */

static void
count_user(gw_node *n, const char *user, int delta)
{
	intptr_t	c = (intptr_t) map_get(&n->users, user) + delta;

	if (c <= 0)
		(void) map_del(&n->users, user);
	else
		(void) map_put(&n->users, user, (void *) c);
}

/*
 * rejoin counts this gateway's open connections again under a new lease;
 * users that went online by it are announced to every node, this one too.
 */
static void
rejoin(gw_node *n)
{
	size_t		k = 0;
	PGresult   *r;
	char		handle[24];
	const char *args[2];
	size_t		len = 2;
	char	   *lit;
	void	   *v;

	/* a text[] literal with one element per connection */
	map_foreach(&n->users, i, v)
		len += (size_t) (intptr_t) v * (2 * 256 + 4);
	lit = malloc(len);
	if (lit == NULL)
		return;
	strcpy(lit, "{");
	for (size_t i = 0; i < n->users.cap; i++)
	{
		const map_slot *s = &n->users.slots[i];

		if (map_value_at(&n->users, i) == NULL)
			continue;
		for (intptr_t c = 0; c < (intptr_t) s->value; c++)
		{
			char	   *p = lit + strlen(lit);

			if (k++ > 0)
				*p++ = ',';
			*p++ = '"';
			for (const char *q = s->key; *q; q++)
			{
				if (*q == '"' || *q == '\\')
					*p++ = '\\';
				*p++ = *q;
			}
			*p++ = '"';
			*p = '\0';
		}
	}
	strcat(lit, "}");
	snprintf(handle, sizeof(handle), "%lld", (long long) n->handle);
	args[0] = handle;
	args[1] = lit;
	r = gw_pq_exec(n->pq, "SELECT chat._gateway_rejoin($1::bigint, $2::text[])",
				   2, args);
	if (r == NULL || !gw_pq_ok(r))
		warn(n, "rejoin", r);
	PQclear(r);
	free(lit);
}

/* attach takes a new lease; everything is re-read after it */
static bool
attach(gw_node *n)
{
	char		lease[16];
	char		handle[24];
	const char *args[2] = {n->name, lease};
	PGresult   *r;

	snprintf(lease, sizeof(lease), "%d", n->lease_ms);
	r = gw_pq_exec(n->pq, "SELECT chat._gateway_attach($1, $2::integer)",
				   2, args);
	if (r == NULL || !gw_pq_ok(r) || PQntuples(r) != 1)
	{
		warn(n, "attach", r);
		PQclear(r);
		return false;
	}
	n->handle = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	/* the renewal answers the node id */
	snprintf(handle, sizeof(handle), "%lld", (long long) n->handle);
	args[0] = handle;
	r = gw_pq_exec(n->pq, "SELECT chat._gateway_renew($1::bigint, $2::integer)",
				   2, args);
	if (r == NULL || !gw_pq_ok(r) || PQntuples(r) != 1)
	{
		warn(n, "attach", r);
		PQclear(r);
		n->handle = 0;
		return false;
	}
	n->node_id = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	fprintf(stderr, "chat-gateway %s: attached as node %d\n", n->name,
			n->node_id);
	if (n->on_node_id)
		n->on_node_id(n->on_node_id_arg, n->node_id);
	if (n->users.used > 0)
		rejoin(n);
	n->events_pending = true;
	hints_lost(n);
	return true;
}

static void
renew(gw_node *n)
{
	char		handle[24],
				lease[16];
	const char *args[2] = {handle, lease};
	PGresult   *r;

	snprintf(handle, sizeof(handle), "%lld", (long long) n->handle);
	snprintf(lease, sizeof(lease), "%d", n->lease_ms);
	r = gw_pq_exec(n->pq, "SELECT chat._gateway_renew($1::bigint, $2::integer)",
				   2, args);
	if (lease_lost(r))
	{
		fprintf(stderr, "chat-gateway %s: lease lost, attaching again\n",
				n->name);
		n->handle = 0;
	}
	else if (r == NULL || !gw_pq_ok(r))
	{
		warn(n, "renew", r);
		/* a new connection may mean a restarted server: check at once */
		if (r == NULL)
			n->handle = 0;
	}
	PQclear(r);
}

/* --- the LISTEN connection ------------------------------------------------ */

static bool
listen_up(gw_node *n)
{
	char		err[256];
	PGresult   *r;

	if (!gw_pq_connect(&n->listen, err, sizeof(err)))
	{
		fprintf(stderr, "chat-gateway %s: LISTEN connection: %s", n->name,
				err);
		return false;
	}
	r = PQexec(n->listen.conn, "LISTEN chat");
	if (!gw_pq_ok(r))
	{
		warn(n, "LISTEN chat", r);
		PQclear(r);
		gw_pq_close(&n->listen);
		return false;
	}
	PQclear(r);
	if (PQsetnonblocking(n->listen.conn, 1) != 0)
	{
		gw_pq_close(&n->listen);
		return false;
	}
	n->listen_gen++;
	n->bus_pid_checked_us = 0;	/* look the relay up at the first payload */
	/* whatever committed while we were not listening is in the tables */
	hints_lost(n);
	n->events_pending = true;
	return true;
}

int
gw_node_listen_fd(gw_node *n)
{
	return n->listen.conn ? PQsocket(n->listen.conn) : -1;
}

/* At most one look-up of the relay per second, however many payloads. */
#define BUS_PID_RECHECK_US 1000000

/*
 * from_bus tells whether a payload came from the server's bus relay (the
 * only process that emits NOTIFY chat, src/pg/bus.c).  Any role may NOTIFY
 * chat, and every hint makes the gateway read the tables, so payloads from
 * anyone else are dropped before they cost anything.  The relay's pid comes
 * from chat._gateway_bus_pid() (pg_stat_activity's backend_type, which no
 * role can set); a
 * relay that restarted has a new pid: the first payload from it makes the
 * gateway look again (once a second at most), and a changed pid means
 * hints may have been dropped meanwhile, so everything is re-read.
 */
static bool
from_bus(gw_node *n, int pid)
{
	int64_t		now = chat_clock_us();
	PGresult   *r;
	int			found = 0;

	if (pid == n->bus_pid && pid != 0)
		return true;
	if (n->bus_pid_checked_us != 0 &&
		now - n->bus_pid_checked_us < BUS_PID_RECHECK_US)
		return false;
	n->bus_pid_checked_us = now;
	r = gw_pq_exec(n->pq, "SELECT chat._gateway_bus_pid()", 0, NULL);
	if (r != NULL && gw_pq_ok(r) && PQntuples(r) == 1 &&
		!PQgetisnull(r, 0, 0))
		found = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (found != 0 && found != n->bus_pid)
	{
		if (n->bus_pid != 0)
			hints_lost(n);
		n->bus_pid = found;
	}
	return pid == n->bus_pid && pid != 0;
}

void
gw_node_notified(gw_node *n)
{
	PGnotify   *note;

	if (n->listen.conn == NULL)
		return;
	if (!PQconsumeInput(n->listen.conn) ||
		PQstatus(n->listen.conn) != CONNECTION_OK)
	{
		fprintf(stderr, "chat-gateway %s: LISTEN connection lost: %s",
				n->name, PQerrorMessage(n->listen.conn));
		gw_pq_close(&n->listen);
		/* hints may be lost until we listen again */
		hints_lost(n);
		return;
	}
	while ((note = PQnotifies(n->listen.conn)) != NULL)
	{
		chat_event	ev;

		if (!from_bus(n, note->be_pid))
		{
			n->forged++;
			PQfreemem(note);
			continue;
		}

		/*
		 * Even from the relay, a payload is only ever a hint to read the
		 * tables, and one naming a user is not believed.  A user id travels
		 * only through chat._gateway_events (the ring, written by the server
		 * alone); typing and presence come only from there.
		 */
		if (strcmp(note->extra, "g:") == 0)
			n->events_pending = true;
		else if (strncmp(note->extra, "h:", 2) == 0)
		{
			/* the relay's NOTIFYs of those changes came before, in order */
			long long	h = strtoll(note->extra + 2, NULL, 10);

			if (h > n->pq->members_heard)
				n->pq->members_heard = h;
		}
		else if (chat_event_parse(note->extra, strlen(note->extra), &ev) &&
				 ev.kind != CHAT_EV_TYPING && ev.kind != CHAT_EV_TYPING_STOP &&
				 ev.kind != CHAT_EV_PRESENCE)
		{
			ev.user[0] = '\0';
			(void) chat_server_event(n->srv, &ev);
		}
		PQfreemem(note);
	}
}

/* read_events hands the other nodes' typing and presence to the core */
static void
read_events(gw_node *n)
{
	char		handle[24];
	const char *args[1] = {handle};
	PGresult   *r;

	n->events_pending = false;
	snprintf(handle, sizeof(handle), "%lld", (long long) n->handle);
	r = gw_pq_exec(n->pq, "SELECT e FROM chat._gateway_events($1::bigint) e",
				   1, args);
	if (lease_lost(r))
		n->handle = 0;
	else if (r == NULL || !gw_pq_ok(r))
	{
		warn(n, "events", r);
		n->events_pending = true;
	}
	else
		for (int i = 0; i < PQntuples(r); i++)
		{
			const char *e = PQgetvalue(r, i, 0);

			/* lost typing/presence: nothing to re-read, it was ephemeral */
			if (strcmp(e, "x:") != 0)
				(void) chat_server_notify(n->srv, e);
		}
	PQclear(r);
}

int
gw_node_tick(gw_node *n, int64_t now_ms)
{
	int			interval = n->lease_ms / 3;
	int64_t		wait;

	if (n->listen.conn == NULL && now_ms >= n->next_listen_ms &&
		!listen_up(n))
		n->next_listen_ms = now_ms + LISTEN_BACKOFF_MS;
	if (n->handle == 0)
	{
		if (!attach(n))
			return LISTEN_BACKOFF_MS;
		n->next_renew_ms = now_ms + interval;
	}
	else if (now_ms >= n->next_renew_ms)
	{
		renew(n);
		n->next_renew_ms = now_ms + interval;
		if (n->handle == 0)
			return 0;
	}
	if (n->events_pending && n->handle != 0)
		read_events(n);
	wait = n->next_renew_ms - now_ms;
	if (n->listen.conn == NULL)
		wait = wait < LISTEN_BACKOFF_MS ? wait : LISTEN_BACKOFF_MS;
	return wait < 0 ? 0 : (int) wait;
}

void
gw_node_detach(gw_node *n)
{
	char		handle[24];
	const char *args[1] = {handle};

	if (n->handle == 0)
		return;
	snprintf(handle, sizeof(handle), "%lld", (long long) n->handle);
	PQclear(gw_pq_exec(n->pq, "SELECT chat._gateway_detach($1::bigint)", 1,
					   args));
	n->handle = 0;
}

/* --- core/host.h ----------------------------------------------------------- */

static bool
host_presence(void *ctx, const char *user_id, bool up)
{
	gw_node    *n = ctx;
	char		handle[24];
	const char *args[3] = {handle, user_id, up ? "t" : "f"};
	PGresult   *r;
	bool		changed = false;

	count_user(n, user_id, up ? 1 : -1);
	if (n->handle == 0)
		return false;			/* the next attach counts it (rejoin) */
	snprintf(handle, sizeof(handle), "%lld", (long long) n->handle);
	r = gw_pq_exec(n->pq, "SELECT chat._gateway_presence($1::bigint, $2, "
				   "$3::boolean)", 3, args);
	if (r && gw_pq_ok(r) && PQntuples(r) == 1)
		changed = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	else if (lease_lost(r))
		n->handle = 0;
	else
		warn(n, "presence", r);
	PQclear(r);
	return changed;
}

static void
host_drain_events(void *ctx)
{
	gw_node    *n = ctx;

	/* what NOTIFYs arrived by now (a membership change before the batch) */
	gw_node_notified(n);
}

static void
host_publish(void *ctx, const chat_event *evs, size_t count)
{
	gw_node    *n = ctx;
	char		handle[24];
	char		lit[64 * (CHAT_EVENT_TEXT_MAX * 2 + 4) + 4];
	const char *args[2] = {handle, lit};
	size_t		k = 0;
	PGresult   *r;

	if (n->handle == 0)
		return;
	snprintf(handle, sizeof(handle), "%lld", (long long) n->handle);
	for (size_t off = 0; off < count; off += 64)
	{
		char	   *p = lit;

		*p++ = '{';
		k = 0;
		for (size_t i = off; i < count && i < off + 64; i++)
		{
			char		text[CHAT_EVENT_TEXT_MAX];

			if (chat_event_format(&evs[i], true, text, sizeof(text)) < 0)
				continue;
			if (k++ > 0)
				*p++ = ',';
			*p++ = '"';
			for (const char *q = text; *q; q++)
			{
				if (*q == '"' || *q == '\\')
					*p++ = '\\';
				*p++ = *q;
			}
			*p++ = '"';
		}
		*p++ = '}';
		*p = '\0';
		if (k == 0)
			continue;
		r = gw_pq_exec(n->pq, "SELECT chat._gateway_publish($1::bigint, "
					   "$2::text[])", 2, args);
		if (lease_lost(r))
			n->handle = 0;
		else if (r == NULL || !gw_pq_ok(r))
			warn(n, "publish", r);
		PQclear(r);
	}
}

void
gw_host_init(chat_host *host, gw_node *node)
{
	memset(host, 0, sizeof(*host));
	host->ctx = node;
	host->presence = host_presence;
	/* admit, admit_ip: NULL, the core counts this gateway's own */
	host->drain_events = host_drain_events;
	host->publish = host_publish;
}
