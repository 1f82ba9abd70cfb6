/*
 * handlers.c
 *	  One function per client frame type (docs/protocol.md), plus the
 *	  group commit of the sends collected during a loop iteration.  Every
 *	  failure becomes an error frame on that connection; nothing here closes
 *	  other connections or gives up on the loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/layers.h"

/* Largest page a sync answers before saying hasMore. */
#define SYNC_PAGE 1000

void
send_error(chat_conn *c, chat_err err, const char *message,
		   const char *client_id, const char *ref)
{
	proto_text	json = proto_error(chat_err_code(err), message,
								   client_id && client_id[0] ? client_id : NULL,
								   ref && ref[0] ? ref : NULL);

	c->srv->stats.errors[err]++;
	conn_send_owned(c, json);
}

/*
 * bucket_fill refills a token bucket (rate per second, at most burst saved
 * up) to now; a bucket never used starts full.
 */
static void
bucket_fill(double *tokens, int64_t *since_ms, int64_t now_ms, int rate,
			int burst)
{
	if (*since_ms == 0)
		*tokens = burst;
	else if (now_ms > *since_ms)
		*tokens += (double) (now_ms - *since_ms) / 1000.0 * rate;
	if (*tokens > burst)
		*tokens = burst;
	*since_ms = now_ms;
}

/*
 * rate_ok charges the frame's cost (proto_frame_cost) to c's bucket
 * (chat.rate_limit per second, chat.rate_burst saved up) and to its user's
 * bucket on this worker, shared by all the user's connections here
 * (chat.user_rate_limit, chat.user_rate_burst).  A frame either bucket
 * cannot pay is refused with rate_limited and costs nothing; the
 * connection stays open.
 */
static bool
rate_ok(chat_conn *c, const chat_cmd *cmd)
{
	const chat_server_config *cfg = &c->srv->cfg;
	int64_t		now = c->srv->now_ms;
	double		cost = proto_frame_cost(cmd->type);
	chat_user  *u = cfg->user_rate_limit > 0 ? c->user : NULL;

	if (cfg->rate_limit > 0)
		bucket_fill(&c->tokens, &c->tokens_ms, now, cfg->rate_limit,
					cfg->rate_burst);
	if (u)
		bucket_fill(&u->tokens, &u->tokens_ms, now, cfg->user_rate_limit,
					cfg->user_rate_burst);
	if ((cfg->rate_limit <= 0 || c->tokens >= cost) &&
		(u == NULL || u->tokens >= cost))
	{
		if (cfg->rate_limit > 0)
			c->tokens -= cost;
		if (u)
			u->tokens -= cost;
		return true;
	}
	send_error(c, CHAT_E_RATE_LIMITED, "too many frames, slow down",
			   cmd->client_id, cmd->ref);
	return false;
}

/*
 * require_member finds c's subscription to channel_id.  A miss is checked
 * against the table before it is refused: the user may have been added a
 * moment ago, with the "joined" notification still on its way; then the
 * connection joins now (and is told so) instead of refusing.
 */
static chat_sub *
require_member(chat_conn *c, const chat_cmd *cmd, const char *channel_id)
{
	chat_sub   *s = hub_find_sub(c, channel_id);

	if (s == NULL)
		s = hub_join_now(c, channel_id);
	if (s == NULL)
		send_error(c, CHAT_E_NOT_MEMBER, "not a member of this channel",
				   cmd->client_id, cmd->ref);
	return s;
}

/* on_send queues the send for this iteration's group commit. */
static bool
on_send(chat_conn *c, chat_cmd *cmd)
{
	chat_server *srv = c->srv;
	pending_send *p;
	chat_sub   *s;

	if ((s = require_member(c, cmd, cmd->channel_id)) == NULL)
		return false;
	/* sending before stating a position: the stream starts at ready's */
	hub_release(s);
	if (srv->n_batch == srv->cap_batch)
	{
		size_t		ncap = srv->cap_batch ? srv->cap_batch * 2 : 64;
		pending_send *nb = realloc(srv->batch, ncap * sizeof(pending_send));

		if (nb == NULL)
		{
			send_error(c, CHAT_E_INTERNAL, "out of memory", cmd->client_id,
					   cmd->ref);
			return false;
		}
		srv->batch = nb;
		srv->cap_batch = ncap;
	}
	p = &srv->batch[srv->n_batch++];
	p->conn = c;
	memcpy(p->ref, cmd->ref, sizeof(p->ref));
	p->cmd = *cmd;				/* takes over content and attachments */
	return true;
}

