/*
 * fuzz_store.c
 *	  The in-memory chat_store of the WebSocket fuzz target (fuzz_store.h).
 *	  It keeps the semantics the core relies on (seq = position + 1,
 *	  membership checks, idempotent sends by clientId, change counters,
 *	  read markers that only move forward) and checks the core's side of
 *	  two contracts: presence goes up and down in pairs, and admitted
 *	  connection slots are given back.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_store.h"
#include "fuzz_util.h"

#define TS_CREATED "2024-01-01T00:00:00.000000Z"
#define TS_CHANGED "2024-01-01T00:00:01.000000Z"

const char *const fs_users[FS_N_USERS] = {"alice", "bob"};
const char *const fs_channel_ids[FS_N_CHANNELS] = {
	"c0000000-0000-4000-8000-000000000001",
	"c0000000-0000-4000-8000-000000000002",
	"c0000000-0000-4000-8000-000000000003",
};

/* --- helpers --------------------------------------------------------- */

static char *
xstrdup(const char *s)
{
	char	   *d = s ? strdup(s) : NULL;

	FZ_CHECK(s == NULL || d != NULL);
	return d;
}

static int
user_idx(const char *user)
{
	for (int i = 0; user && i < FS_N_USERS; i++)
		if (strcmp(user, fs_users[i]) == 0)
			return i;
	return -1;
}

static fs_channel *
channel(fuzz_store *st, const char *id)
{
	for (int i = 0; i < FS_N_CHANNELS; i++)
		if (strcmp(st->ch[i].id, id) == 0)
			return &st->ch[i];
	return NULL;
}

static bool
is_member(const fs_channel *c, const char *user)
{
	int			u = user_idx(user);

	return c != NULL && u >= 0 && c->member[u];
}

static void notef(fuzz_store *st, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/* notef queues one notification payload for chat_server_notify. */
static void
notef(fuzz_store *st, const char *fmt,...)
{
	char		buf[512];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (st->n_notes == st->cap_notes)
	{
		st->cap_notes = st->cap_notes ? st->cap_notes * 2 : 16;
		st->notes = realloc(st->notes, st->cap_notes * sizeof(char *));
		FZ_CHECK(st->notes != NULL);
	}
	st->notes[st->n_notes++] = xstrdup(buf);
}

static void
copy_message(chat_message *dst, const chat_message *src)
{
	*dst = *src;
	dst->sender_id = xstrdup(src->sender_id);
	dst->content = xstrdup(src->content);
	dst->kind = xstrdup(src->kind);
	dst->attachments = xstrdup(src->attachments);
}

static chat_message *
append(fuzz_store *st, fs_channel *c, const char *sender, const char *content,
	   const char *kind, const char *attachments)
{
	chat_message *m;

	if (c->n_msgs == c->cap_msgs)
	{
		c->cap_msgs = c->cap_msgs ? c->cap_msgs * 2 : 8;
		c->msgs = realloc(c->msgs, c->cap_msgs * sizeof(chat_message));
		FZ_CHECK(c->msgs != NULL);
	}
	m = &c->msgs[c->n_msgs++];
	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "a0000000-0000-4000-8000-%012llx",
			 (unsigned long long) ++st->next_id);
	snprintf(m->channel_id, sizeof(m->channel_id), "%s", c->id);
	m->seq = (int64_t) c->n_msgs;
	m->sender_id = xstrdup(sender);
	m->content = xstrdup(content);
	m->kind = xstrdup(kind ? kind : "text");
	m->attachments = xstrdup(attachments);
	strcpy(m->created_at, TS_CREATED);
	return m;
}

static chat_message *
find_message(fuzz_store *st, const char *id, fs_channel **cp)
{
	for (int i = 0; i < FS_N_CHANNELS; i++)
		for (size_t j = 0; j < st->ch[i].n_msgs; j++)
			if (strcmp(st->ch[i].msgs[j].id, id) == 0)
			{
				*cp = &st->ch[i];
				return &st->ch[i].msgs[j];
			}
	return NULL;
}

