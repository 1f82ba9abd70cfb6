/*
 * hub.c
 *	  Rooms, users and in-order delivery.
 *
 *	  Every (connection, channel) pair has a delivery position: the last seq
 *	  written to that connection, as a message frame or as the ack of its own
 *	  send.  Nothing with a higher seq is ever written before everything in
 *	  between, so each connection sees a channel's messages gap-free and in
 *	  seq order.  Notifications only say "seq N exists in channel C"; the
 *	  rows are read from the table, which stays the source of truth, and
 *	  each message is serialised once per broadcast, whatever the number of
 *	  receivers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hub.h"
#include "core/vec.h"

/* Largest page read from the table for one delivery step. */
#define HUB_FETCH_PAGE 500

chat_room  *
hub_room(chat_server *srv, const char *channel_id, bool create)
{
	chat_room  *r = map_get(&srv->rooms, channel_id);

	if (r || !create)
		return r;
	r = calloc(1, sizeof(chat_room));
	if (r == NULL)
		return NULL;
	snprintf(r->id, sizeof(r->id), "%s", channel_id);
	r->change_seen = -1;
	if (map_put(&srv->rooms, channel_id, r) != 0)
	{
		free(r);
		return NULL;
	}
	return r;
}

/* hub_room_release frees an empty room that no pending work refers to. */
static void
hub_room_release(chat_server *srv, chat_room *r)
{
	if (r->n_subs > 0 || r->pending || r->sends_in_flight > 0)
		return;
	map_del(&srv->rooms, r->id);
	free(r->subs);
	free(r);
}

chat_user  *
hub_user(chat_server *srv, const char *user_id, bool create)
{
	chat_user  *u = map_get(&srv->users, user_id);
	size_t		len;

	if (u || !create)
		return u;
	len = strlen(user_id);
	u = calloc(1, sizeof(chat_user) + len + 1);
	if (u == NULL)
		return NULL;
	memcpy(u->id, user_id, len + 1);
	if (map_put(&srv->users, user_id, u) != 0)
	{
		free(u);
		return NULL;
	}
	return u;
}

/*
 * hub_attach records c as one of user_id's connections; false when out of
 * memory.  What a new connection means beyond the hub (presence) is the
 * caller's business.
 */
bool
hub_attach(chat_conn *c, const char *user_id)
{
	chat_user  *u = hub_user(c->srv, user_id, true);

	if (u == NULL)
		return false;
	if (vec_reserve((void **) &u->conns, &u->cap_conns, u->n_conns + 1,
					sizeof(chat_conn *)) != 0)
	{
		hub_user_release(c->srv, u);
		return false;
	}
	u->conns[u->n_conns++] = c;
	c->user = u;
	return true;
}

/*
 * hub_detach drops every subscription of c and forgets it as the user's.
 * Returns that user (NULL if c had none), kept until hub_user_release so
 * the caller can act on it (typing, presence) first.
 */
chat_user  *
hub_detach(chat_conn *c)
{
	chat_user  *u = c->user;

	while (c->n_subs > 0)
		hub_unsubscribe(c, c->subs[c->n_subs - 1]);
	if (u == NULL)
		return NULL;
	for (size_t i = 0; i < u->n_conns; i++)
		if (u->conns[i] == c)
		{
			u->conns[i] = u->conns[--u->n_conns];
			break;
		}
	c->user = NULL;
	return u;
}

/* hub_user_release frees u once it has no connection left here. */
void
hub_user_release(chat_server *srv, chat_user *u)
{
	if (u->n_conns > 0)
		return;
	map_del(&srv->users, u->id);
	free(u->conns);
	free(u);
}

chat_sub   *
hub_find_sub(chat_conn *c, const char *channel_id)
{
	for (size_t i = 0; i < c->n_subs; i++)
		if (strcmp(c->subs[i]->room->id, channel_id) == 0)
			return c->subs[i];
	return NULL;
}

