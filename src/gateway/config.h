/*
 * config.h
 *	  chat-gateway's settings: named like the server's chat.* settings,
 *	  read from a configuration file (postgresql.conf syntax) and then from
 *	  the environment (chat.heartbeat_timeout <- CHAT_HEARTBEAT_TIMEOUT),
 *	  which wins.  See docs/configuration.md, "chat-gateway".
 */
#ifndef CHAT_GATEWAY_CONFIG_H
#define CHAT_GATEWAY_CONFIG_H

#include <stddef.h>

typedef struct gw_config
{
	/* the gateway's own */
	char	   *conninfo;		/* chat.conninfo: libpq connection string */
	char	   *node_name;		/* chat.node_name: for the server's log */
	int			pool_size;		/* chat.pool_size: request connections */

	/* as the server's */
	char	   *listen_addresses;
	int			port;
	char	   *jwt_secret_file;
	char	   *jwt_public_key_file;
	char	   *jwt_audience;
	char	   *jwt_issuer;
	int			jwt_leeway_s;
	int			heartbeat_interval_ms;
	int			heartbeat_timeout_ms;
	int			typing_timeout_ms;
	int			typing_debounce_ms;
	int			max_message_bytes;
	int			max_frame_bytes;
	int			max_outbound_bytes;
	int			handshake_timeout_ms;
	int			max_connections;
	int			max_connections_per_ip;
	int			max_handshakes;
	int			max_handshakes_per_ip;
	int			rate_limit;
	int			rate_burst;
	int			user_rate_limit;
	int			user_rate_burst;
	int			statement_timeout_ms;
	char	   *allowed_origins;
	char	   *ssl_cert_file;
	char	   *ssl_key_file;
} gw_config;

/*
 * gw_config_load fills cfg with the defaults, then path's settings (path
 * may be NULL), then the environment's.  -1 with a reason in err, and
 * then cfg holds nothing to free.
 */
extern int	gw_config_load(gw_config *cfg, const char *path, char *err,
						   size_t errlen);
extern void gw_config_free(gw_config *cfg);

/*
 * gw_read_secret reads an HS256 secret file as the server reads
 * chat.jwt_secret_file: this OS user's regular file, mode 0600, at most
 * 4096 bytes, without its final line break, at least 32 bytes.
 */
extern int	gw_read_secret(const char *path, unsigned char **secret,
						   size_t *len, char *err, size_t errlen);

#endif							/* CHAT_GATEWAY_CONFIG_H */
