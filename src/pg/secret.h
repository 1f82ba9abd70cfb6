/*-------------------------------------------------------------------------
 *
 * secret.h
 *	  The HS256 signing secret: from chat.jwt_secret_file or chat.jwt_secret,
 *	  checked for length (secret.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHAT_SECRET_H
#define CHAT_SECRET_H

#include <stddef.h>

/* RFC 7518 3.2: an HS256 key must be at least as long as the hash. */
#define CHAT_HS256_MIN_SECRET 32

/* chat_secret_state: what chat_hs_secret found. */
typedef enum chat_secret_state
{
	CHAT_SECRET_OK,
	CHAT_SECRET_NONE,			/* neither setting is set */
	CHAT_SECRET_BAD				/* set, but unusable: the reason in err */
} chat_secret_state;

/*
 * chat_hs_secret reads the secret into a palloc'd buffer in the current
 * memory context (*secret, *len; not NUL-terminated), or explains in err
 * why not.  Never puts any byte of the secret in err.
 */
extern chat_secret_state chat_hs_secret(char **secret, size_t *len,
										char *err, size_t errlen);

/* chat_secret_free wipes and frees what chat_hs_secret returned. */
extern void chat_secret_free(char *secret, size_t len);

/* The show hook of chat.jwt_secret: a mask for everyone but superusers. */
extern const char *chat_show_jwt_secret(void);

#endif							/* CHAT_SECRET_H */
