/*
 * proto_encode.c
 *	  Server frames of docs/protocol.md, written as compact JSON text.
 *
 *	  No JSON tree is built: every frame is concatenated by the jsonw writer,
 *	  which escapes strings and keeps UTF-8 as it is.  The broadcast path is
 *	  proto_message_object, computed once per message, and
 *	  proto_message_frame, which wraps that text with one allocation and two
 *	  copies.  Every frame that answers a request ends with its "ref".
 */
#include <stdlib.h>
#include <string.h>

#include "core/jsonw.h"
#include "core/proto.h"

#define MESSAGE_FRAME_HEAD "{\"type\":\"message\",\"message\":"

/*
 * put_fixed_value appends the text of a fixed-size array (a uuid or a
 * timestamp), null when empty.  strnlen guards a missing NUL.
 */
static void
put_fixed_value(jsonw *w, const char *s, size_t cap)
{
	size_t		n = strnlen(s, cap);

	if (n == 0)
		jsonw_raw(w, "null", 4);
	else
		jsonw_string(w, s, n);
}

/*
 * put_fixed appends a member whose value is a fixed-size array's text.
 */
static void
put_fixed(jsonw *w, const char *key, const char *s, size_t cap)
{
	jsonw_field(w, key);
	put_fixed_value(w, s, cap);
}

/*
 * put_text appends a text member, null when NULL.
 */
static void
put_text(jsonw *w, const char *key, const char *s)
{
	jsonw_field(w, key);
	jsonw_text(w, s);
}

/*
 * put_opt appends a text member, null when NULL or "" (a uuid passed as a
 * plain string).
 */
static void
put_opt(jsonw *w, const char *key, const char *s)
{
	jsonw_field(w, key);
	jsonw_opt(w, s);
}

/*
 * put_int appends an integer member.
 */
static void
put_int(jsonw *w, const char *key, int64_t v)
{
	jsonw_field(w, key);
	jsonw_int(w, v);
}

/*
 * put_bool appends a boolean member.
 */
static void
put_bool(jsonw *w, const char *key, bool v)
{
	jsonw_field(w, key);
	jsonw_bool(w, v);
}

/*
 * frame_start opens a frame: {"type":"<type>"
 */
static void
frame_start(jsonw *w, const char *type, size_t hint)
{
	jsonw_init(w, hint);
	jsonw_lit(w, "{\"type\":\"");
	jsonw_lit(w, type);
	jsonw_raw(w, "\"", 1);
}

/* text_of hands the finished text of w out. */
static proto_text
text_of(jsonw *w)
{
	proto_text	t;

	t.ptr = jsonw_finish(w, &t.len);
	if (t.ptr == NULL)
		t.len = 0;
	return t;
}

/*
 * frame_end appends the request's ref, when there is one, closes the frame
 * and hands its text out.
 */
static proto_text
frame_end(jsonw *w, const char *ref)
{
	if (ref != NULL && ref[0] != '\0')
	{
		jsonw_field(w, "ref");
		jsonw_lit(w, ref);
	}
	jsonw_raw(w, "}", 1);
	return text_of(w);
}

/*
 * message_size guesses the encoded size of M, so that writing it seldom
 * needs to grow the buffer.
 */
static size_t
message_size(const chat_message *m)
{
	size_t		n = 400;

	if (m->content)
		n += strlen(m->content) + strlen(m->content) / 8;
	if (m->sender_id)
		n += strlen(m->sender_id);
	if (m->kind)
		n += strlen(m->kind);
	if (m->attachments)
		n += strlen(m->attachments);
	if (m->reactions)
		n += strlen(m->reactions) + 16;
	return n;
}

/*
 * put_message appends M: {"id","channelId","seq","senderId","clientId",
 * "content","kind","replyTo","attachments","createdAt","editedAt",
 * "deletedAt"}, and "reactions" when it has any.
 */
