/*
 * typing.c
 *	  Typing indicators: server-side debounce and expiry.
 *
 *	  The worker that holds the typer's connection owns the indicator: it
 *	  broadcasts at most one "typing" per user per channel per debounce
 *	  period, extends the expiry on every event, and broadcasts
 *	  "typing_stopped" when the indicator expires, when the user sends a
 *	  message there, or when the user's last connection here closes.  Other
 *	  workers relay what the owner publishes.  Nothing touches a table.
 *
 *	  A relaying worker (or gateway) remembers the indicators it relayed,
 *	  so that a message from the typer, which reaches it by another path
 *	  (the table) and may come first, ends the indicator here before the
 *	  message goes out: every member sees "typing_stopped" before the
 *	  message, wherever the typer is.  The owner's own stop then finds the
 *	  indicator ended and is not relayed twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/layers.h"

typedef struct typing_entry
{
	chat_uuid	channel_id;
	char	   *user_id;
	int64_t		expires_ms;
	int64_t		last_broadcast_ms;
	bool		remote;			/* relayed: another worker owns it */
	bool		ended;			/* remote, ended here by a message: the
								 * owner's stop is not relayed again */
} typing_entry;

/*
 * Relayed indicators remembered at most (beyond, they are relayed as
 * before, without the ordering above), and how long one outlives its
 * expiry waiting for the owner's stop.
 */
#define TYPING_REMOTE_MAX 65536
#define TYPING_REMOTE_GRACE_MS 2000

static void
typing_key(char *key, size_t len, const char *channel_id, const char *user_id)
{
	snprintf(key, len, "%s/%s", channel_id, user_id);
}

/* broadcast_local sends to this worker's members, never to the typer. */
static void
broadcast_local(chat_server *srv, const char *channel_id, const char *user_id,
				int expires_ms)
{
	chat_room  *r = hub_room(srv, channel_id, false);
	proto_text	json;

	if (r == NULL)
		return;
	json = expires_ms > 0 ?
		proto_typing(channel_id, user_id, expires_ms) :
		proto_typing_stopped(channel_id, user_id);
	hub_broadcast_json(r, json, hub_user(srv, user_id, false));
	free(json.ptr);
}

static void
broadcast(chat_server *srv, const char *channel_id, const char *user_id,
		  int expires_ms)
{
	chat_event	ev;

	broadcast_local(srv, channel_id, user_id, expires_ms);
	memset(&ev, 0, sizeof(ev));
	ev.kind = expires_ms > 0 ? CHAT_EV_TYPING : CHAT_EV_TYPING_STOP;
	ev.worker = srv->cfg.worker_id;
	ev.expires_ms = expires_ms > 0 ? expires_ms : 0;
	snprintf(ev.channel, sizeof(ev.channel), "%s", channel_id);
	snprintf(ev.user, sizeof(ev.user), "%s", user_id);
	srv_publish(srv, &ev);
}

/* entry_new adds an indicator under key; NULL when out of memory */
static typing_entry *
entry_new(chat_server *srv, const char *key, const char *channel_id,
		  const char *user_id)
{
	typing_entry *e = calloc(1, sizeof(typing_entry));

	if (e == NULL || (e->user_id = strdup(user_id)) == NULL ||
		map_put(&srv->typing, key, e) != 0)
	{
		if (e)
			free(e->user_id);
		free(e);
		return NULL;
	}
	snprintf(e->channel_id, sizeof(e->channel_id), "%s", channel_id);
	return e;
}

void
typing_event(chat_server *srv, const char *channel_id, const char *user_id)
{
	char		key[CHAT_UUID_LEN + JWT_MAX_SUB + 2];
	typing_entry *e;
	int64_t		now = srv->now_ms;

	typing_key(key, sizeof(key), channel_id, user_id);
	e = map_get(&srv->typing, key);
	if (e != NULL && e->remote)
	{
		/* the same user typing here too: this worker owns it from now on */
		e->remote = e->ended = false;
		e->last_broadcast_ms = INT64_MIN / 2;
	}
	if (e == NULL)
	{
		e = entry_new(srv, key, channel_id, user_id);
		if (e == NULL)
			return;
		e->last_broadcast_ms = INT64_MIN / 2;
	}
	e->expires_ms = now + srv->cfg.typing_timeout_ms;
	if (now - e->last_broadcast_ms >= srv->cfg.typing_debounce_ms)
	{
		e->last_broadcast_ms = now;
		broadcast(srv, channel_id, user_id, srv->cfg.typing_timeout_ms);
	}
}

