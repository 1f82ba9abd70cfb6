/*
 * jwt.c
 *	  JSON Web Token (RFC 7519) verification in JWS compact form (RFC 7515),
 *	  and HS256 minting for chat_mint_token.
 *
 *	  The configured key decides the algorithm: the token's "alg" only has
 *	  to agree with it.  An HS256 secret accepts HS256, an RSA public key
 *	  RS256 and an EC P-256 public key ES256; "none", any other name and a
 *	  name that no configured key backs are refused before any signature
 *	  work.  Header fields that would let the token choose its own key
 *	  ("kid", "jku", "jwk", "x5u", "x5c") are ignored, and "crit" is
 *	  refused since no extension is understood.
 *
 *	  The work is done in this order, so that unauthenticated input reaches
 *	  as little code as possible: length cap, split, header, signature over
 *	  the encoded text, and only then payload decoding and claim checks.
 *	  jansson stays inside this file; everything it returns is released
 *	  before returning, and every OpenSSL failure clears the error queue so
 *	  that the worker's TLS code never sees a stale error.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "core/b64.h"
#include "core/jwt.h"

/* Decoded size of the longest header or payload a token can carry. */
#define JWT_PART_MAX B64_DECODED_MAX(JWT_MAX_TOKEN)
/* Longest raw signature: RSA-8192. */
#define JWT_SIG_MAX 1024
/* RFC 7518 section 3.3: RS256 keys of at least 2048 bits. */
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS (JWT_SIG_MAX * 8)
/* A PEM public key file larger than this is not a public key. */
#define KEY_FILE_MAX (1024 * 1024)
/* ES256 signature: r and s, 32 bytes each (RFC 7518 section 3.4). */
#define ES256_HALF 32

typedef enum key_alg
{
	ALG_UNUSABLE = 0,
	ALG_HS256,
	ALG_RS256,
	ALG_ES256
} key_alg;

/* The three dot-separated parts of a compact token, pointing into it. */
typedef struct token_parts
{
	const char *header;
	size_t		header_len;
	const char *payload;
	size_t		payload_len;
	const char *sig;
	size_t		sig_len;
	size_t		signed_len;		/* "header.payload", the signing input */
} token_parts;

/*
 * jwt_status_reason gives the short reason that goes into a 401 body.  It
 * never contains anything from the token.
 */
const char *
jwt_status_reason(jwt_status status)
{
	switch (status)
	{
		case JWT_OK:
			return "ok";
		case JWT_MALFORMED:
			return "malformed token";
		case JWT_BAD_ALG:
			return "token algorithm not accepted";
		case JWT_BAD_SIGNATURE:
			return "bad token signature";
		case JWT_EXPIRED:
			return "token expired";
		case JWT_NOT_YET_VALID:
			return "token not yet valid";
		case JWT_BAD_AUDIENCE:
			return "token audience not accepted";
		case JWT_BAD_ISSUER:
			return "token issuer not accepted";
		case JWT_NO_KEY:
			return "no token key configured";
		case JWT_MISSING_CLAIM:
			return "token lacks sub or exp";
	}
	return "invalid token";
}

/*
 * set_err formats a reason into the caller's error buffer, if there is one.
 */
static void
__attribute__((format(printf, 3, 4)))
set_err(char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * pkey_alg tells which algorithm a public key stands for: RS256 for RSA
 * (not RSA-PSS), ES256 for EC on P-256, nothing for anything else.
 */
static key_alg
pkey_alg(EVP_PKEY *pkey)
{
	char		group[80];
	int			nid;

	if (pkey == NULL)
		return ALG_UNUSABLE;
	if (EVP_PKEY_is_a(pkey, "RSA"))
		return ALG_RS256;
	if (!EVP_PKEY_is_a(pkey, "EC") ||
		EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) != 1)
	{
		ERR_clear_error();
		return ALG_UNUSABLE;
	}
	nid = OBJ_sn2nid(group);
	if (nid == NID_undef)
		nid = EC_curve_nist2nid(group);
	return nid == NID_X9_62_prime256v1 ? ALG_ES256 : ALG_UNUSABLE;
}