chat_sub   *
hub_subscribe(chat_conn *c, const char *channel_id, int64_t pos,
			  int64_t last_change)
{
	chat_room  *r;
	chat_sub   *s = hub_find_sub(c, channel_id);

	if (s)
		return s;
	r = hub_room(c->srv, channel_id, true);
	if (r == NULL)
		return NULL;
	s = calloc(1, sizeof(chat_sub));
	if (s == NULL ||
		vec_reserve((void **) &r->subs, &r->cap_subs, r->n_subs + 1,
					sizeof(chat_sub *)) != 0 ||
		vec_reserve((void **) &c->subs, &c->cap_subs, c->n_subs + 1,
					sizeof(chat_sub *)) != 0)
	{
		free(s);
		hub_room_release(c->srv, r);
		return NULL;
	}

	/*
	 * The first subscriber's view of the change counter starts the room's;
	 * later hints move it.  A later subscriber's (newer) view must not:
	 * changes it already saw may still be unannounced to the others.
	 */
	if (r->change_seen < 0)
		r->change_seen = last_change;
	s->room = r;
	s->conn = c;
	s->pos = pos;
	s->start = pos;
	s->room_idx = r->n_subs;
	r->subs[r->n_subs++] = s;
	c->subs[c->n_subs++] = s;
	return s;
}

void
hub_unsubscribe(chat_conn *c, chat_sub *s)
{
	chat_room  *r = s->room;

	/* swap-remove from the room, keeping room_idx right */
	r->subs[s->room_idx] = r->subs[--r->n_subs];
	r->subs[s->room_idx]->room_idx = s->room_idx;
	for (size_t i = 0; i < c->n_subs; i++)
		if (c->subs[i] == s)
		{
			c->subs[i] = c->subs[--c->n_subs];
			break;
		}
	free(s);
	hub_room_release(c->srv, r);
}

/* hub_fetch reads one page of (after, upto] from the table. */
static chat_err
hub_fetch(chat_server *srv, const char *channel_id, int64_t after,
		  int64_t upto, chat_message **msgs, size_t *n)
{
	int64_t		want = upto - after;

	if (want > HUB_FETCH_PAGE)
		want = HUB_FETCH_PAGE;
	return srv->store.since(srv->store.ctx, channel_id, NULL, after,
							(int) want, msgs, n);
}

/*
 * hub_deliver_to writes message frame f (seq) to s's connection.  A
 * connection whose queue cannot take it falls behind ("lagging"): its
 * position stays, and it catches up from the table once its queue drains,
 * so a burst never costs memory beyond the bound, nor the connection.
 */
bool
hub_deliver_to(chat_sub *s, chat_frame *f, int64_t seq)
{
	chat_conn  *c = s->conn;

	if (c->state != CONN_WS || c->lagging)
		return false;
	if (c->out.bytes + f->len > (size_t) c->srv->cfg.max_outbound_bytes)
	{
		conn_set_lagging(c);
		return false;
	}
	conn_send_frame(c, f);
	s->pos = seq;
	c->srv->stats.deliveries++;
	return true;
}

/* hub_live: s takes live deliveries (not catching up in any way). */
static bool
hub_live(const chat_sub *s)
{
	return !s->paused && !s->conn->lagging && s->conn->state == CONN_WS;
}

/* hub_message_frame serialises m once into a shareable frame. */
static chat_frame *
hub_message_frame(const chat_message *m)
{
	proto_text	obj = proto_message_object(m);
	proto_text	frame;
	chat_frame *f;

	if (obj.ptr == NULL)
		return NULL;
	frame = proto_message_frame(obj.ptr, obj.len);
	free(obj.ptr);
	if (frame.ptr == NULL)
		return NULL;
	f = frame_text(frame.ptr, frame.len);
	free(frame.ptr);
	return f;
}

/*
 * hub_catch_up writes every message of s's channel after s->pos up to and
 * including upto to s's connection.  Used before an ack, so the ack never
 * overtakes a message, and for a connection left behind.
 */
bool
hub_catch_up(chat_sub *s, int64_t upto)
{
	chat_server *srv = s->conn->srv;

	while (s->pos < upto && s->conn->state == CONN_WS && !s->conn->lagging)
	{
		chat_message *msgs = NULL;
		size_t		n = 0;

		if (hub_fetch(srv, s->room->id, s->pos, upto, &msgs, &n) != CHAT_OK)
			return false;
		if (n == 0)
		{
			/* a store may hand back an empty array: it is still ours */
			chat_messages_free(msgs, n);
			break;
		}
		for (size_t i = 0; i < n; i++)
		{
			chat_frame *f;
			bool		ok;

			if (msgs[i].seq != s->pos + 1)
				continue;
			f = hub_message_frame(&msgs[i]);
			if (f == NULL)
				break;
			ok = hub_deliver_to(s, f, msgs[i].seq);
			frame_unref(f);
			if (!ok)
				break;
		}
		chat_messages_free(msgs, n);
	}
	return true;
}

