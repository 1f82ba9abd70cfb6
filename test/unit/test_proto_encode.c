/*
 * test_proto_encode.c
 *	  Unit tests of the server frames (proto_encode.c, jsonw.c): each encoder
 *	  is parsed back with jansson and every field checked; a few frames are
 *	  compared as exact text to pin down compactness and member order; and a
 *	  decoded send frame is encoded back as the message and the ack.
 */
#include "proto_test.h"

/*
 * sample_message fills m with a complete message (free with
 * chat_message_clear).
 */
static void
sample_message(chat_message *m)
{
	memset(m, 0, sizeof(*m));
	strcpy(m->id, U3);
	strcpy(m->channel_id, U2);
	strcpy(m->client_id, U1);
	m->seq = 43;
	m->sender_id = strdup("al\"ice");
	m->content = strdup("h\xc3\xa9llo\n\t\x01 \xe2\x82\xac \\ </b>");
	m->kind = strdup("text");
	m->attachments = strdup("[{\"url\": \"http://h/a b\", \"name\": \"x y\","
							" \"size\": 1, \"mime\": \"a/b\"}]");
	strcpy(m->created_at, "2024-05-01T12:00:00.123456Z");
}

static void
test_encode_message_object(void)
{
	chat_message m;
	size_t		len;
	json_t	   *j;
	json_t	   *att;

	sample_message(&m);
	j = parse(take(proto_message_object(&m), &len), &len);
	check_keys(j, 12);
	CHECK_STR(jstr(j, "id"), U3);
	CHECK_STR(jstr(j, "channelId"), U2);
	CHECK(jint(j, "seq") == 43);
	CHECK_STR(jstr(j, "senderId"), "al\"ice");
	CHECK_STR(jstr(j, "clientId"), U1);
	CHECK_STR(jstr(j, "content"), m.content);
	CHECK_STR(jstr(j, "kind"), "text");
	check_null(j, "replyTo");
	att = json_object_get(j, "attachments");
	CHECK(json_is_array(att) && json_array_size(att) == 1);
	CHECK_STR(jstr(json_array_get(att, 0), "url"), "http://h/a b");
	CHECK_STR(jstr(json_array_get(att, 0), "name"), "x y");
	CHECK_STR(jstr(j, "createdAt"), "2024-05-01T12:00:00.123456Z");
	check_null(j, "editedAt");
	check_null(j, "deletedAt");
	json_decref(j);
	chat_message_clear(&m);
}

static void
test_encode_message_exact(void)
{
	chat_message m;
	size_t		len;
	char	   *s;

	sample_message(&m);
	strcpy(m.reply_to, U1);
	strcpy(m.edited_at, "2024-05-01T12:01:00Z");
	strcpy(m.deleted_at, "2024-05-01T12:02:00Z");
	free(m.content);
	m.content = strdup("");
	s = take(proto_message_object(&m), &len);
	CHECK_STR(s, "{\"id\":\"" U3 "\",\"channelId\":\"" U2 "\",\"seq\":43,"
			  "\"senderId\":\"al\\\"ice\",\"clientId\":\"" U1 "\","
			  "\"content\":\"\",\"kind\":\"text\",\"replyTo\":\"" U1 "\","
			  "\"attachments\":[{\"url\":\"http://h/a b\",\"name\":\"x y\","
			  "\"size\":1,\"mime\":\"a/b\"}],"
			  "\"createdAt\":\"2024-05-01T12:00:00.123456Z\","
			  "\"editedAt\":\"2024-05-01T12:01:00Z\","
			  "\"deletedAt\":\"2024-05-01T12:02:00Z\"}");
	CHECK(s != NULL && len == strlen(s));
	free(s);
	chat_message_clear(&m);
}