static void
put_message(jsonw *w, const chat_message *m)
{
	jsonw_lit(w, "{\"id\":");
	put_fixed_value(w, m->id, sizeof(m->id));
	put_fixed(w, "channelId", m->channel_id, sizeof(m->channel_id));
	put_int(w, "seq", m->seq);
	put_text(w, "senderId", m->sender_id);
	put_fixed(w, "clientId", m->client_id, sizeof(m->client_id));
	put_text(w, "content", m->content ? m->content : "");
	put_text(w, "kind", m->kind ? m->kind : "text");
	put_fixed(w, "replyTo", m->reply_to, sizeof(m->reply_to));
	jsonw_field(w, "attachments");
	(void) jsonw_json(w, m->attachments);
	put_fixed(w, "createdAt", m->created_at, sizeof(m->created_at));
	put_fixed(w, "editedAt", m->edited_at, sizeof(m->edited_at));
	put_fixed(w, "deletedAt", m->deleted_at, sizeof(m->deleted_at));
	/* only a message with reactions carries them */
	if (m->reactions != NULL)
	{
		jsonw_field(w, "reactions");
		(void) jsonw_json(w, m->reactions);
	}
	jsonw_raw(w, "}", 1);
}

/*
 * put_channel appends a channel as listed in ready and joined.
 */
static void
put_channel(jsonw *w, const chat_channel_info *c)
{
	jsonw_lit(w, "{\"id\":");
	put_fixed_value(w, c->id, sizeof(c->id));
	put_fixed(w, "type", c->type, sizeof(c->type));
	put_text(w, "name", c->name);
	put_int(w, "lastSeq", c->last_seq);
	put_int(w, "lastReadSeq", c->last_read_seq);
	put_int(w, "unread", c->unread);
	put_int(w, "lastChange", c->last_change);
	jsonw_field(w, "online");
	jsonw_string_array(w, c->online, c->n_online);
	put_fixed(w, "role", c->role, sizeof(c->role));
	jsonw_raw(w, "}", 1);
}

/*
 * proto_message_object encodes M alone, once per message; the frames that
 * carry it are built around this text.
 */
proto_text
proto_message_object(const chat_message *m)
{
	jsonw		w;

	jsonw_init(&w, message_size(m));
	put_message(&w, m);
	return text_of(&w);
}

/*
 * proto_message_frame wraps an encoded M: {"type":"message","message":M}.
 * This is the per-message broadcast frame, so it is a plain concatenation.
 */
proto_text
proto_message_frame(const char *m_json, size_t m_len)
{
	size_t		head = sizeof(MESSAGE_FRAME_HEAD) - 1;
	size_t		n = head + m_len + 1;
	proto_text	t = {NULL, 0};

	if (m_json == NULL || m_len > SIZE_MAX - head - 2)
		return t;
	t.ptr = malloc(n + 1);
	if (t.ptr == NULL)
		return t;
	memcpy(t.ptr, MESSAGE_FRAME_HEAD, head);
	memcpy(t.ptr + head, m_json, m_len);
	t.ptr[n - 1] = '}';
	t.ptr[n] = '\0';
	t.len = n;
	return t;
}

/*
 * proto_ack: {"type":"ack","clientId","serverId","channelId","seq",
 * "createdAt","duplicate"} for the sender's connection.
 */
proto_text
proto_ack(const chat_message *m, bool duplicate, const char *ref)
{
	jsonw		w;

	frame_start(&w, "ack", 256);
	put_fixed(&w, "clientId", m->client_id, sizeof(m->client_id));
	put_fixed(&w, "serverId", m->id, sizeof(m->id));
	put_fixed(&w, "channelId", m->channel_id, sizeof(m->channel_id));
	put_int(&w, "seq", m->seq);
	put_fixed(&w, "createdAt", m->created_at, sizeof(m->created_at));
	put_bool(&w, "duplicate", duplicate);
	return frame_end(&w, ref);
}

