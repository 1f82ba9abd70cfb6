/*
 * notify_queue.h
 *	  The notification queue's triggers (notify_queue.c): what a read
 *	  marker that moved forward cancels, for row_update.c, which writes a
 *	  marker without firing the trigger.
 */
#ifndef CHAT_NOTIFY_QUEUE_H
#define CHAT_NOTIFY_QUEUE_H

extern void chat_cancel_covered(Datum channel, Datum user, int64 marker);

#endif							/* CHAT_NOTIFY_QUEUE_H */
