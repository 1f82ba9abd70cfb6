/*
 * worker.h
 *	  Registration of the chat background workers.
 */
#ifndef CHAT_PG_WORKER_H
#define CHAT_PG_WORKER_H

extern void chat_register_workers(void);

/* The NOTIFY bus relay (bus.c), registered when chat.notify_bus is on. */
extern void chat_bus_register(void);
extern void chat_node_relay_register(void);

#endif							/* CHAT_PG_WORKER_H */
