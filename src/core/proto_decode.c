/*
 * proto_decode.c
 *	  Client frames (docs/protocol.md) decoded into a chat_cmd.
 *
 *	  jansson parses the frame with JSON_REJECT_DUPLICATES, which also
 *	  refuses invalid UTF-8, lone surrogates, numbers out of range (1e400,
 *	  99999999999999999999) and trailing garbage.  JSON_ALLOW_NUL is set on
 *	  purpose: a \u0000 inside a string then parses, and this file refuses it
 *	  field by field, so the error can still echo the frame's ref and
 *	  clientId.  Nesting is bounded by a pre-scan (proto_depth_ok) before
 *	  jansson sees the text.  jansson's names clash with PostgreSQL's, so it
 *	  is included here and in no header.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/proto.h"

#define PROTO_DEFAULT_HISTORY 50
#define PROTO_DEFAULT_SEARCH 20

typedef struct decoder
{
	json_t	   *root;			/* the frame, a JSON object */
	chat_cmd   *cmd;
	size_t		max_content;
	char	   *err;
	size_t		errlen;
} decoder;

typedef proto_status (*cmd_decoder) (decoder *d);

static proto_status fail(decoder *d, proto_status st, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/*
 * fail writes a short reason into the caller's error buffer (when it has
 * one) and returns st.
 */
static proto_status
fail(decoder *d, proto_status st, const char *fmt,...)
{
	va_list		ap;

	if (d->err != NULL && d->errlen > 0)
	{
		va_start(ap, fmt);
		vsnprintf(d->err, d->errlen, fmt, ap);
		va_end(ap);
	}
	return st;
}

/*
 * proto_depth_ok scans the raw text for brackets outside strings and
 * returns false when they nest deeper than PROTO_MAX_DEPTH.
 *
 * jansson 2.14 parses recursively and stops at JSON_PARSER_MAX_DEPTH
 * (2048), and json_decref and json_dump recurse as deep again.  That is
 * stack-safe on an 8 MB stack, but the limit is a constant of the library's
 * build that we cannot check at run time, and no frame of ours needs more
 * than 3 levels (plus what a client puts in ref).  One pass without
 * allocation makes the worst case independent of the library.  Text that
 * is not JSON is left for jansson to refuse.
 */
static bool
proto_depth_ok(const char *buf, size_t len)
{
	int			depth = 0;
	bool		in_str = false;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		char		c = buf[i];

		if (in_str)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		}
		else if (c == '"')
			in_str = true;
		else if (c == '[' || c == '{')
		{
			if (++depth > PROTO_MAX_DEPTH)
				return false;
		}
		else if (c == ']' || c == '}')
			depth--;
	}
	return true;
}

/*
 * json_text returns a JSON string's bytes and length, or NULL when v is not
 * a string or holds a NUL (JSON_ALLOW_NUL lets "\u0000" through parsing).
 */
static const char *
json_text(const json_t *v, size_t *len)
{
	const char *s;

	*len = 0;
	if (!json_is_string(v))
		return NULL;
	s = json_string_value(v);
	*len = json_string_length(v);
	if (memchr(s, '\0', *len) != NULL)
		return NULL;
	return s;
}

/*
 * json_uint reads a JSON integer in 0..PROTO_MAX_SEQ.  Reals (even 1.0),
 * strings and negative numbers are false.
 */
static bool
json_uint(const json_t *v, int64_t *out)
{
	json_int_t	i;

	if (!json_is_integer(v))
		return false;
	i = json_integer_value(v);
	if (i < 0 || i > PROTO_MAX_SEQ)
		return false;
	*out = (int64_t) i;
	return true;
}

/*
 * field returns member key of the frame, or NULL when it is absent or
 * null: optional fields treat an explicit null as absent.
 */
static json_t *
field(decoder *d, const char *key)
{
	json_t	   *v = json_object_get(d->root, key);

	return json_is_null(v) ? NULL : v;
}

/*
 * get_uuid reads the uuid member key into out.  An absent optional member
 * leaves out "".
 */
