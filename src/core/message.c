/*
 * message.c
 *	  The exchange structs of message.h: releasing their malloc-owned parts,
 *	  and the one parser of a uuid's text form.
 */
#include <stdlib.h>
#include <string.h>

#include "core/message.h"
#include "core/store.h"

void
chat_message_clear(chat_message *m)
{
	free(m->sender_id);
	free(m->content);
	free(m->kind);
	free(m->attachments);
	free(m->reactions);
	memset(m, 0, sizeof(*m));
}

void
chat_search_hits_free(chat_search_hit *hits, size_t n)
{
	for (size_t i = 0; i < n && hits; i++)
	{
		free(hits[i].sender_id);
		free(hits[i].content);
		free(hits[i].headline);
	}
	free(hits);
}

void
chat_channel_info_clear(chat_channel_info *c)
{
	for (size_t i = 0; i < c->n_online; i++)
		free(c->online[i]);
	free(c->online);
	free(c->name);
	memset(c, 0, sizeof(*c));
}

void
chat_messages_free(chat_message *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		chat_message_clear(&msgs[i]);
	free(msgs);
}

void
chat_channels_free(chat_channel_info *chs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		chat_channel_info_clear(&chs[i]);
	free(chs);
}

static const char *const err_codes[] = {
	[CHAT_OK] = "ok",
	[CHAT_E_BAD_REQUEST] = "bad_request",
	[CHAT_E_NOT_MEMBER] = "not_member",
	[CHAT_E_NOT_FOUND] = "not_found",
	[CHAT_E_FORBIDDEN] = "forbidden",
	[CHAT_E_TOO_LARGE] = "too_large",
	[CHAT_E_RATE_LIMITED] = "rate_limited",
	[CHAT_E_INTERNAL] = "internal",
};

const char *
chat_err_code(chat_err err)
{
	if ((unsigned) err >= sizeof(err_codes) / sizeof(err_codes[0]))
		return "internal";
	return err_codes[err];
}

void
chat_strings_free(char **strs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(strs[i]);
	free(strs);
}

/*
 * chat_uuid_parse copies a canonical 8-4-4-4-12 hex uuid into out, in
 * lower case.  Anything else (braces, no hyphens, other lengths) is false.
 */
bool
chat_uuid_parse(const char *s, size_t n, chat_uuid out)
{
	size_t		i;

	if (n != CHAT_UUID_LEN)
		return false;
	for (i = 0; i < CHAT_UUID_LEN; i++)
	{
		char		c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (c != '-')
				return false;
		}
		else if (c >= 'A' && c <= 'F')
			c = (char) (c - 'A' + 'a');
		else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		out[i] = c;
	}
	out[CHAT_UUID_LEN] = '\0';
	return true;
}

bool
chat_kind_ok(const char *s, size_t n)
{
	size_t		i;

	if (n == 0 || n > CHAT_KIND_MAX || s[0] < 'a' || s[0] > 'z')
		return false;
	for (i = 1; i < n; i++)
	{
		char		c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}
