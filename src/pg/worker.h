/*
 * worker.h
 *	  Registration of the chat background workers.
 */
#ifndef CHAT_PG_WORKER_H
#define CHAT_PG_WORKER_H

extern void chat_register_workers(void);

#endif							/* CHAT_PG_WORKER_H */
