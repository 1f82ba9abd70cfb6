/*
 * b64.c
 *	  Base64 and base64url for tokens and the WebSocket handshake.
 *
 *	  The bit work is OpenSSL's EVP_EncodeBlock and EVP_DecodeBlock.  They
 *	  know only the standard, padded alphabet and are lenient (they skip
 *	  leading white space, ignore unused bits), so this file adds what
 *	  tokens need: the url alphabet by translation, validation of every
 *	  character before OpenSSL sees it, rejection of non-canonical
 *	  encodings, and writes bounded by the caller's buffer.  Both directions
 *	  go one chunk at a time through a small stack buffer, so no input size
 *	  needs a malloc.
 *
 *	  A trailing partial group is completed with 'A' (zero bits), not '=',
 *	  before decoding: the extra decoded bytes must then be zero, which is
 *	  exactly the rule that the unused bits of the last character are zero.
 */
#include <stdbool.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/b64.h"

/* Raw bytes per encoding chunk (a multiple of 3) and their encoding. */
#define ENC_CHUNK_BYTES 192
#define ENC_CHUNK_CHARS (ENC_CHUNK_BYTES / 3 * 4)

/* Characters per decoding chunk (a multiple of 4) and their decoding. */
#define DEC_CHUNK_CHARS 256
#define DEC_CHUNK_BYTES (DEC_CHUNK_CHARS / 4 * 3)

/*
 * is_alnum_ascii is isalnum() without the locale: base64 is ASCII only.
 */
static bool
is_alnum_ascii(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9');
}

/*
 * to_std_char maps one input character to the standard alphabet, or
 * returns '\0' when it is not part of the input's alphabet ('=' never is:
 * padding is removed before this is called).
 */
static char
to_std_char(char c, bool url)
{
	if (is_alnum_ascii(c))
		return c;
	if (url)
	{
		if (c == '-')
			return '+';
		if (c == '_')
			return '/';
		return '\0';
	}
	if (c == '+' || c == '/')
		return c;
	return '\0';
}

/*
 * to_url_alphabet rewrites n standard characters in place to the url
 * alphabet, drops the padding and returns the new length.
 */
static size_t
to_url_alphabet(unsigned char *s, size_t n)
{
	size_t		i;

	while (n > 0 && s[n - 1] == '=')
		n--;
	for (i = 0; i < n; i++)
	{
		if (s[i] == '+')
			s[i] = '-';
		else if (s[i] == '/')
			s[i] = '_';
	}
	return n;
}

/*
 * encode_common encodes in[0..inlen) into out, a chunk at a time.  The
 * exact output length is known up front, so one bounds check covers every
 * later write.
 */
static int
encode_common(const void *in, size_t inlen, char *out, size_t outlen,
			  bool url)
{
	const unsigned char *src = in;
	size_t		need;
	size_t		done = 0;
	size_t		pos = 0;

	if (inlen > B64_MAX_INPUT || out == NULL || (src == NULL && inlen > 0))
		return -1;
	need = url ? B64URL_ENCODED_LEN(inlen) : B64_ENCODED_LEN(inlen);
	if (outlen <= need)
		return -1;

	while (done < inlen)
	{
		unsigned char chunk[ENC_CHUNK_CHARS + 1];
		size_t		n = inlen - done;
		size_t		m;

		if (n > ENC_CHUNK_BYTES)
			n = ENC_CHUNK_BYTES;
		m = (size_t) EVP_EncodeBlock(chunk, src + done, (int) n);
		if (url)
			m = to_url_alphabet(chunk, m);
		memcpy(out + pos, chunk, m);
		pos += m;
		done += n;
	}
	out[pos] = '\0';
	return (int) pos;
}

/*
 * decoded_len gives the number of bytes n unpadded characters stand for,
 * or -1 when no encoding has that length.
 */
static long
decoded_len(size_t n)
{
	switch (n % 4)
	{
		case 0:
			return (long) (n / 4 * 3);
		case 2:
			return (long) (n / 4 * 3 + 1);
		case 3:
			return (long) (n / 4 * 3 + 2);
		default:
			return -1;
	}
}

/*
 * decode_chunk decodes n (1..DEC_CHUNK_CHARS) characters of one alphabet
 * into dec, returning the number of meaningful bytes or -1.  A partial
 * last group is completed with 'A'; its surplus bytes must decode to zero.
 */
static int
decode_chunk(const char *in, size_t n, bool url, unsigned char *dec)
{
	unsigned char text[DEC_CHUNK_CHARS];
	size_t		padded = (n + 3) / 4 * 4;
	long		want = decoded_len(n);
	int			got;
	size_t		i;

	if (want < 0)
		return -1;
	for (i = 0; i < n; i++)
	{
		text[i] = (unsigned char) to_std_char(in[i], url);
		if (text[i] == '\0')
			return -1;
	}
	for (; i < padded; i++)
		text[i] = 'A';

	got = EVP_DecodeBlock(dec, text, (int) padded);
	if (got != (int) (padded / 4 * 3))
		return -1;
	for (i = (size_t) want; i < (size_t) got; i++)
	{
		if (dec[i] != 0)
			return -1;			/* non-zero unused bits: not canonical */
	}
	return (int) want;
}

/*
 * decode_common decodes n unpadded characters into out.  Every chunk but
 * the last is a whole number of groups, so only the last can be partial.
 */
static int
decode_common(const char *in, size_t n, unsigned char *out, size_t outlen,
			  bool url)
{
	long		total = decoded_len(n);
	size_t		done = 0;
	size_t		pos = 0;

	if (total < 0 || (size_t) total > outlen || (out == NULL && total > 0))
		return -1;

	while (done < n)
	{
		unsigned char dec[DEC_CHUNK_BYTES];
		size_t		chunk = n - done;
		int			got;

		if (chunk > DEC_CHUNK_CHARS)
			chunk = DEC_CHUNK_CHARS;
		got = decode_chunk(in + done, chunk, url, dec);
		if (got < 0 || pos + (size_t) got > outlen)
			return -1;
		memcpy(out + pos, dec, (size_t) got);
		pos += (size_t) got;
		done += chunk;
	}
	return (int) pos;
}

/*
 * b64_encode writes the padded standard encoding of in[0..inlen).
 */
int
b64_encode(const void *in, size_t inlen, char *out, size_t outlen)
{
	return encode_common(in, inlen, out, outlen, false);
}

/*
 * b64url_encode writes the unpadded url-alphabet encoding of in[0..inlen).
 */
int
b64url_encode(const void *in, size_t inlen, char *out, size_t outlen)
{
	return encode_common(in, inlen, out, outlen, true);
}

/*
 * b64_decode decodes the padded standard alphabet.  The length must be a
 * multiple of 4 and '=' may only be the last one or two characters, as
 * many as the last group needs.
 */
int
b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outlen)
{
	size_t		n = inlen;

	if (inlen > B64_MAX_INPUT || (in == NULL && inlen > 0) || inlen % 4 != 0)
		return -1;
	if (n > 0 && in[n - 1] == '=')
		n--;
	if (n > 0 && in[n - 1] == '=')
		n--;
	return decode_common(in, n, out, outlen, false);
}

/*
 * b64url_decode decodes the unpadded url alphabet; '=' is refused like any
 * other character outside it.
 */
int
b64url_decode(const char *in, size_t inlen, unsigned char *out,
			  size_t outlen)
{
	if (inlen > B64_MAX_INPUT || (in == NULL && inlen > 0))
		return -1;
	return decode_common(in, inlen, out, outlen, true);
}