static proto_status
get_uuid(decoder *d, const char *key, bool required, chat_uuid out)
{
	json_t	   *v = field(d, key);
	const char *s;
	size_t		n;

	out[0] = '\0';
	if (v == NULL)
		return required ? fail(d, PROTO_BAD_REQUEST, "%s is required", key)
			: PROTO_OK;
	s = json_text(v, &n);
	if (s == NULL || !chat_uuid_parse(s, n, out))
	{
		out[0] = '\0';
		return fail(d, PROTO_BAD_REQUEST, "%s must be a uuid", key);
	}
	return PROTO_OK;
}

/*
 * get_uint reads the integer member key (0..2^53) into out; an absent
 * optional member gives dflt.
 */
static proto_status
get_uint(decoder *d, const char *key, bool required, int64_t dflt,
		 int64_t *out)
{
	json_t	   *v = field(d, key);

	*out = dflt;
	if (v == NULL)
		return required ? fail(d, PROTO_BAD_REQUEST, "%s is required", key)
			: PROTO_OK;
	if (!json_uint(v, out))
		return fail(d, PROTO_BAD_REQUEST,
					"%s must be an integer from 0 to 2^53", key);
	return PROTO_OK;
}

/*
 * get_content reads the required, non-empty, NUL-free content into a
 * malloc'd copy; more than max_content bytes is PROTO_TOO_LARGE.
 */
static proto_status
get_content(decoder *d)
{
	json_t	   *v = json_object_get(d->root, "content");
	const char *s;
	size_t		n;

	if (!json_is_string(v) || json_string_length(v) == 0)
		return fail(d, PROTO_BAD_REQUEST,
					"content must be a non-empty string");
	s = json_text(v, &n);
	if (s == NULL)
		return fail(d, PROTO_BAD_REQUEST, "content must not contain NUL");
	if (d->max_content > 0 && n > d->max_content)
		return fail(d, PROTO_TOO_LARGE, "content is longer than %zu bytes",
					d->max_content);
	d->cmd->content = malloc(n + 1);
	if (d->cmd->content == NULL)
		return fail(d, PROTO_INTERNAL, "out of memory");
	memcpy(d->cmd->content, s, n + 1);
	d->cmd->content_len = n;
	return PROTO_OK;
}

/*
 * get_kind reads the optional kind, "text" when absent.
 */
static proto_status
get_kind(decoder *d)
{
	json_t	   *v = field(d, "kind");
	const char *s;
	size_t		n;

	if (v == NULL)
	{
		strcpy(d->cmd->kind, "text");
		return PROTO_OK;
	}
	s = json_text(v, &n);
	if (s == NULL || !chat_kind_ok(s, n))
		return fail(d, PROTO_BAD_REQUEST,
					"kind must match [a-z][a-z0-9_.-]{0,31}");
	memcpy(d->cmd->kind, s, n);
	d->cmd->kind[n] = '\0';
	return PROTO_OK;
}

/*
 * mime_part_len returns the length of an RFC 6838 restricted-name at s
 * (an alphanumeric, then up to 126 of alphanumerics and !#$&-^_.+).
 */
static size_t
mime_part_len(const char *s, size_t n)
{
	size_t		i;

	if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') ||
					(s[0] >= 'A' && s[0] <= 'Z') ||
					(s[0] >= '0' && s[0] <= '9')))
		return 0;
	for (i = 1; i < n && i < 127; i++)
	{
		char		c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || strchr("!#$&-^_.+", c) != NULL))
			break;
	}
	return i;
}

/*
 * mime_ok tells whether s has the type/subtype shape, without parameters.
 */
static bool
mime_ok(const char *s, size_t n)
{
	size_t		t = mime_part_len(s, n);
	size_t		sub;

	if (t == 0 || t >= n || s[t] != '/')
		return false;
	sub = mime_part_len(s + t + 1, n - t - 1);
	return sub > 0 && t + 1 + sub == n;
}

/*
 * url_ok tells whether s is an http:// or https:// URL with something
 * after the scheme and no space or control character.
 */