/*
 * hub_hold keeps every channel of c (a connection that asked to resume)
 * from live delivery until the client has stated its positions with sync,
 * or until until_ms: nothing may reach it before it said where it is.
 */
void
hub_hold(chat_conn *c, int64_t until_ms)
{
	for (size_t i = 0; i < c->n_subs; i++)
	{
		c->subs[i]->held = true;
		c->subs[i]->paused = true;
	}
	c->hold_until_ms = until_ms;
}

/*
 * hub_release starts live delivery of a held channel from its position
 * (ready's lastSeq unless a sync moved it): whatever arrived while it was
 * held comes from the table first, in order.
 */
void
hub_release(chat_sub *s)
{
	if (!s->held)
		return;
	s->held = false;
	s->paused = false;
	if (s->room->notified_seq > s->pos)
		hub_catch_up(s, s->room->notified_seq);
}

/* hub_release_held releases every channel of c still held. */
void
hub_release_held(chat_conn *c)
{
	c->hold_until_ms = 0;
	for (size_t i = 0; i < c->n_subs; i++)
		hub_release(c->subs[i]);
}

/*
 * hub_resume catches a lagging connection up once its queue has drained:
 * every live channel from its position, until done or full again.
 */
void
hub_resume(chat_conn *c)
{
	c->lagging = false;
	for (size_t i = 0; i < c->n_subs && !c->lagging; i++)
		if (!c->subs[i]->paused)
			hub_catch_up(c->subs[i], INT64_MAX);
}

/* hub_announce notes that seq exists in channel_id; delivery comes later. */
void
hub_announce(chat_server *srv, const char *channel_id, int64_t seq)
{
	chat_room  *r = hub_room(srv, channel_id, false);

	if (r == NULL)
		return;					/* nobody here listens to that channel */
	if (seq > r->notified_seq)
		r->notified_seq = seq;
	if (!r->pending)
	{
		r->pending = true;
		r->pending_next = srv->pending_rooms;
		srv->pending_rooms = r;
	}
}

/* hub_room_deliver brings every live subscriber of r up to r->notified_seq */
static void
hub_room_deliver(chat_server *srv, chat_room *r)
{
	int64_t		target = r->notified_seq;

	for (;;)
	{
		int64_t		min_pos = target;
		chat_message *msgs = NULL;
		size_t		n = 0;

		for (size_t i = 0; i < r->n_subs; i++)
			if (hub_live(r->subs[i]) && r->subs[i]->pos < min_pos)
				min_pos = r->subs[i]->pos;
		if (min_pos >= target)
			return;
		if (hub_fetch(srv, r->id, min_pos, target, &msgs, &n) != CHAT_OK ||
			n == 0)
		{
			chat_messages_free(msgs, n);
			return;
		}
		for (size_t i = 0; i < n; i++)
		{
			chat_frame *f = hub_message_frame(&msgs[i]);

			if (f == NULL)
				break;

			/*
			 * A message ends its sender's typing, whoever sent it (SQL,
			 * another worker or host): "typing_stopped" goes out first.
			 */
			if (srv->on_message_out && srv->typing.used > 0)
				srv->on_message_out(srv, r->id, msgs[i].sender_id);
			for (size_t j = 0; j < r->n_subs; j++)
			{
				chat_sub   *s = r->subs[j];

				if (!hub_live(s) || s->pos != msgs[i].seq - 1)
					continue;
				hub_deliver_to(s, f, msgs[i].seq);
			}
			frame_unref(f);
		}
		chat_messages_free(msgs, n);
	}
}

/* hub_deliver_pending runs delivery for every announced room. */
void
hub_deliver_pending(chat_server *srv)
{
	chat_room  *held = NULL;

	while (srv->pending_rooms)
	{
		chat_room  *r = srv->pending_rooms;

		srv->pending_rooms = r->pending_next;
		if (r->sends_in_flight > 0)
		{
			/* stays announced: delivered once its sends are acked */
			r->pending_next = held;
			held = r;
			continue;
		}
		r->pending = false;
		r->pending_next = NULL;
		hub_room_deliver(srv, r);
		hub_room_release(srv, r);
	}
	srv->pending_rooms = held;
}

