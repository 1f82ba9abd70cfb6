/*
 * test_proto.c
 *	  Unit tests of proto_decode at the frame level: JSON that is not JSON,
 *	  the top level, type dispatch, ref, echoing on error, nesting depth,
 *	  duplicate keys, invalid bytes and numbers out of range.  The fields of
 *	  each frame are in test_proto_fields.c, the encoders in
 *	  test_proto_encode.c.
 */
#include "proto_test.h"

static void
test_decode_send_minimal(void)
{
	chat_cmd	cmd;

	CHECK(dec("{\"type\":\"send\",\"clientId\":\"" U1 "\",\"channelId\":\""
			  U2 "\",\"content\":\"hi\"}", &cmd) == PROTO_OK);
	CHECK(cmd.type == CMD_SEND);
	CHECK_STR(cmd.client_id, U1);
	CHECK_STR(cmd.channel_id, U2);
	CHECK_STR(cmd.content, "hi");
	CHECK(cmd.content_len == 2);
	CHECK_STR(cmd.kind, "text");
	CHECK_STR(cmd.reply_to, "");
	CHECK(cmd.attachments == NULL);
	CHECK_STR(cmd.ref, "");
	proto_cmd_free(&cmd);
	proto_cmd_free(&cmd);		/* harmless twice */
}

static void
test_decode_send_full(void)
{
	chat_cmd	cmd;

	CHECK(dec("{\"ref\":\"r1\",\"type\":\"send\",\"clientId\":\"" U1
			  "\",\"channelId\":\"" U2 "\",\"content\":\"h\\u00e9 \xe2\x82\xac\","
			  "\"kind\":\"image.v2\",\"replyTo\":\"" U3 "\","
			  "\"attachments\":[{\"size\":12,\"mime\":\"image/png\","
			  "\"name\":\"a.png\",\"url\":\"https://x.test/a.png\"}],"
			  "\"extra\":{\"ignored\":[1,2]}}", &cmd) == PROTO_OK);
	CHECK_STR(cmd.ref, "\"r1\"");
	CHECK_STR(cmd.content, "h\xc3\xa9 \xe2\x82\xac");
	CHECK(cmd.content_len == 7);
	CHECK_STR(cmd.kind, "image.v2");
	CHECK_STR(cmd.reply_to, U3);
	CHECK_STR(cmd.attachments, "[{\"url\":\"https://x.test/a.png\","
			  "\"name\":\"a.png\",\"size\":12,\"mime\":\"image/png\"}]");
	proto_cmd_free(&cmd);
}

static void
test_decode_not_json(void)
{
	chat_cmd	cmd;

	CHECK_BAD("hello");
	CHECK_BAD("{\"type\":\"pi");
	CHECK_BAD("{\"type\":\"ping\"");
	CHECK_BAD("{\"type\":\"ping\"} x");
	CHECK_BAD("{\"type\":\"ping\",}");
	CHECK_BAD("");
	CHECK(proto_decode(NULL, 0, MAXC, &cmd, err, sizeof(err)) ==
		  PROTO_BAD_REQUEST);
	proto_cmd_free(&cmd);
	/* the length is honoured: the text after it is not seen */
	CHECK(proto_decode("{\"type\":\"ping\"}garbage", 15, MAXC, &cmd, err,
					   sizeof(err)) == PROTO_OK);
	proto_cmd_free(&cmd);
}

static void
test_decode_top_level(void)
{
	CHECK_BAD("[{\"type\":\"ping\"}]");
	CHECK_BAD("\"ping\"");
	CHECK_BAD("42");
	CHECK_BAD("null");
	CHECK_BAD("true");
	CHECK_OK(" \n{\"type\":\"ping\"}\t ");
}

static void
test_decode_type(void)
{
	CHECK_BAD("{}");
	CHECK_BAD("{\"type\":null}");
	CHECK_BAD("{\"type\":7}");
	CHECK_BAD("{\"type\":[\"ping\"]}");
	CHECK_BAD("{\"type\":\"PING\"}");
	CHECK_BAD("{\"type\":\"ping \"}");
	CHECK_BAD("{\"type\":\"pong\"}");
	CHECK_BAD("{\"type\":\"ping\\u0000\"}");
	CHECK_BAD("{\"type\":\"\"}");
	CHECK(strstr(err, "type") != NULL);
}

