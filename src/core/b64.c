/*
 * b64.c
 *	  Base64 and base64url (b64.h): one encoder and one strict decoder over
 *	  two alphabets.  Written out rather than wrapped around OpenSSL's
 *	  decoder, which accepts whitespace and other non-canonical forms that
 *	  a JWS verifier must refuse; this one is short enough to audit line by
 *	  line and is fuzzed (test/fuzz/fuzz_jwt.c) against its encoder.
 */
#include <stdbool.h>
#include <stdint.h>

#include "core/b64.h"

static const char std_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int
encode(const unsigned char *in, size_t inlen, char *out, size_t outlen,
	   const char *abc, bool pad)
{
	size_t		need = pad ? B64_ENCODED_LEN(inlen) : B64URL_ENCODED_LEN(inlen);
	size_t		o = 0;

	if ((in == NULL && inlen > 0) || inlen > B64_MAX_INPUT || out == NULL ||
		outlen < need + 1)
		return -1;
	for (size_t i = 0; i < inlen; i += 3)
	{
		size_t		left = inlen - i;
		uint32_t	v = (uint32_t) in[i] << 16 |
		(left > 1 ? (uint32_t) in[i + 1] << 8 : 0) |
		(left > 2 ? in[i + 2] : 0);

		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		if (left > 1 || pad)
			out[o++] = left > 1 ? abc[v >> 6 & 63] : '=';
		if (left > 2 || pad)
			out[o++] = left > 2 ? abc[v & 63] : '=';
	}
	out[o] = '\0';
	return (int) o;
}

/* value of one character in the alphabet (url: "-_", else "+/"), or -1 */
static int
value(unsigned char c, bool url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

static int
decode(const char *in, size_t inlen, unsigned char *out, size_t outlen,
	   bool url)
{
	size_t		o = 0,
				tail;

	if ((in == NULL && inlen > 0) || inlen > B64_MAX_INPUT)
		return -1;
	if (!url)
	{
		/* padded: whole quanta, at most two '=' and only at the end */
		if (inlen % 4 != 0)
			return -1;
		if (inlen > 0 && in[inlen - 1] == '=')
			inlen -= inlen > 1 && in[inlen - 2] == '=' ? 2 : 1;
	}
	tail = inlen % 4;
	if (tail == 1 || outlen < inlen / 4 * 3 + (tail ? tail - 1 : 0))
		return -1;
	for (size_t i = 0; i < inlen; i += 4)
	{
		size_t		n = inlen - i < 4 ? inlen - i : 4;
		uint32_t	v = 0;

		for (size_t k = 0; k < 4; k++)
		{
			int			d = k < n ? value((unsigned char) in[i + k], url) : 0;

			if (d < 0)
				return -1;
			v = v << 6 | (uint32_t) d;
		}
		/* bits the last character carries beyond the data must be zero */
		if ((n == 2 && (v & 0xFFFF)) || (n == 3 && (v & 0xFF)))
			return -1;
		out[o++] = v >> 16;
		if (n > 2)
			out[o++] = v >> 8 & 0xFF;
		if (n > 3)
			out[o++] = v & 0xFF;
	}
	return (int) o;
}

int
b64_encode(const void *in, size_t inlen, char *out, size_t outlen)
{
	return encode(in, inlen, out, outlen, std_alphabet, true);
}

int
b64url_encode(const void *in, size_t inlen, char *out, size_t outlen)
{
	return encode(in, inlen, out, outlen, url_alphabet, false);
}

int
b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outlen)
{
	return decode(in, inlen, out, outlen, false);
}

int
b64url_decode(const char *in, size_t inlen, unsigned char *out,
			  size_t outlen)
{
	return decode(in, inlen, out, outlen, true);
}