/*
 * have_hs_secret is true when an HS256 secret is configured.  An empty
 * secret counts as none: HMAC with an empty key authenticates nothing.
 */
static bool
have_hs_secret(const jwt_keys *keys)
{
	return keys->hs_secret != NULL && keys->hs_secret_len > 0;
}

/*
 * split_token finds the two dots of a compact JWS.  Header and payload
 * must be non-empty; the signature may be empty here (and then fails
 * verification, never "unsigned").
 */
static bool
split_token(const char *token, size_t len, token_parts *p)
{
	const char *end = token + len;
	const char *dot1 = memchr(token, '.', len);
	const char *dot2;

	if (dot1 == NULL)
		return false;
	dot2 = memchr(dot1 + 1, '.', (size_t) (end - dot1 - 1));
	if (dot2 == NULL || memchr(dot2 + 1, '.', (size_t) (end - dot2 - 1)))
		return false;

	p->header = token;
	p->header_len = (size_t) (dot1 - token);
	p->payload = dot1 + 1;
	p->payload_len = (size_t) (dot2 - dot1 - 1);
	p->sig = dot2 + 1;
	p->sig_len = (size_t) (end - dot2 - 1);
	p->signed_len = (size_t) (dot2 - token);
	return p->header_len > 0 && p->payload_len > 0;
}

/*
 * decode_object base64url-decodes one part and parses it as a JSON
 * object.  Duplicate member names are refused: two "exp" or two "alg"
 * would let different readers of the same token disagree.
 */
static json_t *
decode_object(const char *text, size_t len)
{
	unsigned char buf[JWT_PART_MAX];
	int			n = b64url_decode(text, len, buf, sizeof(buf));
	json_t	   *v;

	if (n <= 0)
		return NULL;
	v = json_loadb((const char *) buf, (size_t) n, JSON_REJECT_DUPLICATES,
				   NULL);
	if (v != NULL && !json_is_object(v))
	{
		json_decref(v);
		v = NULL;
	}
	return v;
}

/*
 * ascii_eq_nocase compares two strings case-insensitively in ASCII only,
 * whatever the process locale says.
 */
static bool
ascii_eq_nocase(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++)
	{
		char		ca = (*a >= 'A' && *a <= 'Z') ? *a + 32 : *a;
		char		cb = (*b >= 'A' && *b <= 'Z') ? *b + 32 : *b;

		if (ca != cb)
			return false;
	}
	return *a == *b;
}

/*
 * check_header validates the JOSE header and picks the algorithm: the
 * token's "alg" must be the one a configured key stands for.
 */
static jwt_status
check_header(json_t *hdr, const jwt_keys *keys, key_alg *alg)
{
	json_t	   *typ = json_object_get(hdr, "typ");
	json_t	   *name = json_object_get(hdr, "alg");
	const char *s;

	if (json_object_get(hdr, "crit") != NULL)
		return JWT_MALFORMED;	/* RFC 7515 4.1.11: no extension known */
	if (typ != NULL &&
		(!json_is_string(typ) || !ascii_eq_nocase(json_string_value(typ),
												  "JWT")))
		return JWT_MALFORMED;
	if (!json_is_string(name))
		return JWT_BAD_ALG;

	s = json_string_value(name);
	if (strcmp(s, "HS256") == 0 && have_hs_secret(keys))
		*alg = ALG_HS256;
	else if (strcmp(s, "RS256") == 0 &&
			 pkey_alg(keys->public_key) == ALG_RS256)
		*alg = ALG_RS256;
	else if (strcmp(s, "ES256") == 0 &&
			 pkey_alg(keys->public_key) == ALG_ES256)
		*alg = ALG_ES256;
	else
		return JWT_BAD_ALG;
	return JWT_OK;
}

/*
 * verify_hs256 recomputes the HMAC and compares in constant time.
 */