static void
test_decode_all_types(void)
{
	static const struct
	{
		const char *frame;
		chat_cmd_type type;
	}			cases[] =
	{
		{"{\"type\":\"send\",\"clientId\":\"" U1 "\",\"channelId\":\"" U2
		"\",\"content\":\"x\"}", CMD_SEND},
		{"{\"type\":\"sync\",\"channels\":{}}", CMD_SYNC},
		{"{\"type\":\"history\",\"channelId\":\"" U2 "\"}", CMD_HISTORY},
		{"{\"type\":\"typing\",\"channelId\":\"" U2 "\"}", CMD_TYPING},
		{"{\"type\":\"read\",\"channelId\":\"" U2 "\",\"seq\":3}", CMD_READ},
		{"{\"type\":\"presence\",\"channelId\":\"" U2 "\"}", CMD_PRESENCE},
		{"{\"type\":\"edit\",\"messageId\":\"" U3 "\",\"content\":\"y\"}",
		CMD_EDIT},
		{"{\"type\":\"delete\",\"messageId\":\"" U3 "\"}", CMD_DELETE},
		{"{\"type\":\"refresh\",\"token\":\"a.b.c\"}", CMD_REFRESH},
		{"{\"type\":\"ping\"}", CMD_PING},
		{"{\"type\":\"search\",\"query\":\"load 7\"}", CMD_SEARCH},
		{"{\"type\":\"react\",\"messageId\":\"" U3 "\",\"emoji\":\"x\"}",
		CMD_REACT},
		{"{\"type\":\"unreact\",\"messageId\":\"" U3 "\",\"emoji\":\"x\"}",
		CMD_UNREACT},
	};
	size_t		i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		chat_cmd	cmd;

		CHECK(dec(cases[i].frame, &cmd) == PROTO_OK);
		CHECK(cmd.type == cases[i].type);
		proto_cmd_free(&cmd);
	}
}

static void
test_decode_missing_fields(void)
{
	CHECK_BAD("{\"type\":\"send\",\"channelId\":\"" U2 "\",\"content\":\"x\"}");
	CHECK_BAD("{\"type\":\"send\",\"clientId\":\"" U1 "\",\"content\":\"x\"}");
	CHECK_BAD("{\"type\":\"send\",\"clientId\":\"" U1 "\",\"channelId\":\""
			  U2 "\"}");
	CHECK_BAD("{\"type\":\"history\"}");
	CHECK_BAD("{\"type\":\"typing\"}");
	CHECK_BAD("{\"type\":\"typing\",\"channelId\":null}");
	CHECK_BAD("{\"type\":\"presence\"}");
	CHECK_BAD("{\"type\":\"read\",\"channelId\":\"" U2 "\"}");
	CHECK_BAD("{\"type\":\"read\",\"seq\":1}");
	CHECK_BAD("{\"type\":\"edit\",\"messageId\":\"" U3 "\"}");
	CHECK_BAD("{\"type\":\"edit\",\"content\":\"y\"}");
	CHECK_BAD("{\"type\":\"delete\"}");
	CHECK_BAD("{\"type\":\"sync\"}");
	CHECK_BAD("{\"type\":\"refresh\"}");
	CHECK_BAD("{\"type\":\"search\"}");
	CHECK_BAD("{\"type\":\"react\",\"messageId\":\"" U3 "\"}");
	CHECK_BAD("{\"type\":\"unreact\",\"emoji\":\"x\"}");
}

/*
 * test_decode_search_react checks the fields and limits of search, react
 * and unreact.
 */
