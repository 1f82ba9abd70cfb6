/*
 * fuzz_proto.c
 *	  libFuzzer target: the JSON protocol decoder (proto_decode and
 *	  proto_cmd_free) and the encoders fed with what it decoded.
 *
 *	  The input is one text frame as a client sends it.  Checked beyond
 *	  memory safety:
 *	    - the decoder's contract (proto.h): err is a NUL-terminated reason,
 *	      uuids are canonical lower case, content is NUL-free and within the
 *	      limit, attachments are compact JSON, limits are in range;
 *	    - every encoder, given decoded values (and the raw input as a
 *	      string, which may be any bytes), writes one JSON object in valid
 *	      UTF-8 that jansson parses with duplicate keys refused;
 *	    - the echo is faithful: the ref comes back as the same JSON value,
 *	      content and attachments come back unchanged in message frames.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/proto.h"
#include "fuzz_util.h"

/* The limit the worker passes (chat.max_message_bytes), small here. */
#define MAX_CONTENT 1024

static const char *const uuid_a = "0b0e8f1e-3a57-4c43-9d1e-7a9c2b1f0001";

static bool
uuid_canonical(const char *u)
{
	if (strlen(u) != CHAT_UUID_LEN)
		return false;
	for (int i = 0; i < CHAT_UUID_LEN; i++)
	{
		char		c = u[i];

		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (c != '-')
				return false;
		}
		else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

/*
 * parse_frame parses an encoder's output, asserting that it is a JSON
 * object in valid UTF-8 of exactly len bytes.  The caller frees it.
 */
static json_t *
parse_frame(char *text, size_t len)
{
	json_error_t err;
	json_t	   *v;

	FZ_CHECK(text != NULL);
	FZ_CHECK(strlen(text) == len);
	FZ_CHECK(fz_utf8_valid(text, len));
	FZ_CHECK(fz_json_object_valid(text, len, true));
	v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
	FZ_CHECK(v != NULL);
	return v;
}

/* check_frame parses and drops an encoder's output; frees its text. */
static void
check_frame(proto_text t, const char *ref)
{
	json_t	   *v = parse_frame(t.ptr, t.len);

	if (ref != NULL && ref[0] != '\0')
	{
		json_t	   *want = json_loads(ref, JSON_DECODE_ANY | JSON_ALLOW_NUL,
									  NULL);

		FZ_CHECK(want != NULL);
		FZ_CHECK(json_equal(json_object_get(v, "ref"), want));
		json_decref(want);
	}
	json_decref(v);
	free(t.ptr);
}

/* string_is: member key of v is a JSON string equal to s[0..n). */
static bool
string_is(json_t *v, const char *key, const char *s, size_t n)
{
	json_t	   *m = json_object_get(v, key);

	return json_is_string(m) && json_string_length(m) == n &&
		memcmp(json_string_value(m), s, n) == 0;
}

/*
 * check_decoded asserts the decoder's output contract for a frame it
 * accepted.
 */
static void
check_decoded(const chat_cmd *cmd)
{
	FZ_CHECK(cmd->type >= CMD_SEND && cmd->type <= CMD_UNREACT);
	FZ_CHECK(strnlen(cmd->ref, sizeof(cmd->ref)) <= PROTO_MAX_REF);
	if (cmd->ref[0])
		FZ_CHECK(fz_json_any_valid(cmd->ref, strlen(cmd->ref)));
	switch (cmd->type)
	{
		case CMD_SEND:
			FZ_CHECK(uuid_canonical(cmd->client_id));
			FZ_CHECK(uuid_canonical(cmd->channel_id));
			FZ_CHECK(cmd->reply_to[0] == '\0' || uuid_canonical(cmd->reply_to));
			/* fall through */
		case CMD_EDIT:
			FZ_CHECK(cmd->content != NULL && cmd->content_len > 0);
			FZ_CHECK(cmd->content_len <= MAX_CONTENT);
			FZ_CHECK(strlen(cmd->content) == cmd->content_len);
			FZ_CHECK(fz_utf8_valid(cmd->content, cmd->content_len));
			break;
		case CMD_SYNC:
			FZ_CHECK(cmd->n_sync <= PROTO_MAX_SYNC);
			for (size_t i = 0; i < cmd->n_sync; i++)
			{
				FZ_CHECK(uuid_canonical(cmd->sync[i].channel_id));
				FZ_CHECK(cmd->sync[i].last_seq >= 0 &&
						 cmd->sync[i].last_seq <= PROTO_MAX_SEQ);
				FZ_CHECK(!cmd->sync[i].has_change ||
						 (cmd->sync[i].last_change >= 0 &&
						  cmd->sync[i].last_change <= PROTO_MAX_SEQ));
			}
			break;
		case CMD_SEARCH:
			FZ_CHECK(cmd->query != NULL && strlen(cmd->query) >= 1 &&
					 strlen(cmd->query) <= PROTO_MAX_QUERY);
			FZ_CHECK(fz_utf8_valid(cmd->query, strlen(cmd->query)));
			FZ_CHECK(cmd->channel_id[0] == '\0' || uuid_canonical(cmd->channel_id));
			FZ_CHECK(cmd->message_id[0] == '\0' || uuid_canonical(cmd->message_id));
			FZ_CHECK(cmd->limit >= 1 && cmd->limit <= PROTO_MAX_SEARCH);
			break;
		case CMD_REACT:
		case CMD_UNREACT:
			FZ_CHECK(uuid_canonical(cmd->message_id));
			FZ_CHECK(strlen(cmd->emoji) >= 1 &&
					 strlen(cmd->emoji) <= PROTO_MAX_EMOJI);
			FZ_CHECK(fz_utf8_valid(cmd->emoji, strlen(cmd->emoji)));
			break;
		case CMD_HISTORY:
			FZ_CHECK(uuid_canonical(cmd->channel_id));
			FZ_CHECK(cmd->limit >= 1 && cmd->limit <= PROTO_MAX_HISTORY);
			FZ_CHECK(cmd->before >= 0 && cmd->before <= PROTO_MAX_SEQ);
			break;
		case CMD_READ:
			FZ_CHECK(cmd->seq >= 0 && cmd->seq <= PROTO_MAX_SEQ);
			/* fall through */
		case CMD_TYPING:
		case CMD_PRESENCE:
			FZ_CHECK(uuid_canonical(cmd->channel_id));
			break;
		case CMD_DELETE:
			FZ_CHECK(uuid_canonical(cmd->message_id));
			break;
		case CMD_REFRESH:
			FZ_CHECK(cmd->token != NULL && cmd->token[0] != '\0');
			FZ_CHECK(strlen(cmd->token) <= PROTO_MAX_TOKEN);
			break;
		case CMD_PING:
			break;
	}
	if (cmd->type == CMD_SEND)
	{
		FZ_CHECK(strlen(cmd->kind) >= 1 && strlen(cmd->kind) <= PROTO_MAX_KIND);
		if (cmd->attachments != NULL)
		{
			json_t	   *a = json_loads(cmd->attachments, 0, NULL);

			FZ_CHECK(json_is_array(a));
			FZ_CHECK(json_array_size(a) <= PROTO_MAX_ATTACHMENTS);
			FZ_CHECK(strlen(cmd->attachments) <= PROTO_MAX_ATTACHMENTS_BYTES);
			json_decref(a);
		}
	}
}

/*
 * check_message encodes a message carrying the decoded send (or edit) and
 * asserts that content and attachments come back unchanged.
 */
static void
check_message(const chat_cmd *cmd)
{
	chat_message m;
	proto_text	obj,
				frame;
	json_t	   *v,
			   *msg;

	memset(&m, 0, sizeof(m));
	strcpy(m.id, uuid_a);
	strcpy(m.channel_id, cmd->channel_id[0] ? cmd->channel_id : uuid_a);
	strcpy(m.client_id, cmd->client_id);
	strcpy(m.reply_to, cmd->reply_to);
	m.seq = cmd->seq + 1;
	m.change_seq = 3;
	m.sender_id = (char *) "fuzz-user";
	m.content = cmd->content;
	m.kind = (char *) (cmd->kind[0] ? cmd->kind : "text");
	m.attachments = cmd->attachments;
	strcpy(m.created_at, "2024-01-01T00:00:00.000000Z");

	obj = proto_message_object(&m);
	FZ_CHECK(obj.ptr != NULL);
	frame = proto_message_frame(obj.ptr, obj.len);
	v = parse_frame(frame.ptr, frame.len);
	msg = json_object_get(v, "message");
	FZ_CHECK(string_is(msg, "content", cmd->content, cmd->content_len));
	if (cmd->attachments != NULL)
	{
		json_t	   *want = json_loads(cmd->attachments, 0, NULL);

		FZ_CHECK(json_equal(json_object_get(msg, "attachments"), want));
		json_decref(want);
	}
	else
		FZ_CHECK(json_is_null(json_object_get(msg, "attachments")));
	json_decref(v);
	free(frame.ptr);
	free(obj.ptr);

	check_frame(proto_ack(&m, cmd->content_len % 2, cmd->ref),
				cmd->ref);
	check_frame(proto_message_updated(&m, cmd->ref), cmd->ref);
	check_frame(proto_history(m.channel_id, &m, 1, true, cmd->ref),
				cmd->ref);
}

/*
 * encode_decoded runs the encoders a handler would use for cmd.
 */
static void
encode_decoded(const chat_cmd *cmd)
{
	const char *ref = cmd->ref;
	char	   *online[2] = {(char *) "fuzz-user", cmd->token};
	chat_channel_info ch;
	proto_limits limits = {1000, 3000, 500, 4096, 30, 100, false};

	switch (cmd->type)
	{
		case CMD_SEND:
		case CMD_EDIT:
			check_message(cmd);
			break;
		case CMD_SYNC:
			for (size_t i = 0; i < cmd->n_sync; i++)
				check_frame(proto_synced(cmd->sync[i].channel_id,
										 cmd->sync[i].last_seq,
										 cmd->sync[i].last_change, i % 2, ref), ref);
			break;
		case CMD_HISTORY:
			check_frame(proto_history(cmd->channel_id, NULL, 0, false, ref), ref);
			break;
		case CMD_TYPING:
			check_frame(proto_typing(cmd->channel_id, "u", 3000),
						NULL);
			check_frame(proto_typing_stopped(cmd->channel_id, "u"),
						NULL);
			break;
		case CMD_READ:
			check_frame(proto_read(cmd->channel_id, "u", cmd->seq, ref), ref);
			break;
		case CMD_PRESENCE:
			check_frame(proto_presence_state(cmd->channel_id, online, 1, ref), ref);
			break;
		case CMD_DELETE:
			check_frame(proto_message_deleted(uuid_a, cmd->message_id, 7, ref), ref);
			break;
		case CMD_REFRESH:
			/* the token is just an arbitrary UTF-8 string to the encoders */
			check_frame(proto_presence_state(uuid_a, online, 2, ref), ref);
			check_frame(proto_presence(cmd->token, true), NULL);
			memset(&ch, 0, sizeof(ch));
			strcpy(ch.id, uuid_a);
			strcpy(ch.type, "group");
			strcpy(ch.role, "member");
			ch.name = cmd->token;
			ch.online = online;
			ch.n_online = 2;
			check_frame(proto_ready(cmd->token, "1-1", &limits, &ch, 1), NULL);
			check_frame(proto_joined(&ch), NULL);
			break;
		case CMD_PING:
			check_frame(proto_pong(ref), ref);
			break;
		case CMD_SEARCH:
			{
				chat_search_hit h;

				memset(&h, 0, sizeof(h));
				strcpy(h.id, uuid_a);
				strcpy(h.channel_id, uuid_a);
				h.sender_id = cmd->query;
				h.content = cmd->query;
				h.headline = cmd->query;
				check_frame(proto_search(&h, 1, false, ref), ref);
			}
			break;
		case CMD_REACT:
		case CMD_UNREACT:
			{
				chat_message m;

				memset(&m, 0, sizeof(m));
				strcpy(m.id, cmd->message_id);
				strcpy(m.channel_id, uuid_a);
				m.seq = 1;
				check_frame(proto_reaction(&m, ref), ref);
			}
			break;
	}
}

/*
 * encode_raw hands the raw input, as a C string of any bytes, to the
 * encoders' free-text fields: invalid UTF-8 must become U+FFFD, control
 * characters must be escaped, and valid text must come back unchanged.
 */
static void
encode_raw(const uint8_t *data, size_t size)
{
	char	   *s = malloc(size + 1);
	proto_text	text;
	size_t		n;
	json_t	   *v;
	char	   *online[1];

	memcpy(s, data, size);
	s[size] = '\0';
	n = strlen(s);
	text = proto_error("bad_request", s, NULL, NULL);
	v = parse_frame(text.ptr, text.len);
	if (fz_utf8_valid(s, n))
		FZ_CHECK(string_is(v, "message", s, n));
	json_decref(v);
	free(text.ptr);
	online[0] = s;
	check_frame(proto_presence_state(uuid_a, online, 1, NULL),
				NULL);
	check_frame(proto_typing(uuid_a, s, 1), NULL);
	check_frame(proto_left(s), NULL);
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	chat_cmd	cmd;
	char		err[160];
	proto_status st;

	memset(err, 'x', sizeof(err));
	st = proto_decode((const char *) data, size, MAX_CONTENT, &cmd, err,
					  sizeof(err));
	FZ_CHECK(strnlen(err, sizeof(err)) < sizeof(err));
	FZ_CHECK(st == PROTO_OK || st == PROTO_BAD_REQUEST ||
			 st == PROTO_TOO_LARGE || st == PROTO_INTERNAL);
	if (st == PROTO_OK)
	{
		check_decoded(&cmd);
		encode_decoded(&cmd);
	}
	else
	{
		/* what handlers.c sends back: the error with ref and clientId */
		FZ_CHECK(err[0] != '\0');
		FZ_CHECK(cmd.client_id[0] == '\0' || uuid_canonical(cmd.client_id));
		check_frame(proto_error("bad_request", err, cmd.client_id, cmd.ref), cmd.ref);
	}
	proto_cmd_free(&cmd);
	proto_cmd_free(&cmd);		/* documented as harmless */
	encode_raw(data, size);
	return 0;
}