static void
fill_info(fuzz_store *st, const fs_channel *c, const char *user,
		  chat_channel_info *out)
{
	int			u = user_idx(user);

	memset(out, 0, sizeof(*out));
	snprintf(out->id, sizeof(out->id), "%s", c->id);
	snprintf(out->type, sizeof(out->type), "%s", c->type);
	out->name = xstrdup(c->name);
	snprintf(out->role, sizeof(out->role), "%s",
			 c == &st->ch[0] && u == 1 ? "admin" : "member");
	out->last_seq = (int64_t) c->n_msgs;
	out->last_read_seq = c->read_seq[u];
	out->unread = out->last_seq - out->last_read_seq;
	out->last_change = c->change;
	out->online = calloc(FS_N_USERS, sizeof(char *));
	FZ_CHECK(out->online != NULL);
	for (int i = 0; i < FS_N_USERS; i++)
		if (c->member[i] && st->online[i] > 0)
			out->online[out->n_online++] = xstrdup(fs_users[i]);
}

/* --- the chat_store callbacks ---------------------------------------- */

static chat_err
fs_user_channels(void *ctx, const char *user_id, chat_channel_info **out,
				 size_t *n)
{
	fuzz_store *st = ctx;

	*out = NULL;
	*n = 0;
	if (st->faults)
		return CHAT_E_INTERNAL;
	*out = calloc(FS_N_CHANNELS, sizeof(chat_channel_info));
	FZ_CHECK(*out != NULL);
	for (int i = 0; i < FS_N_CHANNELS; i++)
		if (is_member(&st->ch[i], user_id))
			fill_info(st, &st->ch[i], user_id, &(*out)[(*n)++]);
	return CHAT_OK;
}

static chat_err
fs_channel_for_user(void *ctx, const char *channel_id, const char *user_id,
					chat_channel_info *out)
{
	fuzz_store *st = ctx;
	fs_channel *c = channel(st, channel_id);

	memset(out, 0, sizeof(*out));
	if (st->faults)
		return CHAT_E_INTERNAL;
	if (!is_member(c, user_id))
		return CHAT_E_NOT_MEMBER;
	fill_info(st, c, user_id, out);
	return CHAT_OK;
}

/* store_command acts on the contents that drive the store (see .h). */
static void
store_command(fuzz_store *st, const char *content)
{
	fs_channel *c3 = &st->ch[2];

	if (strcmp(content, "/join") == 0 && !c3->member[0])
	{
		c3->member[0] = true;
		notef(st, "j:%s:alice", c3->id);
	}
	else if (strcmp(content, "/leave") == 0 && c3->member[0])
	{
		c3->member[0] = false;
		notef(st, "l:%s:alice", c3->id);
	}
	else if (strcmp(content, "/kick") == 0 && st->ch[0].member[0])
	{
		st->ch[0].member[0] = false;
		notef(st, "l:%s:alice", st->ch[0].id);
	}
	else if (strcmp(content, "/resync") == 0)
		st->resync = true;
	else if (strcmp(content, "/faults") == 0)
		st->faults = !st->faults;
}

static void
send_one(fuzz_store *st, chat_send_item *it)
{
	fs_channel *c = channel(st, it->channel_id);
	chat_message *m;

	if (!is_member(c, it->sender_id))
	{
		it->status = CHAT_E_NOT_MEMBER;
		snprintf(it->errmsg, sizeof(it->errmsg), "not a member");
		return;
	}
	if (strcmp(it->content, "/fail") == 0)
	{
		it->status = CHAT_E_BAD_REQUEST;
		snprintf(it->errmsg, sizeof(it->errmsg), "refused by the store");
		return;
	}
	/* idempotent by (channel, sender, clientId): the first one answers */
	for (size_t i = 0; i < c->n_msgs; i++)
		if (strcmp(c->msgs[i].client_id, it->client_id) == 0 &&
			strcmp(c->msgs[i].sender_id, it->sender_id) == 0)
		{
			it->status = CHAT_OK;
			it->duplicate = true;
			copy_message(&it->msg, &c->msgs[i]);
			return;
		}
	m = append(st, c, it->sender_id, it->content, it->kind, it->attachments);
	snprintf(m->client_id, sizeof(m->client_id), "%s", it->client_id);
	snprintf(m->reply_to, sizeof(m->reply_to), "%s", it->reply_to);
	it->status = CHAT_OK;
	copy_message(&it->msg, m);
	notef(st, "m:%s:%lld", c->id, (long long) m->seq);
	store_command(st, it->content);
}

