/*
 * store_pq.h
 *	  core/store.h over libpq: the gateway's storage, through the same SQL
 *	  the worker runs (src/pg/store_spi.c).
 */
#ifndef CHAT_GATEWAY_STORE_PQ_H
#define CHAT_GATEWAY_STORE_PQ_H

#include "core/store.h"
#include "gateway/pq.h"

extern void gw_store_init(chat_store *store, gw_pq *pq);

#endif							/* CHAT_GATEWAY_STORE_PQ_H */
