/*
 * message.h
 *	  The data the core and the storage layer exchange: a chat message and a
 *	  channel as a connection sees it.  Plain C, malloc-owned.
 */
#ifndef CHAT_MESSAGE_H
#define CHAT_MESSAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define CHAT_UUID_LEN 36		/* canonical text form, without NUL */
#define CHAT_TS_LEN 40			/* ISO 8601 UTC text, with NUL */

typedef char chat_uuid[CHAT_UUID_LEN + 1];	/* "" when NULL */

/* A row of chat.messages, timestamps as ISO 8601 UTC ("" when NULL). */
typedef struct chat_message
{
	chat_uuid	id;
	chat_uuid	channel_id;
	chat_uuid	client_id;
	chat_uuid	reply_to;
	int64_t		seq;
	int64_t		change_seq;		/* channel change counter at its last
								 * edit/delete; 0 if never changed */
	char	   *sender_id;		/* malloc */
	char	   *content;		/* malloc; "" for a deleted message */
	char	   *kind;			/* malloc */
	char	   *attachments;	/* malloc JSON array text, or NULL */
	char	   *reactions;		/* malloc JSON array text, or NULL: none */
	char		created_at[CHAT_TS_LEN];
	char		edited_at[CHAT_TS_LEN];
	char		deleted_at[CHAT_TS_LEN];
} chat_message;

/* A channel of one user, as listed in ready and joined. */
typedef struct chat_channel_info
{
	chat_uuid	id;
	char		type[8];		/* "direct" | "group" */
	char	   *name;			/* malloc, NULL when none */
	char		role[8];		/* "member" | "admin" */
	int64_t		last_seq;
	int64_t		last_read_seq;
	int64_t		unread;
	int64_t		last_change;	/* the channel's edit/delete counter */
	char	  **online;			/* malloc array of malloc strings */
	size_t		n_online;
} chat_channel_info;

/* A message found by search, as the user may see it. */
typedef struct chat_search_hit
{
	chat_uuid	id;
	chat_uuid	channel_id;
	int64_t		seq;
	char	   *sender_id;		/* malloc */
	char	   *content;		/* malloc, the current text */
	char	   *headline;		/* malloc, HTML: escaped, matches in <mark> */
	char		created_at[CHAT_TS_LEN];
	char		edited_at[CHAT_TS_LEN];
} chat_search_hit;

extern void chat_message_clear(chat_message *m);
extern void chat_search_hits_free(chat_search_hit *hits, size_t n);
extern void chat_channel_info_clear(chat_channel_info *c);

/*
 * chat_uuid_parse copies a canonical 8-4-4-4-12 hex uuid into out, in
 * lower case; anything else is false.
 */
extern bool chat_uuid_parse(const char *s, size_t n, chat_uuid out);

/* The longest message kind, in bytes. */
#define CHAT_KIND_MAX 32

/*
 * chat_kind_ok tells whether the n bytes at s are a message kind: a
 * lower-case letter followed by at most 31 of a-z, 0-9, "_", "." and "-"
 * (^[a-z][a-z0-9_.-]{0,31}$).  The one home of that rule: the protocol's
 * decoder, chat_send and the SQL functions (chat._kind_ok) all call it.
 */
extern bool chat_kind_ok(const char *s, size_t n);

#endif							/* CHAT_MESSAGE_H */
