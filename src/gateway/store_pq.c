/*
 * store_pq.c
 *	  core/store.h over libpq, on the gateway's request connection (pq.h).
 *	  The statements are the worker's (src/pg/store_spi.c), with two
 *	  differences: presence is asked of the server (chat._user_online,
 *	  which reads the shared memory where workers and gateways count
 *	  connections), and the group commit calls chat._gateway_send_batch,
 *	  a SECURITY DEFINER wrapper of chat._send_batch, so the gateway's role
 *	  needs no right on the tables.
 *
 *	  A group-commit batch is one statement, hence one transaction: the
 *	  core acks only after it returned, i.e. after COMMIT.  If it fails for
 *	  an item's fault, the batch is retried in one transaction with a
 *	  savepoint per item (chat._gateway_send), as the worker does with
 *	  subtransactions.  Idempotency is chat._send's (the client_id key).
 *
 *	  Calls are synchronous, like the worker's SPI calls: the loop waits
 *	  for the database for as long as the worker's would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway/store_pq.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', " \
	"'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define MSG_COLS "m.id::text, m.channel_id::text, m.client_id::text, " \
	"m.reply_to::text, m.seq, m.sender_id, m.content, m.kind, " \
	"m.attachments::text, " TS("m.created_at") ", " TS("m.edited_at") ", " \
	TS("m.deleted_at") ", m.change_seq, " \
	"CASE WHEN m.deleted_at IS NULL THEN m.reactions::text END"
#define MSG_NCOLS 14
#define CH_COLS "c.id::text, c.type, c.name, cm.role, c.last_seq, " \
	"cm.last_read_seq, (SELECT count(*) FROM chat.messages x " \
	"WHERE x.channel_id = c.id AND x.seq > cm.last_read_seq " \
	"AND x.sender_id <> cm.user_id AND x.deleted_at IS NULL), c.last_change"

typedef enum call_kind
{
	CALL_READ,					/* membership errors mean not_member */
	CALL_CHANGE					/* edit/delete: they mean forbidden */
} call_kind;

/* --- rows --------------------------------------------------------------- */

static const char *
val(const PGresult *r, int row, int c)
{
	return PQgetisnull(r, row, c - 1) ? NULL : PQgetvalue(r, row, c - 1);
}

static int64_t
val_int8(const PGresult *r, int row, int c)
{
	const char *v = val(r, row, c);

	return v ? strtoll(v, NULL, 10) : 0;
}

static char *
dup_text(const char *s)
{
	return strdup(s ? s : "");
}

static void
copy_uuid(chat_uuid dst, const char *src)
{
	snprintf(dst, sizeof(chat_uuid), "%s", src ? src : "");
}

static void
copy_ts(char *dst, const char *src)
{
	snprintf(dst, CHAT_TS_LEN, "%s", src ? src : "");
}

/* row_to_message copies row (MSG_COLS) into m; false when out of memory */
static bool
row_to_message(const PGresult *r, int row, chat_message *m)
{
	const char *att = val(r, row, 9);
	const char *reactions = val(r, row, 14);

	copy_uuid(m->id, val(r, row, 1));
	copy_uuid(m->channel_id, val(r, row, 2));
	copy_uuid(m->client_id, val(r, row, 3));
	copy_uuid(m->reply_to, val(r, row, 4));
	m->seq = val_int8(r, row, 5);
	m->sender_id = dup_text(val(r, row, 6));
	m->content = dup_text(val(r, row, 7));
	m->kind = dup_text(val(r, row, 8));
	m->attachments = att ? dup_text(att) : NULL;
	copy_ts(m->created_at, val(r, row, 10));
	copy_ts(m->edited_at, val(r, row, 11));
	copy_ts(m->deleted_at, val(r, row, 12));
	m->change_seq = val_int8(r, row, 13);
	m->reactions = reactions ? dup_text(reactions) : NULL;
	return m->sender_id && m->content && m->kind &&
		(att == NULL || m->attachments) && (reactions == NULL || m->reactions);
}

static chat_err
rows_to_messages(const PGresult *r, chat_message **out, size_t *n)
{
	size_t		rows = (size_t) PQntuples(r);
	chat_message *msgs = calloc(rows ? rows : 1, sizeof(chat_message));

	*out = NULL;
	*n = 0;
	if (msgs == NULL)
		return CHAT_E_INTERNAL;
	for (size_t i = 0; i < rows; i++)
		if (!row_to_message(r, (int) i, &msgs[i]))
		{
			chat_messages_free(msgs, i + 1);
			return CHAT_E_INTERNAL;
		}
	*out = msgs;
	*n = rows;
	return CHAT_OK;
}

static void
row_to_channel(const PGresult *r, int row, chat_channel_info *c)
{
	const char *name = val(r, row, 3);

	copy_uuid(c->id, val(r, row, 1));
	snprintf(c->type, sizeof(c->type), "%s", val(r, row, 2));
	c->name = name ? dup_text(name) : NULL;
	snprintf(c->role, sizeof(c->role), "%s", val(r, row, 4));
	c->last_seq = val_int8(r, row, 5);
	c->last_read_seq = val_int8(r, row, 6);
	c->unread = val_int8(r, row, 7);
	c->last_change = val_int8(r, row, 8);
}

/* --- errors -------------------------------------------------------------- */

