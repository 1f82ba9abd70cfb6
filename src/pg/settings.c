/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  Defines every chat.* setting.  Names, units and defaults follow the
 *	  product contract; settings the worker can apply live are PGC_SIGHUP,
 *	  those that shape processes or sockets are PGC_POSTMASTER.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "pg/secret.h"
#include "pg/settings.h"

char	   *chat_database = NULL;
char	   *chat_listen_addresses = NULL;
int			chat_port = 8765;
int			chat_workers = 1;
char	   *chat_jwt_secret = NULL;
char	   *chat_jwt_secret_file = NULL;
char	   *chat_jwt_public_key_file = NULL;
char	   *chat_jwt_audience = NULL;
char	   *chat_jwt_issuer = NULL;
int			chat_jwt_leeway_s = 30;
int			chat_heartbeat_interval_ms = 30000;
int			chat_heartbeat_timeout_ms = 90000;
int			chat_typing_timeout_ms = 3000;
int			chat_typing_debounce_ms = 2000;
int			chat_max_group_members = 50;
int			chat_max_message_bytes = 16384;
int			chat_max_frame_bytes = 65536;
char	   *chat_allowed_origins = NULL;
char	   *chat_ssl_cert_file = NULL;
char	   *chat_ssl_key_file = NULL;
int			chat_handshake_timeout_ms = 10000;
int			chat_max_connections = 100000;
int			chat_max_connections_per_ip = 0;
int			chat_max_handshakes = 2048;
int			chat_max_handshakes_per_ip = 256;
int			chat_statement_timeout_ms = 10000;
int			chat_max_outbound_bytes = 1048576;
int			chat_rate_limit = 30;
int			chat_rate_burst = 100;
int			chat_event_ring_size = 8192;
int			chat_max_online_users = 16384;
bool		chat_notify_bus = false;
bool		chat_node_relay = false;
char	   *chat_node_conninfo = NULL;
int			chat_user_rate_limit = 60;
int			chat_user_rate_burst = 200;
int			chat_notify_delay_ms = 60000;
bool		chat_notifications = true;
char	   *chat_search_config = NULL;

static void
define_string(const char *name, const char *desc, char **var,
			  const char *def, GucContext ctx, int flags)
{
	DefineCustomStringVariable(name, desc, NULL, var, def, ctx, flags,
							   NULL, NULL, NULL);
}

static void
define_int(const char *name, const char *desc, int *var, int def,
		   int min, int max, GucContext ctx, int flags)
{
	DefineCustomIntVariable(name, desc, NULL, var, def, min, max, ctx, flags,
							NULL, NULL, NULL);
}

/*
 * chat_define_settings registers every chat.* variable and reserves the
 * prefix, so a typo such as chat.prot is reported instead of ignored.
 */