static void
test_decode_search_react(void)
{
	chat_cmd	cmd;
	char		big[1100];

	CHECK(dec("{\"type\":\"search\",\"query\":\"load 7\",\"channelId\":\""
			  U2 "\",\"before\":\"" U3 "\",\"limit\":5,\"ref\":1}", &cmd)
		  == PROTO_OK);
	CHECK_STR(cmd.query, "load 7");
	CHECK_STR(cmd.channel_id, U2);
	CHECK_STR(cmd.message_id, U3);
	CHECK(cmd.limit == 5);
	proto_cmd_free(&cmd);
	CHECK(dec("{\"type\":\"search\",\"query\":\"x\"}", &cmd) == PROTO_OK);
	CHECK(cmd.limit == 20 && cmd.channel_id[0] == '\0' &&
		  cmd.message_id[0] == '\0');
	proto_cmd_free(&cmd);
	CHECK_BAD("{\"type\":\"search\",\"query\":\"\"}");
	CHECK_BAD("{\"type\":\"search\",\"query\":7}");
	CHECK_BAD("{\"type\":\"search\",\"query\":\"a\\u0000b\"}");
	CHECK_BAD("{\"type\":\"search\",\"query\":\"x\",\"limit\":0}");
	CHECK_BAD("{\"type\":\"search\",\"query\":\"x\",\"limit\":51}");
	CHECK_BAD("{\"type\":\"search\",\"query\":\"x\",\"before\":42}");
	CHECK_BAD("{\"type\":\"search\",\"query\":\"x\",\"channelId\":\"c\"}");
	snprintf(big, sizeof(big), "{\"type\":\"search\",\"query\":\"%01001d\"}", 0);
	CHECK_BAD(big);

	CHECK(dec("{\"type\":\"react\",\"messageId\":\"" U3
			  "\",\"emoji\":\"\xf0\x9f\x91\x8d\"}", &cmd) == PROTO_OK);
	CHECK_STR(cmd.emoji, "\xf0\x9f\x91\x8d");
	CHECK_STR(cmd.message_id, U3);
	proto_cmd_free(&cmd);
	CHECK_BAD("{\"type\":\"react\",\"messageId\":\"" U3 "\",\"emoji\":\"\"}");
	CHECK_BAD("{\"type\":\"react\",\"messageId\":\"" U3
			  "\",\"emoji\":\"123456789012345678901234567890123\"}");
	CHECK_BAD("{\"type\":\"react\",\"messageId\":\"" U3 "\",\"emoji\":1}");
}

static void
test_decode_ref(void)
{
	static const struct
	{
		const char *in;
		const char *out;
	}			cases[] =
	{
		{"\"abc\"", "\"abc\""},
		{"17", "17"},
		{"-3", "-3"},
		{"true", "true"},
		{"null", "null"},
		{"{ \"a\" : [ 1 , \"x\" ] }", "{\"a\":[1,\"x\"]}"},
		{"\"caf\xc3\xa9\"", "\"caf\xc3\xa9\""},
		{"\"q\\\"\\n\"", "\"q\\\"\\n\""},
	};
	char		frame[512];
	size_t		i;
	chat_cmd	cmd;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		snprintf(frame, sizeof(frame), "{\"type\":\"ping\",\"ref\":%s}",
				 cases[i].in);
		CHECK(dec(frame, &cmd) == PROTO_OK);
		CHECK_STR(cmd.ref, cases[i].out);
		proto_cmd_free(&cmd);
	}
	CHECK(dec("{\"type\":\"ping\"}", &cmd) == PROTO_OK);
	CHECK_STR(cmd.ref, "");
	proto_cmd_free(&cmd);
}

static void
test_decode_ref_limit(void)
{
	char		frame[PROTO_MAX_REF + 64];
	chat_cmd	cmd;

	/* exactly PROTO_MAX_REF bytes of JSON, quotes included */
	snprintf(frame, sizeof(frame), "{\"type\":\"ping\",\"ref\":\"%0*d\"}",
			 PROTO_MAX_REF - 2, 0);
	CHECK(dec(frame, &cmd) == PROTO_OK);
	CHECK(strlen(cmd.ref) == PROTO_MAX_REF);
	proto_cmd_free(&cmd);
	snprintf(frame, sizeof(frame), "{\"type\":\"ping\",\"ref\":\"%0*d\"}",
			 PROTO_MAX_REF - 1, 0);
	CHECK(dec(frame, &cmd) == PROTO_BAD_REQUEST);
	CHECK_STR(cmd.ref, "");
	proto_cmd_free(&cmd);
}

