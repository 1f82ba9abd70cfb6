/*
 * fuzz_jwt.c
 *	  libFuzzer target: the JWT verifier (jwt_verify) with an HS256 secret,
 *	  an RSA public key and an EC P-256 public key configured, the HS256
 *	  minting round trip (jwt_sign_hs256) and the strict base64 codecs
 *	  underneath (b64.c).
 *
 *	  The first byte picks what the rest of the input is (byte % 8):
 *	    0-2  a token, verified against four key configurations;
 *	    3-4  "header-json NUL payload-json" (or a payload alone), signed
 *	         here with the HS256 secret, so fuzzed claims get past the
 *	         signature and reach the claim checks;
 *	    5    the same signed with the EC key (ES256);
 *	    6    the same signed with the RSA key (RS256);
 *	    7    a minting request: iat (8 bytes), exp (8), output buffer size
 *	         (1), then sub; minted tokens must verify to the same claims,
 *	         and no one-byte change of them may verify.
 *	  Every mode checks jwt.h's contract: claims are zeroed on failure and
 *	  sane on success, and no error is left on the OpenSSL error queue.
 *	  The raw modes also check that base64 decoding accepts exactly one
 *	  encoding per byte string.
 *
 *	  The clock is fixed (NOW), so seed tokens stay valid forever.  The keys
 *	  are test-only PEM files in test/fuzz/keys (FUZZ_KEY_DIR).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "core/b64.h"
#include "core/jwt.h"
#include "fuzz_util.h"

#ifndef FUZZ_KEY_DIR
#define FUZZ_KEY_DIR "test/fuzz/keys"
#endif

#define NOW INT64_C(1700000000)
#define SECRET "fuzz-hs256-secret-0123456789abcdef"
#define OTHER_SECRET "fuzz-hs256-secret-0123456789abcdeF"
#define AUDIENCE "chat"
#define ISSUER "https://issuer.example"

static EVP_PKEY *rsa_priv,
		   *rsa_pub,
		   *ec_priv,
		   *ec_pub;

/* The configurations every token is tried against. */
static jwt_keys k_hs,			/* HS256 only, no aud/iss */
			k_rsa,				/* RS256 only */
			k_hs_rsa,			/* HS256 + RS256 */
			k_ec,				/* ES256 only, aud + iss + leeway */
			k_hs_ec,			/* HS256 + ES256, aud + iss */
			k_other;			/* HS256 with a different secret */

static EVP_PKEY *
load_private(const char *name)
{
	char		path[512];
	FILE	   *fp;
	EVP_PKEY   *k;

	snprintf(path, sizeof(path), "%s/%s",
			 getenv("FUZZ_KEY_DIR") ? getenv("FUZZ_KEY_DIR") : FUZZ_KEY_DIR,
			 name);
	fp = fopen(path, "r");
	if (fp == NULL)
	{
		fprintf(stderr, "fuzz_jwt: cannot open %s (set FUZZ_KEY_DIR)\n", path);
		exit(2);
	}
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (k == NULL)
	{
		fprintf(stderr, "fuzz_jwt: no private key in %s\n", path);
		exit(2);
	}
	return k;
}

/* public_half keeps only the public part, as the worker loads it. */
static EVP_PKEY *
public_half(EVP_PKEY *priv)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	int			n = i2d_PUBKEY(priv, &der);
	EVP_PKEY   *pub;

	p = der;
	pub = n > 0 ? d2i_PUBKEY(NULL, &p, n) : NULL;
	OPENSSL_free(der);
	if (pub == NULL)
		exit(2);
	return pub;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	rsa_priv = load_private("rs256-private.pem");
	ec_priv = load_private("es256-private.pem");
	rsa_pub = public_half(rsa_priv);
	ec_pub = public_half(ec_priv);

	k_hs.hs_secret = (const unsigned char *) SECRET;
	k_hs.hs_secret_len = strlen(SECRET);
	k_rsa.public_key = rsa_pub;
	k_hs_rsa = k_hs;
	k_hs_rsa.public_key = rsa_pub;
	k_ec.public_key = ec_pub;
	k_ec.audience = AUDIENCE;
	k_ec.issuer = ISSUER;
	k_ec.leeway_s = 30;
	k_hs_ec = k_hs;
	k_hs_ec.public_key = ec_pub;
	k_hs_ec.audience = AUDIENCE;
	k_hs_ec.issuer = ISSUER;
	k_other.hs_secret = (const unsigned char *) OTHER_SECRET;
	k_other.hs_secret_len = strlen(OTHER_SECRET);
	return 0;
}

