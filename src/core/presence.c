/*
 * presence.c
 *	  Online/offline broadcasts.  The host keeps the count of a user's
 *	  connections across workers (shared memory); the core learns from it
 *	  when a user's first connection opened or last one closed anywhere, and
 *	  tells the members of that user's channels, here and, through the
 *	  host's publish (shared memory), on every other worker.  A second device adds nothing
 *	  and closing one of two removes nothing, so presence never flaps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/layers.h"

/* broadcast_local tells this worker's rooms of user_id's channels. */
static void
broadcast_local(chat_server *srv, const char *user_id, bool online)
{
	chat_uuid  *ids = NULL;
	size_t		n = 0;
	proto_text	json;
	chat_frame *f;
	const chat_user *self = hub_user(srv, user_id, false);

	if (srv->store.user_channel_ids == NULL ||
		srv->store.user_channel_ids(srv->store.ctx, user_id, &ids, &n) !=
		CHAT_OK)
		return;
	json = proto_presence(user_id, online);
	f = json.ptr ? frame_text(json.ptr, json.len) : NULL;
	if (f)
	{
		/*
		 * One frame per connection, however many channels it shares with the
		 * user (the frame names no channel): one mark for all rooms.
		 */
		uint64_t	mark = ++srv->broadcast_mark;

		for (size_t i = 0; i < n; i++)
			hub_broadcast_frame(hub_room(srv, ids[i], false), f, self, mark);
		frame_unref(f);
	}
	free(json.ptr);
	free(ids);
}

void
presence_changed(chat_server *srv, const char *user_id, bool online)
{
	chat_event	ev;

	broadcast_local(srv, user_id, online);
	memset(&ev, 0, sizeof(ev));
	ev.kind = CHAT_EV_PRESENCE;
	ev.worker = srv->cfg.worker_id;
	ev.online = online;
	snprintf(ev.user, sizeof(ev.user), "%s", user_id);
	srv_publish(srv, &ev);
}

/*
 * presence_connection tells the host that user_id gained (up) or lost a
 * connection here, and everyone concerned when that made the user go
 * online or offline everywhere.
 */
void
presence_connection(chat_server *srv, const char *user_id, bool up)
{
	if (srv->host.presence &&
		srv->host.presence(srv->host.ctx, user_id, up))
		presence_changed(srv, user_id, up);
}

/* presence_remote relays another worker's presence change. */
void
presence_remote(chat_server *srv, const chat_event *ev)
{
	if (ev->worker == srv->cfg.worker_id)
		return;
	broadcast_local(srv, ev->user, ev->online);
}