static void
test_decode_echo_on_error(void)
{
	chat_cmd	cmd;

	/* content fails, ref and clientId survive */
	CHECK(dec("{\"type\":\"send\",\"ref\":9,\"clientId\":\"" U1
			  "\",\"channelId\":\"" U2 "\",\"content\":\"\"}", &cmd) ==
		  PROTO_BAD_REQUEST);
	CHECK_STR(cmd.ref, "9");
	CHECK_STR(cmd.client_id, U1);
	CHECK(err[0] != '\0');
	proto_cmd_free(&cmd);
	/* an unknown type still echoes */
	CHECK(dec("{\"type\":\"nope\",\"ref\":\"x\",\"clientId\":\"" U1 "\"}",
			  &cmd) == PROTO_BAD_REQUEST);
	CHECK_STR(cmd.ref, "\"x\"");
	CHECK_STR(cmd.client_id, U1);
	proto_cmd_free(&cmd);
	/* a bad clientId is not echoed, and send reports it */
	CHECK(dec("{\"type\":\"send\",\"ref\":1,\"clientId\":\"zz\","
			  "\"channelId\":\"" U2 "\",\"content\":\"x\"}", &cmd) ==
		  PROTO_BAD_REQUEST);
	CHECK_STR(cmd.client_id, "");
	CHECK_STR(cmd.ref, "1");
	CHECK(strstr(err, "clientId") != NULL);
	proto_cmd_free(&cmd);
	/* other types ignore a bad clientId, and leave no stale reason */
	CHECK(dec("{\"type\":\"ping\",\"clientId\":5}", &cmd) == PROTO_OK);
	CHECK_STR(err, "");
	proto_cmd_free(&cmd);
}

/*
 * nested builds {"type":"ping","x":[[[...]]]} whose deepest bracket is at
 * depth levels, counting the frame's own object.
 */
static char *
nested(int levels)
{
	char	   *f = malloc(2 * levels + 64);
	int			n = sprintf(f, "{\"type\":\"ping\",\"x\":");
	int			i;

	for (i = 1; i < levels; i++)
		f[n++] = '[';
	for (i = 1; i < levels; i++)
		f[n++] = ']';
	strcpy(f + n, "}");
	return f;
}

static void
test_decode_depth(void)
{
	char	   *f;

	f = nested(PROTO_MAX_DEPTH);
	CHECK_OK(f);
	free(f);
	f = nested(PROTO_MAX_DEPTH + 1);
	CHECK_BAD(f);
	CHECK(strstr(err, "nested") != NULL);
	free(f);
	f = nested(100000);			/* far past jansson's own 2048 */
	CHECK_BAD(f);
	free(f);
	/* brackets inside strings do not count, escaped quotes included */
	CHECK_OK("{\"type\":\"ping\",\"x\":\"[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{\","
			 "\"y\":\"\\\"[[[[[[[[[[[[[[[[[[[[[[[[[\"}");
	/* ref counts too */
	CHECK_BAD("{\"type\":\"ping\",\"ref\":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}");
}

static void
test_decode_duplicates(void)
{
	CHECK_BAD("{\"type\":\"ping\",\"type\":\"ping\"}");
	CHECK_BAD("{\"type\":\"ping\",\"ref\":1,\"ref\":1}");
	CHECK_BAD("{\"type\":\"ping\",\"x\":{\"a\":1,\"a\":2}}");
	CHECK_BAD("{\"type\":\"send\",\"clientId\":\"" U1 "\",\"channelId\":\""
			  U2 "\",\"content\":\"x\",\"attachments\":[{\"url\":\"http://h\","
			  "\"url\":\"http://h\",\"name\":\"n\",\"size\":1,\"mime\":\"a/b\"}]}");
}