chat_room  *
hub_hold_room(chat_server *srv, const char *channel_id)
{
	chat_room  *r = hub_room(srv, channel_id, false);

	if (r)
		r->sends_in_flight++;
	return r;
}

void
hub_unhold_room(chat_server *srv, chat_room *r)
{
	if (--r->sends_in_flight == 0)
		hub_room_release(srv, r);
}

/*
 * hub_deliver_committed delivers a message this worker just committed,
 * straight from memory to every subscriber that is exactly one behind; the
 * rest (and the notification that follows) go through the table.
 */
void
hub_deliver_committed(chat_server *srv, const chat_message *m,
					  chat_conn *except)
{
	chat_room  *r = hub_room(srv, m->channel_id, false);
	chat_frame *f = NULL;
	bool		behind = false;

	if (r == NULL)
		return;
	/* a held subscription, released later, must know this seq exists */
	if (m->seq > r->notified_seq)
		r->notified_seq = m->seq;
	for (size_t j = 0; j < r->n_subs; j++)
	{
		chat_sub   *s = r->subs[j];

		if (s->conn == except || !hub_live(s) || s->pos >= m->seq)
			continue;
		if (s->pos != m->seq - 1)
		{
			behind = true;
			continue;
		}
		if (f == NULL && (f = hub_message_frame(m)) == NULL)
			break;
		hub_deliver_to(s, f, m->seq);
	}
	if (f)
		frame_unref(f);
	if (behind)
		hub_announce(srv, m->channel_id, m->seq);
}

/*
 * hub_broadcast_frame sends f to every connection in room but those of
 * except_user.  A nonzero mark (++srv->broadcast_mark) makes it once per
 * connection: one broadcast over several rooms, or one that some
 * connections have already had, passes the same mark, and a connection
 * that carries it is skipped.
 */
void
hub_broadcast_frame(chat_room *room, chat_frame *f,
					const chat_user *except_user, uint64_t mark)
{
	if (room == NULL || f == NULL)
		return;
	for (size_t i = 0; i < room->n_subs; i++)
	{
		chat_conn  *c = room->subs[i]->conn;

		if (c->user == except_user || (mark != 0 && c->broadcast_mark == mark))
			continue;
		if (mark != 0)
			c->broadcast_mark = mark;
		conn_send_frame(c, f);
	}
}

/*
 * hub_broadcast_json sends one encoded event to every connection in room;
 * the caller keeps json.
 */
void
hub_broadcast_json(chat_room *room, proto_text json,
				   const chat_user *except_user)
{
	chat_frame *f;

	if (json.ptr == NULL || room == NULL)
		return;
	f = frame_text(json.ptr, json.len);
	hub_broadcast_frame(room, f, except_user, 0);
	if (f)
		frame_unref(f);
}

void
hub_member_joined(chat_server *srv, const char *channel_id,
				  const char *user_id)
{
	chat_user  *u = hub_user(srv, user_id, false);
	chat_channel_info info;
	bool		have = false;

	if (u == NULL)
		return;
	memset(&info, 0, sizeof(info));
	for (size_t i = 0; i < u->n_conns; i++)
	{
		chat_conn  *c = u->conns[i];
		proto_text	json;

		if (c->state != CONN_WS || hub_find_sub(c, channel_id))
			continue;
		if (!have)
		{
			if (srv->store.channel_for_user(srv->store.ctx, channel_id,
											user_id, &info) != CHAT_OK)
				return;
			have = true;
		}
		if (hub_subscribe(c, channel_id, info.last_seq, info.last_change) == NULL)
			continue;
		json = proto_joined(&info);
		conn_send_owned(c, json);
	}
	if (have)
		chat_channel_info_clear(&info);
}

/*
 * hub_join_now subscribes c to channel_id if the table says its user is a
 * member, sending "joined" as the notification would have.
 */
chat_sub   *
hub_join_now(chat_conn *c, const char *channel_id)
{
	chat_server *srv = c->srv;
	chat_channel_info info;
	chat_sub   *s = NULL;
	proto_text	json;

	if (c->user == NULL ||
		srv->store.channel_for_user(srv->store.ctx, channel_id, c->user->id,
									&info) != CHAT_OK)
		return NULL;
	s = hub_subscribe(c, channel_id, info.last_seq, info.last_change);
	if (s)
	{
		json = proto_joined(&info);
		conn_send_owned(c, json);
	}
	chat_channel_info_clear(&info);
	return s;
}