static void
test_encode_utf8_and_escapes(void)
{
	chat_message m;
	size_t		len;
	char	   *s;
	json_t	   *j;

	sample_message(&m);
	s = take(proto_message_object(&m), &len);
	/* non-ASCII stays raw; control characters are escaped */
	CHECK(s != NULL && strstr(s, "h\xc3\xa9llo\\n\\t\\u0001 \xe2\x82\xac "
							  "\\\\ </b>") != NULL);
	free(s);
	/* invalid UTF-8 from the database becomes U+FFFD, output stays valid */
	free(m.content);
	m.content = strdup("a\xff" "b\xc0\x80" "c\xed\xa0\x80" "d\xe2\x82");
	j = parse(take(proto_message_object(&m), &len), &len);
	CHECK_STR(jstr(j, "content"), "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd"
			  "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "d\xef\xbf\xbd\xef\xbf\xbd");
	json_decref(j);
	chat_message_clear(&m);
}

static void
test_encode_message_nulls(void)
{
	chat_message m;
	size_t		len;
	json_t	   *j;

	memset(&m, 0, sizeof(m));
	strcpy(m.id, U3);
	strcpy(m.channel_id, U2);
	j = parse(take(proto_message_object(&m), &len), &len);
	check_keys(j, 12);
	check_null(j, "senderId");
	check_null(j, "clientId");
	CHECK_STR(jstr(j, "content"), "");
	CHECK_STR(jstr(j, "kind"), "text");
	check_null(j, "attachments");
	check_null(j, "createdAt");
	json_decref(j);

	/* attachments text that does not balance is not spliced in */
	m.attachments = strdup("[{\"a\": \"]\"}");
	j = parse(take(proto_message_object(&m), &len), &len);
	check_null(j, "attachments");
	json_decref(j);
	free(m.attachments);
	m.attachments = strdup("  ");
	j = parse(take(proto_message_object(&m), &len), &len);
	check_null(j, "attachments");
	json_decref(j);
	free(m.attachments);
	m.attachments = strdup("[\"a \\\" ]\" , 1]");
	j = parse(take(proto_message_object(&m), &len), &len);
	CHECK(json_array_size(json_object_get(j, "attachments")) == 2);
	CHECK_STR(json_string_value(json_array_get(json_object_get(j,
															   "attachments"),
											   0)), "a \" ]");
	json_decref(j);
	chat_message_clear(&m);
}

static void
test_encode_message_frame(void)
{
	chat_message m;
	size_t		mlen;
	size_t		len;
	char	   *obj;
	char	   *frame;
	json_t	   *j;

	sample_message(&m);
	obj = take(proto_message_object(&m), &mlen);
	frame = take(proto_message_frame(obj, mlen), &len);
	CHECK(frame != NULL && len == strlen("{\"type\":\"message\",\"message\":}")
		  + mlen);
	CHECK(strncmp(frame, "{\"type\":\"message\",\"message\":{", 29) == 0);
	j = parse(frame, &len);
	check_keys(j, 2);
	CHECK_STR(jstr(j, "type"), "message");
	CHECK(jint(json_object_get(j, "message"), "seq") == 43);
	CHECK_STR(jstr(json_object_get(j, "message"), "content"), m.content);
	json_decref(j);
	free(obj);
	chat_message_clear(&m);
}

static void
test_encode_ack(void)
{
	chat_message m;
	size_t		len;
	json_t	   *j;
	char	   *s;

	sample_message(&m);
	j = parse(take(proto_ack(&m, false, "{\"k\":[1]}"), &len), &len);
	check_keys(j, 8);
	CHECK_STR(jstr(j, "type"), "ack");
	CHECK_STR(jstr(j, "clientId"), U1);
	CHECK_STR(jstr(j, "serverId"), U3);
	CHECK_STR(jstr(j, "channelId"), U2);
	CHECK(jint(j, "seq") == 43);
	CHECK_STR(jstr(j, "createdAt"), "2024-05-01T12:00:00.123456Z");
	CHECK(json_is_false(json_object_get(j, "duplicate")));
	CHECK(json_integer_value(json_array_get(json_object_get(
															json_object_get(j, "ref"), "k"), 0)) == 1);
	json_decref(j);
	s = take(proto_ack(&m, true, NULL), &len);
	CHECK_STR(s, "{\"type\":\"ack\",\"clientId\":\"" U1 "\",\"serverId\":\""
			  U3 "\",\"channelId\":\"" U2 "\",\"seq\":43,\"createdAt\":"
			  "\"2024-05-01T12:00:00.123456Z\",\"duplicate\":true}");
	free(s);
	chat_message_clear(&m);
}

static void
test_encode_error(void)
{
	size_t		len;
	char	   *s;
	json_t	   *j;

	s = take(proto_error("bad_request", "unknown type", NULL, ""), &len);
	CHECK_STR(s, "{\"type\":\"error\",\"code\":\"bad_request\","
			  "\"message\":\"unknown type\"}");
	free(s);
	j = parse(take(proto_error("too_large", "content is \"big\"", U1, "\"r\""), &len),
			  &len);
	check_keys(j, 5);
	CHECK_STR(jstr(j, "code"), "too_large");
	CHECK_STR(jstr(j, "message"), "content is \"big\"");
	CHECK_STR(jstr(j, "clientId"), U1);
	CHECK_STR(jstr(j, "ref"), "r");
	json_decref(j);
	j = parse(take(proto_error("internal", NULL, "", "5"), &len), &len);
	check_keys(j, 4);
	CHECK_STR(jstr(j, "message"), "");
	CHECK(jint(j, "ref") == 5);
	json_decref(j);
}

/*
 * sample_channel fills c (free with chat_channel_info_clear).
 */
static void
sample_channel(chat_channel_info *c, const char *name, size_t n_online)
{
	size_t		i;

	memset(c, 0, sizeof(*c));
	strcpy(c->id, U2);
	strcpy(c->type, name ? "group" : "direct");
	strcpy(c->role, "admin");
	c->name = name ? strdup(name) : NULL;
	c->last_seq = 42;
	c->last_read_seq = 40;
	c->unread = 2;
	c->last_change = 5;
	c->online = n_online ? calloc(n_online, sizeof(char *)) : NULL;
	c->n_online = n_online;
	for (i = 0; i < n_online; i++)
		c->online[i] = strdup(i ? "carol" : "b\xc3\xb6" "b");
}

/*
 * check_channel checks a channel object written by put_channel.
 */
static void
check_channel(const json_t *c, const char *name, size_t n_online)
{
	check_keys(c, 9);
	CHECK_STR(jstr(c, "id"), U2);
	CHECK_STR(jstr(c, "type"), name ? "group" : "direct");
	if (name)
		CHECK_STR(jstr(c, "name"), name);
	else
		check_null(c, "name");
	CHECK(jint(c, "lastSeq") == 42);
	CHECK(jint(c, "lastReadSeq") == 40);
	CHECK(jint(c, "unread") == 2);
	CHECK(jint(c, "lastChange") == 5);
	CHECK(json_array_size(json_object_get(c, "online")) == n_online);
	if (n_online)
		CHECK_STR(json_string_value(json_array_get(json_object_get(c, "online"),
												   0)), "b\xc3\xb6" "b");
	CHECK_STR(jstr(c, "role"), "admin");
}

static void
test_encode_ready(void)
{
	chat_channel_info ch[2];
	size_t		len;
	json_t	   *j;
	json_t	   *arr;

	proto_limits lim = {30000, 3000, 2000, 16384, 30, 100, false, 60, 200};
	proto_limits small = {1, 2, 3, 4, 0, 1, true, 0, 1};
	json_t	   *costs;

	sample_channel(&ch[0], "dispatch", 2);
	sample_channel(&ch[1], NULL, 0);
	j = parse(take(proto_ready("alice", "w1-7", &lim, ch, 2), &len), &len);
	check_keys(j, 13);
	CHECK_STR(jstr(j, "type"), "ready");
	CHECK_STR(jstr(j, "userId"), "alice");
	CHECK_STR(jstr(j, "connectionId"), "w1-7");
	CHECK(jint(j, "heartbeatMs") == 30000);
	CHECK(jint(j, "typingTimeoutMs") == 3000);
	CHECK(jint(j, "typingDebounceMs") == 2000);
	CHECK(jint(j, "maxMessageBytes") == 16384);
	CHECK(jint(j, "rateLimit") == 30);
	CHECK(jint(j, "rateBurst") == 100);
	CHECK(json_object_get(j, "resume") == NULL);	/* only when asked */
	CHECK(jint(j, "userRateLimit") == 60);
	CHECK(jint(j, "userRateBurst") == 200);
	/* every client frame type has its cost, as proto_frame_cost says */
	costs = json_object_get(j, "frameCosts");
	CHECK(json_is_object(costs) && json_object_size(costs) == 13);
	CHECK(jint(costs, "send") == proto_frame_cost(CMD_SEND));
	CHECK(jint(costs, "edit") == proto_frame_cost(CMD_EDIT));
	CHECK(jint(costs, "refresh") == proto_frame_cost(CMD_REFRESH));
	CHECK(proto_frame_cost(CMD_SEND) == 1 && proto_frame_cost(CMD_EDIT) == 2);
	arr = json_object_get(j, "channels");
	CHECK(json_array_size(arr) == 2);
	check_channel(json_array_get(arr, 0), "dispatch", 2);
	check_channel(json_array_get(arr, 1), NULL, 0);
	json_decref(j);
	j = parse(take(proto_ready("u", "c", &small, NULL, 0), &len), &len);
	CHECK(json_is_array(json_object_get(j, "channels")) &&
		  json_array_size(json_object_get(j, "channels")) == 0);
	CHECK(json_is_true(json_object_get(j, "resume")));
	json_decref(j);
	chat_channel_info_clear(&ch[0]);
	chat_channel_info_clear(&ch[1]);
}

static void
test_encode_joined_left(void)
{
	chat_channel_info c;
	size_t		len;
	json_t	   *j;
	char	   *s;

	sample_channel(&c, "ops", 1);
	j = parse(take(proto_joined(&c), &len), &len);
	check_keys(j, 2);
	CHECK_STR(jstr(j, "type"), "joined");
	check_channel(json_object_get(j, "channel"), "ops", 1);
	json_decref(j);
	chat_channel_info_clear(&c);
	s = take(proto_left(U2), &len);
	CHECK_STR(s, "{\"type\":\"left\",\"channelId\":\"" U2 "\"}");
	free(s);
}

static void
test_encode_synced_history(void)
{
	chat_message m[2];
	size_t		len;
	json_t	   *j;
	json_t	   *msgs;
	char	   *s;

	s = take(proto_synced(U2, 17, 3, true, "\"s\""), &len);
	CHECK_STR(s, "{\"type\":\"synced\",\"channelId\":\"" U2 "\","
			  "\"lastSeq\":17,\"lastChange\":3,\"hasMore\":true,"
			  "\"ref\":\"s\"}");
	free(s);
	sample_message(&m[0]);
	sample_message(&m[1]);
	m[1].seq = 42;
	j = parse(take(proto_history(U2, m, 2, false, "3"), &len), &len);
	check_keys(j, 5);
	CHECK_STR(jstr(j, "type"), "history");
	CHECK_STR(jstr(j, "channelId"), U2);
	CHECK(json_is_false(json_object_get(j, "hasMore")));
	CHECK(jint(j, "ref") == 3);
	msgs = json_object_get(j, "messages");
	CHECK(json_array_size(msgs) == 2);
	CHECK(jint(json_array_get(msgs, 0), "seq") == 43);
	CHECK(jint(json_array_get(msgs, 1), "seq") == 42);
	check_keys(json_array_get(msgs, 1), 12);
	json_decref(j);
	s = take(proto_history(U2, NULL, 0, false, NULL), &len);
	CHECK_STR(s, "{\"type\":\"history\",\"channelId\":\"" U2 "\","
			  "\"messages\":[],\"hasMore\":false}");
	free(s);
	chat_message_clear(&m[0]);
	chat_message_clear(&m[1]);
}

static void
test_encode_small_frames(void)
{
	static const char *online[] = {"bob", "\xe6\x97\xa5\xe6\x9c\xac"};
	struct
	{
		char	   *got;
		const char *want;
	}			cases[9];
	size_t		len;
	size_t		i;

	cases[0].got = take(proto_typing(U2, "bob", 3000), &len);
	cases[0].want = "{\"type\":\"typing\",\"channelId\":\"" U2 "\","
		"\"userId\":\"bob\",\"expiresInMs\":3000}";
	cases[1].got = take(proto_typing_stopped(U2, "bob"), &len);
	cases[1].want = "{\"type\":\"typing_stopped\",\"channelId\":\"" U2 "\","
		"\"userId\":\"bob\"}";
	cases[2].got = take(proto_read(U2, "bob", 9007199254740992LL, "7"), &len);
	cases[2].want = "{\"type\":\"read\",\"channelId\":\"" U2 "\","
		"\"userId\":\"bob\",\"seq\":9007199254740992,\"ref\":7}";
	cases[3].got = take(proto_presence("bob", true), &len);
	cases[3].want = "{\"type\":\"presence\",\"userId\":\"bob\","
		"\"status\":\"online\"}";
	cases[4].got = take(proto_presence("bob", false), &len);
	cases[4].want = "{\"type\":\"presence\",\"userId\":\"bob\","
		"\"status\":\"offline\"}";
	cases[5].got = take(proto_presence_state(U2, (char *const *) online, 2, "[1]"), &len);
	cases[5].want = "{\"type\":\"presence_state\",\"channelId\":\"" U2 "\","
		"\"online\":[\"bob\",\"\xe6\x97\xa5\xe6\x9c\xac\"],\"ref\":[1]}";
	cases[6].got = take(proto_message_deleted(U2, U3, 5, NULL), &len);
	cases[6].want = "{\"type\":\"message_deleted\",\"channelId\":\"" U2 "\","
		"\"messageId\":\"" U3 "\",\"seq\":5}";
	cases[7].got = take(proto_pong(NULL), &len);
	cases[7].want = "{\"type\":\"pong\"}";
	cases[8].got = take(proto_pong("{\"a\":\"b\"}"), &len);
	cases[8].want = "{\"type\":\"pong\",\"ref\":{\"a\":\"b\"}}";
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		CHECK_STR(cases[i].got, cases[i].want);
		free(cases[i].got);
	}
}