/*
 * proto_error: {"type":"error","code","message"}, plus clientId when the
 * request had one, plus its ref.
 */
proto_text
proto_error(const char *code, const char *message, const char *client_id,
			const char *ref)
{
	jsonw		w;

	frame_start(&w, "error", 256);
	put_text(&w, "code", code);
	put_text(&w, "message", message ? message : "");
	if (client_id != NULL && client_id[0] != '\0')
		put_text(&w, "clientId", client_id);
	return frame_end(&w, ref);
}

/*
 * The cost of each client frame (docs/protocol.md, "Rate limits"): one per
 * statement-sized piece of work.  edit and delete write a version and
 * notify every member, history and sync read pages, refresh verifies a
 * signature; ping, typing, read and presence are one small step each.
 */
static const struct
{
	chat_cmd_type type;
	const char *name;
	int			cost;
}			frame_costs[] = {
	{CMD_SEND, "send", 1},
	{CMD_TYPING, "typing", 1},
	{CMD_READ, "read", 1},
	{CMD_PRESENCE, "presence", 1},
	{CMD_PING, "ping", 1},
	{CMD_HISTORY, "history", 2},
	{CMD_SYNC, "sync", 2},
	{CMD_EDIT, "edit", 2},
	{CMD_DELETE, "delete", 2},
	{CMD_REFRESH, "refresh", 4},
	{CMD_REACT, "react", 2},
	{CMD_UNREACT, "unreact", 2},
	{CMD_SEARCH, "search", 4},
};

int
proto_frame_cost(chat_cmd_type t)
{
	for (size_t i = 0; i < sizeof(frame_costs) / sizeof(frame_costs[0]); i++)
		if (frame_costs[i].type == t)
			return frame_costs[i].cost;
	return 1;
}

/*
 * proto_ready: the first frame of a connection, with every channel of the
 * user.
 */
proto_text
proto_ready(const char *user_id, const char *connection_id,
			const proto_limits *limits, const chat_channel_info *channels,
			size_t n)
{
	jsonw		w;
	size_t		i;

	frame_start(&w, "ready", 256 + n * 256);
	put_text(&w, "userId", user_id);
	put_text(&w, "connectionId", connection_id);
	put_int(&w, "heartbeatMs", limits->heartbeat_ms);
	put_int(&w, "typingTimeoutMs", limits->typing_timeout_ms);
	put_int(&w, "typingDebounceMs", limits->typing_debounce_ms);
	put_int(&w, "maxMessageBytes", limits->max_message_bytes);
	put_int(&w, "rateLimit", limits->rate_limit);
	put_int(&w, "rateBurst", limits->rate_burst);
	put_int(&w, "userRateLimit", limits->user_rate_limit);
	put_int(&w, "userRateBurst", limits->user_rate_burst);
	jsonw_field(&w, "frameCosts");
	jsonw_raw(&w, "{", 1);
	for (size_t i = 0; i < sizeof(frame_costs) / sizeof(frame_costs[0]); i++)
	{
		/* jsonw_field writes the comma: the first member has none */
		jsonw_raw(&w, i > 0 ? ",\"" : "\"", i > 0 ? 2 : 1);
		jsonw_lit(&w, frame_costs[i].name);
		jsonw_raw(&w, "\":", 2);
		jsonw_int(&w, frame_costs[i].cost);
	}
	jsonw_raw(&w, "}", 1);
	if (limits->resume)
		put_bool(&w, "resume", true);
	jsonw_field(&w, "channels");
	jsonw_raw(&w, "[", 1);
	for (i = 0; i < n; i++)
	{
		if (i > 0)
			jsonw_raw(&w, ",", 1);
		put_channel(&w, &channels[i]);
	}
	jsonw_raw(&w, "]", 1);
	return frame_end(&w, NULL);
}

/*
 * proto_joined: {"type":"joined","channel":{...as in ready}}.
 */
