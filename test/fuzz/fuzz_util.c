/*
 * fuzz_util.c
 *	  Shared checks of the fuzz targets (see fuzz_util.h).  jansson is the
 *	  independent judge of "valid JSON": the core writes frames with its own
 *	  writer (jsonw.c), so parsing them back with another implementation is
 *	  a real check, not a tautology; glibc's iconv is the judge of "valid
 *	  UTF-8" for the same reason.
 */
#include <jansson.h>
#include <errno.h>
#include <iconv.h>
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

/*
 * fz_utf8_valid is the oracle for "valid UTF-8": glibc's iconv, an
 * implementation independent of jsonw.c's validator (a bug common to an
 * oracle and the code it checks would go unseen).  glibc refuses what RFC
 * 3629 refuses: overlong forms, surrogates, code points past U+10FFFF and
 * truncated sequences.
 */
bool
fz_utf8_valid(const char *s, size_t n)
{
	static iconv_t cd = (iconv_t) - 1;
	char	   *in = (char *) s;
	size_t		inleft = n;

	if (cd == (iconv_t) - 1)
	{
		cd = iconv_open("UTF-32LE", "UTF-8");
		FZ_CHECK(cd != (iconv_t) - 1);
	}
	(void) iconv(cd, NULL, NULL, NULL, NULL);
	while (inleft > 0)
	{
		char		out[1024];
		char	   *o = out;
		size_t		outleft = sizeof(out);

		if (iconv(cd, &in, &inleft, &o, &outleft) == (size_t) -1 &&
			errno != E2BIG)
			return false;		/* EILSEQ or EINVAL (truncated) */
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
