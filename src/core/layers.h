/*
 * layers.h
 *	  The entry points of the layers above the hub, each called only from
 *	  above it (docs/architecture.md, "The layers"): the loop (server.c)
 *	  calls upgrade.c, handlers.c and dispatch.c; those call presence.c
 *	  and typing.c; presence and typing call the hub.
 */
#ifndef CHAT_LAYERS_H
#define CHAT_LAYERS_H

#include "core/hub.h"

/* A send waiting for this iteration's group commit. */
struct pending_send
{
	chat_conn  *conn;			/* NULL once the connection died */
	char		ref[PROTO_MAX_REF + 1];
	chat_cmd	cmd;			/* owns content/attachments */
};

/*
 * A group-commit batch the store is persisting while the loop goes on
 * (store.batch_start): its sends, their items, when it started.
 */
typedef struct inflight_batch
{
	pending_send *sends;
	chat_send_item *items;
	chat_room **rooms;			/* each send's room, held (hub_hold_room) */
	size_t		n;
	int64_t		t0;
} inflight_batch;

/* at most this many batches in flight, oldest first */
#define CHAT_MAX_INFLIGHT 8

/* upgrade.c */
extern void upgrade_on_head(chat_conn *c, const http_request *req);

/* typing.c */
extern void typing_event(chat_server *srv, const char *channel_id,
						 const char *user_id);
extern void typing_stop(chat_server *srv, const char *channel_id,
						const char *user_id);
extern void typing_stop_user(chat_server *srv, const char *user_id);
extern int64_t typing_expire(chat_server *srv);
extern void typing_remote(chat_server *srv, const chat_event *ev);
extern void typing_destroy(chat_server *srv);

/* presence.c */
extern void presence_changed(chat_server *srv, const char *user_id,
							 bool online);
extern void presence_remote(chat_server *srv, const chat_event *ev);
extern void presence_connection(chat_server *srv, const char *user_id,
								bool up);

/* handlers.c */
extern void handle_text(chat_conn *c, const char *buf, size_t len);
extern void handle_binary(chat_conn *c);
extern void batch_commit(chat_server *srv);
extern void batch_finish_all(chat_server *srv);
extern void send_error(chat_conn *c, chat_err err, const char *message,
					   const char *client_id, const char *ref);

#endif							/* CHAT_LAYERS_H */