/* newest_seq asks the table for the channel's current last seq. */
static int64_t
newest_seq(chat_server *srv, const char *channel_id, const char *user_id)
{
	chat_message *m = NULL;
	size_t		n = 0;
	int64_t		seq = 0;

	if (srv->store.history(srv->store.ctx, channel_id, user_id, 0, 1, &m,
						   &n) == CHAT_OK && n > 0)
		seq = m[0].seq;
	chat_messages_free(m, n);
	return seq;
}

/*
 * send_message_frames writes msgs as message frames, advancing s->pos, as
 * long as they fit in half the outbound bound.  Returns how many it sent:
 * the client asks for the rest (hasMore).
 */
static size_t
send_message_frames(chat_conn *c, chat_sub *s, const chat_message *msgs,
					size_t n)
{
	size_t		budget = (size_t) c->srv->cfg.max_outbound_bytes / 2;
	size_t		i;

	for (i = 0; i < n && c->state == CONN_WS; i++)
	{
		proto_text	obj = proto_message_object(&msgs[i]);
		proto_text	frame = proto_message_frame(obj.ptr, obj.len);

		free(obj.ptr);
		if (frame.ptr && i > 0 && c->out.bytes + frame.len > budget)
		{
			free(frame.ptr);
			break;
		}
		conn_send_owned(c, frame);
		s->pos = msgs[i].seq;
	}
	return i;
}

/*
 * send_changes tells a reconnecting client about edits and deletes of the
 * messages it already had (seq <= upto) made after its lastChange.  Returns
 * the change counter the client has now seen, or -1 on failure.
 */
static int64_t
send_changes(chat_conn *c, chat_cmd *cmd, const chat_sync_pos *p,
			 int64_t upto, bool *more)
{
	chat_server *srv = c->srv;
	chat_message *msgs = NULL;
	size_t		n = 0;
	int64_t		channel_change = 0,
				seen;

	/* without "changes" the client only learns the counter */
	int64_t		after = p->has_change ? p->last_change : INT64_MAX / 2;
	chat_err	err = srv->store.changes(srv->store.ctx, p->channel_id,
										 c->user->id, after, upto,
										 SYNC_PAGE + 1, &msgs, &n,
										 &channel_change);

	if (err != CHAT_OK)
	{
		send_error(c, err, "sync failed", NULL, cmd->ref);
		return -1;
	}
	seen = channel_change;
	if (n > SYNC_PAGE)
	{
		*more = true;
		seen = msgs[SYNC_PAGE - 1].change_seq;
	}
	for (size_t i = 0; i < n && i < SYNC_PAGE; i++)
	{
		proto_text	json = msgs[i].deleted_at[0] ?
		proto_message_deleted(msgs[i].channel_id, msgs[i].id,
							  msgs[i].seq, NULL) :
		proto_message_updated(&msgs[i], NULL);

		conn_send_owned(c, json);
	}
	chat_messages_free(msgs, n);
	return seen;
}

/*
 * sync_from: where the answer to a sync from last_seq starts.  Every seq
 * in (s->start, s->pos] has been sent on this connection, so a last_seq
 * inside that range continues after s->pos and sends nothing twice.  A
 * last_seq below s->start restarts the stream there (messages the
 * connection never had come before ones it had: sending only those would
 * reorder); one above s->pos moves the stream ahead.  A held channel
 * (resume) has start == pos: nothing of it is ever sent twice.
 */
static int64_t
sync_from(chat_sub *s, int64_t last_seq)
{
	if (last_seq >= s->start && last_seq <= s->pos)
		return s->pos;
	s->start = last_seq;
	return last_seq;
}

/*
 * sync_one answers one channel of a sync: the messages the connection has
 * not been sent after last_seq, oldest first (sync_from), the edits and
 * deletes of older ones the client asked about, then synced.  With
 * hasMore the channel stays paused for live messages until the client has
 * paged up to the head; without, live delivery continues from there.
 */
