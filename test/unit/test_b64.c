/*
 * test_b64.c
 *	  Unit tests for core/b64.c: the RFC 4648 vectors in both alphabets,
 *	  round trips across chunk boundaries, every kind of non-canonical or
 *	  foreign input the strict decoders must refuse, and bounded writes.
 */
#include <stdlib.h>

#include "core/b64.h"
#include "unit.h"

/* RFC 4648 section 10 */
static const char *const vec_in[] = {
	"", "f", "fo", "foo", "foob", "fooba", "foobar"
};
static const char *const vec_std[] = {
	"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"
};
static const char *const vec_url[] = {
	"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"
};

/*
 * url_dec and std_dec decode a C string, returning the length or -1.
 */
static int
url_dec(const char *s, unsigned char *out, size_t outlen)
{
	return b64url_decode(s, strlen(s), out, outlen);
}

static int
std_dec(const char *s, unsigned char *out, size_t outlen)
{
	return b64_decode(s, strlen(s), out, outlen);
}

/*
 * test_rfc4648_vectors: encode and decode the standard test vectors.
 */
static void
test_rfc4648_vectors(void)
{
	size_t		i;

	for (i = 0; i < sizeof(vec_in) / sizeof(vec_in[0]); i++)
	{
		char		enc[32];
		unsigned char dec[32];
		size_t		n = strlen(vec_in[i]);

		CHECK(b64_encode(vec_in[i], n, enc, sizeof(enc)) ==
			  (int) strlen(vec_std[i]));
		CHECK_STR(enc, vec_std[i]);
		CHECK(b64url_encode(vec_in[i], n, enc, sizeof(enc)) ==
			  (int) strlen(vec_url[i]));
		CHECK_STR(enc, vec_url[i]);
		CHECK(std_dec(vec_std[i], dec, sizeof(dec)) == (int) n);
		CHECK(memcmp(dec, vec_in[i], n) == 0);
		CHECK(url_dec(vec_url[i], dec, sizeof(dec)) == (int) n);
		CHECK(memcmp(dec, vec_in[i], n) == 0);
	}
}

/*
 * test_url_alphabet: the two characters that differ, both ways.
 */
static void
test_url_alphabet(void)
{
	const unsigned char raw[] = {0xfb, 0xff, 0xbf};
	unsigned char dec[8];
	char		enc[16];

	CHECK(b64_encode(raw, 3, enc, sizeof(enc)) == 4);
	CHECK_STR(enc, "+/+/");
	CHECK(b64url_encode(raw, 3, enc, sizeof(enc)) == 4);
	CHECK_STR(enc, "-_-_");
	CHECK(url_dec("-_-_", dec, sizeof(dec)) == 3);
	CHECK(memcmp(dec, raw, 3) == 0);
	CHECK(std_dec("+/+/", dec, sizeof(dec)) == 3);
	CHECK(memcmp(dec, raw, 3) == 0);
	/* each alphabet refuses the other's characters */
	CHECK(url_dec("+/+/", dec, sizeof(dec)) == -1);
	CHECK(std_dec("-_-_", dec, sizeof(dec)) == -1);
}

/*
 * test_round_trip: every length from 0 to 1000 bytes, crossing the
 * internal chunk sizes, through both alphabets.
 */
static void
test_round_trip(void)
{
	unsigned char raw[1000];
	unsigned char dec[1002];
	char		enc[1400];
	size_t		n;
	int			bad = 0;

	for (n = 0; n < sizeof(raw); n++)
		raw[n] = (unsigned char) (n * 131 + 7);
	for (n = 0; n <= sizeof(raw); n++)
	{
		int			e = b64url_encode(raw, n, enc, sizeof(enc));

		if (e != (int) B64URL_ENCODED_LEN(n) ||
			b64url_decode(enc, (size_t) e, dec, sizeof(dec)) != (int) n ||
			memcmp(dec, raw, n) != 0)
			bad++;
		e = b64_encode(raw, n, enc, sizeof(enc));
		if (e != (int) B64_ENCODED_LEN(n) ||
			b64_decode(enc, (size_t) e, dec, sizeof(dec)) != (int) n ||
			memcmp(dec, raw, n) != 0)
			bad++;
	}
	CHECK(bad == 0);
}

/*
 * test_url_strict: padding, impossible lengths, unused bits and foreign
 * characters are all refused by the base64url decoder.
 */
static void
test_url_strict(void)
{
	unsigned char dec[16];

	CHECK(url_dec("Zg", dec, sizeof(dec)) == 1);
	CHECK(url_dec("Zg==", dec, sizeof(dec)) == -1); /* padding */
	CHECK(url_dec("Zg=", dec, sizeof(dec)) == -1);
	CHECK(url_dec("Zm8=", dec, sizeof(dec)) == -1);
	CHECK(url_dec("Zh", dec, sizeof(dec)) == -1);	/* unused bits set */
	CHECK(url_dec("Zm9", dec, sizeof(dec)) == -1);
	CHECK(url_dec("Zm8", dec, sizeof(dec)) == 2);
	CHECK(url_dec("Zm9vY", dec, sizeof(dec)) == -1);	/* length % 4 == 1 */
	CHECK(url_dec("Z", dec, sizeof(dec)) == -1);
	CHECK(url_dec(" Zm9v", dec, sizeof(dec)) == -1);	/* OpenSSL would skip */
	CHECK(url_dec("Zm9v ", dec, sizeof(dec)) == -1);
	CHECK(url_dec("Zm\n9v", dec, sizeof(dec)) == -1);
	CHECK(url_dec("Zm.v", dec, sizeof(dec)) == -1);
	CHECK(url_dec("Zm9\xc3\xa9", dec, sizeof(dec)) == -1);
	CHECK(b64url_decode("Zm\0v", 4, dec, sizeof(dec)) == -1);
	CHECK(url_dec("", dec, sizeof(dec)) == 0);
	CHECK(b64url_decode(NULL, 0, NULL, 0) == 0);
	CHECK(b64url_decode(NULL, 4, dec, sizeof(dec)) == -1);
}

