/*
 * event.c
 *	  The one codec of event records (see event.h): the text form that
 *	  crosses the NOTIFY bus, and the checks every record passes, whichever
 *	  way it came.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"

/* read_int64 reads a decimal in [0, max] ending at a ':' or at end. */
static bool
read_int64(const char **p, const char *end, int64_t max, int64_t *out)
{
	const char *s = *p;
	int64_t		v = 0;

	if (s == end || *s < '0' || *s > '9')
		return false;
	for (; s < end && *s >= '0' && *s <= '9'; s++)
	{
		if (v > (max - (*s - '0')) / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	if (s < end && *s != ':')
		return false;
	*p = s;
	*out = v;
	return true;
}

/* expect consumes the character c. */
static bool
expect(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return false;
	(*p)++;
	return true;
}

static bool
read_channel(const char **p, const char *end, chat_uuid out)
{
	if (end - *p < CHAT_UUID_LEN || !chat_uuid_parse(*p, CHAT_UUID_LEN, out))
		return false;
	*p += CHAT_UUID_LEN;
	return true;
}

/* read_user takes the rest: the user id comes last, as it may hold ':'. */
static bool
read_user(const char *p, const char *end, char *out)
{
	size_t		n = (size_t) (end - p);

	if (n == 0 || n > JWT_MAX_SUB || memchr(p, '\0', n) != NULL)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

bool
chat_event_is_valid(const chat_event *ev)
{
	size_t		ulen = strnlen(ev->user, sizeof(ev->user));
	bool		has_channel = strnlen(ev->channel, sizeof(ev->channel)) ==
	CHAT_UUID_LEN;

	if (ulen > JWT_MAX_SUB)
		return false;
	switch (ev->kind)
	{
		case CHAT_EV_MESSAGE:
		case CHAT_EV_EDIT:
		case CHAT_EV_DELETE:
		case CHAT_EV_REACTION:
			return has_channel && ev->seq >= 0;
		case CHAT_EV_JOIN:
		case CHAT_EV_LEAVE:
			return has_channel;
		case CHAT_EV_READ:
			return has_channel && ev->seq >= 0;
		case CHAT_EV_TYPING:
			return has_channel && ulen > 0 && ev->worker >= 0 &&
				ev->expires_ms > 0;
		case CHAT_EV_TYPING_STOP:
			return has_channel && ulen > 0 && ev->worker >= 0;
		case CHAT_EV_PRESENCE:
			return ulen > 0 && ev->worker >= 0;
		case CHAT_EV_RESYNC:
			return true;
	}
	return false;
}

bool
chat_event_parse(const char *text, size_t len, chat_event *ev)
{
	const char *p = text,
			   *end = text + len;
	int64_t		v;

	memset(ev, 0, sizeof(*ev));
	if (len < 2 || text[1] != ':')
		return false;
	ev->kind = text[0];
	p += 2;
	switch (ev->kind)
	{
		case CHAT_EV_MESSAGE:
		case CHAT_EV_EDIT:
		case CHAT_EV_DELETE:
		case CHAT_EV_REACTION:
			return read_channel(&p, end, ev->channel) &&
				expect(&p, end, ':') &&
				read_int64(&p, end, INT64_MAX, &ev->seq) && p == end;
		case CHAT_EV_JOIN:
		case CHAT_EV_LEAVE:
			if (!read_channel(&p, end, ev->channel))
				return false;
			return p == end ||
				(expect(&p, end, ':') && read_user(p, end, ev->user));
		case CHAT_EV_READ:
			if (!read_channel(&p, end, ev->channel) || !expect(&p, end, ':') ||
				!read_int64(&p, end, INT64_MAX, &ev->seq))
				return false;
			return p == end ||
				(expect(&p, end, ':') && read_user(p, end, ev->user));
		case CHAT_EV_TYPING:
		case CHAT_EV_TYPING_STOP:
			if (!read_int64(&p, end, INT32_MAX, &v) || !expect(&p, end, ':') ||
				!read_channel(&p, end, ev->channel) || !expect(&p, end, ':'))
				return false;
			ev->worker = (int32_t) v;
			if (ev->kind == CHAT_EV_TYPING)
			{
				if (!read_int64(&p, end, INT32_MAX, &v) || v == 0 ||
					!expect(&p, end, ':'))
					return false;
				ev->expires_ms = (int32_t) v;
			}
			return read_user(p, end, ev->user);
		case CHAT_EV_PRESENCE:
			if (!read_int64(&p, end, INT32_MAX, &v) || !expect(&p, end, ':'))
				return false;
			ev->worker = (int32_t) v;
			if (p < end && (*p == '0' || *p == '1'))
				ev->online = *p++ == '1';
			else
				return false;
			return expect(&p, end, ':') && read_user(p, end, ev->user);
		case CHAT_EV_RESYNC:
			return p == end;
	}
	return false;
}

int
chat_event_format(const chat_event *ev, bool names_users, char *buf,
				  size_t len)
{
	const char *user = names_users ? ev->user : "";
	const char *sep = user[0] ? ":" : "";
	int			n = -1;

	if (!chat_event_is_valid(ev))
		return -1;
	switch (ev->kind)
	{
		case CHAT_EV_MESSAGE:
		case CHAT_EV_EDIT:
		case CHAT_EV_DELETE:
		case CHAT_EV_REACTION:
			n = snprintf(buf, len, "%c:%s:%lld", ev->kind, ev->channel,
						 (long long) ev->seq);
			break;
		case CHAT_EV_JOIN:
		case CHAT_EV_LEAVE:
			n = snprintf(buf, len, "%c:%s%s%s", ev->kind, ev->channel, sep,
						 user);
			break;
		case CHAT_EV_READ:
			n = snprintf(buf, len, "%c:%s:%lld%s%s", ev->kind, ev->channel,
						 (long long) ev->seq, sep, user);
			break;
		case CHAT_EV_TYPING:
			if (names_users)
				n = snprintf(buf, len, "t:%d:%s:%d:%s", (int) ev->worker,
							 ev->channel, (int) ev->expires_ms, ev->user);
			break;
		case CHAT_EV_TYPING_STOP:
			if (names_users)
				n = snprintf(buf, len, "s:%d:%s:%s", (int) ev->worker,
							 ev->channel, ev->user);
			break;
		case CHAT_EV_PRESENCE:
			if (names_users)
				n = snprintf(buf, len, "p:%d:%d:%s", (int) ev->worker,
							 ev->online ? 1 : 0, ev->user);
			break;
		case CHAT_EV_RESYNC:
			n = snprintf(buf, len, "x:");
			break;
	}
	return n < 0 || (size_t) n >= len ? -1 : n;
}