void
hub_member_left(chat_server *srv, const char *channel_id,
				const char *user_id)
{
	chat_user  *u = hub_user(srv, user_id, false);

	if (u == NULL)
		return;
	for (size_t i = 0; i < u->n_conns; i++)
	{
		chat_conn  *c = u->conns[i];
		chat_sub   *s = hub_find_sub(c, channel_id);
		proto_text	json;

		if (s == NULL)
			continue;
		/* stop delivery first: nothing of the channel may follow "left" */
		hub_unsubscribe(c, s);
		json = proto_left(channel_id);
		conn_send_owned(c, json);
	}
}

/*
 * hub_members_now makes this host's subscriptions of channel_id match its
 * members as the table lists them: "left" for a connected user no longer
 * among them, "joined" for one newly among them.  For a host whose hints
 * can arrive after its own sends commit (a gateway hears a removal from
 * the bus relay, later), so that a send committed after a removal does not
 * reach the removed user first.
 */
void
hub_members_now(chat_server *srv, const char *channel_id,
				char *const *members, size_t n)
{
	chat_room  *r;
	bool		again = true;

	/* hub_member_left changes the room's subs (or frees it): scan again */
	while (again && (r = hub_room(srv, channel_id, false)) != NULL)
	{
		again = false;
		for (size_t i = 0; i < r->n_subs; i++)
		{
			chat_user  *u = r->subs[i]->conn->user;
			bool		member = false;

			if (u == NULL)
				continue;
			for (size_t k = 0; k < n && !member; k++)
				member = strcmp(members[k], u->id) == 0;
			if (!member)
			{
				hub_member_left(srv, channel_id, u->id);
				again = true;
				break;
			}
		}
	}
	for (size_t k = 0; k < n; k++)
		hub_member_joined(srv, channel_id, members[k]);
}

/*
 * hub_members_changed applies a membership change of channel_id that names
 * no user: the table says who the members are now.  False when the store
 * cannot say (none, or it failed): the caller re-reads every connected
 * user's memberships instead.
 */
bool
hub_members_changed(chat_server *srv, const char *channel_id)
{
	char	  **users = NULL;
	size_t		n = 0;

	if (srv->store.channel_members == NULL ||
		srv->store.channel_members(srv->store.ctx, channel_id, &users, &n) !=
		CHAT_OK)
		return false;
	hub_members_now(srv, channel_id, users, n);
	chat_strings_free(users, n);
	return true;
}

/*
 * hub_message_changed broadcasts a change of message seq made by anyone:
 * kind CHAT_EV_EDIT (message_updated), CHAT_EV_DELETE (message_deleted) or
 * CHAT_EV_REACTION (reaction, the message's reactions now).
 */
void
hub_message_changed(chat_server *srv, const char *channel_id, int64_t seq,
					char kind)
{
	chat_room  *r = hub_room(srv, channel_id, false);
	chat_message *msgs = NULL;
	size_t		n = 0;
	proto_text	json;
	chat_frame *f;

	if (r == NULL || seq < 1)
		return;
	if (srv->store.since(srv->store.ctx, channel_id, NULL, seq - 1, 1, &msgs,
						 &n) != CHAT_OK || n == 0)
	{
		chat_messages_free(msgs, n);
		return;
	}

	/*
	 * A hint is never trusted (a NOTIFY listener's may be forged, or
	 * repeated): a change already broadcast is not sent again, and whether
	 * the message is deleted is the row's say, not the hint's.
	 */
	if (r->change_seen >= 0 && msgs[0].change_seq <= r->change_seen)
	{
		chat_messages_free(msgs, n);
		return;
	}
	r->change_seen = msgs[0].change_seq;
	if (msgs[0].deleted_at[0])
		kind = CHAT_EV_DELETE;
	else if (kind == CHAT_EV_DELETE)
		kind = CHAT_EV_EDIT;
	if (kind == CHAT_EV_DELETE)
		json = proto_message_deleted(channel_id, msgs[0].id, seq, NULL);
	else if (kind == CHAT_EV_REACTION)
		json = proto_reaction(&msgs[0], NULL);
	else
		json = proto_message_updated(&msgs[0], NULL);
	f = json.ptr ? frame_text(json.ptr, json.len) : NULL;
	if (f)
	{
		uint64_t	mark = ++srv->broadcast_mark;

		/* the connection that made this change has had its answer */
		for (size_t i = 0; i < r->n_subs; i++)
			if (r->subs[i]->answered_change != 0 &&
				r->subs[i]->answered_change == msgs[0].change_seq)
			{
				r->subs[i]->answered_change = 0;
				r->subs[i]->conn->broadcast_mark = mark;
			}
		hub_broadcast_frame(r, f, NULL, mark);
		frame_unref(f);
	}
	free(json.ptr);
	chat_messages_free(msgs, n);
}