proto_text
proto_joined(const chat_channel_info *c)
{
	jsonw		w;

	frame_start(&w, "joined", 512);
	jsonw_field(&w, "channel");
	put_channel(&w, c);
	return frame_end(&w, NULL);
}

/*
 * proto_left: {"type":"left","channelId"}.
 */
proto_text
proto_left(const char *channel_id)
{
	jsonw		w;

	frame_start(&w, "left", 96);
	put_opt(&w, "channelId", channel_id);
	return frame_end(&w, NULL);
}

/*
 * proto_synced: the end of one channel's sync,
 * {"type":"synced","channelId","lastSeq","lastChange","hasMore"}.
 */
proto_text
proto_synced(const char *channel_id, int64_t last_seq, int64_t last_change,
			 bool has_more, const char *ref)
{
	jsonw		w;

	frame_start(&w, "synced", 128);
	put_opt(&w, "channelId", channel_id);
	put_int(&w, "lastSeq", last_seq);
	put_int(&w, "lastChange", last_change);
	put_bool(&w, "hasMore", has_more);
	return frame_end(&w, ref);
}

/*
 * proto_history: {"type":"history","channelId","messages":[M newest first],
 * "hasMore"}.
 */
proto_text
proto_history(const char *channel_id, const chat_message *newest_first,
			  size_t n, bool has_more, const char *ref)
{
	jsonw		w;
	size_t		hint = 256;
	size_t		i;

	for (i = 0; i < n; i++)
		hint += message_size(&newest_first[i]);
	frame_start(&w, "history", hint);
	put_opt(&w, "channelId", channel_id);
	jsonw_field(&w, "messages");
	jsonw_raw(&w, "[", 1);
	for (i = 0; i < n; i++)
	{
		if (i > 0)
			jsonw_raw(&w, ",", 1);
		put_message(&w, &newest_first[i]);
	}
	jsonw_raw(&w, "]", 1);
	put_bool(&w, "hasMore", has_more);
	return frame_end(&w, ref);
}

/*
 * proto_typing: {"type":"typing","channelId","userId","expiresInMs"}.
 */
proto_text
proto_typing(const char *channel_id, const char *user_id, int expires_in_ms)
{
	jsonw		w;

	frame_start(&w, "typing", 128);
	put_opt(&w, "channelId", channel_id);
	put_text(&w, "userId", user_id);
	put_int(&w, "expiresInMs", expires_in_ms);
	return frame_end(&w, NULL);
}

/*
 * proto_typing_stopped: {"type":"typing_stopped","channelId","userId"}.
 */
proto_text
proto_typing_stopped(const char *channel_id, const char *user_id)
{
	jsonw		w;

	frame_start(&w, "typing_stopped", 128);
	put_opt(&w, "channelId", channel_id);
	put_text(&w, "userId", user_id);
	return frame_end(&w, NULL);
}

/*
 * proto_read: {"type":"read","channelId","userId","seq"}.
 */
proto_text
proto_read(const char *channel_id, const char *user_id, int64_t seq,
		   const char *ref)
{
	jsonw		w;

	frame_start(&w, "read", 128);
	put_opt(&w, "channelId", channel_id);
	put_text(&w, "userId", user_id);
	put_int(&w, "seq", seq);
	return frame_end(&w, ref);
}

/*
 * proto_presence: {"type":"presence","userId","status":"online"|"offline"}.
 */
proto_text
proto_presence(const char *user_id, bool online)
{
	jsonw		w;

	frame_start(&w, "presence", 128);
	put_text(&w, "userId", user_id);
	put_text(&w, "status", online ? "online" : "offline");
	return frame_end(&w, NULL);
}

/*
 * proto_presence_state: {"type":"presence_state","channelId","online":[..]}.
 */
