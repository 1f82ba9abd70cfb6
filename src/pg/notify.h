/*
 * notify.h
 *	  Receiving LISTEN/NOTIFY inside the worker, without libpq.
 */
#ifndef CHAT_PG_NOTIFY_H
#define CHAT_PG_NOTIFY_H

typedef void (*chat_notify_fn) (const char *channel, const char *payload,
								void *arg);

/* Route 'A' protocol messages to fn and LISTEN on channel. */
extern void chat_notify_start(const char *channel, chat_notify_fn fn,
							  void *arg);

/* Deliver pending notifications; call outside any transaction. */
extern void chat_notify_drain(void);

/* Read the queue now, whether or not a signal said so. */
extern void chat_notify_drain_now(void);

#endif							/* CHAT_PG_NOTIFY_H */