static jwt_status
verify_hs256(const jwt_keys *keys, const token_parts *p,
			 const unsigned char *sig, size_t siglen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	if (keys->hs_secret_len > INT_MAX)
		return JWT_NO_KEY;
	if (HMAC(EVP_sha256(), keys->hs_secret, (int) keys->hs_secret_len,
			 (const unsigned char *) p->header, p->signed_len,
			 mac, &maclen) == NULL)
	{
		ERR_clear_error();
		return JWT_BAD_SIGNATURE;
	}
	if (siglen != maclen || CRYPTO_memcmp(mac, sig, maclen) != 0)
		return JWT_BAD_SIGNATURE;
	return JWT_OK;
}

/*
 * digest_verify checks a DER or raw signature over the signing input with
 * SHA-256 and the key's default scheme (PKCS#1 v1.5 for RSA, ECDSA).
 */
static jwt_status
digest_verify(EVP_PKEY *pkey, const token_parts *p,
			  const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int			rc = 0;

	if (ctx != NULL &&
		EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1)
		rc = EVP_DigestVerify(ctx, sig, siglen,
							  (const unsigned char *) p->header,
							  p->signed_len);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return rc == 1 ? JWT_OK : JWT_BAD_SIGNATURE;
}

/*
 * verify_rs256 checks an RSASSA-PKCS1-v1_5 signature, which is exactly as
 * long as the modulus.
 */
static jwt_status
verify_rs256(EVP_PKEY *pkey, const token_parts *p,
			 const unsigned char *sig, size_t siglen)
{
	int			size = EVP_PKEY_get_size(pkey);

	if (size <= 0 || siglen != (size_t) size)
		return JWT_BAD_SIGNATURE;
	return digest_verify(pkey, p, sig, siglen);
}

/*
 * verify_es256 turns the JOSE signature (r || s, 32 bytes each, big
 * endian) into the DER ECDSA-Sig-Value OpenSSL verifies.
 */
static jwt_status
verify_es256(EVP_PKEY *pkey, const token_parts *p,
			 const unsigned char *sig, size_t siglen)
{
	unsigned char der[2 * ES256_HALF + 16];
	unsigned char *q = der;
	ECDSA_SIG  *es;
	BIGNUM	   *r;
	BIGNUM	   *s;
	int			derlen = 0;

	if (siglen != 2 * ES256_HALF)
		return JWT_BAD_SIGNATURE;
	es = ECDSA_SIG_new();
	r = BN_bin2bn(sig, ES256_HALF, NULL);
	s = BN_bin2bn(sig + ES256_HALF, ES256_HALF, NULL);
	if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1)
	{
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		ERR_clear_error();
		return JWT_BAD_SIGNATURE;
	}
	/* es owns r and s now */
	if (i2d_ECDSA_SIG(es, NULL) <= (int) sizeof(der))
		derlen = i2d_ECDSA_SIG(es, &q);
	ECDSA_SIG_free(es);
	if (derlen <= 0)
	{
		ERR_clear_error();
		return JWT_BAD_SIGNATURE;
	}
	return digest_verify(pkey, p, der, (size_t) derlen);
}

/*
 * check_signature decodes the signature part and verifies it with the
 * algorithm check_header settled on.
 */
static jwt_status
check_signature(const jwt_keys *keys, key_alg alg, const token_parts *p)
{
	unsigned char sig[JWT_SIG_MAX];
	int			n;

	if (p->sig_len == 0 || p->sig_len > B64URL_ENCODED_LEN(JWT_SIG_MAX))
		return JWT_BAD_SIGNATURE;
	n = b64url_decode(p->sig, p->sig_len, sig, sizeof(sig));
	if (n < 0)
		return JWT_MALFORMED;

	switch (alg)
	{
		case ALG_HS256:
			return verify_hs256(keys, p, sig, (size_t) n);
		case ALG_RS256:
			return verify_rs256(keys->public_key, p, sig, (size_t) n);
		case ALG_ES256:
			return verify_es256(keys->public_key, p, sig, (size_t) n);
		case ALG_UNUSABLE:
			break;
	}
	return JWT_BAD_ALG;
}

