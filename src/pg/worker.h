/*
 * worker.h
 *	  Registration of the chat background workers.
 */
#ifndef CHAT_PG_WORKER_H
#define CHAT_PG_WORKER_H

/*
 * The workers, and the bus relay (bus.c, chat.notify_bus) and the node
 * relay (node_relay.c, chat.node_relay) when they are on.
 */
extern void chat_register_workers(void);
extern void chat_helper_start(const char *activity);
extern void chat_register_bgworker(const char *function, const char *name,
								   const char *type, int restart_s, Datum arg);

#endif							/* CHAT_PG_WORKER_H */
