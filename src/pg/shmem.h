/*
 * shmem.h
 *	  Shared memory: who is online (per worker connection counts), the
 *	  total connection count, and the database the workers wait for.
 */
#ifndef CHAT_PG_SHMEM_H
#define CHAT_PG_SHMEM_H

#include "postgres.h"

#define CHAT_MAX_WORKERS 16
/* Standalone gateways (src/gateway) attached at once (pg/gateway.c). */
#define CHAT_MAX_GATEWAYS 32
/* Presence is counted per node: workers 0..15, then gateways. */
#define CHAT_MAX_NODES (CHAT_MAX_WORKERS + CHAT_MAX_GATEWAYS)
/* The worker id of presence events the database announces for a node. */
#define CHAT_NODE_SYSTEM 9999

extern void chat_shmem_install_hooks(void);

/* Presence: true when the user's total went 0 -> 1 (add) or 1 -> 0. */
extern bool chat_presence_add(const char *user_id, int worker);
extern bool chat_presence_remove(const char *user_id, int worker);

/* online[i] := users[i] is connected on some worker (one lock for all) */
extern void chat_presence_filter(const char *const *users, int n,
								 bool *online);

/* Forget every connection of worker (it restarted: none survived). */
extern void chat_presence_reset_worker(int worker);

/*
 * chat_presence_drop_node forgets every connection of node (a gateway whose
 * lease ran out) and returns, palloc'd, the users that made go offline.
 */
extern char **chat_presence_drop_node(int node, int *n_offline);

/* Connection slots across workers (chat.max_connections). */
extern bool chat_conn_admit(int worker, int delta, int max);
extern bool chat_ip_admit(int worker, const char *addr, int delta, int max);

/* The OID of chat.database once it was seen to exist; InvalidOid before. */
extern Oid	chat_shared_database(void);
extern void chat_set_shared_database(Oid dboid);

#endif							/* CHAT_PG_SHMEM_H */