/* classify maps a failed result onto the protocol's code, as store_spi.c */
static chat_err
classify(const PGresult *res, call_kind kind, char *msg, size_t msglen)
{
	const char *st = gw_pq_sqlstate(res);
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	chat_err	err = CHAT_E_INTERNAL;
	static const char *const bad[] = {
		"55000", "22023", "22004", "22P02", "23503", "23514", "22001",
		"22021", "22P05", NULL
	};

	/* ERRCODE_NO_DATA_FOUND (plpgsql's), as store_spi.c */
	if (strcmp(st, "P0002") == 0)
		err = CHAT_E_NOT_FOUND;
	else if (strcmp(st, "42501") == 0)
		err = kind == CALL_CHANGE ? CHAT_E_FORBIDDEN : CHAT_E_NOT_MEMBER;
	else if (strcmp(st, "54000") == 0)
		err = CHAT_E_TOO_LARGE;
	else
		for (int i = 0; bad[i]; i++)
			if (strcmp(st, bad[i]) == 0)
				err = CHAT_E_BAD_REQUEST;
	if (msg)
		snprintf(msg, msglen, "%s",
				 err == CHAT_E_INTERNAL || primary == NULL ?
				 "internal error" : primary);
	if (err == CHAT_E_INTERNAL && res)
		fprintf(stderr, "chat-gateway: query failed: %s",
				PQresultErrorMessage(res));
	return err;
}

/*
 * run executes sql; on failure classifies it and returns NULL.  A NULL
 * result (no connection) is internal.
 */
static PGresult *
run(gw_pq *pq, const char *sql, int n, const char *const *args,
	call_kind kind, chat_err *err, char *msg, size_t msglen)
{
	PGresult   *res = gw_pq_exec(pq, sql, n, args);

	if (res && gw_pq_ok(res))
	{
		*err = CHAT_OK;
		return res;
	}
	*err = classify(res, kind, msg, msglen);
	if (res == NULL && msg)
		snprintf(msg, msglen, "internal error");
	PQclear(res);
	return NULL;
}

static char *
fmt_int8(char *buf, size_t len, int64_t v)
{
	snprintf(buf, len, "%lld", (long long) v);
	return buf;
}

/* --- reads ---------------------------------------------------------------- */

static int
add_online(chat_channel_info *c, const char *user)
{
	char	  **n = realloc(c->online, (c->n_online + 1) * sizeof(char *));

	if (n == NULL)
		return -1;
	c->online = n;
	if ((c->online[c->n_online] = strdup(user)) == NULL)
		return -1;
	c->n_online++;
	return 0;
}

static chat_err
pq_user_channels(void *ctx, const char *user_id, chat_channel_info **out,
				 size_t *n)
{
	gw_pq	   *pq = ctx;
	const char *args[1] = {user_id};
	chat_err	err;
	PGresult   *r;
	chat_channel_info *chs;
	size_t		nch;

	r = run(pq, "SELECT " CH_COLS " FROM chat.channel_members cm "
			"JOIN chat.channels c ON c.id = cm.channel_id "
			"WHERE cm.user_id = $1 ORDER BY c.id", 1, args, CALL_READ, &err,
			NULL, 0);
	if (r == NULL)
		return err;
	nch = (size_t) PQntuples(r);
	chs = calloc(nch ? nch : 1, sizeof(chat_channel_info));
	if (chs == NULL)
	{
		PQclear(r);
		return CHAT_E_INTERNAL;
	}
	for (size_t i = 0; i < nch; i++)
		row_to_channel(r, (int) i, &chs[i]);
	PQclear(r);

	/* who is online in each: members from the table, presence from the server */
	r = run(pq, "SELECT o.channel_id::text, o.user_id, "
			"o.user_id = $1 OR chat._user_online(o.user_id) "
			"FROM chat.channel_members cm "
			"JOIN chat.channel_members o ON o.channel_id = cm.channel_id "
			"WHERE cm.user_id = $1 ORDER BY o.channel_id, o.user_id", 1, args,
			CALL_READ, &err, NULL, 0);
	if (r == NULL)
	{
		chat_channels_free(chs, nch);
		return err;
	}
	for (int row = 0, i = 0; row < PQntuples(r) && (size_t) i < nch; row++)
	{
		const char *ch = val(r, row, 1);

		while ((size_t) i < nch && strcmp(chs[i].id, ch) < 0)
			i++;
		if ((size_t) i < nch && strcmp(chs[i].id, ch) == 0 &&
			strcmp(val(r, row, 3), "t") == 0 &&
			add_online(&chs[i], val(r, row, 2)) != 0)
		{
			PQclear(r);
			chat_channels_free(chs, nch);
			return CHAT_E_INTERNAL;
		}
	}
	PQclear(r);
	*out = chs;
	*n = nch;
	return CHAT_OK;
}

