/*
 * store_pq.h
 *	  core/store.h over libpq: the gateway's storage, through the same SQL
 *	  the worker runs (src/pg/store_spi.c).
 */
#ifndef CHAT_GATEWAY_STORE_PQ_H
#define CHAT_GATEWAY_STORE_PQ_H

#include "core/store.h"
#include "gateway/pq.h"

/* at most this many batch connections (chat.pool_size - 1) */
#define GW_POOL_MAX 8

/*
 * The batch connections: each commits one batch at a time, sent without
 * waiting (gw_pq_send); a batch is handed back when its outcome is in
 * (core/store.h, batch_start and batch_finish).
 */
typedef struct gw_batch_conn
{
	gw_pq		pq;
	bool		busy;
	bool		resent;			/* sent again after its connection failed */
	uint64_t	started;		/* numbers the batches: the oldest is lowest */
	chat_send_item *items;		/* the batch it commits, the core's */
	size_t		n;
	char	   *params[8];		/* its parameters, to send it again */
} gw_batch_conn;

typedef struct gw_pool
{
	gw_batch_conn conns[GW_POOL_MAX];
	int			n_conns;
	uint64_t	n_started;
} gw_pool;

/*
 * gw_store_init: the store over pq.  With pq->pool set (its connections'
 * conninfo and statement timeout filled), batches are pipelined over it.
 */
extern void gw_store_init(chat_store *store, gw_pq *pq);

/* gw_pool_fd: the socket of batch connection i, -1 when none */
extern int	gw_pool_fd(gw_pool *pool, int i);

/* gw_pool_read: what arrived on the batch connections (store_pq.c) */
extern void gw_pool_read(gw_pool *pool);

#endif							/* CHAT_GATEWAY_STORE_PQ_H */
