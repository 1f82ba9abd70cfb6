/*
 * notify_queue.h
 *	  The notification queue's triggers (notify_queue.c): what a read
 *	  marker that moved forward cancels, for row_update.c, which writes a
 *	  marker without firing the trigger.
 */
#ifndef CHAT_NOTIFY_QUEUE_H
#define CHAT_NOTIFY_QUEUE_H

extern void chat_cancel_covered(Datum channel, Datum user, int64 marker);

/*
 * chat_channel_newest is the channel's last_seq as its next writer finds
 * it, a send in flight included (-1: no such channel).
 */
extern int64 chat_channel_newest(Datum channel);

#endif							/* CHAT_NOTIFY_QUEUE_H */