static chat_err
pq_channel_for_user(void *ctx, const char *channel_id, const char *user_id,
					chat_channel_info *out)
{
	gw_pq	   *pq = ctx;
	const char *args[2] = {user_id, channel_id};
	chat_err	err;
	PGresult   *r;

	memset(out, 0, sizeof(*out));
	r = run(pq, "SELECT " CH_COLS " FROM chat.channel_members cm "
			"JOIN chat.channels c ON c.id = cm.channel_id "
			"WHERE cm.user_id = $1 AND cm.channel_id = $2::uuid", 2, args,
			CALL_READ, &err, NULL, 0);
	if (r == NULL)
		return err;
	if (PQntuples(r) != 1)
	{
		PQclear(r);
		return CHAT_E_NOT_MEMBER;
	}
	row_to_channel(r, 0, out);
	PQclear(r);
	r = run(pq, "SELECT user_id FROM chat.channel_members "
			"WHERE channel_id = $1::uuid AND chat._user_online(user_id) "
			"ORDER BY user_id", 1, args + 1, CALL_READ, &err, NULL, 0);
	if (r == NULL)
	{
		chat_channel_info_clear(out);
		return err;
	}
	for (int row = 0; row < PQntuples(r); row++)
		if (add_online(out, val(r, row, 1)) != 0)
		{
			PQclear(r);
			chat_channel_info_clear(out);
			return CHAT_E_INTERNAL;
		}
	PQclear(r);
	return CHAT_OK;
}

/* require_member: CHAT_OK, CHAT_E_NOT_MEMBER or a failure */
static chat_err
require_member(gw_pq *pq, const char *channel_id, const char *user_id)
{
	const char *args[2] = {channel_id, user_id};
	chat_err	err;
	PGresult   *r;

	if (user_id == NULL)
		return CHAT_OK;
	r = run(pq, "SELECT 1 FROM chat.channel_members "
			"WHERE channel_id = $1::uuid AND user_id = $2", 2, args, CALL_READ,
			&err, NULL, 0);
	if (r == NULL)
		return err;
	err = PQntuples(r) == 1 ? CHAT_OK : CHAT_E_NOT_MEMBER;
	PQclear(r);
	return err;
}

static chat_err
messages(gw_pq *pq, const char *channel_id, const char *user_id, int64_t seq,
		 int limit, bool newest_first, chat_message **out, size_t *n)
{
	char		b1[24],
				b2[24];
	const char *args[3] = {channel_id, fmt_int8(b1, sizeof(b1), seq),
	fmt_int8(b2, sizeof(b2), limit)};
	chat_err	err = require_member(pq, channel_id, user_id);
	PGresult   *r;

	*out = NULL;
	*n = 0;
	if (err != CHAT_OK)
		return err;
	if (!newest_first)
		r = run(pq, "SELECT " MSG_COLS " FROM chat.messages m "
				"WHERE m.channel_id = $1::uuid AND m.seq > $2::bigint "
				"ORDER BY m.seq LIMIT $3::bigint", 3, args, CALL_READ, &err,
				NULL, 0);
	else if (seq > 0)
		r = run(pq, "SELECT " MSG_COLS " FROM chat.messages m "
				"WHERE m.channel_id = $1::uuid AND m.seq < $2::bigint "
				"ORDER BY m.seq DESC LIMIT $3::bigint", 3, args, CALL_READ,
				&err, NULL, 0);
	else
	{
		args[1] = args[2];
		r = run(pq, "SELECT " MSG_COLS " FROM chat.messages m "
				"WHERE m.channel_id = $1::uuid "
				"ORDER BY m.seq DESC LIMIT $2::bigint", 2, args, CALL_READ,
				&err, NULL, 0);
	}
	if (r == NULL)
		return err;
	err = rows_to_messages(r, out, n);
	PQclear(r);
	return err;
}

static chat_err
pq_since(void *ctx, const char *channel_id, const char *user_id,
		 int64_t after_seq, int limit, chat_message **out, size_t *n)
{
	return messages(ctx, channel_id, user_id, after_seq, limit, false, out, n);
}

static chat_err
pq_history(void *ctx, const char *channel_id, const char *user_id,
		   int64_t before, int limit, chat_message **out, size_t *n)
{
	return messages(ctx, channel_id, user_id, before, limit, true, out, n);
}

static chat_err
pq_changes(void *ctx, const char *channel_id, const char *user_id,
		   int64_t after_change, int64_t upto_seq, int limit,
		   chat_message **out, size_t *n, int64_t *channel_change)
{
	gw_pq	   *pq = ctx;
	char		b1[24],
				b2[24],
				b3[24];
	const char *args[4] = {channel_id, fmt_int8(b1, sizeof(b1), after_change),
		fmt_int8(b2, sizeof(b2), upto_seq),
	fmt_int8(b3, sizeof(b3), limit)};
	chat_err	err = require_member(pq, channel_id, user_id);
	PGresult   *r;

	if (err != CHAT_OK)
		return err;
	r = run(pq, "SELECT last_change FROM chat.channels WHERE id = $1::uuid",
			1, args, CALL_READ, &err, NULL, 0);
	if (r == NULL)
		return err;
	*channel_change = PQntuples(r) == 1 ? val_int8(r, 0, 1) : 0;
	PQclear(r);
	r = run(pq, "SELECT " MSG_COLS " FROM chat.messages m "
			"WHERE m.channel_id = $1::uuid AND m.change_seq > $2::bigint "
			"AND m.seq <= $3::bigint ORDER BY m.change_seq LIMIT $4::bigint",
			4, args, CALL_READ, &err, NULL, 0);
	if (r == NULL)
		return err;
	err = rows_to_messages(r, out, n);
	PQclear(r);
	return err;
}

/* --- changes ---------------------------------------------------------------- */