/*
 * read_time reads a NumericDate: a JSON integer or real within
 * 0..JWT_MAX_TIME (fractions are dropped).  Range checks come before any
 * conversion, so no value can overflow.
 */
static bool
read_time(json_t *v, int64_t *out)
{
	if (json_is_integer(v))
	{
		json_int_t	i = json_integer_value(v);

		if (i < 0 || i > JWT_MAX_TIME)
			return false;
		*out = (int64_t) i;
		return true;
	}
	if (json_is_real(v))
	{
		double		d = json_real_value(v);

		if (!(d >= 0.0 && d <= (double) JWT_MAX_TIME))
			return false;
		*out = (int64_t) d;
		return true;
	}
	return false;
}

/*
 * check_times validates exp (required), nbf and iat, and compares exp and
 * nbf with now, allowing leeway either way.  The claims are bounded, so
 * claim +/- leeway cannot overflow; now is never shifted.
 */
static jwt_status
check_times(json_t *payload, const jwt_keys *keys, int64_t now,
			jwt_claims *c)
{
	json_t	   *exp = json_object_get(payload, "exp");
	json_t	   *nbf = json_object_get(payload, "nbf");
	json_t	   *iat = json_object_get(payload, "iat");
	int64_t		leeway = keys->leeway_s > 0 ? keys->leeway_s : 0;

	if (exp == NULL)
		return JWT_MISSING_CLAIM;
	if (!read_time(exp, &c->exp) ||
		(nbf != NULL && !read_time(nbf, &c->nbf)) ||
		(iat != NULL && !read_time(iat, &c->iat)))
		return JWT_MALFORMED;
	if (now >= c->exp + leeway)
		return JWT_EXPIRED;
	if (nbf != NULL && now < c->nbf - leeway)
		return JWT_NOT_YET_VALID;
	return JWT_OK;
}

/*
 * check_sub copies the subject: a string of 1..JWT_MAX_SUB bytes without
 * NUL (jansson already guarantees valid UTF-8).
 */
static jwt_status
check_sub(json_t *payload, jwt_claims *c)
{
	json_t	   *sub = json_object_get(payload, "sub");
	const char *s;
	size_t		n;

	if (sub == NULL)
		return JWT_MISSING_CLAIM;
	if (!json_is_string(sub))
		return JWT_MALFORMED;
	s = json_string_value(sub);
	n = json_string_length(sub);
	if (n == 0)
		return JWT_MISSING_CLAIM;
	if (n > JWT_MAX_SUB || memchr(s, '\0', n) != NULL)
		return JWT_MALFORMED;
	memcpy(c->sub, s, n);
	c->sub[n] = '\0';
	return JWT_OK;
}

/*
 * check_audience requires want among "aud" (a string or an array of
 * strings) when an audience is configured; otherwise aud is not looked at.
 */
static jwt_status
check_audience(json_t *payload, const char *want)
{
	json_t	   *aud;
	json_t	   *v;
	size_t		i;
	bool		found = false;

	if (want == NULL || want[0] == '\0')
		return JWT_OK;
	aud = json_object_get(payload, "aud");
	if (aud == NULL)
		return JWT_BAD_AUDIENCE;
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0 ?
			JWT_OK : JWT_BAD_AUDIENCE;
	if (!json_is_array(aud))
		return JWT_MALFORMED;
	json_array_foreach(aud, i, v)
	{
		if (!json_is_string(v))
			return JWT_MALFORMED;
		if (strcmp(json_string_value(v), want) == 0)
			found = true;
	}
	return found ? JWT_OK : JWT_BAD_AUDIENCE;
}

/*
 * check_issuer requires "iss" to equal want when an issuer is configured.
 */
