/*
 * config.c
 *	  chat-gateway's settings (config.h): the file, the environment, units.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/config.h"

#define SECRET_FILE_MAX 4096
#define HS256_MIN_SECRET 32

typedef enum unit
{
	U_NONE, U_MS, U_S, U_B
} unit;

typedef struct setting
{
	const char *name;
	size_t		off;
	bool		is_int;
	int			min;
	int			max;
	unit		u;
} setting;

#define S(n, f) {n, offsetof(gw_config, f), false, 0, 0, U_NONE}
#define I(n, f, lo, hi, u) {n, offsetof(gw_config, f), true, lo, hi, u}

static const setting settings[] = {
	S("chat.conninfo", conninfo),
	S("chat.node_name", node_name),
	I("chat.pool_size", pool_size, 1, 9, U_NONE),
	S("chat.listen_addresses", listen_addresses),
	I("chat.port", port, 1, 65535, U_NONE),
	S("chat.jwt_secret_file", jwt_secret_file),
	S("chat.jwt_public_key_file", jwt_public_key_file),
	S("chat.jwt_audience", jwt_audience),
	S("chat.jwt_issuer", jwt_issuer),
	I("chat.jwt_leeway", jwt_leeway_s, 0, 3600, U_S),
	I("chat.heartbeat_interval", heartbeat_interval_ms, 100, INT_MAX, U_MS),
	I("chat.heartbeat_timeout", heartbeat_timeout_ms, 200, INT_MAX, U_MS),
	I("chat.typing_timeout", typing_timeout_ms, 100, 600000, U_MS),
	I("chat.typing_debounce", typing_debounce_ms, 0, 600000, U_MS),
	I("chat.max_message_bytes", max_message_bytes, 1, 1048576, U_B),
	I("chat.max_frame_bytes", max_frame_bytes, 1024, 16777216, U_B),
	I("chat.max_outbound_bytes", max_outbound_bytes, 65536, 1073741823, U_B),
	I("chat.handshake_timeout", handshake_timeout_ms, 100, 600000, U_MS),
	I("chat.max_connections", max_connections, 1, 10000000, U_NONE),
	I("chat.max_connections_per_ip", max_connections_per_ip, 0, 10000000, U_NONE),
	I("chat.max_handshakes", max_handshakes, 0, 10000000, U_NONE),
	I("chat.max_handshakes_per_ip", max_handshakes_per_ip, 0, 10000000, U_NONE),
	I("chat.rate_limit", rate_limit, 0, 1000000, U_NONE),
	I("chat.rate_burst", rate_burst, 1, 1000000, U_NONE),
	I("chat.user_rate_limit", user_rate_limit, 0, 1000000, U_NONE),
	I("chat.user_rate_burst", user_rate_burst, 1, 1000000, U_NONE),
	I("chat.statement_timeout", statement_timeout_ms, 100, INT_MAX, U_MS),
	S("chat.allowed_origins", allowed_origins),
	S("chat.ssl_cert_file", ssl_cert_file),
	S("chat.ssl_key_file", ssl_key_file),
};

static void
defaults(gw_config *c)
{
	memset(c, 0, sizeof(*c));
	c->conninfo = strdup("dbname=postgres");
	c->node_name = strdup("gateway");
	c->pool_size = 3;
	c->listen_addresses = strdup("127.0.0.1");
	c->port = 8766;
	c->jwt_leeway_s = 30;
	c->heartbeat_interval_ms = 30000;
	c->heartbeat_timeout_ms = 90000;
	c->typing_timeout_ms = 3000;
	c->typing_debounce_ms = 2000;
	c->max_message_bytes = 16384;
	c->max_frame_bytes = 65536;
	c->max_outbound_bytes = 1048576;
	c->handshake_timeout_ms = 10000;
	c->max_connections = 100000;
	c->max_handshakes = 2048;
	c->max_handshakes_per_ip = 256;
	c->rate_limit = 30;
	c->rate_burst = 100;
	c->user_rate_limit = 60;
	c->user_rate_burst = 200;
	c->statement_timeout_ms = 10000;
}

/*
 * parse_int reads "3s", "250ms", "2min", "16kB", "90" (in the setting's
 * unit), as postgresql.conf does.
 */
static int
parse_int(const setting *s, const char *v, int *out)
{
	char	   *end;
	long long	n;
	long long	mul = 1;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (end == v || errno != 0)
		return -1;
	while (isspace((unsigned char) *end))
		end++;
	if (*end)
	{
		long long	ms;

		if (s->u == U_B)
		{
			if (strcmp(end, "B") == 0)
				mul = 1;
			else if (strcmp(end, "kB") == 0)
				mul = 1024;
			else if (strcmp(end, "MB") == 0)
				mul = 1024 * 1024;
			else
				return -1;
			n *= mul;
			if (n < s->min || n > s->max)
				return -1;
			*out = (int) n;
			return 0;
		}
		if (strcmp(end, "ms") == 0)
			ms = 1;
		else if (strcmp(end, "s") == 0)
			ms = 1000;
		else if (strcmp(end, "min") == 0)
			ms = 60000;
		else if (strcmp(end, "h") == 0)
			ms = 3600000;
		else
			return -1;
		if (s->u == U_MS)
			mul = ms;
		else if (s->u == U_S && ms >= 1000)
			mul = ms / 1000;
		else
			return -1;
	}
	n *= mul;
	if (n < s->min || n > s->max)
		return -1;
	*out = (int) n;
	return 0;
}