static chat_err
pq_mark_read(void *ctx, const char *channel_id, const char *user_id,
			 int64_t seq, int64_t *stored)
{
	gw_pq	   *pq = ctx;
	char		b1[24];
	char		sql[256];
	const char *args[3] = {channel_id, user_id, fmt_int8(b1, sizeof(b1), seq)};
	chat_err	err;
	PGresult   *r;

	*stored = 0;
	if (!gw_pq_connect(pq, sql, sizeof(sql)))
		return CHAT_E_INTERNAL;
	snprintf(sql, sizeof(sql),
			 "SELECT %s.chat_mark_read($1::uuid, $2, $3::bigint)", pq->schema);
	r = run(pq, sql, 3, args, CALL_READ, &err, NULL, 0);
	if (r == NULL)
		return err;
	*stored = val_int8(r, 0, 1);
	PQclear(r);
	return CHAT_OK;
}

/* one_message runs sql (MSG_COLS) and copies its row into out */
static chat_err
one_message(gw_pq *pq, const char *sql, int n, const char *const *args,
			chat_message *out, char *errmsg, size_t errlen)
{
	chat_err	err;
	PGresult   *r = run(pq, sql, n, args, CALL_CHANGE, &err, errmsg, errlen);

	if (r == NULL)
		return err;
	if (PQntuples(r) == 1 && !row_to_message(r, 0, out))
		err = CHAT_E_INTERNAL;
	PQclear(r);
	return err;
}

static chat_err
pq_edit(void *ctx, const char *message_id, const char *user_id,
		const char *content, chat_message *out, char *errmsg, size_t errlen)
{
	gw_pq	   *pq = ctx;
	char		sql[1024];
	const char *args[3] = {message_id, user_id, content};

	if (!gw_pq_connect(pq, sql, sizeof(sql)))
		return CHAT_E_INTERNAL;
	snprintf(sql, sizeof(sql),
			 "SELECT " MSG_COLS " FROM %s.chat_edit($1::uuid, $2, $3) m",
			 pq->schema);
	return one_message(pq, sql, 3, args, out, errmsg, errlen);
}

static chat_err
pq_remove(void *ctx, const char *message_id, const char *user_id,
		  chat_message *out, char *errmsg, size_t errlen)
{
	gw_pq	   *pq = ctx;
	char		sql[1024];
	const char *args[2] = {message_id, user_id};

	if (!gw_pq_connect(pq, sql, sizeof(sql)))
		return CHAT_E_INTERNAL;

	/*
	 * chat_delete returns nothing: the deleted row is the result, read in the
	 * same statement's snapshot would miss it, hence a CTE-free pair.
	 */
	snprintf(sql, sizeof(sql),
			 "SELECT %s.chat_delete($1::uuid, $2)", pq->schema);
	{
		chat_err	err;
		PGresult   *r = run(pq, sql, 2, args, CALL_CHANGE, &err, errmsg,
							errlen);

		if (r == NULL)
			return err;
		PQclear(r);
	}
	return one_message(pq, "SELECT " MSG_COLS " FROM chat.messages m "
					   "WHERE m.id = $1::uuid", 1, args, out, errmsg, errlen);
}

static chat_err
pq_react(void *ctx, const char *message_id, const char *user_id,
		 const char *emoji, bool add, chat_message *out, char *errmsg,
		 size_t errlen)
{
	gw_pq	   *pq = ctx;
	char		sql[1024];
	const char *args[3] = {message_id, user_id, emoji};

	if (!gw_pq_connect(pq, sql, sizeof(sql)))
		return CHAT_E_INTERNAL;
	snprintf(sql, sizeof(sql),
			 "SELECT " MSG_COLS " FROM %s.%s($1::uuid, $2, $3) m", pq->schema,
			 add ? "chat_react" : "chat_unreact");
	return one_message(pq, sql, 3, args, out, errmsg, errlen);
}

static chat_err
pq_search(void *ctx, const char *user_id, const char *query,
		  const char *channel_id, const char *before_id, int limit,
		  chat_search_hit **out, size_t *n, char *errmsg, size_t errlen)
{
	gw_pq	   *pq = ctx;
	char		sql[1024];
	char		b1[24];
	const char *args[5] = {user_id, query,
		channel_id[0] ? channel_id : NULL,
		before_id[0] ? before_id : NULL,
	fmt_int8(b1, sizeof(b1), limit)};
	chat_err	err;
	PGresult   *r;
	chat_search_hit *hits;
	size_t		rows;

	*out = NULL;
	*n = 0;
	if (!gw_pq_connect(pq, sql, sizeof(sql)))
		return CHAT_E_INTERNAL;
	snprintf(sql, sizeof(sql),
			 "SELECT s.message_id::text, s.channel_id::text, s.seq, "
			 "s.sender_id, s.content, s.headline, " TS("s.created_at") ", "
			 TS("s.edited_at") " FROM %s.chat_search($1, $2, $3::uuid, "
			 "$4::uuid, $5::integer) s", pq->schema);
	r = run(pq, sql, 5, args, CALL_READ, &err, errmsg, errlen);
	if (r == NULL)
		return err;
	rows = (size_t) PQntuples(r);
	hits = calloc(rows ? rows : 1, sizeof(chat_search_hit));
	if (hits == NULL)
	{
		PQclear(r);
		return CHAT_E_INTERNAL;
	}
	for (size_t i = 0; i < rows; i++)
	{
		chat_search_hit *h = &hits[i];

		copy_uuid(h->id, val(r, (int) i, 1));
		copy_uuid(h->channel_id, val(r, (int) i, 2));
		h->seq = val_int8(r, (int) i, 3);
		h->sender_id = dup_text(val(r, (int) i, 4));
		h->content = dup_text(val(r, (int) i, 5));
		h->headline = dup_text(val(r, (int) i, 6));
		copy_ts(h->created_at, val(r, (int) i, 7));
		copy_ts(h->edited_at, val(r, (int) i, 8));
	}
	PQclear(r);
	*out = hits;
	*n = rows;
	return CHAT_OK;
}