static void
sync_one(chat_conn *c, chat_cmd *cmd, const chat_sync_pos *p)
{
	chat_server *srv = c->srv;
	chat_sub   *s = require_member(c, cmd, p->channel_id);
	chat_message *msgs = NULL;
	size_t		n = 0;
	bool		more;
	proto_text	json;
	chat_err	err;
	int64_t		change,
				from;

	if (s == NULL)
		return;
	from = sync_from(s, p->last_seq);
	err = srv->store.since(srv->store.ctx, p->channel_id, c->user->id,
						   from, SYNC_PAGE + 1, &msgs, &n);
	if (err != CHAT_OK)
	{
		send_error(c, err, "sync failed", NULL, cmd->ref);
		return;
	}
	more = n > SYNC_PAGE;
	s->pos = from;
	if (send_message_frames(c, s, msgs, more ? SYNC_PAGE : n) <
		(more ? SYNC_PAGE : n))
		more = true;
	chat_messages_free(msgs, n);
	if (n == 0)
	{
		int64_t		newest = newest_seq(srv, p->channel_id, c->user->id);

		if (s->pos > newest)
			s->pos = s->start = newest;
	}
	change = send_changes(c, cmd, p, p->last_seq, &more);
	if (change < 0)
		return;
	s->held = false;
	s->paused = more;
	json = proto_synced(p->channel_id, s->pos, change, more, cmd->ref);
	conn_send_owned(c, json);
	/* anything announced while we read is delivered by the next poll */
	if (!more)
		hub_announce(srv, p->channel_id, s->pos);
}

/*
 * on_sync answers each channel in the frame's order.  The first sync of a
 * connection that asked to resume also releases the channels it does not
 * name, from ready's lastSeq.
 */
static void
on_sync(chat_conn *c, chat_cmd *cmd)
{
	for (size_t i = 0; i < cmd->n_sync && c->state == CONN_WS; i++)
		sync_one(c, cmd, &cmd->sync[i]);
	if (c->hold_until_ms != 0 && c->state == CONN_WS)
		hub_release_held(c);
}

static void
on_history(chat_conn *c, chat_cmd *cmd)
{
	chat_server *srv = c->srv;
	chat_message *msgs = NULL;
	size_t		n = 0;
	bool		more;
	proto_text	json;
	chat_err	err;

	if (require_member(c, cmd, cmd->channel_id) == NULL)
		return;
	err = srv->store.history(srv->store.ctx, cmd->channel_id, c->user->id,
							 cmd->before, cmd->limit + 1, &msgs, &n);
	if (err != CHAT_OK)
	{
		send_error(c, err, "history failed", NULL, cmd->ref);
		return;
	}
	more = n > (size_t) cmd->limit;
	json = proto_history(cmd->channel_id, msgs, more ? cmd->limit : n, more,
						 cmd->ref);
	chat_messages_free(msgs, n);
	conn_send_owned(c, json);
}

static void
on_typing(chat_conn *c, chat_cmd *cmd)
{
	if (require_member(c, cmd, cmd->channel_id) == NULL)
		return;
	typing_event(c->srv, cmd->channel_id, c->user->id);
}

/* on_presence answers who of the channel is online, on any worker. */
static void
on_presence(chat_conn *c, chat_cmd *cmd)
{
	chat_server *srv = c->srv;
	char	  **online = NULL;
	size_t		n = 0;
	proto_text	json;
	chat_err	err;

	if (require_member(c, cmd, cmd->channel_id) == NULL)
		return;
	err = srv->store.channel_online(srv->store.ctx, cmd->channel_id, &online,
									&n);
	if (err != CHAT_OK)
	{
		send_error(c, err, "presence failed", NULL, cmd->ref);
		return;
	}
	json = proto_presence_state(cmd->channel_id, online, n, cmd->ref);
	chat_strings_free(online, n);
	conn_send_owned(c, json);
}

static void
on_read(chat_conn *c, chat_cmd *cmd)
{
	chat_server *srv = c->srv;
	int64_t		stored;
	chat_err	err;

	if (require_member(c, cmd, cmd->channel_id) == NULL)
		return;
	err = srv->store.mark_read(srv->store.ctx, cmd->channel_id, c->user->id,
							   cmd->seq, &stored);
	if (err != CHAT_OK)
		send_error(c, err, "could not mark read", NULL, cmd->ref);
	/* the broadcast follows from the r: notification */
}

