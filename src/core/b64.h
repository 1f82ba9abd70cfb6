/*
 * b64.h
 *	  Base64 (RFC 4648 section 4, padded) and base64url (section 5, never
 *	  padded, as JWS uses it) over caller buffers.
 *
 *	  Decoding is strict: a character outside the alphabet, padding where
 *	  none belongs (any '=' in base64url), an impossible length or
 *	  non-zero unused bits in the last character all make the input
 *	  invalid, so every byte string has exactly one accepted encoding.
 *	  Nothing is ever written beyond outlen.
 */
#ifndef CHAT_B64_H
#define CHAT_B64_H

#include <stddef.h>

/* Encoded length of n bytes, without the NUL. */
#define B64_ENCODED_LEN(n)		((((n) + 2) / 3) * 4)
#define B64URL_ENCODED_LEN(n)	(((n) * 4 + 2) / 3)

/* An output size that is always enough to decode n characters. */
#define B64_DECODED_MAX(n)		((n) / 4 * 3 + 2)

/* Largest input either direction accepts; beyond it the result is -1. */
#define B64_MAX_INPUT			((size_t) 1 << 28)

/*
 * b64_encode and b64url_encode write the encoding of in[0..inlen) and a
 * NUL into out.  They return the encoded length, or -1 when out (outlen
 * bytes) cannot hold it and the NUL.
 */
extern int	b64_encode(const void *in, size_t inlen, char *out, size_t outlen);
extern int	b64url_encode(const void *in, size_t inlen, char *out,
						  size_t outlen);

/*
 * b64_decode and b64url_decode decode in[0..inlen) into out (no NUL is
 * added).  They return the decoded length, or -1 when the input is not a
 * canonical encoding or out (outlen bytes) is too small.
 */
extern int	b64_decode(const char *in, size_t inlen, unsigned char *out,
					   size_t outlen);
extern int	b64url_decode(const char *in, size_t inlen, unsigned char *out,
						  size_t outlen);

#endif							/* CHAT_B64_H */