static void
test_encode_message_updated(void)
{
	chat_message m;
	size_t		len;
	json_t	   *j;

	sample_message(&m);
	strcpy(m.edited_at, "2024-05-01T13:00:00Z");
	j = parse(take(proto_message_updated(&m, "\"e\""), &len), &len);
	check_keys(j, 3);
	CHECK_STR(jstr(j, "type"), "message_updated");
	CHECK_STR(jstr(j, "ref"), "e");
	CHECK_STR(jstr(json_object_get(j, "message"), "editedAt"),
			  "2024-05-01T13:00:00Z");
	check_keys(json_object_get(j, "message"), 12);
	json_decref(j);
	chat_message_clear(&m);
}

/*
 * test_encode_reactions: a message with reactions carries them (13 keys),
 * the reaction frame carries the message's reactions ([] when none), and
 * search results carry the hit's fields.
 */
static void
test_encode_reactions(void)
{
	chat_message m;
	chat_search_hit h;
	size_t		len;
	json_t	   *j;
	json_t	   *r;

	sample_message(&m);
	m.reactions = strdup("[{\"count\": 2, \"emoji\": \"\xf0\x9f\x91\x8d\", "
						 "\"users\": [\"sam\", \"tom\"]}]");
	j = parse(take(proto_message_object(&m), &len), &len);
	check_keys(j, 13);
	r = json_array_get(json_object_get(j, "reactions"), 0);
	CHECK(jint(r, "count") == 2);
	CHECK_STR(jstr(r, "emoji"), "\xf0\x9f\x91\x8d");
	json_decref(j);

	j = parse(take(proto_reaction(&m, "7"), &len), &len);
	check_keys(j, 6);
	CHECK_STR(jstr(j, "type"), "reaction");
	CHECK_STR(jstr(j, "channelId"), U2);
	CHECK_STR(jstr(j, "messageId"), U3);
	CHECK(jint(j, "seq") == 43);
	CHECK(json_array_size(json_object_get(j, "reactions")) == 1);
	json_decref(j);
	free(m.reactions);
	m.reactions = NULL;
	j = parse(take(proto_reaction(&m, NULL), &len), &len);
	CHECK(json_is_array(json_object_get(j, "reactions")) &&
		  json_array_size(json_object_get(j, "reactions")) == 0);
	json_decref(j);
	chat_message_clear(&m);

	memset(&h, 0, sizeof(h));
	strcpy(h.id, U3);
	strcpy(h.channel_id, U2);
	h.seq = 9;
	h.sender_id = "sam";
	h.content = "load 7 <b>";
	h.headline = "<mark>load</mark> 7 &lt;b&gt;";
	strcpy(h.created_at, "2024-05-01T12:00:00Z");
	j = parse(take(proto_search(&h, 1, true, "\"s\""), &len), &len);
	check_keys(j, 4);
	CHECK_STR(jstr(j, "type"), "search");
	CHECK(json_is_true(json_object_get(j, "hasMore")));
	r = json_array_get(json_object_get(j, "results"), 0);
	check_keys(r, 8);
	CHECK_STR(jstr(r, "messageId"), U3);
	CHECK_STR(jstr(r, "headline"), "<mark>load</mark> 7 &lt;b&gt;");
	CHECK(jint(r, "seq") == 9);
	check_null(r, "editedAt");
	json_decref(j);
	j = parse(take(proto_search(NULL, 0, false, NULL), &len), &len);
	CHECK(json_array_size(json_object_get(j, "results")) == 0);
	json_decref(j);
}

