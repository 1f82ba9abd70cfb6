/*
 * test_jwt.c
 *	  Unit tests for core/jwt.c: the RFC 7515 A.1 example, HS256 minting,
 *	  RS256 and ES256 with keys generated here at run time, algorithm
 *	  pinning (none, HS/RS confusion), header rules, claim types and
 *	  ranges, time boundaries with leeway, aud/iss, encoding strictness,
 *	  oversized and garbage tokens, and public key loading.
 */
#include <stdlib.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "core/b64.h"
#include "core/jwt.h"
#include "unit.h"

#define NOW INT64_C(1700000000)
#define TOK_MAX 32768

static char tok[TOK_MAX];		/* the token built last */
static EVP_PKEY *rsa_priv;		/* generated once, 2048 bits */
static EVP_PKEY *rsa_pub;		/* its public half only */
static char rsa_pub_pem[4096];
static EVP_PKEY *ec_priv;		/* P-256 */
static EVP_PKEY *ec_pub;
static const unsigned char secret[] = "correct horse battery staple";
static const char url_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/*
 * public_half round-trips a key through PEM, returning a public-only key
 * and (optionally) the PEM text.
 */
static EVP_PKEY *
public_half(EVP_PKEY *priv, char *pem, size_t pemlen)
{
	BIO		   *bio = BIO_new(BIO_s_mem());
	EVP_PKEY   *pub;
	char	   *data;
	long		n;

	PEM_write_bio_PUBKEY(bio, priv);
	n = BIO_get_mem_data(bio, &data);
	if (pem != NULL && n > 0 && (size_t) n < pemlen)
	{
		memcpy(pem, data, (size_t) n);
		pem[n] = '\0';
	}
	pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return pub;
}

/*
 * signing_input puts base64url(hdr) "." base64url(pl) into tok and returns
 * its length.
 */
static size_t
signing_input(const char *hdr, const char *pl)
{
	int			h = b64url_encode(hdr, strlen(hdr), tok, TOK_MAX);
	int			p;

	tok[h] = '.';
	p = b64url_encode(pl, strlen(pl), tok + h + 1, TOK_MAX - (size_t) h - 1);
	return (size_t) h + 1 + (size_t) p;
}

/*
 * append_sig finishes tok with "." and the encoded signature.
 */
static const char *
append_sig(size_t pos, const unsigned char *sig, size_t siglen)
{
	tok[pos] = '.';
	b64url_encode(sig, siglen, tok + pos + 1, TOK_MAX - pos - 1);
	return tok;
}

/*
 * tok_hs builds an HMAC-SHA256-signed token whatever hdr says.
 */
static const char *
tok_hs(const char *hdr, const char *pl, const void *key, size_t keylen)
{
	size_t		pos = signing_input(hdr, pl);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	HMAC(EVP_sha256(), key, (int) keylen, (unsigned char *) tok, pos, mac,
		 &maclen);
	return append_sig(pos, mac, maclen);
}

/*
 * tok_pk signs with a private key and SHA-256.  For EC the DER signature
 * is turned into JOSE r || s unless der is set.
 */
static const char *
tok_pk(const char *hdr, const char *pl, EVP_PKEY *key, bool der)
{
	size_t		pos = signing_input(hdr, pl);
	unsigned char sig[1024];
	unsigned char raw[64];
	size_t		siglen = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const unsigned char *p = sig;
	ECDSA_SIG  *es;
	const BIGNUM *r;
	const BIGNUM *s;

	EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key);
	EVP_DigestSign(ctx, sig, &siglen, (unsigned char *) tok, pos);
	EVP_MD_CTX_free(ctx);
	if (!EVP_PKEY_is_a(key, "EC") || der)
		return append_sig(pos, sig, siglen);
	es = d2i_ECDSA_SIG(NULL, &p, (long) siglen);
	ECDSA_SIG_get0(es, &r, &s);
	BN_bn2binpad(r, raw, 32);
	BN_bn2binpad(s, raw + 32, 32);
	ECDSA_SIG_free(es);
	return append_sig(pos, raw, 64);
}

/*
 * claims_json writes a payload with sub and the given exp.
 */
static const char *
claims_json(const char *sub, int64_t exp)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "{\"sub\":\"%s\",\"exp\":%lld}", sub,
			 (long long) exp);
	return buf;
}

/*
 * hs_keys, pk_keys: key sets with one key and no leeway.
 */
