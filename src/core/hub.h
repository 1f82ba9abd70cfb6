/*
 * hub.h
 *	  Rooms (a channel's subscribers here), users (their connections here)
 *	  and subscriptions with their delivery positions.  For hub.c and the
 *	  layers above it (presence.c, typing.c, dispatch.c, handlers.c,
 *	  upgrade.c, server.c).
 */
#ifndef CHAT_HUB_H
#define CHAT_HUB_H

#include "core/conn.h"

/* A connection's subscription to one room, with its delivery position. */
struct chat_sub
{
	chat_room  *room;
	chat_conn  *conn;
	size_t		room_idx;		/* index in room->subs */
	int64_t		pos;			/* last seq sent on this connection */

	/*
	 * Where the connection's stream of this channel began: ready's or
	 * joined's lastSeq, or the lastSeq of the sync that last restarted it.
	 * Every seq in (start, pos] has been sent here, so a sync from a lastSeq
	 * in [start, pos] needs to send nothing twice.
	 */
	int64_t		start;
	bool		paused;			/* catching up via sync: no live delivery */
	bool		held;			/* resume: no live delivery until the client
								 * stated its position (hub_release) */

	/*
	 * The channel change (change_seq) that this connection made and was
	 * answered for right away (on_edit_or_delete); the broadcast of that
	 * change skips it.  0 for none.
	 */
	int64_t		answered_change;
};

/* Everyone connected here who is subscribed to one channel. */
struct chat_room
{
	chat_uuid	id;
	chat_sub  **subs;
	size_t		n_subs;
	size_t		cap_subs;
	int64_t		notified_seq;	/* highest seq known to exist (announced, or
								 * committed here) */
	int64_t		change_seen;	/* newest change_seq broadcast; -1 unknown */
	bool		pending;		/* on srv->pending_rooms */
	chat_room  *pending_next;
	uint32_t	sends_in_flight;	/* hub_hold_room: its table reads wait */
};

/* One user's connections on this worker. */
struct chat_user
{
	chat_conn **conns;
	size_t		n_conns;
	size_t		cap_conns;
	double		tokens;			/* the user's rate limit bucket, shared by its
								 * connections (handlers.c rate_ok) */
	int64_t		tokens_ms;
	char		id[];			/* in the same allocation: one chunk per user */
};

extern chat_room *hub_room(chat_server *srv, const char *channel_id,
						   bool create);
extern chat_user *hub_user(chat_server *srv, const char *user_id,
						   bool create);
extern bool hub_attach(chat_conn *c, const char *user_id);
extern chat_user *hub_detach(chat_conn *c);
extern void hub_user_release(chat_server *srv, chat_user *u);
extern chat_sub *hub_subscribe(chat_conn *c, const char *channel_id,
							   int64_t pos, int64_t last_change);
extern void hub_unsubscribe(chat_conn *c, chat_sub *s);
extern chat_sub *hub_find_sub(chat_conn *c, const char *channel_id);
extern chat_sub *hub_join_now(chat_conn *c, const char *channel_id);
extern bool hub_catch_up(chat_sub *s, int64_t upto);
extern void hub_hold(chat_conn *c, int64_t until_ms);
extern void hub_release(chat_sub *s);
extern void hub_release_held(chat_conn *c);
extern bool hub_deliver_to(chat_sub *s, chat_frame *f, int64_t seq);
extern void hub_resume(chat_conn *c);
extern void hub_announce(chat_server *srv, const char *channel_id,
						 int64_t seq);
extern void hub_deliver_pending(chat_server *srv);

/*
 * hub_hold_room keeps channel_id's room from reading its announced messages
 * from the table while a send of this host to it is being committed (a
 * pipelined batch, handlers.c): the sender's ack must come before its
 * message would, and the other subscribers get it from memory with the
 * ack.  Returns the room (NULL: nobody here listens), which hub_unhold_room
 * lets go once the batch is acked.
 */
extern chat_room *hub_hold_room(chat_server *srv, const char *channel_id);
extern void hub_unhold_room(chat_server *srv, chat_room *r);
extern void hub_deliver_committed(chat_server *srv, const chat_message *m,
								  chat_conn *except);
extern void hub_broadcast_frame(chat_room *room, chat_frame *f,
								const chat_user *except_user, uint64_t mark);
extern void hub_broadcast_json(chat_room *room, proto_text json,
							   const chat_user *except_user);
extern void hub_member_joined(chat_server *srv, const char *channel_id,
							  const char *user_id);
extern void hub_member_left(chat_server *srv, const char *channel_id,
							const char *user_id);
extern void hub_members_now(chat_server *srv, const char *channel_id,
							char *const *members, size_t n);
extern bool hub_members_changed(chat_server *srv, const char *channel_id);
extern void hub_message_changed(chat_server *srv, const char *channel_id,
								int64_t seq, char kind);
extern void hub_read_moved(chat_server *srv, const char *channel_id,
						   int64_t seq, const char *user_id);
extern void hub_room_resync(chat_server *srv, chat_room *r);
extern void hub_resync_members(chat_server *srv);

#endif							/* CHAT_HUB_H */
