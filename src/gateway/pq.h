/*
 * pq.h
 *	  One libpq connection of the gateway with its prepared statements:
 *	  every statement is prepared once per connection (the worker keeps its
 *	  SPI plans the same way, store_spi.c), and a lost connection is
 *	  re-established on the next call.
 */
#ifndef CHAT_GATEWAY_PQ_H
#define CHAT_GATEWAY_PQ_H

#include <stdbool.h>
#include <libpq-fe.h>

#define GW_PQ_KEPT 64

typedef struct gw_pq
{
	PGconn	   *conn;
	const char *conninfo;
	const char *label;			/* its part: "requests", "batches", "listen"
								 * (application_name "chat-gateway <label>") */
	int			statement_timeout_ms;
	const char *kept[GW_PQ_KEPT];	/* sql texts (static strings or owned) */
	bool		kept_owned[GW_PQ_KEPT];
	int			n_kept;
	char		schema[132];	/* the extension's schema, quoted */
	unsigned	gen;			/* counts the connections made: a new socket */

	/*
	 * The membership changes the bus relay said it relayed ("h:<n>"), all of
	 * them heard: a group commit passes it, and gets its channels' members
	 * back only when the server took a change after it (store_pq.c).  0 after
	 * hints may have been lost.
	 */
	int64_t		members_heard;

	/*
	 * The connections that commit group-commit batches while the loop goes on
	 * (store_pq.c), beside this one's requests; NULL: batches commit on this
	 * connection, the loop waiting.
	 */
	struct gw_pool *pool;
} gw_pq;

/*
 * gw_pq_connect (re)connects if needed and prepares the session; false
 * when the database cannot be reached now (the reason in err).
 */
extern bool gw_pq_connect(gw_pq *pq, char *err, size_t errlen);
extern void gw_pq_close(gw_pq *pq);

/*
 * gw_pq_exec runs sql (prepared once) with text parameters, NULL for SQL
 * NULL.  Returns the result (the caller PQclear()s it) or NULL when the
 * connection is not usable.
 */
extern PGresult *gw_pq_exec(gw_pq *pq, const char *sql, int nparams,
							const char *const *params);

/*
 * gw_pq_send sends sql (prepared once) with text parameters without
 * waiting for its result, which gw_pq_take collects; false when the
 * connection is not usable.
 */
extern bool gw_pq_send(gw_pq *pq, const char *sql, int nparams,
					   const char *const *params);

/*
 * gw_pq_take returns the result of what gw_pq_send sent (the caller
 * PQclear()s it; NULL when the connection failed meanwhile).  Without wait,
 * it only reads what has arrived: *ready false means not yet.
 */
extern PGresult *gw_pq_take(gw_pq *pq, bool wait, bool *ready);

/* gw_pq_ok: the result is a success (tuples or command). */
extern bool gw_pq_ok(const PGresult *res);

/* gw_pq_sqlstate: the result's SQLSTATE, "" when none. */
extern const char *gw_pq_sqlstate(const PGresult *res);

#endif							/* CHAT_GATEWAY_PQ_H */