static void
on_edit_or_delete(chat_conn *c, chat_cmd *cmd)
{
	chat_server *srv = c->srv;
	chat_message m;
	char		errmsg[160] = "";
	chat_err	err;

	memset(&m, 0, sizeof(m));
	if (cmd->type == CMD_EDIT)
		err = srv->store.edit(srv->store.ctx, cmd->message_id, c->user->id,
							  cmd->content, &m, errmsg, sizeof(errmsg));
	else
		err = srv->store.remove(srv->store.ctx, cmd->message_id, c->user->id,
								&m, errmsg, sizeof(errmsg));
	if (err != CHAT_OK)
		send_error(c, err, errmsg[0] ? errmsg : "refused", NULL, cmd->ref);
	else if (m.id[0])
	{
		proto_text	json;
		chat_sub   *s;

		/*
		 * Answer this connection now, with the frame's ref; the other
		 * connections hear of it from the u:/d: notification, whose broadcast
		 * skips this one (hub_message_changed).  An edit that changes
		 * nothing, or a second delete, is answered the same way and announces
		 * nothing.  Messages stored before go out first.
		 */
		hub_deliver_pending(srv);
		if (cmd->type == CMD_EDIT)
			json = proto_message_updated(&m, cmd->ref);
		else
			json = proto_message_deleted(m.channel_id, m.id, m.seq, cmd->ref);
		conn_send_owned(c, json);
		if ((s = hub_find_sub(c, m.channel_id)) != NULL)
			s->answered_change = m.change_seq;
	}
	chat_message_clear(&m);
}

/*
 * on_search answers a full-text search over the user's channels (or one of
 * them, which must be the user's).  The database checks membership at query
 * time: a channel the user left is never searched.
 */
static void
on_search(chat_conn *c, chat_cmd *cmd)
{
	chat_server *srv = c->srv;
	chat_search_hit *hits = NULL;
	size_t		n = 0;
	char		errmsg[160] = "";
	bool		more;
	proto_text	json;
	chat_err	err;

	if (cmd->channel_id[0] && require_member(c, cmd, cmd->channel_id) == NULL)
		return;
	if (srv->store.search == NULL)
	{
		send_error(c, CHAT_E_INTERNAL, "search is not available", NULL,
				   cmd->ref);
		return;
	}
	err = srv->store.search(srv->store.ctx, c->user->id, cmd->query,
							cmd->channel_id, cmd->message_id, cmd->limit + 1,
							&hits, &n, errmsg, sizeof(errmsg));
	if (err != CHAT_OK)
	{
		send_error(c, err, errmsg[0] ? errmsg : "search failed", NULL,
				   cmd->ref);
		return;
	}
	more = n > (size_t) cmd->limit;
	json = proto_search(hits, more ? (size_t) cmd->limit : n, more, cmd->ref);
	chat_search_hits_free(hits, n);
	conn_send_owned(c, json);
}

/*
 * on_react adds or removes a reaction.  Like an edit, the change is the
 * answer: this connection gets the reaction frame with its ref now, the
 * others from the e: hint, whose broadcast skips this one.
 */
static void
on_react(chat_conn *c, chat_cmd *cmd)
{
	chat_server *srv = c->srv;
	chat_message m;
	char		errmsg[160] = "";
	chat_err	err;
	proto_text	json;
	chat_sub   *s;

	if (srv->store.react == NULL)
	{
		send_error(c, CHAT_E_INTERNAL, "reactions are not available", NULL,
				   cmd->ref);
		return;
	}
	memset(&m, 0, sizeof(m));
	err = srv->store.react(srv->store.ctx, cmd->message_id, c->user->id,
						   cmd->emoji, cmd->type == CMD_REACT, &m, errmsg,
						   sizeof(errmsg));
	if (err != CHAT_OK)
		send_error(c, err, errmsg[0] ? errmsg : "refused", NULL, cmd->ref);
	else if (m.id[0])
	{
		hub_deliver_pending(srv);
		json = proto_reaction(&m, cmd->ref);
		conn_send_owned(c, json);
		if ((s = hub_find_sub(c, m.channel_id)) != NULL)
			s->answered_change = m.change_seq;
	}
	chat_message_clear(&m);
}