static jwt_status
check_issuer(json_t *payload, const char *want)
{
	json_t	   *iss;

	if (want == NULL || want[0] == '\0')
		return JWT_OK;
	iss = json_object_get(payload, "iss");
	if (iss == NULL)
		return JWT_BAD_ISSUER;
	if (!json_is_string(iss))
		return JWT_MALFORMED;
	return strcmp(json_string_value(iss), want) == 0 ?
		JWT_OK : JWT_BAD_ISSUER;
}

/*
 * check_claims runs the payload checks in a fixed order: times (exp is
 * required), subject, audience, issuer.
 */
static jwt_status
check_claims(json_t *payload, const jwt_keys *keys, int64_t now,
			 jwt_claims *c)
{
	jwt_status	st = check_times(payload, keys, now, c);

	if (st == JWT_OK)
		st = check_sub(payload, c);
	if (st == JWT_OK)
		st = check_audience(payload, keys->audience);
	if (st == JWT_OK)
		st = check_issuer(payload, keys->issuer);
	return st;
}

/*
 * jwt_verify checks a compact token; see jwt.h.  Nothing of the payload is
 * decoded before the signature has been verified.
 */
jwt_status
jwt_verify(const jwt_keys *keys, const char *token, size_t len,
		   int64_t now, jwt_claims *claims)
{
	token_parts p;
	jwt_claims	c;
	key_alg		alg = ALG_UNUSABLE;
	json_t	   *json;
	jwt_status	st;

	if (claims != NULL)
		memset(claims, 0, sizeof(*claims));
	if (keys == NULL ||
		(!have_hs_secret(keys) && keys->public_key == NULL))
		return JWT_NO_KEY;
	if (token == NULL || len == 0 || len > JWT_MAX_TOKEN ||
		!split_token(token, len, &p))
		return JWT_MALFORMED;

	json = decode_object(p.header, p.header_len);
	if (json == NULL)
		return JWT_MALFORMED;
	st = check_header(json, keys, &alg);
	json_decref(json);
	if (st == JWT_OK)
		st = check_signature(keys, alg, &p);
	if (st != JWT_OK)
		return st;

	json = decode_object(p.payload, p.payload_len);
	if (json == NULL)
		return JWT_MALFORMED;
	memset(&c, 0, sizeof(c));
	st = check_claims(json, keys, now, &c);
	json_decref(json);
	if (st == JWT_OK && claims != NULL)
		*claims = c;
	return st;
}

/*
 * mint_payload builds the compact claims JSON; NULL when sub or the times
 * are out of range or sub is not UTF-8.  The result is freed with free().
 */
static char *
mint_payload(const char *sub, int64_t iat, int64_t exp)
{
	size_t		n = strlen(sub);
	json_t	   *obj;
	char	   *text;

	if (n == 0 || n > JWT_MAX_SUB || iat < 0 || iat > JWT_MAX_TIME ||
		exp < 0 || exp > JWT_MAX_TIME)
		return NULL;
	obj = json_pack("{s:s, s:I, s:I}", "sub", sub,
					"iat", (json_int_t) iat, "exp", (json_int_t) exp);
	if (obj == NULL)
		return NULL;
	text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	return text;
}

/*
 * append_b64url encodes data at out[*pos], followed by sep unless it is
 * '\0'.  False when outlen is too small.
 */
static bool
append_b64url(const void *data, size_t len, char sep,
			  char *out, size_t outlen, size_t *pos)
{
	int			n = b64url_encode(data, len, out + *pos, outlen - *pos);

	if (n < 0)
		return false;
	*pos += (size_t) n;
	if (sep == '\0')
		return true;
	if (*pos + 1 >= outlen)
		return false;
	out[(*pos)++] = sep;
	out[*pos] = '\0';
	return true;
}

/*
 * jwt_sign_hs256 mints an HS256 token; see jwt.h.
 */