/*
 * test_roundtrip decodes a send frame, stores it as the database would,
 * encodes the message and the ack, and checks what a client reads back.
 */
static void
test_roundtrip(void)
{
	chat_cmd	cmd;
	chat_message m;
	size_t		len;
	json_t	   *j;
	json_t	   *att;

	CHECK(dec("{\"type\":\"send\",\"ref\":{\"n\":1},\"clientId\":\""
			  "0B9A4C1E-5F3D-4E2A-9B7C-1D2E3F4A5B6C\",\"channelId\":\"" U2
			  "\",\"content\":\"\xf0\x9f\x98\x80 \\\"q\\\"\",\"kind\":\"note\","
			  "\"replyTo\":\"" U3 "\",\"attachments\":[{\"mime\":\"a/b\","
			  "\"size\":3,\"name\":\"n\",\"url\":\"http://h\"}]}", &cmd) ==
		  PROTO_OK);
	memset(&m, 0, sizeof(m));
	strcpy(m.id, U3);
	strcpy(m.channel_id, cmd.channel_id);
	strcpy(m.client_id, cmd.client_id);
	strcpy(m.reply_to, cmd.reply_to);
	m.seq = 1;
	m.sender_id = strdup("alice");
	m.content = strdup(cmd.content);
	m.kind = strdup(cmd.kind);
	m.attachments = strdup(cmd.attachments);
	strcpy(m.created_at, "2024-01-01T00:00:00Z");

	j = parse(take(proto_message_object(&m), &len), &len);
	CHECK_STR(jstr(j, "clientId"), U1);
	CHECK_STR(jstr(j, "content"), "\xf0\x9f\x98\x80 \"q\"");
	CHECK_STR(jstr(j, "kind"), "note");
	CHECK_STR(jstr(j, "replyTo"), U3);
	att = json_array_get(json_object_get(j, "attachments"), 0);
	check_keys(att, 4);
	CHECK_STR(jstr(att, "url"), "http://h");
	CHECK_STR(jstr(att, "name"), "n");
	CHECK(jint(att, "size") == 3);
	CHECK_STR(jstr(att, "mime"), "a/b");
	json_decref(j);

	j = parse(take(proto_ack(&m, false, cmd.ref), &len), &len);
	CHECK(jint(json_object_get(j, "ref"), "n") == 1);
	json_decref(j);
	chat_message_clear(&m);
	proto_cmd_free(&cmd);
}

int
main(void)
{
	RUN(test_encode_message_object);
	RUN(test_encode_message_exact);
	RUN(test_encode_utf8_and_escapes);
	RUN(test_encode_message_nulls);
	RUN(test_encode_message_frame);
	RUN(test_encode_ack);
	RUN(test_encode_error);
	RUN(test_encode_ready);
	RUN(test_encode_joined_left);
	RUN(test_encode_synced_history);
	RUN(test_encode_small_frames);
	RUN(test_encode_message_updated);
	RUN(test_encode_reactions);
	RUN(test_roundtrip);
	UNIT_EXIT();
}