static jwt_keys
hs_keys(void)
{
	jwt_keys	k;

	memset(&k, 0, sizeof(k));
	k.hs_secret = secret;
	k.hs_secret_len = sizeof(secret) - 1;
	return k;
}

static jwt_keys
pk_keys(EVP_PKEY *pub)
{
	jwt_keys	k;

	memset(&k, 0, sizeof(k));
	k.public_key = pub;
	return k;
}

/*
 * vfy verifies tok-like text at NOW and returns the status.
 */
static jwt_status
vfy(const jwt_keys *k, const char *t)
{
	jwt_claims	c;

	return jwt_verify(k, t, strlen(t), NOW, &c);
}

/*
 * hs_payload signs payload pl with the test secret under a standard header.
 */
static jwt_status
hs_payload(const jwt_keys *k, const char *pl)
{
	return vfy(k, tok_hs("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", pl, secret,
						 sizeof(secret) - 1));
}

/*
 * test_rfc7515_a1: the specification's HS256 example verifies with its
 * key.  It has no sub, so the best it can get is JWT_MISSING_CLAIM, and its
 * exp (1300819380) is long past, so now has to be set before it.
 */
static void
test_rfc7515_a1(void)
{
	static const char k64[] = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1"
	"qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
	char		t[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
	"eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxl"
	"LmNvbS9pc19yb290Ijp0cnVlfQ."
	"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
	unsigned char key[64];
	jwt_keys	k;
	jwt_claims	c;
	int			n = b64url_decode(k64, strlen(k64), key, sizeof(key));

	CHECK(n == 64);
	memset(&k, 0, sizeof(k));
	k.hs_secret = key;
	k.hs_secret_len = (size_t) n;
	k.issuer = "joe";
	CHECK(jwt_verify(&k, t, strlen(t), 1300819000, &c) == JWT_MISSING_CLAIM);
	CHECK(jwt_verify(&k, t, strlen(t), 1300819380, &c) == JWT_EXPIRED);
	k.leeway_s = 1;
	CHECK(jwt_verify(&k, t, strlen(t), 1300819380, &c) == JWT_MISSING_CLAIM);
	/* one signature character changed (still canonical base64url) */
	t[strlen(t) - 1] = 'g';
	CHECK(jwt_verify(&k, t, strlen(t), 1300819000, &c) == JWT_BAD_SIGNATURE);
	t[strlen(t) - 1] = 'k';
	key[0] ^= 1;
	CHECK(jwt_verify(&k, t, strlen(t), 1300819000, &c) == JWT_BAD_SIGNATURE);
}

/*
 * test_hs256_mint: jwt_sign_hs256 output verifies and round-trips claims;
 * bad arguments and short buffers are refused.
 */
static void
test_hs256_mint(void)
{
	jwt_keys	k = hs_keys();
	jwt_claims	c;
	char		out[1024];
	char		longsub[JWT_MAX_SUB + 2];
	int			n;

	n = jwt_sign_hs256(secret, sizeof(secret) - 1, "alice", NOW - 5,
					   NOW + 3600, out, sizeof(out));
	CHECK(n > 0 && (size_t) n == strlen(out));
	CHECK(jwt_verify(&k, out, (size_t) n, NOW, &c) == JWT_OK);
	CHECK_STR(c.sub, "alice");
	CHECK(c.exp == NOW + 3600 && c.iat == NOW - 5 && c.nbf == 0);
	CHECK(strncmp(out, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37) == 0);

	CHECK(jwt_sign_hs256(secret, sizeof(secret) - 1, "alice", NOW, NOW + 1,
						 out, (size_t) n) == -1);	/* no room for NUL */
	CHECK(jwt_sign_hs256(secret, sizeof(secret) - 1, "alice", NOW, NOW + 1,
						 out, (size_t) n + 1) == n);
	CHECK(jwt_sign_hs256(secret, 0, "alice", NOW, NOW + 1, out,
						 sizeof(out)) == -1);
	CHECK(jwt_sign_hs256(secret, sizeof(secret) - 1, "", NOW, NOW + 1, out,
						 sizeof(out)) == -1);
	CHECK(jwt_sign_hs256(secret, sizeof(secret) - 1, "\xff", NOW, NOW + 1,
						 out, sizeof(out)) == -1);	/* not UTF-8 */
	CHECK(jwt_sign_hs256(secret, sizeof(secret) - 1, "a", NOW,
						 JWT_MAX_TIME + 1, out, sizeof(out)) == -1);
	memset(longsub, 'x', sizeof(longsub) - 1);
	longsub[sizeof(longsub) - 1] = '\0';
	CHECK(jwt_sign_hs256(secret, sizeof(secret) - 1, longsub, NOW, NOW + 1,
						 out, sizeof(out)) == -1);
	longsub[JWT_MAX_SUB] = '\0';
	n = jwt_sign_hs256(secret, sizeof(secret) - 1, longsub, NOW, NOW + 1,
					   out, sizeof(out));
	CHECK(n > 0 && jwt_verify(&k, out, (size_t) n, NOW, &c) == JWT_OK);
	CHECK(strlen(c.sub) == JWT_MAX_SUB);
}

/*
 * test_alg_none: unsigned tokens and algorithms no key backs are refused
 * before any signature check.
 */
static void
test_alg_none(void)
{
	jwt_keys	k = hs_keys();
	const char *pl = claims_json("mallory", NOW + 60);
	char		t[1024];
	size_t		n = signing_input("{\"alg\":\"none\"}", pl);

	tok[n] = '.';
	tok[n + 1] = '\0';
	CHECK(vfy(&k, tok) == JWT_BAD_ALG);
	snprintf(t, sizeof(t), "%s", tok_hs("{\"alg\":\"none\"}", pl, secret,
										sizeof(secret) - 1));
	CHECK(vfy(&k, t) == JWT_BAD_ALG);
	CHECK(vfy(&k, tok_hs("{\"alg\":\"None\"}", pl, secret, 28)) == JWT_BAD_ALG);
	CHECK(vfy(&k, tok_hs("{\"alg\":\"hs256\"}", pl, secret, 28)) == JWT_BAD_ALG);
	CHECK(vfy(&k, tok_hs("{\"alg\":\"HS384\"}", pl, secret, 28)) == JWT_BAD_ALG);
	CHECK(vfy(&k, tok_hs("{\"typ\":\"JWT\"}", pl, secret, 28)) == JWT_BAD_ALG);
	CHECK(vfy(&k, tok_hs("{\"alg\":256}", pl, secret, 28)) == JWT_BAD_ALG);
	CHECK(vfy(&k, tok_hs("{\"alg\":\"HS256\"}", pl, secret, 28)) == JWT_OK);
}

/*
 * test_alg_confusion: the RSA public key PEM used as an HMAC secret must
 * not pass when the configured key is RSA; a key never lends itself to
 * another algorithm.
 */
static void
test_alg_confusion(void)
{
	jwt_keys	k = pk_keys(rsa_pub);
	const char *pl = claims_json("mallory", NOW + 60);
	const char *hs = "{\"alg\":\"HS256\"}";

	CHECK(vfy(&k, tok_hs(hs, pl, rsa_pub_pem, strlen(rsa_pub_pem))) ==
		  JWT_BAD_ALG);
	/* with an HS secret configured too, the PEM is just a wrong secret */
	k.hs_secret = secret;
	k.hs_secret_len = sizeof(secret) - 1;
	CHECK(vfy(&k, tok_hs(hs, pl, rsa_pub_pem, strlen(rsa_pub_pem))) ==
		  JWT_BAD_SIGNATURE);
	/* RS256 with an EC key configured, ES256 with an RSA key */
	k = pk_keys(ec_pub);
	CHECK(vfy(&k, tok_pk("{\"alg\":\"RS256\"}", pl, rsa_priv, false)) ==
		  JWT_BAD_ALG);
	k = pk_keys(rsa_pub);
	CHECK(vfy(&k, tok_pk("{\"alg\":\"ES256\"}", pl, ec_priv, false)) ==
		  JWT_BAD_ALG);
	/* an HS256 token when only a public key exists */
	CHECK(vfy(&k, tok_hs(hs, pl, secret, 28)) == JWT_BAD_ALG);
}

/*
 * test_rs256: a token signed here with a fresh RSA key verifies with its
 * public half only, and any change breaks it.
 */
static void
test_rs256(void)
{
	jwt_keys	k = pk_keys(rsa_pub);
	jwt_claims	c;
	const char *hdr = "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"other\"}";
	char		t[2048];
	EVP_PKEY   *other = EVP_RSA_gen(2048);

	snprintf(t, sizeof(t), "%s",
			 tok_pk(hdr, claims_json("bob", NOW + 60), rsa_priv, false));
	CHECK(jwt_verify(&k, t, strlen(t), NOW, &c) == JWT_OK);
	CHECK_STR(c.sub, "bob");
	t[strlen(t) - 3] = t[strlen(t) - 3] == 'A' ? 'B' : 'A';
	CHECK(vfy(&k, t) == JWT_BAD_SIGNATURE);
	CHECK(vfy(&k, tok_pk(hdr, claims_json("bob", NOW + 60), other, false)) ==
		  JWT_BAD_SIGNATURE);
	/* a signature one byte short */
	tok_pk(hdr, claims_json("bob", NOW + 60), rsa_priv, false);
	tok[strlen(tok) - 2] = '\0';
	CHECK(vfy(&k, tok) != JWT_OK);
	EVP_PKEY_free(other);
}

/*
 * test_es256: JOSE r || s verifies; the DER form, a swapped r and s and
 * another key do not.
 */
static void
test_es256(void)
{
	jwt_keys	k = pk_keys(ec_pub);
	jwt_claims	c;
	const char *hdr = "{\"alg\":\"ES256\"}";
	const char *pl = claims_json("carol", NOW + 60);
	unsigned char raw[64];
	unsigned char swapped[64];
	size_t		pos;
	EVP_PKEY   *other = EVP_EC_gen("P-256");

	tok_pk(hdr, pl, ec_priv, false);
	CHECK(jwt_verify(&k, tok, strlen(tok), NOW, &c) == JWT_OK);
	CHECK_STR(c.sub, "carol");
	pos = strrchr(tok, '.') - tok;
	CHECK(b64url_decode(tok + pos + 1, strlen(tok + pos + 1), raw, 64) == 64);
	memcpy(swapped, raw + 32, 32);
	memcpy(swapped + 32, raw, 32);
	CHECK(vfy(&k, append_sig(pos, swapped, 64)) == JWT_BAD_SIGNATURE);
	memset(swapped, 0, 64);
	CHECK(vfy(&k, append_sig(pos, swapped, 64)) == JWT_BAD_SIGNATURE);
	CHECK(vfy(&k, tok_pk(hdr, pl, ec_priv, true)) == JWT_BAD_SIGNATURE);
	CHECK(vfy(&k, tok_pk(hdr, pl, other, false)) == JWT_BAD_SIGNATURE);
	CHECK(ERR_peek_error() == 0);	/* no stale error for the TLS code */
	EVP_PKEY_free(other);
}

/*
 * test_header_rules: typ must say JWT in any case, crit is refused, kid
 * is ignored, the header must be a JSON object without duplicates.
 */
static void
test_header_rules(void)
{
	jwt_keys	k = hs_keys();
	const char *pl = claims_json("dave", NOW + 60);

#define HDR(h) vfy(&k, tok_hs(h, pl, secret, sizeof(secret) - 1))
	CHECK(HDR("{\"alg\":\"HS256\",\"typ\":\"jwt\"}") == JWT_OK);
	CHECK(HDR("{\"alg\":\"HS256\",\"typ\":\"JOSE\"}") == JWT_MALFORMED);
	CHECK(HDR("{\"alg\":\"HS256\",\"typ\":1}") == JWT_MALFORMED);
	CHECK(HDR("{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}") ==
		  JWT_MALFORMED);
	CHECK(HDR("{\"alg\":\"HS256\",\"kid\":\"../../etc/passwd\","
			  "\"jku\":\"https://evil/\"}") == JWT_OK);
	CHECK(HDR("{\"alg\":\"HS256\",\"alg\":\"none\"}") == JWT_MALFORMED);
	CHECK(HDR("[\"HS256\"]") == JWT_MALFORMED);
	CHECK(HDR("\"HS256\"") == JWT_MALFORMED);
	CHECK(HDR("{\"alg\":\"HS256\"") == JWT_MALFORMED);
	CHECK(HDR("{\"alg\":\"HS256\"} x") == JWT_MALFORMED);
#undef HDR
}

/*
 * test_time_boundaries: exp and nbf at the exact second, with and without
 * leeway.
 */
static void
test_time_boundaries(void)
{
	jwt_keys	k = hs_keys();
	char		pl[256];

	CHECK(hs_payload(&k, claims_json("e", NOW + 1)) == JWT_OK);
	CHECK(hs_payload(&k, claims_json("e", NOW)) == JWT_EXPIRED);
	k.leeway_s = 30;
	CHECK(hs_payload(&k, claims_json("e", NOW - 29)) == JWT_OK);
	CHECK(hs_payload(&k, claims_json("e", NOW - 30)) == JWT_EXPIRED);
	k.leeway_s = -100;			/* negative counts as none */
	CHECK(hs_payload(&k, claims_json("e", NOW)) == JWT_EXPIRED);

	k.leeway_s = 0;
	snprintf(pl, sizeof(pl), "{\"sub\":\"n\",\"exp\":%lld,\"nbf\":%lld}",
			 (long long) NOW + 600, (long long) NOW);
	CHECK(hs_payload(&k, pl) == JWT_OK);
	snprintf(pl, sizeof(pl), "{\"sub\":\"n\",\"exp\":%lld,\"nbf\":%lld}",
			 (long long) NOW + 600, (long long) NOW + 1);
	CHECK(hs_payload(&k, pl) == JWT_NOT_YET_VALID);
	k.leeway_s = 30;
	snprintf(pl, sizeof(pl), "{\"sub\":\"n\",\"exp\":%lld,\"nbf\":%lld}",
			 (long long) NOW + 600, (long long) NOW + 30);
	CHECK(hs_payload(&k, pl) == JWT_OK);
	snprintf(pl, sizeof(pl), "{\"sub\":\"n\",\"exp\":%lld,\"nbf\":%lld}",
			 (long long) NOW + 600, (long long) NOW + 31);
	CHECK(hs_payload(&k, pl) == JWT_NOT_YET_VALID);
}

/*
 * test_numeric_claims: dates are JSON numbers in range; anything else,
 * however large, is malformed without overflowing.
 */
static void
test_numeric_claims(void)
{
	jwt_keys	k = hs_keys();

#define PL(rest) hs_payload(&k, "{\"sub\":\"x\"," rest "}")
	CHECK(PL("\"exp\":1700000001.5") == JWT_OK);
	CHECK(PL("\"exp\":1700000000.5") == JWT_EXPIRED);	/* fraction dropped */
	CHECK(PL("\"exp\":1.7e9") == JWT_EXPIRED);
	CHECK(PL("\"exp\":253402300799") == JWT_OK);
	CHECK(PL("\"exp\":253402300800") == JWT_MALFORMED);
	CHECK(PL("\"exp\":9223372036854775807") == JWT_MALFORMED);
	CHECK(PL("\"exp\":99999999999999999999999999") == JWT_MALFORMED);
	CHECK(PL("\"exp\":1e300") == JWT_MALFORMED);
	CHECK(PL("\"exp\":1e400") == JWT_MALFORMED);
	CHECK(PL("\"exp\":-1") == JWT_MALFORMED);
	CHECK(PL("\"exp\":-9223372036854775808") == JWT_MALFORMED);
	CHECK(PL("\"exp\":\"1800000000\"") == JWT_MALFORMED);
	CHECK(PL("\"exp\":true") == JWT_MALFORMED);
	CHECK(PL("\"exp\":null") == JWT_MALFORMED);
	CHECK(PL("\"exp\":[1800000000]") == JWT_MALFORMED);
	CHECK(PL("\"exp\":1800000000,\"nbf\":\"0\"") == JWT_MALFORMED);
	CHECK(PL("\"exp\":1800000000,\"nbf\":1e30") == JWT_MALFORMED);
	CHECK(PL("\"exp\":1800000000,\"iat\":-5") == JWT_MALFORMED);
	CHECK(PL("\"exp\":1800000000,\"iat\":1.5") == JWT_OK);
	CHECK(PL("\"exp\":1800000000,\"exp\":1900000000") == JWT_MALFORMED);
#undef PL
}

/*
 * test_required_claims: exp and sub must be there; sub is a non-empty
 * string of at most JWT_MAX_SUB bytes.
 */
static void
test_required_claims(void)
{
	jwt_keys	k = hs_keys();
	jwt_claims	c;
	char		pl[512];
	char		sub[JWT_MAX_SUB + 2];

	CHECK(hs_payload(&k, "{\"sub\":\"x\"}") == JWT_MISSING_CLAIM);
	CHECK(hs_payload(&k, "{\"exp\":1800000000}") == JWT_MISSING_CLAIM);
	CHECK(hs_payload(&k, claims_json("", NOW + 60)) == JWT_MISSING_CLAIM);
	CHECK(hs_payload(&k, "{\"sub\":42,\"exp\":1800000000}") == JWT_MALFORMED);
	CHECK(hs_payload(&k, "{\"sub\":null,\"exp\":1800000000}") == JWT_MALFORMED);
	CHECK(hs_payload(&k, claims_json("a\\u0000b", NOW + 60)) == JWT_MALFORMED);
	tok_hs("{\"alg\":\"HS256\"}", claims_json("\\u00e9lodie", NOW + 60),
		   secret, sizeof(secret) - 1);
	CHECK(jwt_verify(&k, tok, strlen(tok), NOW, &c) == JWT_OK);
	CHECK_STR(c.sub, "\xc3\xa9lodie");
	memset(sub, 'y', sizeof(sub) - 1);
	sub[JWT_MAX_SUB + 1] = '\0';
	snprintf(pl, sizeof(pl), "{\"sub\":\"%s\",\"exp\":1800000000}", sub);
	CHECK(hs_payload(&k, pl) == JWT_MALFORMED);
	sub[JWT_MAX_SUB] = '\0';
	snprintf(pl, sizeof(pl), "{\"sub\":\"%s\",\"exp\":1800000000}", sub);
	CHECK(hs_payload(&k, pl) == JWT_OK);
	CHECK(hs_payload(&k, "[1800000000]") == JWT_MALFORMED);
}

/*
 * test_aud_iss: audience as a string or in an array, issuer equality, and
 * neither looked at when not configured.
 */
static void
test_aud_iss(void)
{
	jwt_keys	k = hs_keys();

#define PL(rest) hs_payload(&k, "{\"sub\":\"x\",\"exp\":1800000000" rest "}")
	CHECK(PL(",\"aud\":\"other\",\"iss\":5") == JWT_OK);
	k.audience = "chat";
	CHECK(PL(",\"aud\":\"chat\"") == JWT_OK);
	CHECK(PL(",\"aud\":[\"web\",\"chat\"]") == JWT_OK);
	CHECK(PL(",\"aud\":[\"web\"]") == JWT_BAD_AUDIENCE);
	CHECK(PL(",\"aud\":[]") == JWT_BAD_AUDIENCE);
	CHECK(PL(",\"aud\":\"Chat\"") == JWT_BAD_AUDIENCE);
	CHECK(PL("") == JWT_BAD_AUDIENCE);
	CHECK(PL(",\"aud\":5") == JWT_MALFORMED);
	CHECK(PL(",\"aud\":[\"chat\",5]") == JWT_MALFORMED);
	k.audience = "";
	k.issuer = "https://auth.example";
	CHECK(PL(",\"aud\":5,\"iss\":\"https://auth.example\"") == JWT_OK);
	CHECK(PL(",\"iss\":\"https://evil.example\"") == JWT_BAD_ISSUER);
	CHECK(PL("") == JWT_BAD_ISSUER);
	CHECK(PL(",\"iss\":[\"https://auth.example\"]") == JWT_MALFORMED);
#undef PL
}

/*
 * test_encoding: stripped signatures, padding and non-canonical
 * base64url anywhere in the token.
 */
static void
test_encoding(void)
{
	jwt_keys	k = hs_keys();
	char		t[1024];
	char		padded[1100];
	size_t		n;

	snprintf(t, sizeof(t), "%s", tok_hs("{\"alg\":\"HS256\"}",
										claims_json("f", NOW + 60), secret,
										sizeof(secret) - 1));
	CHECK(vfy(&k, t) == JWT_OK);
	n = strrchr(t, '.') - t;
	snprintf(padded, sizeof(padded), "%.*s.", (int) n, t);
	CHECK(vfy(&k, padded) == JWT_BAD_SIGNATURE);	/* stripped */
	snprintf(padded, sizeof(padded), "%.*s", (int) n, t);
	CHECK(vfy(&k, padded) == JWT_MALFORMED);	/* two parts */
	snprintf(padded, sizeof(padded), "%s=", t);
	CHECK(vfy(&k, padded) == JWT_MALFORMED);	/* padded signature */
	/* 32 bytes leave 2 unused bits in the last character: set one */
	n = strchr(url_alphabet, t[strlen(t) - 1]) - url_alphabet;
	CHECK((n & 3) == 0);
	t[strlen(t) - 1] = url_alphabet[n | 1];
	CHECK(vfy(&k, t) == JWT_MALFORMED);
	CHECK(vfy(&k, "e30=.e30.AAAA") == JWT_MALFORMED);	/* padded header */
	/* a payload with padding, correctly signed over the padded text */
	n = signing_input("{\"alg\":\"HS256\"}", claims_json("f", NOW + 60));
	memmove(tok + n + 1, tok + n, 1);
	tok[n] = '=';
	{
		unsigned char mac[32];
		unsigned int maclen = 0;

		HMAC(EVP_sha256(), secret, sizeof(secret) - 1, (unsigned char *) tok,
			 n + 1, mac, &maclen);
		CHECK(vfy(&k, append_sig(n + 1, mac, maclen)) == JWT_MALFORMED);
	}
	CHECK(vfy(&k, "eyJhbGciOiJIUzI1NiJ9.e30.e30.e30") == JWT_MALFORMED);
	CHECK(vfy(&k, "eyJhbGciOiJIUzI1NiJ9..AAAA") == JWT_MALFORMED);
	CHECK(vfy(&k, ".e30.AAAA") == JWT_MALFORMED);
}

/*
 * test_garbage_and_size: nonsense, NULs, missing keys, and tokens over
 * JWT_MAX_TOKEN up to several megabytes, refused before decoding.
 */
static void
test_garbage_and_size(void)
{
	jwt_keys	k = hs_keys();
	jwt_keys	none;
	jwt_claims	c;
	size_t		big = 4 * 1024 * 1024;
	char	   *huge = malloc(big);
	const char *junk[] = {"", ".", "..", "...", "a.b.c", "\xff\xfe.\x01.x",
	"eyJhbGciOiJIUzI1NiJ9", "Bearer x.y.z", " eyJ9.e30.AA"};
	size_t		i;

	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		CHECK(vfy(&k, junk[i]) == JWT_MALFORMED);
	CHECK(jwt_verify(&k, "e30\0.e30.AA", 11, NOW, &c) == JWT_MALFORMED);
	CHECK(jwt_verify(&k, NULL, 10, NOW, &c) == JWT_MALFORMED);
	CHECK(jwt_verify(NULL, "a.b.c", 5, NOW, &c) == JWT_NO_KEY);
	memset(&none, 0, sizeof(none));
	CHECK(vfy(&none, "a.b.c") == JWT_NO_KEY);
	none.hs_secret = secret;	/* an empty secret is no secret */
	CHECK(vfy(&none, "a.b.c") == JWT_NO_KEY);

	CHECK(huge != NULL);
	if (huge == NULL)
		return;
	memset(huge, 'A', big);
	huge[100] = '.';
	huge[big / 2] = '.';
	CHECK(jwt_verify(&k, huge, big, NOW, &c) == JWT_MALFORMED);
	CHECK(jwt_verify(&k, huge, JWT_MAX_TOKEN + 1, NOW, &c) == JWT_MALFORMED);
	/* a valid token made longer than the cap by a long header */
	memset(huge, ' ', JWT_MAX_TOKEN);
	memcpy(huge, "{\"alg\":\"HS256\",\"x\":\"", 20);
	memcpy(huge + 6200, "\"}", 3);
	CHECK(hs_payload(&k, claims_json("big", NOW + 60)) == JWT_OK);
	tok_hs(huge, claims_json("big", NOW + 60), secret, sizeof(secret) - 1);
	CHECK(strlen(tok) > JWT_MAX_TOKEN && vfy(&k, tok) == JWT_MALFORMED);
	free(huge);
}

/*
 * write_temp writes text to a fresh temporary file and returns its path.
 */
static const char *
write_temp(const char *text, char *path, size_t pathlen)
{
	int			fd;

	snprintf(path, pathlen, "/tmp/chat_jwt_test_XXXXXX");
	fd = mkstemp(path);
	if (fd >= 0)
	{
		if (write(fd, text, strlen(text)) != (ssize_t) strlen(text))
			path[0] = '\0';
		close(fd);
	}
	return path;
}

/*
 * load_pem writes a key's PEM (public, or private when priv) to a file and
 * loads it with jwt_load_public_key.
 */
static EVP_PKEY *
load_pem(EVP_PKEY *key, bool priv, char *err, size_t errlen)
{
	BIO		   *bio = BIO_new(BIO_s_mem());
	char		path[64];
	char	   *data;
	char		text[8192] = "";
	long		n;
	void	   *loaded;

	if (priv)
		PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
	else
		PEM_write_bio_PUBKEY(bio, key);
	n = BIO_get_mem_data(bio, &data);
	if (n > 0 && (size_t) n < sizeof(text))
		memcpy(text, data, (size_t) n);
	BIO_free(bio);
	write_temp(text, path, sizeof(path));
	loaded = jwt_load_public_key(path, err, errlen);
	unlink(path);
	return loaded;
}

/*
 * test_load_public_key: RSA and P-256 public keys load and verify; other
 * key types, small RSA keys, private keys and bad paths are refused with
 * a reason.
 */
static void
test_load_public_key(void)
{
	char		err[256];
	EVP_PKEY   *key;
	EVP_PKEY   *tmp;
	jwt_keys	k;

	key = load_pem(rsa_priv, false, err, sizeof(err));
	CHECK(key != NULL);
	k = pk_keys(key);
	CHECK(vfy(&k, tok_pk("{\"alg\":\"RS256\"}", claims_json("l", NOW + 9),
						 rsa_priv, false)) == JWT_OK);
	jwt_free_public_key(key);
	key = load_pem(ec_priv, false, err, sizeof(err));
	CHECK(key != NULL);
	jwt_free_public_key(key);

	tmp = EVP_EC_gen("P-384");
	CHECK(load_pem(tmp, false, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "P-256") != NULL);
	EVP_PKEY_free(tmp);
	tmp = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	CHECK(load_pem(tmp, false, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "ED25519") != NULL);
	EVP_PKEY_free(tmp);
	tmp = EVP_RSA_gen(1024);
	CHECK(load_pem(tmp, false, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "1024 bits") != NULL);
	EVP_PKEY_free(tmp);
	CHECK(load_pem(ec_priv, true, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "BEGIN PUBLIC KEY") != NULL);
	CHECK(jwt_load_public_key("/nonexistent/key.pem", err, sizeof(err)) ==
		  NULL);
	CHECK(strstr(err, "could not open") != NULL);
	CHECK(jwt_load_public_key("/tmp", err, sizeof(err)) == NULL);
	CHECK(jwt_load_public_key("", err, sizeof(err)) == NULL);
	CHECK(jwt_load_public_key(NULL, NULL, 0) == NULL);
	CHECK(ERR_peek_error() == 0);
	jwt_free_public_key(NULL);
}

/*
 * test_reasons: every status has a short reason that is safe to send.
 */
static void
test_reasons(void)
{
	int			s;

	for (s = JWT_OK; s <= JWT_MISSING_CLAIM; s++)
	{
		const char *r = jwt_status_reason((jwt_status) s);

		CHECK(r != NULL && r[0] != '\0' && strlen(r) < 64);
		CHECK(strpbrk(r, "\"\\%") == NULL);
	}
	CHECK_STR(jwt_status_reason(JWT_EXPIRED), "token expired");
}

int
main(void)
{
	rsa_priv = EVP_RSA_gen(2048);
	ec_priv = EVP_EC_gen("P-256");
	rsa_pub = public_half(rsa_priv, rsa_pub_pem, sizeof(rsa_pub_pem));
	ec_pub = public_half(ec_priv, NULL, 0);
	if (!rsa_priv || !ec_priv || !rsa_pub || !ec_pub)
	{
		printf("FAIL key generation\n");
		return 1;
	}
	RUN(test_rfc7515_a1);
	RUN(test_hs256_mint);
	RUN(test_alg_none);
	RUN(test_alg_confusion);
	RUN(test_rs256);
	RUN(test_es256);
	RUN(test_header_rules);
	RUN(test_time_boundaries);
	RUN(test_numeric_claims);
	RUN(test_required_claims);
	RUN(test_aud_iss);
	RUN(test_encoding);
	RUN(test_garbage_and_size);
	RUN(test_load_public_key);
	RUN(test_reasons);
	EVP_PKEY_free(rsa_priv);
	EVP_PKEY_free(rsa_pub);
	EVP_PKEY_free(ec_priv);
	EVP_PKEY_free(ec_pub);
	UNIT_EXIT();
}