static void
on_refresh(chat_conn *c, chat_cmd *cmd)
{
	jwt_claims	claims;
	jwt_status	st = jwt_verify(&c->srv->cfg.keys, cmd->token,
								strlen(cmd->token), c->srv->now_s, &claims);
	proto_text	json;

	if (st != JWT_OK)
	{
		send_error(c, CHAT_E_BAD_REQUEST, jwt_status_reason(st), NULL,
				   cmd->ref);
		return;
	}
	if (strcmp(claims.sub, c->user->id) != 0)
	{
		send_error(c, CHAT_E_FORBIDDEN, "token is for another user", NULL,
				   cmd->ref);
		return;
	}
	if (claims.exp > c->token_exp)
		c->token_exp = claims.exp;
	json = proto_pong(cmd->ref);
	conn_send_owned(c, json);
}

void
handle_binary(chat_conn *c)
{
	send_error(c, CHAT_E_BAD_REQUEST, "binary frames are not supported",
			   NULL, NULL);
}

void
handle_text(chat_conn *c, const char *buf, size_t len)
{
	chat_cmd	cmd;
	char		err[160] = "";
	proto_status st;

	memset(&cmd, 0, sizeof(cmd));
	st = proto_decode(buf, len, (size_t) c->srv->cfg.max_message_bytes, &cmd,
					  err, sizeof(err));
	if (st != PROTO_OK)
	{
		send_error(c, st == PROTO_TOO_LARGE ? CHAT_E_TOO_LARGE :
				   st == PROTO_INTERNAL ? CHAT_E_INTERNAL : CHAT_E_BAD_REQUEST,
				   err[0] ? err : "malformed frame", cmd.client_id, cmd.ref);
		proto_cmd_free(&cmd);
		return;
	}
	if (!rate_ok(c, &cmd))
	{
		proto_cmd_free(&cmd);
		return;
	}
	switch (cmd.type)
	{
		case CMD_SEND:
			if (on_send(c, &cmd))
				return;			/* the batch owns cmd now */
			break;
		case CMD_SYNC:
			on_sync(c, &cmd);
			break;
		case CMD_HISTORY:
			on_history(c, &cmd);
			break;
		case CMD_TYPING:
			on_typing(c, &cmd);
			break;
		case CMD_PRESENCE:
			on_presence(c, &cmd);
			break;
		case CMD_READ:
			on_read(c, &cmd);
			break;
		case CMD_EDIT:
		case CMD_DELETE:
			on_edit_or_delete(c, &cmd);
			break;
		case CMD_REFRESH:
			on_refresh(c, &cmd);
			break;
		case CMD_SEARCH:
			on_search(c, &cmd);
			break;
		case CMD_REACT:
		case CMD_UNREACT:
			on_react(c, &cmd);
			break;
		case CMD_PING:
			{
				conn_send_owned(c, proto_pong(cmd.ref));
			}
			break;
	}
	proto_cmd_free(&cmd);
}

/* ack_one answers one committed send on its connection, in seq order. */
static void
ack_one(chat_server *srv, pending_send *p, chat_send_item *it)
{
	chat_conn  *c = p->conn;
	chat_sub   *s;
	proto_text	json;

	if (c->state != CONN_WS)
		return;
	if (it->status != CHAT_OK)
	{
		send_error(c, it->status, it->errmsg[0] ? it->errmsg : "send failed",
				   p->cmd.client_id, p->ref);
		return;
	}
	s = hub_find_sub(c, it->msg.channel_id);

	/*
	 * The stream went past it already: a batch committed while the loop went
	 * on (store.batch_start) is acked a few passes later, and a hint of a
	 * later message may have caught this connection up from the table first,
	 * this message with its clientId among them.  That was the answer
	 * (docs/protocol.md, "Slow connections"); an ack now would come out of
	 * seq order.  A duplicate's ack always goes: the send was a retry.
	 */
	if (s && !it->duplicate && s->pos >= it->msg.seq)
		return;
	if (s && s->pos < it->msg.seq - 1)
	{
		hub_catch_up(s, it->msg.seq - 1);

		/*
		 * Still behind (the queue is full): the ack must not overtake the
		 * messages before it, so the message itself will reach this
		 * connection by the catch-up, carrying its clientId.
		 */
		if (s->pos < it->msg.seq - 1)
			return;
	}
	json = proto_ack(&it->msg, it->duplicate, p->ref);
	conn_send_owned(c, json);
	if (s && s->pos < it->msg.seq)
		s->pos = it->msg.seq;
	srv->stats.acks++;
}

