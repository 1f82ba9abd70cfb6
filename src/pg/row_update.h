/*
 * row_update.h
 *	  chat_send's seq bump and read marker without the executor
 *	  (row_update.c), for send.c.
 */
#ifndef CHAT_ROW_UPDATE_H
#define CHAT_ROW_UPDATE_H

typedef enum row_outcome
{
	ROW_UPDATED,				/* done, and its trigger's work */
	ROW_ABSENT,					/* no row to update: nothing done */
	ROW_FALLBACK				/* nothing done: run the statement */
} row_outcome;

/* UPDATE chat.channels SET last_seq = last_seq + 1 WHERE id = channel */
extern row_outcome chat_bump_seq(Datum channel, int64 *seq);

/*
 * UPDATE chat.channel_members SET last_read_seq = seq WHERE the member's
 * row is not locked and its last_read_seq < seq (ROW_ABSENT otherwise)
 */
extern row_outcome chat_mark_sent(Datum channel, Datum user, int64 seq);

#endif							/* CHAT_ROW_UPDATE_H */