void
hub_read_moved(chat_server *srv, const char *channel_id, int64_t seq,
			   const char *user_id)
{
	chat_room  *r = hub_room(srv, channel_id, false);
	proto_text	json;

	if (r == NULL)
		return;
	json = proto_read(channel_id, user_id, seq, NULL);
	hub_broadcast_json(r, json, NULL);
	free(json.ptr);
}

/*
 * hub_room_resync catches r up from the table after hints were lost: its
 * newest messages are announced (delivered by hub_deliver_pending), and
 * every edit or delete after the room's change counter is broadcast again,
 * in change order.
 */
void
hub_room_resync(chat_server *srv, chat_room *r)
{
	chat_message *m = NULL;
	size_t		n = 0;
	int64_t		channel_change = 0;

	if (srv->store.history(srv->store.ctx, r->id, NULL, 0, 1, &m, &n) ==
		CHAT_OK && n > 0)
		hub_announce(srv, r->id, m[0].seq);
	chat_messages_free(m, n);
	if (r->change_seen < 0)
		return;
	for (int page = 0; page < 100; page++)
	{
		int64_t		after = r->change_seen;

		m = NULL;
		n = 0;
		if (srv->store.changes(srv->store.ctx, r->id, NULL, after,
							   INT64_MAX, HUB_FETCH_PAGE, &m, &n,
							   &channel_change) != CHAT_OK || n == 0)
		{
			chat_messages_free(m, n);
			return;
		}
		/* messages first: a change never precedes its message */
		hub_deliver_pending(srv);
		for (size_t i = 0; i < n; i++)
			hub_message_changed(srv, r->id, m[i].seq,
								m[i].deleted_at[0] != '\0' ?
								CHAT_EV_DELETE : CHAT_EV_EDIT);
		if (r->change_seen <= after)
			r->change_seen = m[n - 1].change_seq;
		chat_messages_free(m, n);
		if (n < HUB_FETCH_PAGE)
			return;
	}
}

/* has_id tells whether id is one of ids[0..n). */
static bool
has_id(const chat_uuid * ids, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return true;
	return false;
}

/*
 * hub_resync_user makes u's subscriptions match the table: "left" for a
 * channel u is no longer a member of (nothing of it follows), "joined" for
 * one u was added to.
 */
static void
hub_resync_user(chat_server *srv, chat_user *u)
{
	chat_uuid  *ids = NULL;
	size_t		n = 0;

	if (srv->store.user_channel_ids == NULL ||
		srv->store.user_channel_ids(srv->store.ctx, u->id, &ids, &n) !=
		CHAT_OK)
		return;

	/*
	 * hub_member_left unsubscribes the channel on every connection of u (and
	 * keeps u: it has connections), so the scan restarts after each.
	 */
	for (size_t i = 0; i < u->n_conns; i++)
		for (size_t j = 0; j < u->conns[i]->n_subs; j++)
			if (!has_id(ids, n, u->conns[i]->subs[j]->room->id))
			{
				chat_uuid	gone;

				memcpy(gone, u->conns[i]->subs[j]->room->id, sizeof(chat_uuid));
				hub_member_left(srv, gone, u->id);
				j = (size_t) -1;	/* the subs moved: scan again */
			}
	for (size_t i = 0; i < n; i++)
		hub_member_joined(srv, ids[i], u->id);
	free(ids);
}

/* hub_resync_members re-reads every connected user's memberships. */
void
hub_resync_members(chat_server *srv)
{
	chat_user  *u;

	map_foreach(&srv->users, i, u)
		hub_resync_user(srv, u);
}