/*
 * batch_items makes the store's items of the sends collected this
 * iteration; NULL when out of memory (the sends wait for the next one).
 * With copy the sender ids are copies (batch_done frees them): a batch in
 * flight outlives its connections' users.  A batch committed at once
 * points at the users' ids.
 */
static chat_send_item *
batch_items(const pending_send *sends, size_t n, bool copy)
{
	chat_send_item *items = calloc(n, sizeof(chat_send_item));

	if (items == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
	{
		const chat_cmd *cmd = &sends[i].cmd;
		chat_conn  *c = sends[i].conn;

		items[i].sender_id = c->user ? c->user->id : "";
		if (copy && (items[i].sender_id = strdup(items[i].sender_id)) == NULL)
		{
			for (size_t k = 0; k < i; k++)
				free((char *) items[k].sender_id);
			free(items);
			return NULL;
		}
		memcpy(items[i].channel_id, cmd->channel_id, sizeof(chat_uuid));
		memcpy(items[i].client_id, cmd->client_id, sizeof(chat_uuid));
		memcpy(items[i].reply_to, cmd->reply_to, sizeof(chat_uuid));
		items[i].content = cmd->content;
		items[i].kind = cmd->kind[0] ? cmd->kind : "text";
		items[i].attachments = cmd->attachments;
	}
	return items;
}

/*
 * batch_done acks each send of a committed batch and hands its new
 * messages to the hub, then frees the batch (sends and items; the sender
 * ids when copied).
 */
static void
batch_done(chat_server *srv, pending_send *sends, chat_send_item *items,
		   size_t n, int64_t t0, bool copied)
{
	chat_histo_add(&srv->stats.batch, chat_clock_us() - t0);

	/*
	 * Membership changes that committed before the batch apply before its
	 * messages go out: a member removed just before must not get them. Only
	 * joins and leaves are applied here; the rest (including the batch's own
	 * announcements) wait for the normal pass, after the acks.
	 */
	if (srv->host.drain_events)
	{
		srv->host.drain_events(srv->host.ctx);
		srv_process_notifications(srv, true);
	}
	/* and those the store saw that this host has not heard of yet */
	for (size_t i = 0; i < n; i++)
		if (items[i].members)
		{
			hub_members_now(srv, items[i].channel_id, items[i].members,
							items[i].n_members);
			chat_strings_free(items[i].members, items[i].n_members);
		}
	for (size_t i = 0; i < n; i++)
	{
		ack_one(srv, &sends[i], &items[i]);
		if (items[i].status == CHAT_OK && !items[i].duplicate)
		{
			srv->stats.messages_persisted++;
			typing_stop(srv, items[i].msg.channel_id, items[i].sender_id);
			hub_deliver_committed(srv, &items[i].msg, sends[i].conn);
		}
		chat_message_clear(&items[i].msg);
		proto_cmd_free(&sends[i].cmd);
		if (copied)
			free((char *) items[i].sender_id);
	}
	free(items);
}

/*
 * finish_inflight completes the batch in flight whose items the store just
 * handed back (store.batch_finish).
 */
static void
finish_inflight(chat_server *srv, chat_send_item *items)
{
	inflight_batch b;
	size_t		k = 0;

	while (k < srv->n_inflight && srv->inflight[k].items != items)
		k++;
	if (k == srv->n_inflight)
	{
		srv_log(srv, CHAT_LOG_WARNING, "the store finished a batch it was not given");
		return;
	}
	b = srv->inflight[k];
	srv->n_inflight--;
	memmove(&srv->inflight[k], &srv->inflight[k + 1],
			(srv->n_inflight - k) * sizeof(inflight_batch));
	batch_done(srv, b.sends, b.items, b.n, b.t0, true);
	/* their connections may be freed now (server.c reap) */
	for (size_t i = 0; i < b.n; i++)
	{
		b.sends[i].conn->sends_in_flight--;
		if (b.rooms[i])
			hub_unhold_room(srv, b.rooms[i]);
	}
	free(b.rooms);
	free(b.sends);
}

/* finish_oldest waits for the oldest batch in flight and completes it */
static void
finish_oldest(chat_server *srv)
{
	chat_send_item *items = srv->store.batch_finish(srv->store.ctx, true);

	if (items)
		finish_inflight(srv, items);
	else
	{
		/*
		 * A store that breaks its contract must not hang the loop: the oldest
		 * batch fails as "internal" (the clients send it again, with the same
		 * clientIds).
		 */
		items = srv->inflight[0].items;
		srv_log(srv, CHAT_LOG_WARNING, "the store could not finish a batch");
		for (size_t i = 0; i < srv->inflight[0].n; i++)
		{
			items[i].status = CHAT_E_INTERNAL;
			snprintf(items[i].errmsg, sizeof(items[i].errmsg), "the batch was lost");
		}
		finish_inflight(srv, items);
	}
}

/* shares_channel: a send of items goes to a channel a batch in flight holds */
static bool
shares_channel(chat_server *srv, const chat_send_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		chat_room  *r = hub_room(srv, items[i].channel_id, false);

		if (r && r->sends_in_flight > 0)
			return true;
	}
	return false;
}