static bool
url_ok(const char *s, size_t n)
{
	size_t		skip;
	size_t		i;

	if (n > 7 && strncasecmp(s, "http://", 7) == 0)
		skip = 7;
	else if (n > 8 && strncasecmp(s, "https://", 8) == 0)
		skip = 8;
	else
		return false;
	for (i = skip; i < n; i++)
		if ((unsigned char) s[i] <= 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/*
 * attachment_copy checks one attachment object and returns a fresh object
 * with its members in the stored order url, name, size, mime (NULL when it
 * is not exactly those four, well formed).
 */
static json_t *
attachment_copy(const json_t *a)
{
	const char *url;
	const char *name;
	const char *mime;
	size_t		url_len;
	size_t		name_len;
	size_t		mime_len;
	int64_t		size;

	if (!json_is_object(a) || json_object_size(a) != 4)
		return NULL;
	url = json_text(json_object_get(a, "url"), &url_len);
	name = json_text(json_object_get(a, "name"), &name_len);
	mime = json_text(json_object_get(a, "mime"), &mime_len);
	if (url == NULL || !url_ok(url, url_len) ||
		name == NULL || name_len == 0 ||
		mime == NULL || !mime_ok(mime, mime_len) ||
		!json_uint(json_object_get(a, "size"), &size))
		return NULL;
	return json_pack("{s:s%,s:s%,s:I,s:s%}", "url", url, url_len,
					 "name", name, name_len, "size", (json_int_t) size,
					 "mime", mime, mime_len);
}

/*
 * attachments_build checks every element of the array v and collects the
 * normalised copies into *out.
 */
static proto_status
attachments_build(decoder *d, const json_t *v, json_t **out)
{
	size_t		i;
	json_t	   *a;

	*out = json_array();
	if (*out == NULL)
		return fail(d, PROTO_INTERNAL, "out of memory");
	json_array_foreach(v, i, a)
	{
		json_t	   *copy = attachment_copy(a);

		if (copy == NULL)
			return fail(d, PROTO_BAD_REQUEST,
						"attachments[%zu] must be {url, name, size, mime}", i);
		if (json_array_append_new(*out, copy) != 0)
			return fail(d, PROTO_INTERNAL, "out of memory");
	}
	return PROTO_OK;
}

/*
 * get_attachments reads the optional attachments array into compact JSON
 * text (NULL when absent or null).
 */
static proto_status
get_attachments(decoder *d)
{
	json_t	   *v = field(d, "attachments");
	json_t	   *norm = NULL;
	proto_status st;

	if (v == NULL)
		return PROTO_OK;
	if (!json_is_array(v) || json_array_size(v) > PROTO_MAX_ATTACHMENTS)
		return fail(d, PROTO_BAD_REQUEST,
					"attachments must be an array of at most %d",
					PROTO_MAX_ATTACHMENTS);
	st = attachments_build(d, v, &norm);
	if (st == PROTO_OK)
	{
		d->cmd->attachments = json_dumps(norm, JSON_COMPACT);
		if (d->cmd->attachments == NULL)
			st = fail(d, PROTO_INTERNAL, "out of memory");
		else if (strlen(d->cmd->attachments) > PROTO_MAX_ATTACHMENTS_BYTES)
			st = fail(d, PROTO_BAD_REQUEST,
					  "attachments are longer than %d bytes",
					  PROTO_MAX_ATTACHMENTS_BYTES);
	}
	json_decref(norm);
	return st;
}

/*
 * get_ref stores the compact JSON of the optional ref, whatever its type,
 * when it fits in PROTO_MAX_REF bytes.
 */
static proto_status
get_ref(decoder *d)
{
	json_t	   *v = json_object_get(d->root, "ref");
	size_t		n;

	if (v == NULL)
		return PROTO_OK;
	n = json_dumpb(v, d->cmd->ref, PROTO_MAX_REF,
				   JSON_COMPACT | JSON_ENCODE_ANY);
	if (n == 0 || n > PROTO_MAX_REF)
	{
		d->cmd->ref[0] = '\0';
		return fail(d, PROTO_BAD_REQUEST,
					"ref is longer than %d bytes of JSON", PROTO_MAX_REF);
	}
	d->cmd->ref[n] = '\0';
	return PROTO_OK;
}

/*
 * dec_send: clientId, channelId, content, kind, replyTo, attachments.
 * proto_decode read clientId ahead for echoing; here it becomes required.
 */
static proto_status
dec_send(decoder *d)
{
	chat_cmd   *c = d->cmd;
	proto_status st;

	if ((st = get_uuid(d, "clientId", true, c->client_id)) != PROTO_OK ||
		(st = get_uuid(d, "channelId", true, c->channel_id)) != PROTO_OK ||
		(st = get_content(d)) != PROTO_OK ||
		(st = get_kind(d)) != PROTO_OK ||
		(st = get_uuid(d, "replyTo", false, c->reply_to)) != PROTO_OK)
		return st;
	return get_attachments(d);
}

/*
 * sync_cmp orders sync positions by channel, to find repeated channels.
 */
static int
sync_cmp(const void *a, const void *b)
{
	return strcmp(((const chat_sync_pos *) a)->channel_id,
				  ((const chat_sync_pos *) b)->channel_id);
}

/*
 * sync_unique tells whether no channel appears twice (keys are unique in
 * the JSON, but "AB..." and "ab..." are the same channel).
 */
static bool
sync_unique(const chat_sync_pos *pos, size_t n)
{
	chat_sync_pos *sorted;
	size_t		i;
	bool		ok = true;

	if (n < 2)
		return true;
	sorted = malloc(n * sizeof(*sorted));
	if (sorted == NULL)
		return false;
	memcpy(sorted, pos, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), sync_cmp);
	for (i = 1; i < n && ok; i++)
		ok = strcmp(sorted[i - 1].channel_id, sorted[i].channel_id) != 0;
	free(sorted);
	return ok;
}

/*
 * dec_sync_changes: the optional "changes" object {channelId: lastChange},
 * the edit/delete counter the client has seen per channel.  Every key must
 * also be in "channels".
 */
static proto_status
dec_sync_changes(decoder *d)
{
	json_t	   *v = json_object_get(d->root, "changes");
	const char *key;
	json_t	   *val;

	if (v == NULL || json_is_null(v))
		return PROTO_OK;
	if (!json_is_object(v) || json_object_size(v) > PROTO_MAX_SYNC)
		return fail(d, PROTO_BAD_REQUEST,
					"changes must be an object of at most %d channels",
					PROTO_MAX_SYNC);
	json_object_foreach(v, key, val)
	{
		chat_uuid	id;
		int64_t		change;
		size_t		i;

		if (!chat_uuid_parse(key, strlen(key), id))
			return fail(d, PROTO_BAD_REQUEST,
						"changes keys must be channel uuids");
		if (!json_uint(val, &change))
			return fail(d, PROTO_BAD_REQUEST,
						"changes values must be integers from 0 to 2^53");
		for (i = 0; i < d->cmd->n_sync; i++)
			if (strcmp(d->cmd->sync[i].channel_id, id) == 0)
				break;
		if (i == d->cmd->n_sync)
			return fail(d, PROTO_BAD_REQUEST,
						"changes lists a channel that channels does not");
		d->cmd->sync[i].last_change = change;
		d->cmd->sync[i].has_change = true;
	}
	return PROTO_OK;
}

/*
 * dec_sync: channels, an object {channelId: lastSeq}, in the frame's order.
 */
static proto_status
dec_sync(decoder *d)
{
	json_t	   *v = json_object_get(d->root, "channels");
	const char *key;
	json_t	   *seq;
	size_t		n;

	if (!json_is_object(v) || json_object_size(v) > PROTO_MAX_SYNC)
		return fail(d, PROTO_BAD_REQUEST,
					"channels must be an object of at most %d channels",
					PROTO_MAX_SYNC);
	n = json_object_size(v);
	if (n == 0)
		return PROTO_OK;
	d->cmd->sync = calloc(n, sizeof(chat_sync_pos));
	if (d->cmd->sync == NULL)
		return fail(d, PROTO_INTERNAL, "out of memory");
	json_object_foreach(v, key, seq)
	{
		chat_sync_pos *p = &d->cmd->sync[d->cmd->n_sync];

		if (!chat_uuid_parse(key, strlen(key), p->channel_id))
			return fail(d, PROTO_BAD_REQUEST,
						"channels keys must be channel uuids");
		if (!json_uint(seq, &p->last_seq))
			return fail(d, PROTO_BAD_REQUEST,
						"channels values must be integers from 0 to 2^53");
		d->cmd->n_sync++;
	}
	if (!sync_unique(d->cmd->sync, d->cmd->n_sync))
		return fail(d, PROTO_BAD_REQUEST, "channels lists a channel twice");
	return dec_sync_changes(d);
}

/*
 * dec_history: channelId, before (0 = newest), limit (default 50).
 */
static proto_status
dec_history(decoder *d)
{
	chat_cmd   *c = d->cmd;
	proto_status st;
	int64_t		limit;

	if ((st = get_uuid(d, "channelId", true, c->channel_id)) != PROTO_OK ||
		(st = get_uint(d, "before", false, 0, &c->before)) != PROTO_OK)
		return st;
	st = get_uint(d, "limit", false, PROTO_DEFAULT_HISTORY, &limit);
	if (st != PROTO_OK || limit < 1 || limit > PROTO_MAX_HISTORY)
		return fail(d, PROTO_BAD_REQUEST,
					"limit must be an integer from 1 to %d",
					PROTO_MAX_HISTORY);
	c->limit = (int) limit;
	return PROTO_OK;
}

/*
 * dec_channel: typing and presence carry only a channelId.
 */
static proto_status
dec_channel(decoder *d)
{
	return get_uuid(d, "channelId", true, d->cmd->channel_id);
}

/*
 * dec_read: channelId and seq.
 */
static proto_status
dec_read(decoder *d)
{
	proto_status st = dec_channel(d);

	if (st != PROTO_OK)
		return st;
	return get_uint(d, "seq", true, 0, &d->cmd->seq);
}

/*
 * dec_delete: messageId.
 */
static proto_status
dec_delete(decoder *d)
{
	return get_uuid(d, "messageId", true, d->cmd->message_id);
}

/*
 * dec_edit: messageId and content.
 */
static proto_status
dec_edit(decoder *d)
{
	proto_status st = dec_delete(d);

	if (st != PROTO_OK)
		return st;
	return get_content(d);
}

/*
 * dec_refresh: token, 1..PROTO_MAX_TOKEN bytes.
 */
static proto_status
dec_refresh(decoder *d)
{
	const char *s;
	size_t		n = 0;

	s = json_text(json_object_get(d->root, "token"), &n);
	if (s == NULL || n == 0 || n > PROTO_MAX_TOKEN)
		return fail(d, PROTO_BAD_REQUEST,
					"token must be a string of 1 to %d bytes",
					PROTO_MAX_TOKEN);
	d->cmd->token = strdup(s);
	if (d->cmd->token == NULL)
		return fail(d, PROTO_INTERNAL, "out of memory");
	return PROTO_OK;
}

/*
 * dec_ping: nothing to read.
 */
static proto_status
dec_ping(decoder *d)
{
	(void) d;
	return PROTO_OK;
}

/*
 * dec_search: query (1..PROTO_MAX_QUERY bytes), and optionally channelId,
 * before (a message id: the last hit of the previous page) and limit
 * (default 20).
 */
static proto_status
dec_search(decoder *d)
{
	chat_cmd   *c = d->cmd;
	proto_status st;
	const char *s;
	size_t		n = 0;
	int64_t		limit;

	s = json_text(json_object_get(d->root, "query"), &n);
	if (s == NULL || n == 0 || n > PROTO_MAX_QUERY)
		return fail(d, PROTO_BAD_REQUEST,
					"query must be a string of 1 to %d bytes",
					PROTO_MAX_QUERY);
	if ((st = get_uuid(d, "channelId", false, c->channel_id)) != PROTO_OK ||
		(st = get_uuid(d, "before", false, c->message_id)) != PROTO_OK)
		return st;
	st = get_uint(d, "limit", false, PROTO_DEFAULT_SEARCH, &limit);
	if (st != PROTO_OK || limit < 1 || limit > PROTO_MAX_SEARCH)
		return fail(d, PROTO_BAD_REQUEST,
					"limit must be an integer from 1 to %d",
					PROTO_MAX_SEARCH);
	c->limit = (int) limit;
	c->query = malloc(n + 1);
	if (c->query == NULL)
		return fail(d, PROTO_INTERNAL, "out of memory");
	memcpy(c->query, s, n);
	c->query[n] = '\0';
	return PROTO_OK;
}

/*
 * dec_react: messageId and emoji (1..PROTO_MAX_EMOJI bytes; the database
 * checks the rest), for react and unreact.
 */
static proto_status
dec_react(decoder *d)
{
	proto_status st = dec_delete(d);
	const char *s;
	size_t		n = 0;

	if (st != PROTO_OK)
		return st;
	s = json_text(json_object_get(d->root, "emoji"), &n);
	if (s == NULL || n == 0 || n > PROTO_MAX_EMOJI)
		return fail(d, PROTO_BAD_REQUEST,
					"emoji must be a string of 1 to %d bytes",
					PROTO_MAX_EMOJI);
	memcpy(d->cmd->emoji, s, n);
	d->cmd->emoji[n] = '\0';
	return PROTO_OK;
}

static const struct
{
	const char *name;
	chat_cmd_type type;
	cmd_decoder decode;
}			cmd_table[] =

{
	{"send", CMD_SEND, dec_send},
	{"sync", CMD_SYNC, dec_sync},
	{"history", CMD_HISTORY, dec_history},
	{"typing", CMD_TYPING, dec_channel},
	{"read", CMD_READ, dec_read},
	{"presence", CMD_PRESENCE, dec_channel},
	{"edit", CMD_EDIT, dec_edit},
	{"delete", CMD_DELETE, dec_delete},
	{"refresh", CMD_REFRESH, dec_refresh},
	{"ping", CMD_PING, dec_ping},
	{"search", CMD_SEARCH, dec_search},
	{"react", CMD_REACT, dec_react},
	{"unreact", CMD_UNREACT, dec_react},
};

/*
 * dec_type finds the frame's type in cmd_table and runs its decoder.
 */
static proto_status
dec_type(decoder *d)
{
	json_t	   *v = json_object_get(d->root, "type");
	const char *s;
	size_t		n;
	size_t		i;

	if (v == NULL)
		return fail(d, PROTO_BAD_REQUEST, "type is required");
	s = json_text(v, &n);
	for (i = 0; s != NULL && i < sizeof(cmd_table) / sizeof(cmd_table[0]); i++)
	{
		if (strcmp(s, cmd_table[i].name) == 0)
		{
			d->cmd->type = cmd_table[i].type;
			return cmd_table[i].decode(d);
		}
	}
	return fail(d, PROTO_BAD_REQUEST, "unknown type");
}

/*
 * proto_decode parses one client frame into *cmd (see proto.h).  ref and
 * clientId are read first, so they are set even when a later field fails.
 */
proto_status
proto_decode(const char *buf, size_t len, size_t max_content_bytes,
			 chat_cmd *cmd, char *err, size_t errlen)
{
	decoder		d;
	json_error_t jerr;
	proto_status st;

	memset(cmd, 0, sizeof(*cmd));
	d.root = NULL;
	d.cmd = cmd;
	d.max_content = max_content_bytes;
	d.err = err;
	d.errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';

	if (buf == NULL)
		return fail(&d, PROTO_BAD_REQUEST, "empty frame");
	if (!proto_depth_ok(buf, len))
		return fail(&d, PROTO_BAD_REQUEST, "JSON nested deeper than %d",
					PROTO_MAX_DEPTH);
	d.root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
						&jerr);
	if (d.root == NULL)
		return fail(&d, json_error_code(&jerr) == json_error_out_of_memory ?
					PROTO_INTERNAL : PROTO_BAD_REQUEST,
					"invalid JSON: %s", jerr.text);
	if (!json_is_object(d.root))
		st = fail(&d, PROTO_BAD_REQUEST, "frame must be a JSON object");
	else if ((st = get_ref(&d)) == PROTO_OK)
	{
		/* a bad clientId is reported by dec_send; other types ignore it */
		(void) get_uuid(&d, "clientId", false, cmd->client_id);
		if (err != NULL && errlen > 0)
			err[0] = '\0';
		st = dec_type(&d);
	}
	json_decref(d.root);
	return st;
}

/*
 * proto_cmd_free releases what proto_decode allocated; *cmd is left
 * zeroed, so a second call is harmless.
 */
void
proto_cmd_free(chat_cmd *cmd)
{
	free(cmd->content);
	free(cmd->attachments);
	free(cmd->sync);
	free(cmd->token);
	free(cmd->query);
	memset(cmd, 0, sizeof(*cmd));
}