/*
 * verify runs jwt_verify and checks its contract whatever the outcome.
 */
static jwt_status
verify(const jwt_keys *keys, const char *tok, size_t len, int64_t now,
	   jwt_claims *c)
{
	static const jwt_claims zero;
	int64_t		leeway = keys->leeway_s;
	jwt_status	st;

	memset(c, 0x5a, sizeof(*c));
	st = jwt_verify(keys, tok, len, now, c);
	FZ_CHECK(ERR_peek_error() == 0);
	FZ_CHECK(st >= JWT_OK && st <= JWT_MISSING_CLAIM);
	FZ_CHECK(jwt_status_reason(st) != NULL);
	if (st != JWT_OK)
	{
		FZ_CHECK(memcmp(c, &zero, sizeof(zero)) == 0);
		return st;
	}
	FZ_CHECK(len <= JWT_MAX_TOKEN);
	FZ_CHECK(strnlen(c->sub, sizeof(c->sub)) <= JWT_MAX_SUB);
	FZ_CHECK(c->sub[0] != '\0');
	FZ_CHECK(fz_utf8_valid(c->sub, strlen(c->sub)));
	FZ_CHECK(c->exp > 0 && c->exp <= JWT_MAX_TIME);
	FZ_CHECK(c->nbf >= 0 && c->nbf <= JWT_MAX_TIME);
	FZ_CHECK(c->iat >= 0 && c->iat <= JWT_MAX_TIME);
	FZ_CHECK(now < c->exp + leeway);
	FZ_CHECK(now >= c->nbf - leeway);
	return st;
}

/*
 * check_b64 asserts that each codec round-trips and that decoding accepts
 * only the canonical encoding: whatever decodes re-encodes to the input.
 */
static void
check_b64(const uint8_t *data, size_t size)
{
	size_t		cap = B64_ENCODED_LEN(size) + 1;
	char	   *enc = malloc(cap);
	unsigned char *dec = malloc(B64_DECODED_MAX(cap) + 1);
	int			n,
				m;

	n = b64url_encode(data, size, enc, cap);
	FZ_CHECK(n >= 0 && (size_t) n == B64URL_ENCODED_LEN(size));
	m = b64url_decode(enc, (size_t) n, dec, B64_DECODED_MAX(cap));
	FZ_CHECK(m >= 0 && (size_t) m == size && memcmp(dec, data, size) == 0);
	n = b64_encode(data, size, enc, cap);
	FZ_CHECK(n >= 0 && (size_t) n == B64_ENCODED_LEN(size));
	m = b64_decode(enc, (size_t) n, dec, B64_DECODED_MAX(cap));
	FZ_CHECK(m >= 0 && (size_t) m == size && memcmp(dec, data, size) == 0);

	m = b64url_decode((const char *) data, size, dec, B64_DECODED_MAX(size));
	if (m >= 0)
	{
		n = b64url_encode(dec, (size_t) m, enc, cap);
		FZ_CHECK((size_t) n == size && memcmp(enc, data, size) == 0);
	}
	m = b64_decode((const char *) data, size, dec, B64_DECODED_MAX(size));
	if (m >= 0)
	{
		n = b64_encode(dec, (size_t) m, enc, cap);
		FZ_CHECK((size_t) n == size && memcmp(enc, data, size) == 0);
	}
	free(dec);
	free(enc);
}

static void
fuzz_raw(const uint8_t *data, size_t size)
{
	const char *tok = (const char *) data;
	jwt_claims	c;

	(void) verify(&k_hs, tok, size, NOW, &c);
	(void) verify(&k_hs_rsa, tok, size, NOW, &c);
	(void) verify(&k_ec, tok, size, NOW, &c);
	(void) verify(&k_hs_ec, tok, size, NOW, &c);
	check_b64(data, size);
}