static chat_err
fs_send_batch(void *ctx, chat_send_item *items, size_t n)
{
	fuzz_store *st = ctx;

	for (size_t i = 0; i < n; i++)
	{
		FZ_CHECK(items[i].sender_id != NULL && items[i].content != NULL);
		FZ_CHECK(items[i].kind != NULL);
		if (strcmp(items[i].content, "/failbatch") == 0)
		{
			for (size_t j = 0; j < n; j++)
			{
				items[j].status = CHAT_E_INTERNAL;
				snprintf(items[j].errmsg, sizeof(items[j].errmsg),
						 "internal error");
			}
			return CHAT_E_INTERNAL;
		}
	}
	for (size_t i = 0; i < n; i++)
		send_one(st, &items[i]);
	return CHAT_OK;
}

/*
 * collect copies up to limit messages of c, from seq `from` stepping by step
 * (1 or -1) until seq `to`.
 */
static chat_err
collect(fs_channel *c, int64_t from, int64_t to, int step, int limit,
		chat_message **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (limit <= 0)
		return CHAT_OK;
	*out = calloc((size_t) limit < c->n_msgs + 1 ? (size_t) limit :
				  c->n_msgs + 1, sizeof(chat_message));
	FZ_CHECK(*out != NULL);
	for (int64_t s = from; s != to && *n < (size_t) limit; s += step)
		if (s >= 1 && s <= (int64_t) c->n_msgs)
			copy_message(&(*out)[(*n)++], &c->msgs[s - 1]);
	return CHAT_OK;
}

static chat_err
fs_since(void *ctx, const char *channel_id, const char *user_id,
		 int64_t after_seq, int limit, chat_message **out, size_t *n)
{
	fuzz_store *st = ctx;
	fs_channel *c = channel(st, channel_id);

	*out = NULL;
	*n = 0;
	if (st->faults)
		return CHAT_E_INTERNAL;
	if (user_id != NULL && !is_member(c, user_id))
		return CHAT_E_NOT_MEMBER;
	if (c == NULL || after_seq >= (int64_t) c->n_msgs)
		return CHAT_OK;
	if (after_seq < 0)
		after_seq = 0;
	return collect(c, after_seq + 1, (int64_t) c->n_msgs + 1, 1, limit, out,
				   n);
}

static chat_err
fs_history(void *ctx, const char *channel_id, const char *user_id,
		   int64_t before, int limit, chat_message **out, size_t *n)
{
	fuzz_store *st = ctx;
	fs_channel *c = channel(st, channel_id);
	int64_t		top;

	*out = NULL;
	*n = 0;
	if (st->faults)
		return CHAT_E_INTERNAL;
	if (user_id != NULL && !is_member(c, user_id))
		return CHAT_E_NOT_MEMBER;
	if (c == NULL || c->n_msgs == 0)
		return CHAT_OK;
	top = before == 0 || before > (int64_t) c->n_msgs ?
		(int64_t) c->n_msgs : before - 1;
	if (top < 1)
		return CHAT_OK;
	return collect(c, top, 0, -1, limit, out, n);
}

static int
by_change(const void *a, const void *b)
{
	const chat_message *x = a,
			   *y = b;

	return (x->change_seq > y->change_seq) - (x->change_seq < y->change_seq);
}

static chat_err
fs_changes(void *ctx, const char *channel_id, const char *user_id,
		   int64_t after_change, int64_t upto_seq, int limit,
		   chat_message **out, size_t *n, int64_t *channel_change)
{
	fuzz_store *st = ctx;
	fs_channel *c = channel(st, channel_id);

	*out = NULL;
	*n = 0;
	*channel_change = 0;
	if (st->faults)
		return CHAT_E_INTERNAL;
	if (!is_member(c, user_id))
		return CHAT_E_NOT_MEMBER;
	*channel_change = c->change;
	*out = calloc(c->n_msgs + 1, sizeof(chat_message));
	FZ_CHECK(*out != NULL);
	for (size_t i = 0; i < c->n_msgs; i++)
		if (c->msgs[i].change_seq > after_change &&
			c->msgs[i].seq <= upto_seq)
			copy_message(&(*out)[(*n)++], &c->msgs[i]);
	qsort(*out, *n, sizeof(chat_message), by_change);
	while (*n > 0 && *n > (size_t) (limit > 0 ? limit : 0))
		chat_message_clear(&(*out)[--(*n)]);
	return CHAT_OK;
}

