/*
 * fuzz_util.c
 *	  Shared checks of the fuzz targets (see fuzz_util.h).  jansson is the
 *	  independent judge of "valid JSON": the core writes frames with its own
 *	  writer (jsonw.c), so parsing them back with another implementation is
 *	  a real check, not a tautology.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

void
fz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "fuzz invariant failed at %s:%d: %s\n", file, line, what);
	abort();
}

bool
fz_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		i = 0;

	while (i < n)
	{
		unsigned char c = p[i];
		unsigned char lo = 0x80,
					hi = 0xBF;
		size_t		more;

		if (c < 0x80)
		{
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			more = 1;
		else if (c >= 0xE0 && c <= 0xEF)
		{
			more = 2;
			if (c == 0xE0)
				lo = 0xA0;
			if (c == 0xED)
				hi = 0x9F;
		}
		else if (c >= 0xF0 && c <= 0xF4)
		{
			more = 3;
			if (c == 0xF0)
				lo = 0x90;
			if (c == 0xF4)
				hi = 0x8F;
		}
		else
			return false;
		if (n - i <= more || p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= more; k++)
			if ((p[i + k] & 0xC0) != 0x80)
				return false;
		i += more + 1;
	}
	return true;
}

bool
fz_json_object_valid(const char *text, size_t n, bool need_type)
{
	json_error_t err;
	json_t	   *v;
	bool		ok;

	if (text == NULL || memchr(text, '\0', n) != NULL)
		return false;
	/* \u0000 inside a string is valid JSON (a client's ref may hold one) */
	v = json_loadb(text, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
	if (v == NULL)
	{
		fprintf(stderr, "invalid JSON (%s) in: %.*s\n", err.text,
				(int) (n > 2000 ? 2000 : n), text);
		return false;
	}
	ok = json_is_object(v) &&
		(!need_type || json_is_string(json_object_get(v, "type")));
	json_decref(v);
	return ok;
}

bool
fz_json_any_valid(const char *text, size_t n)
{
	json_error_t err;
	json_t	   *v;

	v = json_loadb(text, n,
				   JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
				   &err);
	if (v == NULL)
		return false;
	json_decref(v);
	return true;
}

int
fz_ws_next_frame(const unsigned char *buf, size_t len, size_t *off,
				 fz_frame *f)
{
	const unsigned char *p = buf + *off;
	size_t		avail = len - *off;
	size_t		hdr = 2;
	uint64_t	plen;

	if (avail < 2)
		return 0;
	f->fin = (p[0] & 0x80) != 0;
	f->rsv = (p[0] >> 4) & 0x7;
	f->opcode = p[0] & 0x0f;
	f->masked = (p[1] & 0x80) != 0;
	plen = p[1] & 0x7f;
	if (plen == 126)
	{
		if (avail < 4)
			return 0;
		plen = ((uint64_t) p[2] << 8) | p[3];
		hdr = 4;
	}
	else if (plen == 127)
	{
		if (avail < 10)
			return 0;
		plen = 0;
		for (int i = 0; i < 8; i++)
			plen = (plen << 8) | p[2 + i];
		if (plen >> 63)
			return -1;
		hdr = 10;
	}
	if (f->masked)
		hdr += 4;
	if (avail < hdr || avail - hdr < plen)
		return 0;
	f->payload = p + hdr;
	f->len = (size_t) plen;
	*off += hdr + (size_t) plen;
	return 1;
}

static bool
close_code_valid(unsigned code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
		(code >= 3000 && code <= 4999);
}

void
fz_check_server_frame(const fz_frame *f)
{
	FZ_CHECK(f->fin);
	FZ_CHECK(f->rsv == 0);
	FZ_CHECK(!f->masked);
	switch (f->opcode)
	{
		case 0x1:				/* text: always one JSON object */
			FZ_CHECK(fz_utf8_valid((const char *) f->payload, f->len));
			FZ_CHECK(fz_json_object_valid((const char *) f->payload, f->len,
										  true));
			break;
		case 0x8:				/* close */
			FZ_CHECK(f->len != 1 && f->len <= 125);
			if (f->len >= 2)
			{
				/*
				 * The reason is not checked: replying to a close, wslay
				 * echoes the peer's own payload, valid UTF-8 or not.
				 */
				FZ_CHECK(close_code_valid(((unsigned) f->payload[0] << 8) |
										  f->payload[1]));
			}
			break;
		case 0x9:				/* ping */
		case 0xA:				/* pong: echoes the client's ping payload */
			FZ_CHECK(f->len <= 125);
			break;
		default:
			/* no binary frames, no fragments, nothing reserved */
			FZ_CHECK(!"unexpected opcode from the server");
	}
}