/*
 * sign_pk signs input with key (SHA-256) into the JOSE form: PKCS#1 v1.5
 * for RSA, r || s (32 bytes each) for ECDSA.  Returns the length.
 */
static size_t
sign_pk(EVP_PKEY *key, const char *input, size_t len, unsigned char *sig,
		size_t cap)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char der[512];
	size_t		n = sizeof(der);
	bool		ec = EVP_PKEY_is_a(key, "EC");

	if (ctx == NULL ||
		EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
		EVP_DigestSign(ctx, ec ? der : sig, ec ? &n : &cap,
					   (const unsigned char *) input, len) != 1)
		exit(3);
	EVP_MD_CTX_free(ctx);
	if (ec)
	{
		const unsigned char *p = der;
		ECDSA_SIG  *es = d2i_ECDSA_SIG(NULL, &p, (long) n);

		if (es == NULL ||
			BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) != 32 ||
			BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) != 32)
			exit(3);
		ECDSA_SIG_free(es);
		return 64;
	}
	return cap;
}

/*
 * fuzz_signed builds "b64(header).b64(payload).b64(sig)" from the input,
 * signed the way alg says, and checks that the signature is never what
 * refuses it.
 */
static void
fuzz_signed(const uint8_t *data, size_t size, int alg)
{
	static const char dflt_hdr[][40] = {
		"{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
		"{\"alg\":\"ES256\",\"typ\":\"JWT\"}",
		"{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
	};
	const uint8_t *nul = memchr(data, '\0', size);
	const char *hdr = dflt_hdr[alg];
	size_t		hlen = strlen(hdr);
	const char *pl = (const char *) data;
	size_t		plen = size;
	size_t		cap;
	char	   *tok;
	unsigned char sig[512];
	size_t		siglen;
	unsigned int maclen = 0;
	int			n;
	jwt_status	st;
	jwt_claims	c;

	if (nul != NULL)
	{
		hdr = (const char *) data;
		hlen = (size_t) (nul - data);
		pl = (const char *) nul + 1;
		plen = size - hlen - 1;
	}
	cap = B64URL_ENCODED_LEN(hlen) + B64URL_ENCODED_LEN(plen) +
		B64URL_ENCODED_LEN(sizeof(sig)) + 4;
	tok = malloc(cap);
	n = b64url_encode(hdr, hlen, tok, cap);
	tok[n++] = '.';
	n += b64url_encode(pl, plen, tok + n, cap - n);
	if (alg == 0)
	{
		HMAC(EVP_sha256(), SECRET, (int) strlen(SECRET),
			 (const unsigned char *) tok, (size_t) n, sig, &maclen);
		siglen = maclen;
	}
	else
		siglen = sign_pk(alg == 1 ? ec_priv : rsa_priv, tok, (size_t) n, sig,
						 sizeof(sig));
	tok[n++] = '.';
	n += b64url_encode(sig, siglen, tok + n, cap - n);

	switch (alg)
	{
		case 0:
			st = verify(&k_hs, tok, (size_t) n, NOW, &c);
			FZ_CHECK(st != JWT_BAD_SIGNATURE && st != JWT_NO_KEY);
			(void) verify(&k_hs_ec, tok, (size_t) n, NOW, &c);
			FZ_CHECK(verify(&k_ec, tok, (size_t) n, NOW, &c) != JWT_OK);
			FZ_CHECK(verify(&k_other, tok, (size_t) n, NOW, &c) != JWT_OK);
			break;
		case 1:
			/* only a key configuration of one algorithm pins it */
			st = verify(&k_ec, tok, (size_t) n, NOW, &c);
			FZ_CHECK(st != JWT_BAD_SIGNATURE && st != JWT_NO_KEY);
			(void) verify(&k_hs_ec, tok, (size_t) n, NOW, &c);
			FZ_CHECK(verify(&k_hs, tok, (size_t) n, NOW, &c) != JWT_OK);
			FZ_CHECK(verify(&k_hs_rsa, tok, (size_t) n, NOW, &c) != JWT_OK);
			break;
		default:
			st = verify(&k_rsa, tok, (size_t) n, NOW, &c);
			FZ_CHECK(st != JWT_BAD_SIGNATURE && st != JWT_NO_KEY);
			(void) verify(&k_hs_rsa, tok, (size_t) n, NOW, &c);
			FZ_CHECK(verify(&k_ec, tok, (size_t) n, NOW, &c) != JWT_OK);
			FZ_CHECK(verify(&k_hs, tok, (size_t) n, NOW, &c) != JWT_OK);
			break;
	}
	free(tok);
}