static chat_err
fs_mark_read(void *ctx, const char *channel_id, const char *user_id,
			 int64_t seq, int64_t *stored)
{
	fuzz_store *st = ctx;
	fs_channel *c = channel(st, channel_id);
	int			u = user_idx(user_id);

	*stored = 0;
	if (st->faults)
		return CHAT_E_INTERNAL;
	if (!is_member(c, user_id))
		return CHAT_E_NOT_MEMBER;
	if (seq > (int64_t) c->n_msgs)
		seq = (int64_t) c->n_msgs;
	if (seq > c->read_seq[u])
	{
		c->read_seq[u] = seq;
		notef(st, "r:%s:%lld:%s", c->id, (long long) seq, user_id);
	}
	*stored = c->read_seq[u];
	return CHAT_OK;
}

static chat_err
change_message(fuzz_store *st, const char *message_id, const char *user_id,
			   const char *content, chat_message *out, char *errmsg,
			   size_t errlen)
{
	fs_channel *c = NULL;
	chat_message *m;
	bool		del = content == NULL;

	if (st->faults)
		return CHAT_E_INTERNAL;
	m = find_message(st, message_id, &c);
	if (m == NULL || m->deleted_at[0] || !is_member(c, user_id))
	{
		snprintf(errmsg, errlen, "no such message");
		return CHAT_E_NOT_FOUND;
	}
	/* the sender edits; the sender or a channel admin (bob in 1) deletes */
	if (strcmp(m->sender_id, user_id) != 0 &&
		(!del || c != &st->ch[0] || user_idx(user_id) != 1))
	{
		snprintf(errmsg, errlen, "not your message");
		return CHAT_E_FORBIDDEN;
	}
	free(m->content);
	m->content = xstrdup(del ? "" : content);
	m->change_seq = ++c->change;
	if (del)
	{
		free(m->attachments);
		m->attachments = NULL;
		strcpy(m->deleted_at, TS_CHANGED);
	}
	else
		strcpy(m->edited_at, TS_CHANGED);
	copy_message(out, m);
	notef(st, "%c:%s:%lld", del ? 'd' : 'u', c->id, (long long) m->seq);
	return CHAT_OK;
}

static chat_err
fs_edit(void *ctx, const char *message_id, const char *user_id,
		const char *content, chat_message *out, char *errmsg, size_t errlen)
{
	FZ_CHECK(content != NULL);
	return change_message(ctx, message_id, user_id, content, out, errmsg,
						  errlen);
}

static chat_err
fs_remove(void *ctx, const char *message_id, const char *user_id,
		  chat_message *out, char *errmsg, size_t errlen)
{
	return change_message(ctx, message_id, user_id, NULL, out, errmsg,
						  errlen);
}

/* presence_count finds the presence counter of any user id. */
static int *
presence_count(fuzz_store *st, const char *user_id)
{
	int			u = user_idx(user_id);
	int			i;

	if (u >= 0)
		return &st->online[u];
	for (i = 0; i < 8 && st->others[i] != NULL; i++)
		if (strcmp(st->others[i], user_id) == 0)
			return &st->others_online[i];
	FZ_CHECK(i < 8);
	st->others[i] = xstrdup(user_id);
	return &st->others_online[i];
}

static bool
fs_presence(void *ctx, const char *user_id, bool up)
{
	fuzz_store *st = ctx;
	int		   *count = presence_count(st, user_id);

	*count += up ? 1 : -1;
	/* a connection going down that never came up is a core bug */
	FZ_CHECK(*count >= 0);
	return *count == (up ? 1 : 0);
}

static chat_err
fs_channel_online(void *ctx, const char *channel_id, char ***users,
				  size_t *n)
{
	fuzz_store *st = ctx;
	fs_channel *c = channel(st, channel_id);

	*users = NULL;
	*n = 0;
	if (st->faults)
		return CHAT_E_INTERNAL;
	*users = calloc(FS_N_USERS, sizeof(char *));
	FZ_CHECK(*users != NULL);
	for (int i = 0; c && i < FS_N_USERS; i++)
		if (c->member[i] && st->online[i] > 0)
			(*users)[(*n)++] = xstrdup(fs_users[i]);
	return CHAT_OK;
}

static chat_err
fs_user_channel_ids(void *ctx, const char *user_id, chat_uuid * *ids,
					size_t *n)
{
	fuzz_store *st = ctx;

	*n = 0;
	*ids = calloc(FS_N_CHANNELS, sizeof(chat_uuid));
	FZ_CHECK(*ids != NULL);
	for (int i = 0; i < FS_N_CHANNELS; i++)
		if (is_member(&st->ch[i], user_id))
			snprintf((*ids)[(*n)++], sizeof(chat_uuid), "%s", st->ch[i].id);
	return CHAT_OK;
}