/* --- group commit -------------------------------------------------------- */

static void
item_args(const chat_send_item *it, const char *out[7])
{
	out[0] = it->channel_id;
	out[1] = it->sender_id;
	out[2] = it->content;
	out[3] = it->client_id;
	out[4] = it->kind;
	out[5] = it->reply_to[0] ? it->reply_to : NULL;
	out[6] = it->attachments;
}

/* a growable string for array literals */
typedef struct sbuf
{
	char	   *s;
	size_t		len;
	size_t		cap;
	bool		oom;
} sbuf;

static void
sb_add(sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 256;
		char	   *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->s, cap);
		if (p == NULL)
		{
			b->oom = true;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

/* array_literal: '{"a","b",NULL}' with every element quoted and escaped */
static char *
array_literal(const char **values, size_t n)
{
	sbuf		b = {0};

	sb_add(&b, "{", 1);
	for (size_t i = 0; i < n; i++)
	{
		if (i > 0)
			sb_add(&b, ",", 1);
		if (values[i] == NULL)
		{
			sb_add(&b, "NULL", 4);
			continue;
		}
		sb_add(&b, "\"", 1);
		for (const char *p = values[i]; *p; p++)
		{
			if (*p == '"' || *p == '\\')
				sb_add(&b, "\\", 1);
			sb_add(&b, p, 1);
		}
		sb_add(&b, "\"", 1);
	}
	sb_add(&b, "}", 1);
	if (b.oom)
	{
		free(b.s);
		return NULL;
	}
	return b.s;
}

static void
free_members(chat_send_item *it)
{
	chat_strings_free(it->members, it->n_members);
	it->members = NULL;
	it->n_members = 0;
}

/*
 * attach_members gives the first item of channel the members the batch
 * statement listed (a JSON array of user ids); false when out of memory
 * or not an array of strings.  A channel none of the items names (its
 * sends all failed) is no news.
 */
static bool
attach_members(chat_send_item *items, size_t n, const char *channel,
			   const char *members)
{
	chat_send_item *it = NULL;
	json_t	   *arr;
	bool		ok = true;

	for (size_t i = 0; i < n && it == NULL; i++)
		if (items[i].status == CHAT_OK && !items[i].duplicate &&
			strcmp(items[i].channel_id, channel) == 0)
			it = &items[i];
	if (it == NULL || it->members)
		return it == NULL;
	arr = json_loads(members, 0, NULL);
	if (!json_is_array(arr) ||
		(it->members = calloc(json_array_size(arr) + 1, sizeof(char *))) == NULL)
		ok = false;
	for (size_t k = 0; ok && k < json_array_size(arr); k++)
	{
		const char *u = json_string_value(json_array_get(arr, k));

		if (u == NULL || (it->members[k] = strdup(u)) == NULL)
			ok = false;
		else
			it->n_members++;
	}
	json_decref(arr);
	if (!ok)
		free_members(it);
	return ok;
}

static void
reset_items(chat_send_item *items, size_t n, chat_err status)
{
	for (size_t i = 0; i < n; i++)
	{
		free_members(&items[i]);
		chat_message_clear(&items[i].msg);
		items[i].duplicate = false;
		items[i].status = status;
		if (status != CHAT_OK)
			snprintf(items[i].errmsg, sizeof(items[i].errmsg),
					 "internal error");
	}
}

/*
 * batch_is_internal: the set-based statement failed for a reason that
 * would only happen again (resources, cancel/timeout, system, a lost
 * connection), as store_spi.c's batch_failure.
 */
static bool
batch_is_internal(const PGresult *res)
{
	const char *st = gw_pq_sqlstate(res);

	return st[0] == '\0' || strncmp(st, "53", 2) == 0 ||
		strncmp(st, "57", 2) == 0 || strncmp(st, "58", 2) == 0 ||
		strncmp(st, "XX", 2) == 0;
}

/* heard_text: pq->members_heard as a parameter (malloc'd) */
static char *
heard_text(const gw_pq *pq)
{
	char	   *t = malloc(24);

	if (t)
		snprintf(t, 24, "%lld", (long long) pq->members_heard);
	return t;
}

/* the group commit's one statement: the whole batch, one transaction */
static const char *batch_sql =
"SELECT " MSG_COLS ", m.dup, m.ord, m.ch::text, m.members::text "
"FROM (SELECT (b.message).*, b.duplicate AS dup, b.ord, "
"b.channel AS ch, b.members FROM chat._gateway_send_batch($1::uuid[], "
"$2::text[], $3::text[], $4::uuid[], $5::text[], $6::uuid[], "
"$7::jsonb[], $8::bigint) b) m";

static void
free_params(char *lits[8])
{
	for (int k = 0; k < 8; k++)
	{
		free(lits[k]);
		lits[k] = NULL;
	}
}

/*
 * batch_params fills lits with batch_sql's parameters for items (heard:
 * the membership changes this gateway has heard); false when out of
 * memory, and then lits holds nothing.
 */
static bool
batch_params(const gw_pq *heard, chat_send_item *items, size_t n, char *lits[8])
{
	const char **cols[7];
	bool		ok = false;

	memset(lits, 0, 8 * sizeof(char *));
	for (int k = 0; k < 7; k++)
		cols[k] = malloc(n * sizeof(char *));
	for (int k = 0; k < 7; k++)
		if (cols[k] == NULL)
			goto out;
	for (size_t i = 0; i < n; i++)
	{
		const char *args[7];

		item_args(&items[i], args);
		for (int k = 0; k < 7; k++)
			cols[k][i] = args[k];
	}
	for (int k = 0; k < 7; k++)
		if ((lits[k] = array_literal(cols[k], n)) == NULL)
			goto out;
	ok = (lits[7] = heard_text(heard)) != NULL;
out:
	for (int k = 0; k < 7; k++)
		free(cols[k]);
	if (!ok)
		free_params(lits);
	return ok;
}

/* set_batch: one statement for the whole batch; NULL result = failure */
static PGresult *
set_batch(gw_pq *pq, chat_send_item *items, size_t n)
{
	char	   *lits[8];
	PGresult   *res;

	if (!batch_params(pq, items, n, lits))
		return NULL;
	res = gw_pq_exec(pq, batch_sql, 8, (const char *const *) lits);
	free_params(lits);
	return res;
}

static bool
exec_ok(gw_pq *pq, const char *sql)
{
	PGresult   *r = PQexec(pq->conn, sql);
	bool		ok = r && gw_pq_ok(r);

	PQclear(r);
	return ok;
}

static int
item_cmp(const void *a, const void *b)
{
	const chat_send_item *const *x = a;
	const chat_send_item *const *y = b;
	int			c = strcmp((*x)->channel_id, (*y)->channel_id);

	if (c != 0)
		return c;
	return (*x < *y) ? -1 : (*x > *y);
}

/*
 * isolated_members asks, inside the isolated batch's transaction (after its
 * locks), who the members of its stored messages' group channels are, as
 * chat._gateway_send_batch says at its end; false when that failed.
 */
static bool
isolated_members(gw_pq *pq, chat_send_item *items, size_t n)
{
	const char **ids = malloc(n * sizeof(char *));
	size_t		k = 0;
	char	   *lit;
	char		heard[24];
	const char *args[2];
	PGresult   *r;
	bool		ok;

	if (ids == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (items[i].status == CHAT_OK && !items[i].duplicate)
			ids[k++] = items[i].channel_id;
	lit = k ? array_literal(ids, k) : NULL;
	free(ids);
	if (k == 0)
		return true;
	if (lit == NULL)
		return false;
	snprintf(heard, sizeof(heard), "%lld", (long long) pq->members_heard);
	args[0] = lit;
	args[1] = heard;
	r = gw_pq_exec(pq, "SELECT channel::text, members::text "
				   "FROM chat._gateway_members($1::uuid[], $2::bigint)", 2, args);
	free(lit);
	ok = r && gw_pq_ok(r);
	for (int row = 0; ok && row < PQntuples(r); row++)
		ok = val(r, row, 1) && val(r, row, 2) &&
			attach_members(items, n, val(r, row, 1), val(r, row, 2));
	PQclear(r);
	return ok;
}

/*
 * isolated stores item by item in one transaction, a savepoint each, in
 * channel order (the lock order); false when the transaction failed.
 */
static bool
isolated(gw_pq *pq, chat_send_item *items, size_t n)
{
	static const char *sql =
	"SELECT " MSG_COLS ", m.dup FROM (SELECT (s.message).*, "
	"s.duplicate AS dup FROM chat._gateway_send($1::uuid, $2, $3, $4::uuid, "
	"$5, $6::uuid, $7::jsonb) s) m";
	chat_send_item **order = malloc(n * sizeof(chat_send_item *));
	bool		ok = false;

	if (order == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		order[i] = &items[i];
	qsort(order, n, sizeof(chat_send_item *), item_cmp);
	/* prepare outside the transaction (a failed prepare aborts nothing) */
	PQclear(gw_pq_exec(pq, "SELECT 1", 0, NULL));
	if (pq->conn == NULL || !exec_ok(pq, "BEGIN"))
		goto out;
	for (size_t i = 0; i < n; i++)
	{
		chat_send_item *it = order[i];
		const char *args[7];
		PGresult   *r;

		if (!exec_ok(pq, "SAVEPOINT item"))
			goto rollback;
		item_args(it, args);
		r = gw_pq_exec(pq, sql, 7, args);
		if (r && gw_pq_ok(r) && PQntuples(r) == 1)
		{
			if (!row_to_message(r, 0, &it->msg))
			{
				PQclear(r);
				goto rollback;
			}
			it->duplicate = strcmp(val(r, 0, MSG_NCOLS + 1), "t") == 0;
			it->status = CHAT_OK;
			PQclear(r);
			if (!exec_ok(pq, "RELEASE SAVEPOINT item"))
				goto rollback;
			continue;
		}
		it->status = classify(r, CALL_READ, it->errmsg, sizeof(it->errmsg));
		PQclear(r);
		/* not this item's fault: the whole batch fails */
		if (it->status == CHAT_E_INTERNAL ||
			!exec_ok(pq, "ROLLBACK TO SAVEPOINT item"))
			goto rollback;
	}
	ok = isolated_members(pq, items, n) && exec_ok(pq, "COMMIT");
	if (!ok)
		goto rollback;
	goto out;
rollback:
	if (pq->conn)
		(void) exec_ok(pq, "ROLLBACK");
out:
	free(order);
	return ok;
}

/*
 * batch_outcome fills items from res, the result of batch_sql on pq (NULL:
 * it failed), and PQclear()s it.  A batch refused for an item's fault is
 * stored again item by item on pq (isolated).
 */
static chat_err
batch_outcome(gw_pq *pq, PGresult *res, chat_send_item *items, size_t n)
{
	bool		internal;

	reset_items(items, n, CHAT_E_INTERNAL);
	if (res && gw_pq_ok(res) && (size_t) PQntuples(res) >= n)
	{
		bool		good = true;
		size_t		got = 0;

		/* the messages first (ord 1..n), then the members (ord 0) */
		for (int r = 0; r < PQntuples(res) && good; r++)
		{
			int64_t		ord = val_int8(res, r, MSG_NCOLS + 2);
			chat_send_item *it;

			if (ord == 0 && got == n)
			{
				const char *ch = val(res, r, MSG_NCOLS + 3);
				const char *members = val(res, r, MSG_NCOLS + 4);

				good = ch && members && attach_members(items, n, ch, members);
				continue;
			}
			if (ord < 1 || ord > (int64_t) n || items[ord - 1].status == CHAT_OK)
			{
				good = false;
				break;
			}
			it = &items[ord - 1];
			if (!row_to_message(res, r, &it->msg))
				good = false;
			it->duplicate = strcmp(val(res, r, MSG_NCOLS + 1), "t") == 0;
			it->status = CHAT_OK;
			got++;
		}
		good = good && got == n;
		PQclear(res);
		/* committed: a bad row count cannot be undone, but is not acked */
		if (good)
			return CHAT_OK;
		reset_items(items, n, CHAT_E_INTERNAL);
		return CHAT_E_INTERNAL;
	}
	internal = res == NULL || batch_is_internal(res);
	PQclear(res);
	if (internal)
		return CHAT_E_INTERNAL;
	reset_items(items, n, CHAT_OK);
	if (!isolated(pq, items, n))
	{
		reset_items(items, n, CHAT_E_INTERNAL);
		return CHAT_E_INTERNAL;
	}
	return CHAT_OK;
}

static chat_err
pq_send_batch(void *ctx, chat_send_item *items, size_t n)
{
	gw_pq	   *pq = ctx;

	return batch_outcome(pq, set_batch(pq, items, n), items, n);
}

/* --- the pipelined group commit (core/store.h batch_start/finish) ------- */

/*
 * pq_batch_start sends the batch on a free batch connection and returns
 * without waiting; false when every one is busy, or none can send now.
 */
static bool
pq_batch_start(void *ctx, chat_send_item *items, size_t n)
{
	gw_pq	   *pq = ctx;
	gw_pool    *pool = pq->pool;
	gw_batch_conn *bc = NULL;
	int			i;

	for (i = 0; i < pool->n_conns; i++)
		if (!pool->conns[i].busy)
		{
			bc = &pool->conns[i];
			break;
		}
	if (bc == NULL)
		return false;
	/* the members heard: the request connection keeps that count */
	if (!batch_params(pq, items, n, bc->params))
		return false;
	bc->pq.members_heard = pq->members_heard;	/* for isolated_members */
	if (!gw_pq_send(&bc->pq, batch_sql, 8, (const char *const *) bc->params))
	{
		free_params(bc->params);
		/* a dead connection is made again by the next call */
		if (bc->pq.conn &&PQstatus(bc->pq.conn) != CONNECTION_OK)
			gw_pq_close(&bc->pq);
		return false;
	}
	bc->busy = true;
	bc->resent = false;
	bc->started = ++pool->n_started;
	bc->items = items;
	bc->n = n;
	return true;
}

/*
 * pq_batch_finish hands back a batch whose outcome is in: the oldest one,
 * waiting for it, when wait.  When its connection failed meanwhile,
 * whether it committed is unknown: it is sent once more on a new
 * connection (without waiting), which is safe, as gw_pq_exec's retry is
 * (each send carries its idempotency key: what committed comes back as
 * duplicates).
 */
static chat_send_item *
pq_batch_finish(void *ctx, bool wait)
{
	gw_pq	   *pq = ctx;
	gw_pool    *pool = pq->pool;
	gw_batch_conn *bc;
	chat_send_item *items;
	PGresult   *res;
	bool		ready;

	/*
	 * No gw_pool_read first: gw_pq_take reads each busy connection itself,
	 * and the loop reads the idle ones when their sockets wake it.
	 */
	for (;;)
	{
		bc = NULL;
		res = NULL;
		for (int i = 0; i < pool->n_conns; i++)
		{
			gw_batch_conn *c = &pool->conns[i];

			if (!c->busy)
				continue;
			if (wait)
			{
				if (bc == NULL || c->started < bc->started)
					bc = c;
				continue;
			}
			res = gw_pq_take(&c->pq, false, &ready);
			if (ready)
			{
				bc = c;
				break;
			}
		}
		if (bc == NULL)
			return NULL;
		if (wait)
			res = gw_pq_take(&bc->pq, true, &ready);
		if ((res == NULL || !gw_pq_ok(res)) && !bc->resent &&
			(bc->pq.conn == NULL || PQstatus(bc->pq.conn) != CONNECTION_OK))
		{
			PQclear(res);
			res = NULL;
			gw_pq_close(&bc->pq);
			bc->resent = true;
			if (gw_pq_send(&bc->pq, batch_sql, 8, (const char *const *) bc->params))
				continue;		/* busy again: its outcome comes later */
		}
		break;
	}
	(void) batch_outcome(&bc->pq, res, bc->items, bc->n);
	items = bc->items;
	free_params(bc->params);
	bc->busy = false;
	bc->items = NULL;
	bc->n = 0;
	return items;
}

/*
 * gw_pool_read reads what arrived on every batch connection into libpq's
 * buffers, so that a socket whose result waits behind an older batch does
 * not wake the loop again and again; an idle connection that broke is
 * closed (made again by its next batch).
 */
void
gw_pool_read(gw_pool *pool)
{
	for (int i = 0; i < pool->n_conns; i++)
	{
		gw_batch_conn *bc = &pool->conns[i];

		if (bc->pq.conn == NULL)
			continue;
		if (PQconsumeInput(bc->pq.conn) == 0 && !bc->busy)
			gw_pq_close(&bc->pq);
		else if (!bc->busy)
		{
			PGresult   *stray;

			/* nothing is expected: drop what came (a NOTICE has no result) */
			while (!PQisBusy(bc->pq.conn) &&
				   (stray = PQgetResult(bc->pq.conn)) != NULL)
				PQclear(stray);
		}
	}
}

int
gw_pool_fd(gw_pool *pool, int i)
{
	if (i < 0 || i >= pool->n_conns || pool->conns[i].pq.conn == NULL ||
		PQstatus(pool->conns[i].pq.conn) != CONNECTION_OK)
		return -1;
	return PQsocket(pool->conns[i].pq.conn);
}

/* --- presence ------------------------------------------------------------- */

/*
 * channel_users runs sql (one parameter, the channel; one column, a user
 * id); CHAT_E_INTERNAL when any string could not be copied: a member left
 * out would read as removed.
 */
static chat_err
channel_users(gw_pq *pq, const char *sql, const char *channel_id,
			  char ***users, size_t *n)
{
	const char *args[1] = {channel_id};
	chat_err	err;
	PGresult   *r = run(pq, sql, 1, args, CALL_READ, &err, NULL, 0);
	char	  **out;
	size_t		k = 0;

	if (r == NULL)
		return err;
	out = calloc((size_t) PQntuples(r) + 1, sizeof(char *));
	for (int row = 0; out && row < PQntuples(r); row++)
		if ((out[k] = strdup(val(r, row, 1))) != NULL)
			k++;
	if (out == NULL || k < (size_t) PQntuples(r))
	{
		chat_strings_free(out, k);
		PQclear(r);
		return CHAT_E_INTERNAL;
	}
	PQclear(r);
	*users = out;
	*n = k;
	return CHAT_OK;
}

static chat_err
pq_channel_online(void *ctx, const char *channel_id, char ***users,
				  size_t *n)
{
	return channel_users(ctx, "SELECT user_id FROM chat.channel_members "
						 "WHERE channel_id = $1::uuid AND chat._user_online(user_id) "
						 "ORDER BY user_id", channel_id, users, n);
}

static chat_err
pq_channel_members(void *ctx, const char *channel_id, char ***users,
				   size_t *n)
{
	return channel_users(ctx, "SELECT user_id FROM chat.channel_members "
						 "WHERE channel_id = $1::uuid ORDER BY user_id",
						 channel_id, users, n);
}

static chat_err
pq_user_channel_ids(void *ctx, const char *user_id, chat_uuid * *ids,
					size_t *n)
{
	gw_pq	   *pq = ctx;
	const char *args[1] = {user_id};
	chat_err	err;
	PGresult   *r = run(pq, "SELECT channel_id::text FROM chat.channel_members "
						"WHERE user_id = $1", 1, args, CALL_READ, &err, NULL, 0);
	chat_uuid  *out;

	if (r == NULL)
		return err;
	out = calloc((size_t) PQntuples(r) + 1, sizeof(chat_uuid));
	if (out == NULL)
	{
		PQclear(r);
		return CHAT_E_INTERNAL;
	}
	for (int row = 0; row < PQntuples(r); row++)
		copy_uuid(out[row], val(r, row, 1));
	*n = (size_t) PQntuples(r);
	PQclear(r);
	*ids = out;
	return CHAT_OK;
}

void
gw_store_init(chat_store *store, gw_pq *pq)
{
	memset(store, 0, sizeof(*store));
	store->ctx = pq;
	store->user_channels = pq_user_channels;
	store->channel_for_user = pq_channel_for_user;
	store->send_batch = pq_send_batch;
	if (pq->pool && pq->pool->n_conns > 0)
	{
		store->batch_start = pq_batch_start;
		store->batch_finish = pq_batch_finish;
	}
	store->since = pq_since;
	store->changes = pq_changes;
	store->history = pq_history;
	store->mark_read = pq_mark_read;
	store->edit = pq_edit;
	store->remove = pq_remove;
	store->react = pq_react;
	store->search = pq_search;
	store->channel_online = pq_channel_online;
	store->channel_members = pq_channel_members;
	store->user_channel_ids = pq_user_channel_ids;
}