static int64_t
read_time(const uint8_t *p)
{
	uint64_t	u = 0;

	for (int i = 0; i < 8; i++)
		u = (u << 8) | p[i];
	/* half of the values in range (and just past it), half anything */
	if ((u >> 63) == 0)
		return (int64_t) (u % (uint64_t) (JWT_MAX_TIME + 2));
	return (int64_t) u;
}

/*
 * fuzz_mint: what jwt_sign_hs256 writes must verify to exactly what it
 * was given, and must stop verifying when any one byte changes.
 */
static void
fuzz_mint(const uint8_t *data, size_t size)
{
	int64_t		iat,
				exp;
	size_t		outlen,
				sublen;
	char	   *sub,
			   *out;
	bool		valid;
	int			n;
	jwt_claims	c;
	jwt_status	st;

	if (size < 17)
		return;
	iat = read_time(data);
	exp = read_time(data + 8);
	outlen = data[16] == 255 ? JWT_MAX_TOKEN + 1 : (size_t) data[16] * 4;
	sublen = strnlen((const char *) data + 17, size - 17);
	sub = malloc(sublen + 1);
	memcpy(sub, data + 17, sublen);
	sub[sublen] = '\0';
	out = malloc(outlen ? outlen : 1);
	valid = sublen > 0 && sublen <= JWT_MAX_SUB &&
		fz_utf8_valid(sub, sublen) &&
		iat >= 0 && iat <= JWT_MAX_TIME && exp >= 0 && exp <= JWT_MAX_TIME;

	n = jwt_sign_hs256((const unsigned char *) SECRET, strlen(SECRET), sub,
					   iat, exp, out, outlen);
	FZ_CHECK(ERR_peek_error() == 0);
	if (n < 0)
	{
		/* only a bad argument or a short buffer may refuse */
		FZ_CHECK(!valid || outlen <= JWT_MAX_TOKEN);
		goto done;
	}
	FZ_CHECK(valid);
	FZ_CHECK((size_t) n == strlen(out) && (size_t) n < outlen);
	FZ_CHECK(n <= JWT_MAX_TOKEN);

	st = verify(&k_hs, out, (size_t) n, iat, &c);
	if (exp > iat)
	{
		FZ_CHECK(st == JWT_OK);
		FZ_CHECK(strcmp(c.sub, sub) == 0);
		FZ_CHECK(c.exp == exp && c.iat == iat && c.nbf == 0);
	}
	else
		FZ_CHECK(st == JWT_EXPIRED);
	FZ_CHECK(verify(&k_other, out, (size_t) n, iat, &c) == JWT_BAD_SIGNATURE);
	FZ_CHECK(verify(&k_ec, out, (size_t) n, iat, &c) == JWT_BAD_ALG);

	/* any one changed byte, wherever it is, must be refused */
	{
		size_t		pos = (size_t) (iat ^ exp ^ (int64_t) sublen) % (size_t) n;
		char		orig = out[pos];

		out[pos] = (char) (orig ^ (1 + data[17 % size] % 127));
		if (out[pos] == '\0')
			out[pos] = '!';
		FZ_CHECK(verify(&k_hs, out, (size_t) n, iat, &c) != JWT_OK);
		out[pos] = orig;
		/* and so must a truncated one */
		FZ_CHECK(verify(&k_hs, out, (size_t) n - 1, iat, &c) != JWT_OK);
	}
done:
	free(out);
	free(sub);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] % 8)
	{
		case 0:
		case 1:
		case 2:
			fuzz_raw(data + 1, size - 1);
			break;
		case 3:
		case 4:
			fuzz_signed(data + 1, size - 1, 0);
			break;
		case 5:
			fuzz_signed(data + 1, size - 1, 1);
			break;
		case 6:
			fuzz_signed(data + 1, size - 1, 2);
			break;
		case 7:
			fuzz_mint(data + 1, size - 1);
			break;
	}
	return 0;
}