static void
typing_drop(chat_server *srv, typing_entry *e)
{
	char		key[CHAT_UUID_LEN + JWT_MAX_SUB + 2];

	typing_key(key, sizeof(key), e->channel_id, e->user_id);
	map_del(&srv->typing, key);
	free(e->user_id);
	free(e);
}

void
typing_stop(chat_server *srv, const char *channel_id, const char *user_id)
{
	char		key[CHAT_UUID_LEN + JWT_MAX_SUB + 2];
	typing_entry *e;

	typing_key(key, sizeof(key), channel_id, user_id);
	e = map_get(&srv->typing, key);
	if (e == NULL || e->ended)
		return;
	if (e->remote)
	{
		/* ahead of the owner's stop, which will find it ended */
		broadcast_local(srv, channel_id, user_id, 0);
		e->ended = true;
		return;
	}
	broadcast(srv, channel_id, user_id, 0);
	typing_drop(srv, e);
}

/* typing_stop_user ends every indicator of user_id (last connection gone) */
void
typing_stop_user(chat_server *srv, const char *user_id)
{
	typing_entry *e;

	map_foreach(&srv->typing, i, e)
		if (!e->remote && strcmp(e->user_id, user_id) == 0)
	{
		broadcast(srv, e->channel_id, e->user_id, 0);
		typing_drop(srv, e);
	}
}

/*
 * typing_expire ends the indicators whose time has passed and returns the
 * milliseconds until the next one expires (-1 when none is left).
 */
int64_t
typing_expire(chat_server *srv)
{
	int64_t		next = -1;
	typing_entry *e;

	if (srv->typing.used == 0)
		return -1;
	map_foreach(&srv->typing, i, e)
	{
		if (e->expires_ms <= srv->now_ms)
		{
			/* a relayed one is the owner's to stop: only forgotten here */
			if (!e->remote)
				broadcast(srv, e->channel_id, e->user_id, 0);
			typing_drop(srv, e);
		}
		else if (next < 0 || e->expires_ms - srv->now_ms < next)
			next = e->expires_ms - srv->now_ms;
	}
	return next;
}

/*
 * remember_remote notes an indicator relayed from its owner; a full table
 * remembers no more (the indicator is still relayed).
 */
static void
remember_remote(chat_server *srv, const chat_event *ev)
{
	char		key[CHAT_UUID_LEN + JWT_MAX_SUB + 2];
	typing_entry *e;

	typing_key(key, sizeof(key), ev->channel, ev->user);
	e = map_get(&srv->typing, key);
	if (e != NULL && !e->remote)
		return;					/* the user types here too: ours */
	if (e == NULL)
	{
		if (srv->typing.used >= TYPING_REMOTE_MAX)
			return;
		e = entry_new(srv, key, ev->channel, ev->user);
		if (e == NULL)
			return;
		e->remote = true;
	}
	e->ended = false;
	e->expires_ms = srv->now_ms + ev->expires_ms + TYPING_REMOTE_GRACE_MS;
}

/* typing_remote relays a typing event published by another worker. */
void
typing_remote(chat_server *srv, const chat_event *ev)
{
	char		key[CHAT_UUID_LEN + JWT_MAX_SUB + 2];
	typing_entry *e;

	if (ev->worker == srv->cfg.worker_id)
		return;
	if (ev->kind == CHAT_EV_TYPING)
	{
		remember_remote(srv, ev);
		broadcast_local(srv, ev->channel, ev->user, ev->expires_ms);
		return;
	}
	typing_key(key, sizeof(key), ev->channel, ev->user);
	e = map_get(&srv->typing, key);
	if (e != NULL && e->remote)
	{
		bool		ended = e->ended;

		typing_drop(srv, e);
		if (ended)
			return;				/* a message from the typer ended it here */
	}
	broadcast_local(srv, ev->channel, ev->user, 0);
}

void
typing_destroy(chat_server *srv)
{
	typing_entry *e;

	map_foreach(&srv->typing, i, e)
	{
		free(e->user_id);
		free(e);
	}
	map_destroy(&srv->typing);
}
