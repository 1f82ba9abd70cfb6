/*
 * dispatch.c
 *	  Events from the host (core/event.h): the queue they wait in until the
 *	  loop (or the drain after a group commit) acts on them, the one switch
 *	  that acts on each, and the resync that re-reads every table when
 *	  events were lost.  Hints only make the hub look at the tables.
 */
#include <stdlib.h>
#include <string.h>

#include "core/layers.h"
#include "core/vec.h"

#define EVENTS_MAX 8192			/* queued events before a full resync */

static void resync_everything(chat_server *srv);

bool
chat_server_event(chat_server *srv, const chat_event *ev)
{
	if (!chat_event_is_valid(ev))
		return false;
	if (ev->kind == CHAT_EV_RESYNC || srv->n_events >= EVENTS_MAX)
	{
		/* too much to replay one by one: re-read every table instead */
		chat_server_resync(srv);
		return true;
	}
	if (vec_reserve((void **) &srv->events, &srv->cap_events,
					srv->n_events + 1, sizeof(chat_event)) != 0)
	{
		chat_server_resync(srv);
		return true;
	}
	srv->events[srv->n_events++] = *ev;
	return true;
}

bool
chat_server_notify(chat_server *srv, const char *payload)
{
	chat_event	ev;

	return chat_event_parse(payload, strlen(payload), &ev) &&
		chat_server_event(srv, &ev);
}

/*
 * dispatch_event acts on one event (see docs/architecture.md).  Hints only
 * make the hub look at the tables; what it sends comes from there.
 */
static void
dispatch_event(chat_server *srv, const chat_event *ev)
{
	switch ((chat_event_kind) ev->kind)
	{
		case CHAT_EV_MESSAGE:
			hub_announce(srv, ev->channel, ev->seq);
			break;
		case CHAT_EV_EDIT:
		case CHAT_EV_DELETE:
		case CHAT_EV_REACTION:
			hub_deliver_pending(srv);
			hub_message_changed(srv, ev->channel, ev->seq, ev->kind);
			break;
		case CHAT_EV_READ:
			/* message N goes out before "read up to N" */
			hub_deliver_pending(srv);
			if (ev->user[0])
				hub_read_moved(srv, ev->channel, ev->seq, ev->user);
			break;
		case CHAT_EV_TYPING:
		case CHAT_EV_TYPING_STOP:
			typing_remote(srv, ev);
			break;
		case CHAT_EV_PRESENCE:
			presence_remote(srv, ev);
			break;
		case CHAT_EV_JOIN:
		case CHAT_EV_LEAVE:
			/* deliver what came before the change first */
			hub_deliver_pending(srv);
			if (ev->user[0] == '\0')
			{
				/* who? the table says */
				if (!hub_members_changed(srv, ev->channel))
					chat_server_resync(srv);
			}
			else if (ev->kind == CHAT_EV_JOIN)
				hub_member_joined(srv, ev->channel, ev->user);
			else
				hub_member_left(srv, ev->channel, ev->user);
			break;
		case CHAT_EV_RESYNC:
			chat_server_resync(srv);
			break;
	}
}

/* a join or leave that names no user (a gateway's: the bus names none) */
static bool
unnamed_member_change(const chat_event *ev)
{
	return (ev->kind == CHAT_EV_JOIN || ev->kind == CHAT_EV_LEAVE) &&
		ev->user[0] == '\0';
}

void
srv_process_notifications(chat_server *srv, bool membership_only)
{
	size_t		kept = 0;

	for (size_t i = 0; i < srv->n_events; i++)
	{
		chat_event *ev = &srv->events[i];

		if (membership_only && ev->kind != CHAT_EV_JOIN &&
			ev->kind != CHAT_EV_LEAVE)
		{
			if (kept != i)
				srv->events[kept] = *ev;
			kept++;
			continue;
		}
		/* the next one reads the same channel's members again: skip this */
		if (i + 1 < srv->n_events && unnamed_member_change(ev) &&
			unnamed_member_change(&srv->events[i + 1]) &&
			strcmp(ev->channel, srv->events[i + 1].channel) == 0)
			continue;
		dispatch_event(srv, ev);
	}
	srv->n_events = kept;
	/* hints were lost: membership first, before anything is delivered */
	if (srv->resync_all)
		resync_everything(srv);
}

void
chat_server_resync(chat_server *srv)
{
	srv->resync_all = true;
}

/*
 * resync_everything re-reads what lost hints would have said: every connected
 * user's memberships (a removed member gets "left" and nothing after it, a
 * new one "joined"), then every room's newest seq and change counter.
 */
static void
resync_everything(chat_server *srv)
{
	chat_room  *r;

	srv->resync_all = false;
	srv->stats.resyncs++;
	hub_resync_members(srv);
	map_foreach(&srv->rooms, i, r)
		hub_room_resync(srv, r);
}