int
jwt_sign_hs256(const unsigned char *secret, size_t secret_len,
			   const char *sub, int64_t iat, int64_t exp,
			   char *out, size_t outlen)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char	   *payload;
	size_t		pos = 0;
	bool		ok;

	if (secret == NULL || secret_len == 0 || secret_len > INT_MAX ||
		sub == NULL || out == NULL || outlen == 0)
		return -1;
	payload = mint_payload(sub, iat, exp);
	if (payload == NULL)
		return -1;
	ok = append_b64url(header, sizeof(header) - 1, '.', out, outlen, &pos) &&
		append_b64url(payload, strlen(payload), '.', out, outlen, &pos);
	free(payload);
	if (!ok ||
		HMAC(EVP_sha256(), secret, (int) secret_len,
			 (const unsigned char *) out, pos - 1, mac, &maclen) == NULL ||
		!append_b64url(mac, maclen, '\0', out, outlen, &pos) ||
		pos > JWT_MAX_TOKEN)
	{
		ERR_clear_error();
		out[0] = '\0';
		return -1;
	}
	return (int) pos;
}

/*
 * check_key_file refuses what cannot be a PEM public key file before it is
 * read: anything but a regular file (a FIFO or a device could block or
 * never end) and anything oversized.
 */
static bool
check_key_file(FILE *fp, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fileno(fp), &st) != 0)
	{
		set_err(err, errlen, "could not stat \"%s\": %s", path,
				strerror(errno));
		return false;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > KEY_FILE_MAX)
	{
		set_err(err, errlen, "\"%s\" is not a regular file of at most %d bytes",
				path, KEY_FILE_MAX);
		return false;
	}
	return true;
}

/*
 * check_key_kind accepts RSA of RSA_MIN_BITS..RSA_MAX_BITS and EC P-256
 * keys, and explains any refusal.
 */
static bool
check_key_kind(EVP_PKEY *pkey, const char *path, char *err, size_t errlen)
{
	const char *type;
	int			bits;

	switch (pkey_alg(pkey))
	{
		case ALG_RS256:
			bits = EVP_PKEY_get_bits(pkey);
			if (bits >= RSA_MIN_BITS && bits <= RSA_MAX_BITS)
				return true;
			set_err(err, errlen,
					"RSA key in \"%s\" has %d bits; RS256 needs %d to %d",
					path, bits, RSA_MIN_BITS, RSA_MAX_BITS);
			return false;
		case ALG_ES256:
			return true;
		default:
			break;
	}
	type = EVP_PKEY_get0_type_name(pkey);
	set_err(err, errlen,
			"key in \"%s\" is %s%s; only RSA (RS256) and EC P-256 (ES256) "
			"public keys are supported",
			path, type ? type : "of an unknown type",
			EVP_PKEY_is_a(pkey, "EC") ? " on another curve than P-256" : "");
	return false;
}

/*
 * jwt_load_public_key reads and vets a PEM public key; see jwt.h.
 */
void	   *
jwt_load_public_key(const char *path, char *err, size_t errlen)
{
	FILE	   *fp;
	EVP_PKEY   *pkey = NULL;

	set_err(err, errlen, "%s", "");
	if (path == NULL || path[0] == '\0')
	{
		set_err(err, errlen, "no public key file given");
		return NULL;
	}
	fp = fopen(path, "r");
	if (fp == NULL)
	{
		set_err(err, errlen, "could not open \"%s\": %s", path,
				strerror(errno));
		return NULL;
	}
	if (check_key_file(fp, path, err, errlen))
	{
		pkey = PEM_read_PUBKEY(fp, NULL, NULL, NULL);
		if (pkey == NULL)
			set_err(err, errlen,
					"\"%s\" holds no PEM public key (expected \"-----BEGIN "
					"PUBLIC KEY-----\", as \"openssl pkey -pubout\" writes)",
					path);
	}
	fclose(fp);
	ERR_clear_error();
	if (pkey != NULL && !check_key_kind(pkey, path, err, errlen))
	{
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	return pkey;
}

/*
 * jwt_free_public_key releases a key from jwt_load_public_key (NULL is
 * fine).
 */
void
jwt_free_public_key(void *key)
{
	EVP_PKEY_free((EVP_PKEY *) key);
}