proto_text
proto_presence_state(const char *channel_id, char *const *online, size_t n,
					 const char *ref)
{
	jsonw		w;

	frame_start(&w, "presence_state", 128 + n * 32);
	put_opt(&w, "channelId", channel_id);
	jsonw_field(&w, "online");
	jsonw_string_array(&w, online, n);
	return frame_end(&w, ref);
}

/*
 * proto_message_updated: {"type":"message_updated","message":M}.
 */
proto_text
proto_message_updated(const chat_message *m, const char *ref)
{
	jsonw		w;

	frame_start(&w, "message_updated", message_size(m) + 64);
	jsonw_field(&w, "message");
	put_message(&w, m);
	return frame_end(&w, ref);
}

/*
 * proto_message_deleted:
 * {"type":"message_deleted","channelId","messageId","seq"}.
 */
proto_text
proto_message_deleted(const char *channel_id, const char *message_id,
					  int64_t seq, const char *ref)
{
	jsonw		w;

	frame_start(&w, "message_deleted", 160);
	put_opt(&w, "channelId", channel_id);
	put_opt(&w, "messageId", message_id);
	put_int(&w, "seq", seq);
	return frame_end(&w, ref);
}

/*
 * proto_pong: {"type":"pong"}, the answer to ping.
 */
proto_text
proto_pong(const char *ref)
{
	jsonw		w;

	frame_start(&w, "pong", 64);
	return frame_end(&w, ref);
}

/*
 * proto_reaction: {"type":"reaction","channelId","messageId","seq",
 * "reactions":[{"emoji","count","users"}]}, the message's reactions now
 * ([] when none are left).
 */
proto_text
proto_reaction(const chat_message *m, const char *ref)
{
	jsonw		w;

	frame_start(&w, "reaction", 192 + (m->reactions ? strlen(m->reactions) : 0));
	put_fixed(&w, "channelId", m->channel_id, sizeof(m->channel_id));
	put_fixed(&w, "messageId", m->id, sizeof(m->id));
	put_int(&w, "seq", m->seq);
	jsonw_field(&w, "reactions");
	if (m->reactions == NULL)
		jsonw_raw(&w, "[]", 2);
	else
		(void) jsonw_json(&w, m->reactions);
	return frame_end(&w, ref);
}

/*
 * proto_search: {"type":"search","results":[{"messageId","channelId",
 * "seq","senderId","content","headline","createdAt","editedAt"}],
 * "hasMore"}, newest first.
 */
proto_text
proto_search(const chat_search_hit *hits, size_t n, bool has_more,
			 const char *ref)
{
	jsonw		w;
	size_t		guess = 128;

	for (size_t i = 0; i < n; i++)
		guess += 300 + (hits[i].content ? strlen(hits[i].content) : 0) +
			(hits[i].headline ? strlen(hits[i].headline) : 0);
	frame_start(&w, "search", guess);
	jsonw_field(&w, "results");
	jsonw_raw(&w, "[", 1);
	for (size_t i = 0; i < n; i++)
	{
		if (i > 0)
			jsonw_raw(&w, ",", 1);
		jsonw_lit(&w, "{\"messageId\":");
		put_fixed_value(&w, hits[i].id, sizeof(hits[i].id));
		put_fixed(&w, "channelId", hits[i].channel_id,
				  sizeof(hits[i].channel_id));
		put_int(&w, "seq", hits[i].seq);
		put_text(&w, "senderId", hits[i].sender_id);
		put_text(&w, "content", hits[i].content ? hits[i].content : "");
		put_text(&w, "headline", hits[i].headline ? hits[i].headline : "");
		put_fixed(&w, "createdAt", hits[i].created_at,
				  sizeof(hits[i].created_at));
		put_fixed(&w, "editedAt", hits[i].edited_at,
				  sizeof(hits[i].edited_at));
		jsonw_raw(&w, "}", 1);
	}
	jsonw_raw(&w, "]", 1);
	put_bool(&w, "hasMore", has_more);
	return frame_end(&w, ref);
}
