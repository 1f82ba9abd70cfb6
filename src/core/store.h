/*
 * store.h
 *	  The storage interface the core calls (the host's other services are
 *	  in core/host.h).  The PostgreSQL side implements
 *	  it over SPI (src/pg/store_spi.c); every transaction lives behind it.
 *	  Calls are synchronous and never longjmp: failures come back as a
 *	  chat_err, which maps one-to-one onto the protocol's error codes.
 */
#ifndef CHAT_STORE_H
#define CHAT_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "core/message.h"

typedef enum chat_err
{
	CHAT_OK = 0,
	CHAT_E_BAD_REQUEST,
	CHAT_E_NOT_MEMBER,
	CHAT_E_NOT_FOUND,
	CHAT_E_FORBIDDEN,
	CHAT_E_TOO_LARGE,
	CHAT_E_RATE_LIMITED,
	CHAT_E_INTERNAL
} chat_err;

/* chat_err_code gives the protocol's name of err ("bad_request", ...). */
extern const char *chat_err_code(chat_err err);

/* One send of a group-commit batch: inputs, then the outcome. */
typedef struct chat_send_item
{
	const char *sender_id;
	chat_uuid	channel_id;
	chat_uuid	client_id;
	chat_uuid	reply_to;		/* "" for none */
	const char *content;
	const char *kind;
	const char *attachments;	/* JSON text or NULL */

	chat_err	status;
	bool		duplicate;		/* the key was sent before: msg is the first */
	chat_message msg;			/* filled when status == CHAT_OK */
	char		errmsg[160];	/* short reason when status != CHAT_OK */

	/*
	 * The members of the item's group channel once the batch held its lock,
	 * for a store whose host hears membership changes later than its own
	 * commits (a gateway); NULL when the store does not say.  Set on one item
	 * per channel at most; malloc'd (array and strings), freed by the core.
	 */
	char	  **members;
	size_t		n_members;
} chat_send_item;

typedef struct chat_store
{
	void	   *ctx;

	/* Every channel of user_id, for ready. */
	chat_err	(*user_channels) (void *ctx, const char *user_id,
								  chat_channel_info **out, size_t *n);

	/* One channel as user_id sees it; CHAT_E_NOT_MEMBER if not a member. */
	chat_err	(*channel_for_user) (void *ctx, const char *channel_id,
									 const char *user_id,
									 chat_channel_info *out);

	/*
	 * Persist items in one transaction (group commit); one bad item never
	 * fails the others.  Returns only after COMMIT; on CHAT_E_INTERNAL
	 * nothing was stored and every item carries that status.
	 */
	chat_err	(*send_batch) (void *ctx, chat_send_item *items, size_t n);

	/*
	 * Pipelined group commit, optional (NULL: send_batch, which waits). A
	 * store with more than one connection commits a batch while the loop
	 * serves its sockets and gathers the next one.  batch_start begins
	 * persisting items as send_batch would and returns at once: false when it
	 * cannot take one more batch now.  batch_finish returns the items of a
	 * batch whose outcome is in, filled as send_batch fills them (after
	 * COMMIT), and forgets that batch: any one when !wait (NULL: none yet),
	 * the oldest when wait.  Items are the store's until then.
	 */
	bool		(*batch_start) (void *ctx, chat_send_item *items, size_t n);
	chat_send_item *(*batch_finish) (void *ctx, bool wait);

	/*
	 * Messages with seq > after_seq, oldest first, at most limit.  When
	 * user_id is not NULL the user must be a member (else NOT_MEMBER).
	 */
	chat_err	(*since) (void *ctx, const char *channel_id,
						  const char *user_id, int64_t after_seq, int limit,
						  chat_message **out, size_t *n);

	/*
	 * Messages with seq <= upto_seq edited or deleted after change
	 * last_change, in change order, at most limit; *channel_change is the
	 * channel's counter now.  user_id must be a member.
	 */
	chat_err	(*changes) (void *ctx, const char *channel_id,
							const char *user_id, int64_t after_change,
							int64_t upto_seq, int limit, chat_message **out,
							size_t *n, int64_t *channel_change);

	/* Messages with seq < before (0: newest), newest first, at most limit. */
	chat_err	(*history) (void *ctx, const char *channel_id,
							const char *user_id, int64_t before, int limit,
							chat_message **out, size_t *n);

	/* Advance the read marker; *stored is the value now stored. */
	chat_err	(*mark_read) (void *ctx, const char *channel_id,
							  const char *user_id, int64_t seq,
							  int64_t *stored);

	/* Edit (sender only) or delete (sender or admin); *out is the result. */
	chat_err	(*edit) (void *ctx, const char *message_id, const char *user_id,
						 const char *content, chat_message *out,
						 char *errmsg, size_t errlen);
	chat_err	(*remove) (void *ctx, const char *message_id,
						   const char *user_id, chat_message *out,
						   char *errmsg, size_t errlen);

	/*
	 * Add (add) or remove user_id's reaction emoji to a message (members
	 * only); *out is the message with its reactions.  May be NULL.
	 */
	chat_err	(*react) (void *ctx, const char *message_id, const char *user_id,
						  const char *emoji, bool add, chat_message *out,
						  char *errmsg, size_t errlen);

	/*
	 * Full-text search over user_id's channels (channel_id "" for all),
	 * newest first, before message before_id ("" from the newest), at most
	 * limit hits.  May be NULL.
	 */
	chat_err	(*search) (void *ctx, const char *user_id, const char *query,
						   const char *channel_id, const char *before_id,
						   int limit, chat_search_hit **out, size_t *n,
						   char *errmsg, size_t errlen);

	/* Members of channel_id online on any worker now (malloc'd strings). */
	chat_err	(*channel_online) (void *ctx, const char *channel_id,
								   char ***users, size_t *n);

	/*
	 * Every member of channel_id (malloc'd strings), for a membership hint
	 * that names no user.  May be NULL: such a hint then re-reads every
	 * connected user's memberships.
	 */
	chat_err	(*channel_members) (void *ctx, const char *channel_id,
									char ***users, size_t *n);

	/* Ids of every channel user_id belongs to. */
	chat_err	(*user_channel_ids) (void *ctx, const char *user_id,
									 chat_uuid * *ids, size_t *n);

} chat_store;

extern void chat_strings_free(char **strs, size_t n);

extern void chat_messages_free(chat_message *msgs, size_t n);
extern void chat_channels_free(chat_channel_info *chs, size_t n);

#endif							/* CHAT_STORE_H */
