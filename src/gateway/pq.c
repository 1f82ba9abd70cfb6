/*
 * pq.c
 *	  A libpq connection with kept prepared statements (pq.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/pq.h"

static void
forget_kept(gw_pq *pq)
{
	for (int i = 0; i < pq->n_kept; i++)
		if (pq->kept_owned[i])
			free((char *) pq->kept[i]);
	pq->n_kept = 0;
}

void
gw_pq_close(gw_pq *pq)
{
	if (pq->conn)
		PQfinish(pq->conn);
	pq->conn = NULL;
	forget_kept(pq);
}

bool
gw_pq_connect(gw_pq *pq, char *err, size_t errlen)
{
	char		sql[224];
	PGresult   *res;

	if (pq->conn &&PQstatus(pq->conn) == CONNECTION_OK)
		return true;
	gw_pq_close(pq);
	pq->conn = PQconnectdb(pq->conninfo);
	if (PQstatus(pq->conn) != CONNECTION_OK)
	{
		snprintf(err, errlen, "%s", PQerrorMessage(pq->conn));
		gw_pq_close(pq);
		return false;
	}

	/*
	 * As the worker: no name resolves through a schema an application can
	 * write, and the same few statements run all day on generic plans.
	 */
	snprintf(sql, sizeof(sql),
			 "SET search_path = pg_catalog, pg_temp; "
			 "SET plan_cache_mode = force_generic_plan; "
			 "SET statement_timeout = %d; "
			 "SET application_name = 'chat-gateway %s'",
			 pq->statement_timeout_ms, pq->label ? pq->label : "");
	res = PQexec(pq->conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		snprintf(err, errlen, "%s", PQerrorMessage(pq->conn));
		PQclear(res);
		gw_pq_close(pq);
		return false;
	}
	PQclear(res);
	res = PQexec(pq->conn,
				 "SELECT pg_catalog.quote_ident(n.nspname) "
				 "FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n "
				 "ON n.oid = e.extnamespace WHERE e.extname = 'chat'");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		snprintf(err, errlen, "extension chat is not installed in this database");
		PQclear(res);
		gw_pq_close(pq);
		return false;
	}
	snprintf(pq->schema, sizeof(pq->schema), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	pq->gen++;
	return true;
}

bool
gw_pq_ok(const PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

const char *
gw_pq_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return s ? s : "";
}

/* kept_name finds or prepares sql; NULL when it cannot be prepared. */
static const char *
kept_name(gw_pq *pq, const char *sql, int nparams, char *name, size_t len)
{
	PGresult   *res;
	char	   *copy;

	for (int i = 0; i < pq->n_kept; i++)
		if (pq->kept[i] == sql || strcmp(pq->kept[i], sql) == 0)
		{
			snprintf(name, len, "s%d", i);
			return name;
		}
	if (pq->n_kept == GW_PQ_KEPT)
		return NULL;
	snprintf(name, len, "s%d", pq->n_kept);
	res = PQprepare(pq->conn, name, sql, nparams, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		PQclear(res);
		return NULL;
	}
	PQclear(res);
	copy = strdup(sql);
	if (copy == NULL)
		return NULL;
	pq->kept[pq->n_kept] = copy;
	pq->kept_owned[pq->n_kept] = true;
	pq->n_kept++;
	return name;
}

static PGresult *exec_once(gw_pq *pq, const char *sql, int nparams,
						   const char *const *params);

/*
 * gw_pq_exec runs sql once more on a new connection when the connection
 * turned out to be gone (the server restarted, or dropped it): what the
 * gateway sends is safe to repeat (a send carries its idempotency key, a
 * read marker only moves forward), and a query failing only because an
 * idle connection died would otherwise cost a client an error, or a
 * resync its catch-up.
 */
PGresult   *
gw_pq_exec(gw_pq *pq, const char *sql, int nparams, const char *const *params)
{
	PGresult   *res = exec_once(pq, sql, nparams, params);

	if ((res == NULL || !gw_pq_ok(res)) &&
		(pq->conn == NULL || PQstatus(pq->conn) != CONNECTION_OK))
	{
		PQclear(res);
		gw_pq_close(pq);
		res = exec_once(pq, sql, nparams, params);
	}
	return res;
}

/*
 * ready_for connects if needed and finds or prepares sql: name is its
 * statement's, or "" when it cannot be prepared (a full cache, or an error
 * that running it will show) and must run unprepared; false when the
 * connection is not usable.
 */
static bool
ready_for(gw_pq *pq, const char *sql, int nparams, char *name, size_t len)
{
	char		err[256];

	if (!gw_pq_connect(pq, err, sizeof(err)))
		return false;
	if (kept_name(pq, sql, nparams, name, len) != NULL)
		return true;
	name[0] = '\0';
	return PQstatus(pq->conn) == CONNECTION_OK;
}

static PGresult *
exec_once(gw_pq *pq, const char *sql, int nparams, const char *const *params)
{
	char		name[16];

	if (!ready_for(pq, sql, nparams, name, sizeof(name)))
		return NULL;
	if (name[0] == '\0')
		return PQexecParams(pq->conn, sql, nparams, NULL, params, NULL, NULL,
							0);
	return PQexecPrepared(pq->conn, name, nparams, params, NULL, NULL, 0);
}

bool
gw_pq_send(gw_pq *pq, const char *sql, int nparams, const char *const *params)
{
	char		name[16];

	if (!ready_for(pq, sql, nparams, name, sizeof(name)))
		return false;
	if (name[0] == '\0')
		return PQsendQueryParams(pq->conn, sql, nparams, NULL, params, NULL,
								 NULL, 0) == 1;
	return PQsendQueryPrepared(pq->conn, name, nparams, params, NULL, NULL,
							   0) == 1;
}

PGresult   *
gw_pq_take(gw_pq *pq, bool wait, bool *ready)
{
	PGresult   *res;
	PGresult   *more;

	*ready = true;
	if (pq->conn == NULL)
		return NULL;
	if (!wait)
	{
		if (PQconsumeInput(pq->conn) == 0)
			return NULL;		/* the connection failed */
		if (PQisBusy(pq->conn))
		{
			*ready = false;
			return NULL;
		}
	}
	res = PQgetResult(pq->conn);
	/* one statement, one result: the NULL after it ends the query */
	while ((more = PQgetResult(pq->conn)) != NULL)
		PQclear(more);
	return res;
}
