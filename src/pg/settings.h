/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  The chat.* configuration variables (GUCs), defined in settings.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHAT_SETTINGS_H
#define CHAT_SETTINGS_H

extern char *chat_database;
extern char *chat_listen_addresses;
extern int	chat_port;
extern int	chat_workers;
extern char *chat_jwt_secret;
extern char *chat_jwt_secret_file;
extern char *chat_jwt_public_key_file;
extern char *chat_jwt_audience;
extern char *chat_jwt_issuer;
extern int	chat_jwt_leeway_s;
extern int	chat_heartbeat_interval_ms;
extern int	chat_heartbeat_timeout_ms;
extern int	chat_typing_timeout_ms;
extern int	chat_typing_debounce_ms;
extern int	chat_max_group_members;
extern int	chat_max_message_bytes;
extern int	chat_max_frame_bytes;
extern char *chat_allowed_origins;
extern char *chat_ssl_cert_file;
extern char *chat_ssl_key_file;
extern int	chat_handshake_timeout_ms;
extern int	chat_max_connections;
extern int	chat_max_connections_per_ip;
extern int	chat_max_handshakes;
extern int	chat_max_handshakes_per_ip;
extern int	chat_statement_timeout_ms;
extern int	chat_max_outbound_bytes;
extern int	chat_rate_limit;
extern int	chat_rate_burst;
extern int	chat_event_ring_size;
extern int	chat_max_online_users;
extern bool chat_notify_bus;
extern bool chat_node_relay;
extern char *chat_node_conninfo;
extern int	chat_user_rate_limit;
extern int	chat_user_rate_burst;
extern int	chat_notify_delay_ms;
extern bool chat_notifications;
extern char *chat_search_config;

extern void chat_define_settings(void);

#endif							/* CHAT_SETTINGS_H */