static int
set(gw_config *c, const char *name, const char *value, char *err,
	size_t errlen)
{
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
	{
		const setting *s = &settings[i];
		char	   *field = (char *) c + s->off;

		if (strcmp(s->name, name) != 0)
			continue;
		if (s->is_int)
		{
			if (parse_int(s, value, (int *) field) != 0)
			{
				snprintf(err, errlen, "invalid value for %s: \"%s\"", name,
						 value);
				return -1;
			}
		}
		else
		{
			char	   *dup = strdup(value);

			if (dup == NULL)
			{
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			free(*(char **) field);
			*(char **) field = dup;
		}
		return 0;
	}
	snprintf(err, errlen, "unrecognized setting \"%s\"", name);
	return -1;
}

static char *
trim(char *s)
{
	char	   *e;

	while (isspace((unsigned char) *s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char) e[-1]))
		*--e = '\0';
	return s;
}

/* read_file reads "name = value" lines; '#' starts a comment. */
static int
read_file(gw_config *c, const char *path, char *err, size_t errlen)
{
	FILE	   *f = fopen(path, "r");
	char		line[4096];
	int			lineno = 0;

	if (f == NULL)
	{
		snprintf(err, errlen, "could not open \"%s\": %s", path,
				 strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f))
	{
		char	   *p = line,
				   *eq,
				   *name,
				   *value;
		char		e2[256];
		bool		quoted = false;

		lineno++;
		/* a '#' outside quotes ends the line */
		for (char *q = p; *q; q++)
		{
			if (*q == '\'')
				quoted = !quoted;
			else if (*q == '#' && !quoted)
			{
				*q = '\0';
				break;
			}
		}
		p = trim(p);
		if (*p == '\0')
			continue;
		eq = strchr(p, '=');
		if (eq == NULL)
		{
			snprintf(err, errlen, "%s:%d: expected name = value", path, lineno);
			fclose(f);
			return -1;
		}
		*eq = '\0';
		name = trim(p);
		value = trim(eq + 1);
		if (value[0] == '\'' && strlen(value) >= 2 &&
			value[strlen(value) - 1] == '\'')
		{
			value[strlen(value) - 1] = '\0';
			value++;
		}
		if (set(c, name, value, e2, sizeof(e2)) != 0)
		{
			snprintf(err, errlen, "%s:%d: %s", path, lineno, e2);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

int
gw_config_load(gw_config *c, const char *path, char *err, size_t errlen)
{
	defaults(c);
	if (path && read_file(c, path, err, errlen) != 0)
	{
		/* nothing half-loaded outlives a refused file (a SIGHUP keeps going) */
		gw_config_free(c);
		return -1;
	}
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
	{
		char		env[80];
		const char *v;
		size_t		k = 0;

		/* chat.heartbeat_timeout -> CHAT_HEARTBEAT_TIMEOUT */
		for (const char *p = settings[i].name; *p && k < sizeof(env) - 1; p++)
			env[k++] = *p == '.' ? '_' : (char) toupper((unsigned char) *p);
		env[k] = '\0';
		v = getenv(env);
		if (v && set(c, settings[i].name, v, err, errlen) != 0)
		{
			gw_config_free(c);
			return -1;
		}
	}
	return 0;
}

void
gw_config_free(gw_config *c)
{
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
		if (!settings[i].is_int)
		{
			char	  **field = (char **) ((char *) c + settings[i].off);

			free(*field);
			*field = NULL;
		}
}

int
gw_read_secret(const char *path, unsigned char **secret, size_t *len,
			   char *err, size_t errlen)
{
	struct stat st;
	unsigned char *buf;
	ssize_t		n = 0;
	size_t		got = 0;
	int			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	*secret = NULL;
	*len = 0;
	if (fd < 0)
	{
		snprintf(err, errlen, "chat.jwt_secret_file \"%s\" cannot be opened: %s",
				 path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
		st.st_uid != geteuid() || (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		close(fd);
		snprintf(err, errlen,
				 "chat.jwt_secret_file \"%s\" must be a regular file of this OS user that no one else may access (chmod 600)",
				 path);
		return -1;
	}
	buf = malloc(SECRET_FILE_MAX + 1);
	if (buf == NULL)
	{
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while ((n = read(fd, buf + got, SECRET_FILE_MAX + 1 - got)) > 0)
		if ((got += (size_t) n) > SECRET_FILE_MAX)
			break;
	close(fd);
	if (got > 0 && buf[got - 1] == '\n')
		got--;
	if (got > 0 && buf[got - 1] == '\r')
		got--;
	if (n < 0 || got > SECRET_FILE_MAX || got < HS256_MIN_SECRET)
	{
		snprintf(err, errlen,
				 "chat.jwt_secret_file \"%s\": %s", path,
				 n < 0 ? "cannot be read" : got > SECRET_FILE_MAX ?
				 "larger than 4096 bytes" :
				 "an HS256 secret must be at least 32 bytes");
		memset(buf, 0, SECRET_FILE_MAX + 1);
		free(buf);
		return -1;
	}
	*secret = buf;
	*len = got;
	return 0;
}
