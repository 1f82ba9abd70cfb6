/*
 * proto.h
 *	  The WebSocket protocol's JSON (docs/protocol.md): client frames
 *	  decoded into a tagged struct (proto_decode.c, the only user of
 *	  jansson here: its names clash with PostgreSQL's), server frames
 *	  encoded to text (proto_encode.c, through jsonw.c).
 */
#ifndef CHAT_PROTO_H
#define CHAT_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "core/message.h"

#define PROTO_MAX_REF 256		/* longest echoed ref, as JSON text */
#define PROTO_MAX_SYNC 1024		/* channels in one sync frame */
#define PROTO_MAX_ATTACHMENTS 10
#define PROTO_MAX_ATTACHMENTS_BYTES 8192	/* serialised attachments */
#define PROTO_MAX_KIND CHAT_KIND_MAX
#define PROTO_MAX_HISTORY 200	/* largest history limit */
#define PROTO_MAX_TOKEN 8192	/* longest refresh token */
#define PROTO_MAX_DEPTH 16		/* deepest JSON nesting of a client frame */
#define PROTO_MAX_SEQ ((int64_t) 1 << 53)	/* largest seq/before/size */
#define PROTO_MAX_QUERY 1000	/* longest search query, bytes */
#define PROTO_MAX_SEARCH 50		/* largest search limit */
#define PROTO_MAX_EMOJI 32		/* longest emoji, bytes */

typedef enum chat_cmd_type
{
	CMD_SEND = 1,
	CMD_SYNC,
	CMD_HISTORY,
	CMD_TYPING,
	CMD_READ,
	CMD_PRESENCE,
	CMD_EDIT,
	CMD_DELETE,
	CMD_REFRESH,
	CMD_PING,
	CMD_SEARCH,
	CMD_REACT,
	CMD_UNREACT
} chat_cmd_type;

typedef struct chat_sync_pos
{
	chat_uuid	channel_id;
	int64_t		last_seq;
	int64_t		last_change;	/* from "changes"; valid if has_change */
	bool		has_change;
} chat_sync_pos;

/* A decoded client frame.  Only the fields of its type are set. */
typedef struct chat_cmd
{
	chat_cmd_type type;
	char		ref[PROTO_MAX_REF + 1]; /* compact JSON of "ref", "" if none */
	chat_uuid	client_id;		/* send */
	chat_uuid	channel_id;		/* send, history, typing, read, presence;
								 * search: "" for every channel */
	chat_uuid	message_id;		/* edit, delete, react, unreact; search:
								 * before this message, "" from the newest */
	chat_uuid	reply_to;		/* send, "" if none */
	char	   *content;		/* send, edit: malloc, NUL-free UTF-8 */
	size_t		content_len;
	char		kind[PROTO_MAX_KIND + 1];	/* send: default "text" */
	char	   *attachments;	/* send: malloc compact JSON array or NULL */
	int64_t		seq;			/* read */
	int64_t		before;			/* history: 0 = newest */
	int			limit;			/* history: 1..PROTO_MAX_HISTORY, default 50;
								 * search: 1..PROTO_MAX_SEARCH, default 20 */
	char	   *query;			/* search: malloc, 1..PROTO_MAX_QUERY bytes */
	char		emoji[PROTO_MAX_EMOJI + 1]; /* react, unreact */
	chat_sync_pos *sync;		/* sync: malloc array */
	size_t		n_sync;
	char	   *token;			/* refresh: malloc */
} chat_cmd;

typedef enum proto_status
{
	PROTO_OK = 0,
	PROTO_BAD_REQUEST,			/* not JSON, unknown type, bad field, ... */
	PROTO_TOO_LARGE,			/* content over max_content_bytes */
	PROTO_INTERNAL				/* out of memory */
} proto_status;

/*
 * proto_decode parses one text frame.  On failure it still fills cmd->ref
 * and cmd->client_id when the frame had them (so the error can echo them)
 * and writes a short reason into err.  Always call proto_cmd_free.
 *
 * It initialises all of *cmd.  max_content_bytes 0 means no limit.  ref may
 * be any JSON value whose compact text fits PROTO_MAX_REF; explicit null in
 * an optional field (kind, replyTo, attachments, before, limit) counts as
 * absent.  Uuids come out in lower case.  Attachments come out as compact
 * JSON with each object's members in the order url, name, size, mime.
 */