/*
 * test_std_strict: the padded decoder wants exactly the padding the last
 * group needs, and nothing else.
 */
static void
test_std_strict(void)
{
	unsigned char dec[16];

	CHECK(std_dec("Zg", dec, sizeof(dec)) == -1);	/* padding missing */
	CHECK(std_dec("Zg=", dec, sizeof(dec)) == -1);
	CHECK(std_dec("Zg===", dec, sizeof(dec)) == -1);
	CHECK(std_dec("Z===", dec, sizeof(dec)) == -1);
	CHECK(std_dec("====", dec, sizeof(dec)) == -1);
	CHECK(std_dec("Zm9v====", dec, sizeof(dec)) == -1);
	CHECK(std_dec("Zm=v", dec, sizeof(dec)) == -1); /* '=' inside */
	CHECK(std_dec("=Zm9", dec, sizeof(dec)) == -1);
	CHECK(std_dec("Zh==", dec, sizeof(dec)) == -1); /* unused bits set */
	CHECK(std_dec("Zm9=", dec, sizeof(dec)) == -1);
	CHECK(std_dec("Zm8=", dec, sizeof(dec)) == 2);
	CHECK(std_dec(" Zm9v", dec, sizeof(dec)) == -1);
	CHECK(std_dec("Zm9v\n", dec, sizeof(dec)) == -1);
	CHECK(std_dec("", dec, sizeof(dec)) == 0);
}

/*
 * test_bounded_output: a buffer one byte short is refused and left
 * untouched past its end.
 */
static void
test_bounded_output(void)
{
	char		enc[16];
	unsigned char dec[16];

	memset(enc, 'X', sizeof(enc));
	CHECK(b64_encode("foobar", 6, enc, 8) == -1);	/* no room for NUL */
	CHECK(enc[8] == 'X');
	CHECK(b64_encode("foobar", 6, enc, 9) == 8);
	CHECK(enc[8] == '\0' && enc[9] == 'X');
	CHECK(b64url_encode("f", 1, enc, 2) == -1);
	CHECK(b64url_encode("f", 1, enc, 3) == 2);
	CHECK(b64url_encode("", 0, enc, 0) == -1);
	CHECK(b64url_encode("", 0, enc, 1) == 0 && enc[0] == '\0');
	CHECK(b64url_encode(NULL, 0, enc, 1) == 0);
	CHECK(b64url_encode(NULL, 3, enc, sizeof(enc)) == -1);

	memset(dec, 0xee, sizeof(dec));
	CHECK(url_dec("Zm9vYmFy", dec, 5) == -1);
	CHECK(dec[5] == 0xee);
	CHECK(url_dec("Zm9vYmFy", dec, 6) == 6);
	CHECK(dec[6] == 0xee);
	CHECK(std_dec("Zm9vYg==", dec, 3) == -1);
	CHECK(std_dec("Zm9vYg==", dec, 4) == 4);
}

/*
 * test_large: a megabyte each way, and an input over the size cap.
 */
static void
test_large(void)
{
	size_t		n = 1024 * 1024 + 1;
	unsigned char *raw = malloc(n);
	unsigned char *dec = malloc(n);
	char	   *enc = malloc(B64_ENCODED_LEN(n) + 1);

	CHECK(raw != NULL && dec != NULL && enc != NULL);
	if (raw == NULL || dec == NULL || enc == NULL)
		goto done;
	memset(raw, 0x5a, n);
	CHECK(b64url_encode(raw, n, enc, B64_ENCODED_LEN(n) + 1) ==
		  (int) B64URL_ENCODED_LEN(n));
	CHECK(b64url_decode(enc, B64URL_ENCODED_LEN(n), dec, n) == (int) n);
	CHECK(memcmp(raw, dec, n) == 0);
	CHECK(b64_encode(raw, n, enc, B64_ENCODED_LEN(n) + 1) ==
		  (int) B64_ENCODED_LEN(n));
	CHECK(b64_decode(enc, B64_ENCODED_LEN(n), dec, n) == (int) n);
	/* the cap is checked before anything is read */
	CHECK(b64url_encode(raw, B64_MAX_INPUT + 1, enc, 16) == -1);
	CHECK(b64url_decode(enc, B64_MAX_INPUT + 1, dec, 16) == -1);
done:
	free(raw);
	free(dec);
	free(enc);
}

int
main(void)
{
	RUN(test_rfc4648_vectors);
	RUN(test_url_alphabet);
	RUN(test_round_trip);
	RUN(test_url_strict);
	RUN(test_std_strict);
	RUN(test_bounded_output);
	RUN(test_large);
	UNIT_EXIT();
}
