/*-------------------------------------------------------------------------
 *
 * secret.c
 *	  The HS256 signing secret.  It comes from chat.jwt_secret_file (a file
 *	  only the server's OS user may read) or else from chat.jwt_secret, and
 *	  is refused when shorter than 32 bytes: a short HMAC key can be
 *	  brute-forced from a single token, and with it any user impersonated.
 *
 *	  chat.jwt_secret is GUC_SUPERUSER_ONLY, but PostgreSQL opens such
 *	  settings to pg_read_all_settings (which pg_monitor has); its show hook
 *	  therefore prints a mask to every role below superuser.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"

#include "pg/secret.h"
#include "pg/settings.h"

/* A secret file larger than this is a mistake (a key pair, a log...). */
#define SECRET_FILE_MAX 4096

const char *
chat_show_jwt_secret(void)
{
	if (chat_jwt_secret == NULL || chat_jwt_secret[0] == '\0')
		return "";
	if (superuser())
		return chat_jwt_secret;
	return "********";
}

/*
 * read_secret_file reads path, which must be a regular file of this OS
 * user that no one else may access (as PostgreSQL asks of ssl_key_file),
 * without its final line break.
 */
static chat_secret_state
read_secret_file(const char *path, char **secret, size_t *len, char *err,
				 size_t errlen)
{
	struct stat st;
	char	   *buf;
	ssize_t		n;
	size_t		got = 0;
	int			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
	{
		snprintf(err, errlen, "chat.jwt_secret_file \"%s\" cannot be opened: %m",
				 path);
		return CHAT_SECRET_BAD;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		snprintf(err, errlen, "chat.jwt_secret_file \"%s\" is not a regular file",
				 path);
		return CHAT_SECRET_BAD;
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		close(fd);
		snprintf(err, errlen,
				 "chat.jwt_secret_file \"%s\" must belong to the server's OS user and be accessible by no one else (chmod 600)",
				 path);
		return CHAT_SECRET_BAD;
	}
	buf = palloc(SECRET_FILE_MAX + 1);
	while ((n = read(fd, buf + got, SECRET_FILE_MAX + 1 - got)) > 0)
		if ((got += (size_t) n) > SECRET_FILE_MAX)
			break;
	close(fd);
	if (n < 0 || got > SECRET_FILE_MAX)
	{
		chat_secret_free(buf, SECRET_FILE_MAX + 1);
		snprintf(err, errlen, n < 0 ?
				 "chat.jwt_secret_file \"%s\" cannot be read" :
				 "chat.jwt_secret_file \"%s\" is larger than 4096 bytes", path);
		return CHAT_SECRET_BAD;
	}
	if (got > 0 && buf[got - 1] == '\n')
		got--;
	if (got > 0 && buf[got - 1] == '\r')
		got--;
	*secret = buf;
	*len = got;
	return CHAT_SECRET_OK;
}

chat_secret_state
chat_hs_secret(char **secret, size_t *len, char *err, size_t errlen)
{
	chat_secret_state st;
	const char *what;

	*secret = NULL;
	*len = 0;
	if (chat_jwt_secret_file && chat_jwt_secret_file[0])
	{
		st = read_secret_file(chat_jwt_secret_file, secret, len, err, errlen);
		if (st != CHAT_SECRET_OK)
			return st;
		what = "chat.jwt_secret_file";
	}
	else if (chat_jwt_secret && chat_jwt_secret[0])
	{
		*len = strlen(chat_jwt_secret);
		*secret = palloc(*len);
		memcpy(*secret, chat_jwt_secret, *len);
		what = "chat.jwt_secret";
	}
	else
		return CHAT_SECRET_NONE;
	if (*len < CHAT_HS256_MIN_SECRET)
	{
		snprintf(err, errlen,
				 "%s is %zu bytes long; an HS256 secret must be at least %d bytes (RFC 7518 section 3.2)",
				 what, *len, CHAT_HS256_MIN_SECRET);
		chat_secret_free(*secret, *len);
		*secret = NULL;
		*len = 0;
		return CHAT_SECRET_BAD;
	}
	return CHAT_SECRET_OK;
}

void
chat_secret_free(char *secret, size_t len)
{
	if (secret == NULL)
		return;
	explicit_bzero(secret, len);
	pfree(secret);
}