extern proto_status proto_decode(const char *buf, size_t len,
								 size_t max_content_bytes, chat_cmd *cmd,
								 char *err, size_t errlen);
extern void proto_cmd_free(chat_cmd *cmd);

/*
 * An encoded frame: malloc'd, NUL-terminated compact JSON text and its
 * length, returned together so that a caller never reads a length that the
 * same call has not set yet.  ptr is NULL only when out of memory (len is
 * then 0); the caller frees ptr.
 */
typedef struct proto_text
{
	char	   *ptr;
	size_t		len;
} proto_text;

/*
 * Encoders return a proto_text.  ref is the compact JSON of the request's
 * ref ("" or NULL for none), as proto_decode stored it, and is echoed
 * verbatim.  Uuids and timestamps given as "" become null; a NULL
 * text (name, senderId) becomes null.  m->attachments is spliced in as raw
 * JSON (it comes from our database), with whitespace outside strings
 * dropped; text whose brackets do not balance becomes null.  Invalid UTF-8
 * in any string becomes U+FFFD, so frames are always valid UTF-8.
 */
extern proto_text proto_message_object(const chat_message *m);

/* {"type":"message","message":M} from an already encoded M */
extern proto_text proto_message_frame(const char *m_json, size_t m_len);
extern proto_text proto_ack(const chat_message *m, bool duplicate,
							const char *ref);
extern proto_text proto_error(const char *code, const char *message,
							  const char *client_id, const char *ref);

/* The server's limits a client should know, announced in ready. */
typedef struct proto_limits
{
	int			heartbeat_ms;
	int			typing_timeout_ms;
	int			typing_debounce_ms;
	int			max_message_bytes;
	int			rate_limit;		/* frame cost per second per connection, 0 =
								 * none */
	int			rate_burst;
	bool		resume;			/* live delivery waits for the first sync */
	int			user_rate_limit;	/* the same per user, 0 = none */
	int			user_rate_burst;
} proto_limits;

/*
 * proto_frame_cost: what a client frame of type t takes from the rate
 * limit buckets (a send costs 1; frames that make the worker read or
 * write more cost more).  ready announces the table as "frameCosts".
 */
extern int	proto_frame_cost(chat_cmd_type t);

extern proto_text proto_ready(const char *user_id, const char *connection_id,
							  const proto_limits *limits,
							  const chat_channel_info *channels, size_t n);
extern proto_text proto_synced(const char *channel_id, int64_t last_seq,
							   int64_t last_change, bool has_more,
							   const char *ref);
extern proto_text proto_history(const char *channel_id,
								const chat_message *newest_first, size_t n,
								bool has_more, const char *ref);
extern proto_text proto_typing(const char *channel_id, const char *user_id,
							   int expires_in_ms);
extern proto_text proto_typing_stopped(const char *channel_id,
									   const char *user_id);
extern proto_text proto_read(const char *channel_id, const char *user_id,
							 int64_t seq, const char *ref);
extern proto_text proto_presence(const char *user_id, bool online);
extern proto_text proto_presence_state(const char *channel_id,
									   char *const *online, size_t n,
									   const char *ref);
extern proto_text proto_message_updated(const chat_message *m, const char *ref);
extern proto_text proto_message_deleted(const char *channel_id,
										const char *message_id, int64_t seq,
										const char *ref);
extern proto_text proto_joined(const chat_channel_info *c);
extern proto_text proto_left(const char *channel_id);
extern proto_text proto_pong(const char *ref);

/* {"type":"reaction","channelId","messageId","seq","reactions":[..]} */
extern proto_text proto_reaction(const chat_message *m, const char *ref);

/* {"type":"search","results":[..],"hasMore"}: the answer to search */
extern proto_text proto_search(const chat_search_hit *hits, size_t n,
							   bool has_more, const char *ref);

#endif							/* CHAT_PROTO_H */