static void
test_decode_bad_bytes(void)
{
	static const char *bad[] = {
		"\xff", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
		"\x80", "\\ud800", "\\udc00x", "\x01", "\n",
	};
	char		frame[256];
	size_t		i;
	chat_cmd	cmd;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		snprintf(frame, sizeof(frame), "{\"type\":\"edit\",\"messageId\":\""
				 U3 "\",\"content\":\"a%sb\"}", bad[i]);
		CHECK_BAD(frame);
	}
	/* a raw NUL byte, inside a string and outside */
	CHECK(proto_decode("{\"type\":\"pi\0ng\"}", 16, MAXC, &cmd, err,
					   sizeof(err)) == PROTO_BAD_REQUEST);
	proto_cmd_free(&cmd);
	CHECK(proto_decode("{\"type\":\"ping\"}\0", 16, MAXC, &cmd, err,
					   sizeof(err)) == PROTO_BAD_REQUEST);
	proto_cmd_free(&cmd);
	/* a valid surrogate pair and 4-byte UTF-8 are fine */
	CHECK(dec("{\"type\":\"edit\",\"messageId\":\"" U3
			  "\",\"content\":\"\\ud83d\\ude00 \xf0\x9f\x98\x80\"}", &cmd) ==
		  PROTO_OK);
	CHECK_STR(cmd.content, "\xf0\x9f\x98\x80 \xf0\x9f\x98\x80");
	proto_cmd_free(&cmd);
}

static void
test_decode_huge_numbers(void)
{
	/* jansson refuses these while parsing, wherever they are */
	CHECK_BAD("{\"type\":\"ping\",\"x\":1e400}");
	CHECK_BAD("{\"type\":\"ping\",\"x\":-1e400}");
	CHECK_BAD("{\"type\":\"ping\",\"x\":99999999999999999999}");
	CHECK_BAD("{\"type\":\"ping\",\"ref\":99999999999999999999}");
	CHECK_BAD("{\"type\":\"read\",\"channelId\":\"" U2
			  "\",\"seq\":99999999999999999999}");
	CHECK_OK("{\"type\":\"ping\",\"x\":1e300}");
}

static void
test_decode_unknown_fields(void)
{
	chat_cmd	cmd;

	CHECK(dec("{\"zzz\":[1,{\"q\":null}],\"type\":\"delete\",\"messageId\":\""
			  U3 "\",\"content\":7,\"seq\":\"x\",\"channelId\":false}", &cmd) ==
		  PROTO_OK);
	CHECK(cmd.type == CMD_DELETE);
	CHECK_STR(cmd.message_id, U3);
	CHECK(cmd.content == NULL);
	CHECK_STR(cmd.channel_id, "");
	proto_cmd_free(&cmd);
}

static void
test_decode_err_buffer(void)
{
	chat_cmd	cmd;
	char		tiny[4];

	CHECK(proto_decode("{}", 2, MAXC, &cmd, NULL, 0) == PROTO_BAD_REQUEST);
	proto_cmd_free(&cmd);
	CHECK(proto_decode("nope", 4, MAXC, &cmd, tiny, sizeof(tiny)) ==
		  PROTO_BAD_REQUEST);
	CHECK(strlen(tiny) == 3);
	proto_cmd_free(&cmd);
}

int
main(void)
{
	RUN(test_decode_send_minimal);
	RUN(test_decode_send_full);
	RUN(test_decode_not_json);
	RUN(test_decode_top_level);
	RUN(test_decode_type);
	RUN(test_decode_all_types);
	RUN(test_decode_missing_fields);
	RUN(test_decode_search_react);
	RUN(test_decode_ref);
	RUN(test_decode_ref_limit);
	RUN(test_decode_echo_on_error);
	RUN(test_decode_depth);
	RUN(test_decode_duplicates);
	RUN(test_decode_bad_bytes);
	RUN(test_decode_huge_numbers);
	RUN(test_decode_unknown_fields);
	RUN(test_decode_err_buffer);
	UNIT_EXIT();
}