void
chat_define_settings(void)
{
	define_string("chat.database", "Database the chat worker serves.",
				  &chat_database, "postgres", PGC_POSTMASTER, 0);
	define_string("chat.listen_addresses",
				  "Comma-separated addresses the worker listens on; * for all.",
				  &chat_listen_addresses, "127.0.0.1", PGC_POSTMASTER, 0);
	define_int("chat.port", "TCP port of the WebSocket/HTTP listener.",
			   &chat_port, 8765, 1, 65535, PGC_POSTMASTER, 0);
	define_int("chat.workers", "Worker processes sharing the port.",
			   &chat_workers, 1, 1, 16, PGC_POSTMASTER, 0);

	/*
	 * GUC_SUPERUSER_ONLY alone is not enough: pg_read_all_settings (and so
	 * pg_monitor) may read such settings.  The show hook masks the value for
	 * every role below superuser (SHOW, current_setting), and GUC_NO_SHOW_ALL
	 * keeps it out of pg_settings, whose reset_val and boot_val columns
	 * bypass show hooks.
	 */
	DefineCustomStringVariable("chat.jwt_secret",
							   "HS256 key for connection tokens (at least 32 bytes).",
							   NULL, &chat_jwt_secret, NULL, PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, NULL, chat_show_jwt_secret);
	define_string("chat.jwt_secret_file",
				  "File holding the HS256 key; only the server's OS user may read it.",
				  &chat_jwt_secret_file, NULL, PGC_SIGHUP, GUC_SUPERUSER_ONLY);
	define_string("chat.jwt_public_key_file",
				  "PEM public key for RS256/ES256 connection tokens.",
				  &chat_jwt_public_key_file, NULL, PGC_SIGHUP,
				  GUC_SUPERUSER_ONLY);
	define_string("chat.jwt_audience", "Required aud claim, when set.",
				  &chat_jwt_audience, NULL, PGC_SIGHUP, 0);
	define_string("chat.jwt_issuer", "Required iss claim, when set.",
				  &chat_jwt_issuer, NULL, PGC_SIGHUP, 0);
	define_int("chat.jwt_leeway", "Clock skew allowed on exp and nbf.",
			   &chat_jwt_leeway_s, 30, 0, 3600, PGC_SIGHUP, GUC_UNIT_S);
	define_int("chat.heartbeat_interval", "Server ping period.",
			   &chat_heartbeat_interval_ms, 30000, 100, INT_MAX,
			   PGC_SIGHUP, GUC_UNIT_MS);
	define_int("chat.heartbeat_timeout",
			   "A connection silent for this long is closed.",
			   &chat_heartbeat_timeout_ms, 90000, 200, INT_MAX,
			   PGC_SIGHUP, GUC_UNIT_MS);
	define_int("chat.typing_timeout",
			   "How long a typing indicator lasts after the last typing event.",
			   &chat_typing_timeout_ms, 3000, 100, 600000,
			   PGC_SIGHUP, GUC_UNIT_MS);
	define_int("chat.typing_debounce",
			   "At most one typing broadcast per user per channel per period.",
			   &chat_typing_debounce_ms, 2000, 0, 600000,
			   PGC_SIGHUP, GUC_UNIT_MS);
	define_int("chat.max_group_members", "Largest group channel.",
			   &chat_max_group_members, 50, 2, 100000, PGC_SIGHUP, 0);
	define_int("chat.max_message_bytes",
			   "Largest message content; larger is refused with too_large.",
			   &chat_max_message_bytes, 16384, 1, 1048576,
			   PGC_SIGHUP, GUC_UNIT_BYTE);
	define_int("chat.max_frame_bytes",
			   "Largest WebSocket message; larger closes with 1009.",
			   &chat_max_frame_bytes, 65536, 1024, 16777216,
			   PGC_SIGHUP, GUC_UNIT_BYTE);
	define_string("chat.allowed_origins",
				  "Comma-separated Origin values allowed to upgrade; empty allows all.",
				  &chat_allowed_origins, NULL, PGC_SIGHUP, 0);
	define_string("chat.ssl_cert_file", "PEM certificate for wss://.",
				  &chat_ssl_cert_file, NULL, PGC_POSTMASTER, 0);
	define_string("chat.ssl_key_file", "PEM private key for wss://.",
				  &chat_ssl_key_file, NULL, PGC_POSTMASTER, GUC_SUPERUSER_ONLY);
	define_int("chat.handshake_timeout",
			   "An upgrade not completed by then is closed.",
			   &chat_handshake_timeout_ms, 10000, 100, 600000,
			   PGC_SIGHUP, GUC_UNIT_MS);
	define_int("chat.max_connections",
			   "Open WebSocket connections across workers; beyond it 503.",
			   &chat_max_connections, 100000, 1, 10000000, PGC_SIGHUP, 0);
	define_int("chat.max_connections_per_ip",
			   "Open connections per client address; 0 is no limit.",
			   &chat_max_connections_per_ip, 0, 0, 10000000, PGC_SIGHUP, 0);
	define_int("chat.max_handshakes",
			   "Connections still upgrading, per worker; beyond it 503. 0 is no limit.",
			   &chat_max_handshakes, 2048, 0, 10000000, PGC_SIGHUP, 0);
	define_int("chat.max_handshakes_per_ip",
			   "Connections still upgrading per client address, per worker; beyond it 429. 0 is no limit.",
			   &chat_max_handshakes_per_ip, 256, 0, 10000000, PGC_SIGHUP, 0);
	define_int("chat.statement_timeout",
			   "Statement timeout of the worker's own queries.",
			   &chat_statement_timeout_ms, 10000, 100, INT_MAX,
			   PGC_SIGHUP, GUC_UNIT_MS);
	define_int("chat.max_outbound_bytes",
			   "Bytes queued for one slow connection before it is dropped.",
			   &chat_max_outbound_bytes, 1048576, 65536, 1073741823,
			   PGC_SIGHUP, GUC_UNIT_BYTE);

	define_int("chat.rate_limit",
			   "Frame cost per second per connection (a send costs 1); 0 is no limit.",
			   &chat_rate_limit, 30, 0, 1000000, PGC_SIGHUP, 0);
	define_int("chat.rate_burst",
			   "Frame cost a connection may burst above the rate.",
			   &chat_rate_burst, 100, 1, 1000000, PGC_SIGHUP, 0);
	define_int("chat.user_rate_limit",
			   "Frame cost per second per user, across its connections on a worker; 0 is no limit.",
			   &chat_user_rate_limit, 60, 0, 1000000, PGC_SIGHUP, 0);
	define_int("chat.user_rate_burst",
			   "Frame cost a user may burst above its rate.",
			   &chat_user_rate_burst, 200, 1, 1000000, PGC_SIGHUP, 0);

	define_int("chat.event_ring_size",
			   "Event records the shared-memory ring holds; a worker that falls further behind re-reads every table.",
			   &chat_event_ring_size, 8192, 16, 1048576, PGC_POSTMASTER, 0);
	define_int("chat.max_online_users",
			   "Distinct users the shared presence table lists online at once, over every worker and gateway; beyond, a user who connects is not listed online (a WARNING says so).",
			   &chat_max_online_users, 16384, 16, 1000000, PGC_POSTMASTER, 0);
	DefineCustomBoolVariable("chat.notify_bus",
							 "Relay committed changes as NOTIFY chat hints, for processes that share no memory with the workers.",
							 NULL, &chat_notify_bus, false, PGC_POSTMASTER, 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("chat.node_relay",
							 "On a Citus coordinator: hear what commits on the worker nodes (their NOTIFY chat bus) and pass it to this server's workers.",
							 NULL, &chat_node_relay, false, PGC_POSTMASTER, 0,
							 NULL, NULL, NULL);
	define_string("chat.node_conninfo",
				  "libpq connection options the node relay adds when it connects to a worker node (e.g. sslmode, password); host, port, database and user are the node's and this server's.",
				  &chat_node_conninfo, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY);

	DefineCustomBoolVariable("chat.notifications",
							 "Queue offline notifications (chat.notifications) when messages commit.",
							 NULL, &chat_notifications, true, PGC_SUSET, 0,
							 NULL, NULL, NULL);
	define_int("chat.notify_delay",
			   "A member online when a message commits is notified if the channel is still unread this much later.",
			   &chat_notify_delay_ms, 60000, 0, 86400000, PGC_SIGHUP,
			   GUC_UNIT_MS);
	define_string("chat.search_config",
				  "Text search configuration of chat_search and the search frame.",
				  &chat_search_config, "simple", PGC_SIGHUP, 0);

	MarkGUCPrefixReserved("chat");
}
