/*
 * jwt.h
 *	  JSON Web Token verification (and HS256 minting) with OpenSSL.
 *
 *	  The algorithm is pinned by the configured key, never chosen by the
 *	  token: an HS256 secret accepts only HS256, an RSA public key only RS256,
 *	  an EC P-256 public key only ES256.  "none" is always refused.
 */
#ifndef CHAT_JWT_H
#define CHAT_JWT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Longest user id (the sub claim) the product accepts, in bytes. */
#define JWT_MAX_SUB 200
/* Longest token accepted at all; anything longer is refused unparsed. */
#define JWT_MAX_TOKEN 8192
/*
 * Numeric date claims (exp, nbf, iat) must lie in 0..JWT_MAX_TIME
 * (9999-12-31T23:59:59Z); anything else makes the token malformed.
 */
#define JWT_MAX_TIME INT64_C(253402300799)

typedef struct jwt_keys
{
	const unsigned char *hs_secret; /* NULL: HS256 not accepted */
	size_t		hs_secret_len;
	void	   *public_key;		/* EVP_PKEY * (RSA or EC P-256) or NULL */
	const char *audience;		/* required aud when non-NULL and non-empty */
	const char *issuer;			/* required iss when non-NULL and non-empty */
	int			leeway_s;		/* clock skew allowed on exp/nbf */
} jwt_keys;

typedef struct jwt_claims
{
	char		sub[JWT_MAX_SUB + 1];
	int64_t		exp;			/* 0 when absent */
	int64_t		nbf;			/* 0 when absent */
	int64_t		iat;			/* 0 when absent */
} jwt_claims;

typedef enum jwt_status
{
	JWT_OK = 0,
	JWT_MALFORMED,				/* not three base64url parts, bad JSON, ... */
	JWT_BAD_ALG,				/* alg none / not the key's algorithm */
	JWT_BAD_SIGNATURE,
	JWT_EXPIRED,
	JWT_NOT_YET_VALID,
	JWT_BAD_AUDIENCE,
	JWT_BAD_ISSUER,
	JWT_NO_KEY,					/* nothing configured: refuse everything */
	JWT_MISSING_CLAIM			/* no sub, or no exp */
} jwt_status;

/*
 * jwt_verify checks token[0..len) against keys at time now (unix seconds).
 * On JWT_OK it fills *claims (which is zeroed on any failure).  A token must
 * carry sub and exp.  Never logs, never keeps a pointer into token, and
 * leaves no error of its own on the OpenSSL error queue.
 */
extern jwt_status jwt_verify(const jwt_keys *keys, const char *token,
							 size_t len, int64_t now, jwt_claims *claims);

/* jwt_status_reason gives a short, token-free reason for HTTP 401 bodies. */
extern const char *jwt_status_reason(jwt_status status);

/*
 * jwt_sign_hs256 mints {"sub":sub,"iat":iat,"exp":exp} signed with secret
 * into out (NUL-terminated).  Returns the length, or -1 if out is too small
 * or sub is too long.
 */
extern int	jwt_sign_hs256(const unsigned char *secret, size_t secret_len,
						   const char *sub, int64_t iat, int64_t exp,
						   char *out, size_t outlen);

/*
 * jwt_load_public_key reads a PEM public key ("BEGIN PUBLIC KEY": RSA of
 * 2048..8192 bits, or EC P-256) from path.  Returns an EVP_PKEY * to free
 * with jwt_free_public_key, or NULL with a reason in err.
 */
extern void *jwt_load_public_key(const char *path, char *err, size_t errlen);
extern void jwt_free_public_key(void *key);

#endif							/* CHAT_JWT_H */