/*
 * fs_publish queues each event in its text form, as the host's ring would
 * bring it back to this worker (through the codec: a round trip), plus a
 * copy from "worker 99", so the relays of remote typing and presence
 * events run too.
 */
static void
fs_publish(void *ctx, const chat_event *evs, size_t n)
{
	fuzz_store *st = ctx;

	for (size_t i = 0; i < n; i++)
	{
		chat_event	ev = evs[i],
					back;
		char		buf[CHAT_EVENT_TEXT_MAX];
		int			len;

		FZ_CHECK(ev.kind == CHAT_EV_TYPING || ev.kind == CHAT_EV_TYPING_STOP ||
				 ev.kind == CHAT_EV_PRESENCE);
		len = chat_event_format(&ev, true, buf, sizeof(buf));
		FZ_CHECK(len > 0);
		FZ_CHECK(chat_event_parse(buf, (size_t) len, &back));
		FZ_CHECK(back.kind == ev.kind && back.worker == ev.worker &&
				 strcmp(back.user, ev.user) == 0);
		notef(st, "%s", buf);
		ev.worker = 99;
		FZ_CHECK(chat_event_format(&ev, true, buf, sizeof(buf)) > 0);
		notef(st, "%s", buf);
	}
}

static bool
fs_admit(void *ctx, int delta, int max)
{
	fuzz_store *st = ctx;

	if (delta > 0 && st->admitted >= max)
		return false;
	st->admitted += delta;
	FZ_CHECK(st->admitted >= 0);
	return true;
}

/* --- set-up and tear-down -------------------------------------------- */

void
fs_init(fuzz_store *st, chat_store *out, chat_host *host)
{
	fs_channel *c1 = &st->ch[0];
	chat_message *m;

	memset(st, 0, sizeof(*st));
	for (int i = 0; i < FS_N_CHANNELS; i++)
	{
		st->ch[i].id = fs_channel_ids[i];
		st->ch[i].type = i == 1 ? "direct" : "group";
		st->ch[i].name = i == 1 ? NULL : i == 0 ? "general" : "bob's";
		st->ch[i].member[0] = i != 2;
		st->ch[i].member[1] = true;
	}
	/* channel 1: plain, with attachments (jsonb text), edited, deleted */
	append(st, c1, "bob", "hello alice", "text", NULL);
	append(st, c1, "alice", "see attached", "file",
		   "[{\"url\": \"https://files.example/a.png\", \"name\": \"a \\\"b\\\".png\", "
		   "\"size\": 12, \"mime\": \"image/png\"}]");
	m = append(st, c1, "bob", "edited text", "text", NULL);
	m->change_seq = ++c1->change;
	strcpy(m->edited_at, TS_CHANGED);
	m = append(st, c1, "alice", "", "text", NULL);
	m->change_seq = ++c1->change;
	strcpy(m->deleted_at, TS_CHANGED);
	c1->read_seq[1] = 2;
	append(st, &st->ch[2], "bob", "only bob here", "text", NULL);

	memset(out, 0, sizeof(*out));
	out->ctx = st;
	out->user_channels = fs_user_channels;
	out->channel_for_user = fs_channel_for_user;
	out->send_batch = fs_send_batch;
	out->since = fs_since;
	out->changes = fs_changes;
	out->history = fs_history;
	out->mark_read = fs_mark_read;
	out->edit = fs_edit;
	out->remove = fs_remove;
	out->channel_online = fs_channel_online;
	out->user_channel_ids = fs_user_channel_ids;
	memset(host, 0, sizeof(*host));
	host->ctx = st;
	host->presence = fs_presence;
	host->publish = fs_publish;
	host->admit = fs_admit;
}

void
fs_free(fuzz_store *st)
{
	for (int i = 0; i < FS_N_CHANNELS; i++)
		chat_messages_free(st->ch[i].msgs, st->ch[i].n_msgs);
	for (size_t i = 0; i < st->n_notes; i++)
		free(st->notes[i]);
	free(st->notes);
	for (int i = 0; i < 8; i++)
		free(st->others[i]);
	memset(st, 0, sizeof(*st));
}

char	  **
fs_take_notes(fuzz_store *st, size_t *n)
{
	char	  **notes = st->notes;

	*n = st->n_notes;
	st->notes = NULL;
	st->n_notes = st->cap_notes = 0;
	return notes;
}