/*
 * batch_finish_all waits for every batch in flight and completes it: before
 * the loop goes away.
 */
void
batch_finish_all(chat_server *srv)
{
	while (srv->n_inflight > 0)
		finish_oldest(srv);
}

/*
 * batch_commit persists every send collected this iteration in one
 * transaction, then acks each one and hands new messages to the hub.
 * With a pipelining store (store.batch_start) it first completes the
 * batches whose outcome came in, then starts this one and returns: it is
 * acked by a later iteration, in order.  Otherwise it waits for COMMIT.
 */
void
batch_commit(chat_server *srv)
{
	chat_send_item *items;
	chat_room **rooms = NULL;
	size_t		n = srv->n_batch;
	int64_t		t0;
	bool		copied;
	bool		pipelined = srv->store.batch_start && srv->store.batch_finish &&
	srv->inflight;

	/* the batches whose outcome came in, in whatever order they did */
	while (pipelined && srv->n_inflight > 0)
	{
		chat_send_item *done = srv->store.batch_finish(srv->store.ctx, false);

		if (done == NULL)
			break;
		finish_inflight(srv, done);
	}
	if (n == 0)
		return;
	copied = pipelined;
	if ((items = batch_items(srv->batch, n, copied)) == NULL)
		return;					/* retried next iteration */
	t0 = chat_clock_us();
	if (pipelined && (rooms = calloc(n, sizeof(chat_room *))) == NULL)
		pipelined = false;
	if (pipelined)
	{
		bool		started = false;

		/*
		 * Two batches with a channel in common are never in flight together:
		 * the database could commit the later one first, and its seqs would
		 * come before the earlier one's acks.  So one channel's sends commit
		 * one batch after the other, as without pipelining; different
		 * channels' overlap.
		 */
		while (srv->n_inflight > 0 && shares_channel(srv, items, n))
			finish_oldest(srv);
		/* a free connection, if need be by waiting for the oldest batch */
		for (;;)
		{
			if (srv->n_inflight < CHAT_MAX_INFLIGHT &&
				srv->store.batch_start(srv->store.ctx, items, n))
			{
				started = true;
				break;
			}
			if (srv->n_inflight == 0)
				break;
			finish_oldest(srv);
		}
		if (started)
		{
			inflight_batch *b = &srv->inflight[srv->n_inflight++];

			b->sends = srv->batch;
			b->items = items;
			b->rooms = rooms;
			b->n = n;
			b->t0 = t0;
			for (size_t i = 0; i < n; i++)
			{
				srv->batch[i].conn->sends_in_flight++;
				rooms[i] = hub_hold_room(srv, items[i].channel_id);
			}
			srv->batch = NULL;
			srv->n_batch = srv->cap_batch = 0;
			return;
		}
		/* none in flight and none could start: the store's own way */
		free(rooms);
	}
	srv->store.send_batch(srv->store.ctx, items, n);
	batch_done(srv, srv->batch, items, n, t0, copied);
	srv->n_batch = 0;
}
