/*
 * gateway.h
 *	  What the server keeps for standalone gateways (src/gateway): one slot
 *	  per attached gateway with a lease, and the SQL functions they call.
 */
#ifndef CHAT_PG_GATEWAY_H
#define CHAT_PG_GATEWAY_H

#include "postgres.h"

extern Size chat_gateways_shmem_size(void);
extern void chat_gateways_shmem_init(void);

/*
 * chat_gateways_reap ends every lease that ran out: the gateway's users
 * leave presence and whoever went offline is announced to every worker
 * and gateway.  The bus relay calls it on every wake-up.
 */
extern void chat_gateways_reap(void);

#endif							/* CHAT_PG_GATEWAY_H */
