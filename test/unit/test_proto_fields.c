/*
 * test_proto_fields.c
 *	  Unit tests of proto_decode field by field: uuids, content and its
 *	  limit, kind, replyTo, attachments, seq/before/limit, sync channels and
 *	  the refresh token, each on its accept and its reject side.
 */
#include "proto_test.h"

static void
test_decode_uuid(void)
{
	static const char *bad[] = {
		"\"0b9a4c1e-5f3d-4e2a-9b7c-1d2e3f4a5b6\"",
		"\"0b9a4c1e-5f3d-4e2a-9b7c-1d2e3f4a5b6c0\"",
		"\"0b9a4c1e5f3d-4e2a-9b7c-1d2e3f4a5b6c-\"",
		"\"0b9a4c1e-5f3d-4e2a-9b7c_1d2e3f4a5b6c\"",
		"\"0b9a4c1g-5f3d-4e2a-9b7c-1d2e3f4a5b6c\"",
		"\"{b9a4c1e-5f3d-4e2a-9b7c-1d2e3f4a5b6}\"",
		"\"0b9a4c1e5f3d4e2a9b7c1d2e3f4a5b6c\"",
		"\" b9a4c1e-5f3d-4e2a-9b7c-1d2e3f4a5b6c\"",
		"\"0b9a4c1e-5f3d-4e2a-9b7c-1d2e3f4a5b6\\u0000\"",
		"\"\"",
		"42",
		"[]",
	};
	char		frame[256];
	size_t		i;
	chat_cmd	cmd;

	CHECK(dec("{\"type\":\"typing\",\"channelId\":"
			  "\"0B9A4C1E-5F3D-4E2A-9B7C-1D2E3F4A5B6C\"}", &cmd) == PROTO_OK);
	CHECK_STR(cmd.channel_id, U1);
	proto_cmd_free(&cmd);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		snprintf(frame, sizeof(frame),
				 "{\"type\":\"typing\",\"channelId\":%s}", bad[i]);
		CHECK_BAD(frame);
	}
}

static void
test_decode_content(void)
{
	chat_cmd	cmd;
	char	   *frame = malloc(MAXC + 256);
	int			n;

	CHECK_BAD("{\"type\":\"edit\",\"messageId\":\"" U3 "\",\"content\":\"\"}");
	CHECK_BAD("{\"type\":\"edit\",\"messageId\":\"" U3 "\",\"content\":7}");
	CHECK_BAD("{\"type\":\"edit\",\"messageId\":\"" U3 "\",\"content\":null}");
	CHECK_BAD("{\"type\":\"edit\",\"messageId\":\"" U3
			  "\",\"content\":\"a\\u0000b\"}");
	CHECK(strstr(err, "NUL") != NULL);
	CHECK_BAD("{\"type\":\"edit\",\"messageId\":\"" U3
			  "\",\"content\":\"\\u0000\"}");

	/* exactly max bytes is fine, one more is too_large */
	n = snprintf(frame, MAXC + 256, "{\"type\":\"edit\",\"messageId\":\"" U3
				 "\",\"content\":\"%0*d\"}", MAXC, 0);
	CHECK(proto_decode(frame, n, MAXC, &cmd, err, sizeof(err)) == PROTO_OK);
	CHECK(cmd.content_len == MAXC);
	proto_cmd_free(&cmd);
	CHECK(proto_decode(frame, n, MAXC - 1, &cmd, err, sizeof(err)) ==
		  PROTO_TOO_LARGE);
	CHECK(cmd.content == NULL);
	proto_cmd_free(&cmd);
	/* the limit counts bytes, not characters; 0 is no limit */
	n = snprintf(frame, MAXC + 256, "{\"type\":\"edit\",\"messageId\":\"" U3
				 "\",\"content\":\"\xc3\xa9\xc3\xa9\"}");
	CHECK(proto_decode(frame, n, 3, &cmd, err, sizeof(err)) ==
		  PROTO_TOO_LARGE);
	proto_cmd_free(&cmd);
	CHECK(proto_decode(frame, n, 4, &cmd, err, sizeof(err)) == PROTO_OK);
	proto_cmd_free(&cmd);
	CHECK(proto_decode(frame, n, 0, &cmd, err, sizeof(err)) == PROTO_OK);
	proto_cmd_free(&cmd);
	free(frame);
}

static void
test_decode_kind(void)
{
	static const char *good[] = {"a", "text", "image.v2", "x-y_z.0",
	"abcdefghijklmnopqrstuvwxyz012345"};
	static const char *bad[] = {"\"\"", "\"Text\"", "\"1abc\"", "\"_a\"",
		"\"a b\"", "\"a/b\"", "\"abcdefghijklmnopqrstuvwxyz0123456\"",
	"\"caf\xc3\xa9\"", "3", "[\"text\"]", "\"a\\u0000\""};
	char		frame[256];
	size_t		i;
	chat_cmd	cmd;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
	{
		snprintf(frame, sizeof(frame), "{\"type\":\"send\",\"clientId\":\""
				 U1 "\",\"channelId\":\"" U2 "\",\"content\":\"x\","
				 "\"kind\":\"%s\"}", good[i]);
		CHECK(dec(frame, &cmd) == PROTO_OK);
		CHECK_STR(cmd.kind, good[i]);
		proto_cmd_free(&cmd);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		snprintf(frame, sizeof(frame), "{\"type\":\"send\",\"clientId\":\""
				 U1 "\",\"channelId\":\"" U2 "\",\"content\":\"x\","
				 "\"kind\":%s}", bad[i]);
		CHECK_BAD(frame);
	}
	CHECK(dec("{\"type\":\"send\",\"clientId\":\"" U1 "\",\"channelId\":\""
			  U2 "\",\"content\":\"x\",\"kind\":null}", &cmd) == PROTO_OK);
	CHECK_STR(cmd.kind, "text");
	proto_cmd_free(&cmd);
}

static void
test_decode_reply_to(void)
{
	chat_cmd	cmd;

	CHECK(dec("{\"type\":\"send\",\"clientId\":\"" U1 "\",\"channelId\":\""
			  U2 "\",\"content\":\"x\",\"replyTo\":null}", &cmd) == PROTO_OK);
	CHECK_STR(cmd.reply_to, "");
	proto_cmd_free(&cmd);
	CHECK_BAD("{\"type\":\"send\",\"clientId\":\"" U1 "\",\"channelId\":\""
			  U2 "\",\"content\":\"x\",\"replyTo\":\"nope\"}");
	CHECK_BAD("{\"type\":\"send\",\"clientId\":\"" U1 "\",\"channelId\":\""
			  U2 "\",\"content\":\"x\",\"replyTo\":1}");
}

/*
 * send_with_attachments decodes a send frame whose attachments member is
 * the given JSON text.
 */
static proto_status
send_with_attachments(const char *att, chat_cmd *cmd)
{
	char		frame[16384];

	snprintf(frame, sizeof(frame), "{\"type\":\"send\",\"clientId\":\"" U1
			 "\",\"channelId\":\"" U2 "\",\"content\":\"x\","
			 "\"attachments\":%s}", att);
	return dec(frame, cmd);
}

#define ATT(url, name, size, mime) \
	"{\"url\":" url ",\"name\":" name ",\"size\":" size ",\"mime\":" mime "}"
#define ATT_OK ATT("\"http://h/p\"", "\"n\"", "0", "\"text/plain\"")

static void
test_decode_attachments_accept(void)
{
	chat_cmd	cmd;
	char		many[4096];
	int			i;

	CHECK(send_with_attachments("null", &cmd) == PROTO_OK);
	CHECK(cmd.attachments == NULL);
	proto_cmd_free(&cmd);
	CHECK(send_with_attachments("[]", &cmd) == PROTO_OK);
	CHECK_STR(cmd.attachments, "[]");
	proto_cmd_free(&cmd);
	CHECK(send_with_attachments("[" ATT("\"HTTPS://h/\xc3\xa9\"",
										"\"r\xc3\xa9sum\xc3\xa9.pdf\"",
										"9007199254740992",
										"\"application/vnd.ms-excel+xml\"")
								"]", &cmd) == PROTO_OK);
	CHECK_STR(cmd.attachments, "[{\"url\":\"HTTPS://h/\xc3\xa9\","
			  "\"name\":\"r\xc3\xa9sum\xc3\xa9.pdf\",\"size\":9007199254740992,"
			  "\"mime\":\"application/vnd.ms-excel+xml\"}]");
	proto_cmd_free(&cmd);

	strcpy(many, "[");
	for (i = 0; i < PROTO_MAX_ATTACHMENTS; i++)
		strcat(strcat(many, i ? "," : ""), ATT_OK);
	strcat(many, "]");
	CHECK(send_with_attachments(many, &cmd) == PROTO_OK);
	proto_cmd_free(&cmd);
	/* one more is too many */
	strcpy(many + strlen(many) - 1, "," ATT_OK "]");
	CHECK(send_with_attachments(many, &cmd) == PROTO_BAD_REQUEST);
	proto_cmd_free(&cmd);
}

static void
test_decode_attachments_reject(void)
{
	static const char *bad[] = {
		"{}", "\"x\"", "7", "[7]", "[null]", "[[]]",
		"[" ATT("\"ftp://h/p\"", "\"n\"", "0", "\"text/plain\"") "]",
		"[" ATT("\"https://\"", "\"n\"", "0", "\"text/plain\"") "]",
		"[" ATT("\"https://h/a b\"", "\"n\"", "0", "\"text/plain\"") "]",
		"[" ATT("\"//h/p\"", "\"n\"", "0", "\"text/plain\"") "]",
		"[" ATT("7", "\"n\"", "0", "\"text/plain\"") "]",
		"[" ATT("\"http://h/p\"", "\"\"", "0", "\"text/plain\"") "]",
		"[" ATT("\"http://h/p\"", "\"a\\u0000\"", "0", "\"text/plain\"") "]",
		"[" ATT("\"http://h/p\"", "null", "0", "\"text/plain\"") "]",
		"[" ATT("\"http://h/p\"", "\"n\"", "-1", "\"text/plain\"") "]",
		"[" ATT("\"http://h/p\"", "\"n\"", "1.5", "\"text/plain\"") "]",
		"[" ATT("\"http://h/p\"", "\"n\"", "1.0", "\"text/plain\"") "]",
		"[" ATT("\"http://h/p\"", "\"n\"", "\"3\"", "\"text/plain\"") "]",
		"[" ATT("\"http://h/p\"", "\"n\"", "9007199254740993",
				"\"text/plain\"") "]",
		"[" ATT("\"http://h/p\"", "\"n\"", "0", "\"text\"") "]",
		"[" ATT("\"http://h/p\"", "\"n\"", "0", "\"text/\"") "]",
		"[" ATT("\"http://h/p\"", "\"n\"", "0", "\"/plain\"") "]",
		"[" ATT("\"http://h/p\"", "\"n\"", "0", "\"text/plain; a=b\"") "]",
		"[" ATT("\"http://h/p\"", "\"n\"", "0", "\"te xt/plain\"") "]",
		"[" ATT("\"http://h/p\"", "\"n\"", "0", "\"a/b/c\"") "]",
		"[{\"url\":\"http://h/p\",\"name\":\"n\",\"size\":0}]",
		"[{\"url\":\"http://h/p\",\"name\":\"n\",\"size\":0,"
		"\"mime\":\"a/b\",\"extra\":1}]",
		"[{\"url\":\"http://h/p\",\"name\":\"n\",\"size\":0,"
		"\"mine\":\"a/b\"}]",
		"[" ATT_OK "," ATT_OK ",7]",
	};
	chat_cmd	cmd;
	size_t		i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		proto_status st = send_with_attachments(bad[i], &cmd);

		if (st != PROTO_BAD_REQUEST)
			fprintf(stderr, "  accepted: %s\n", bad[i]);
		CHECK(st == PROTO_BAD_REQUEST);
		CHECK_STR(cmd.client_id, U1);
		proto_cmd_free(&cmd);
	}
}

static void
test_decode_attachments_bytes(void)
{
	char		att[12000];
	char		name[1000];
	chat_cmd	cmd;
	size_t		i;

	/* 10 attachments with 800-byte names: over 8192 bytes serialised */
	memset(name, 'n', 800);
	name[800] = '\0';
	strcpy(att, "[");
	for (i = 0; i < PROTO_MAX_ATTACHMENTS; i++)
		snprintf(att + strlen(att), sizeof(att) - strlen(att),
				 "%s{\"url\":\"http://h\",\"name\":\"%s\",\"size\":1,"
				 "\"mime\":\"a/b\"}", i ? "," : "", name);
	strcat(att, "]");
	CHECK(send_with_attachments(att, &cmd) == PROTO_BAD_REQUEST);
	CHECK(strstr(err, "bytes") != NULL);
	proto_cmd_free(&cmd);
	/* 700-byte names fit */
	name[700] = '\0';
	strcpy(att, "[");
	for (i = 0; i < PROTO_MAX_ATTACHMENTS; i++)
		snprintf(att + strlen(att), sizeof(att) - strlen(att),
				 "%s{\"url\":\"http://h\",\"name\":\"%s\",\"size\":1,"
				 "\"mime\":\"a/b\"}", i ? "," : "", name);
	strcat(att, "]");
	CHECK(send_with_attachments(att, &cmd) == PROTO_OK);
	CHECK(strlen(cmd.attachments) <= PROTO_MAX_ATTACHMENTS_BYTES);
	proto_cmd_free(&cmd);
}

static void
test_decode_read_seq(void)
{
	static const char *bad[] = {"-1", "1.0", "1e3", "\"5\"", "true", "null",
		"9007199254740993", "9223372036854775807", "-9223372036854775808",
	"1e400", "99999999999999999999", "[1]", "{}"};
	char		frame[256];
	chat_cmd	cmd;
	size_t		i;

	CHECK(dec("{\"type\":\"read\",\"channelId\":\"" U2 "\",\"seq\":0}",
			  &cmd) == PROTO_OK);
	CHECK(cmd.seq == 0);
	CHECK_STR(cmd.channel_id, U2);
	proto_cmd_free(&cmd);
	CHECK(dec("{\"type\":\"read\",\"channelId\":\"" U2
			  "\",\"seq\":9007199254740992}", &cmd) == PROTO_OK);
	CHECK(cmd.seq == PROTO_MAX_SEQ);
	proto_cmd_free(&cmd);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		snprintf(frame, sizeof(frame), "{\"type\":\"read\",\"channelId\":\""
				 U2 "\",\"seq\":%s}", bad[i]);
		CHECK_BAD(frame);
	}
}

static void
test_decode_history(void)
{
	static const char *bad[] = {"\"limit\":0", "\"limit\":201",
		"\"limit\":-5", "\"limit\":2.5", "\"limit\":\"10\"",
		"\"limit\":4294967346", "\"before\":-1", "\"before\":1.5",
	"\"before\":\"3\"", "\"before\":1e400"};
	char		frame[256];
	chat_cmd	cmd;
	size_t		i;

	CHECK(dec("{\"type\":\"history\",\"channelId\":\"" U2 "\"}", &cmd) ==
		  PROTO_OK);
	CHECK(cmd.before == 0);
	CHECK(cmd.limit == 50);
	proto_cmd_free(&cmd);
	CHECK(dec("{\"type\":\"history\",\"channelId\":\"" U2
			  "\",\"before\":null,\"limit\":null}", &cmd) == PROTO_OK);
	CHECK(cmd.before == 0 && cmd.limit == 50);
	proto_cmd_free(&cmd);
	CHECK(dec("{\"type\":\"history\",\"channelId\":\"" U2
			  "\",\"before\":42,\"limit\":200}", &cmd) == PROTO_OK);
	CHECK(cmd.before == 42 && cmd.limit == 200);
	proto_cmd_free(&cmd);
	CHECK(dec("{\"type\":\"history\",\"channelId\":\"" U2
			  "\",\"limit\":1}", &cmd) == PROTO_OK);
	CHECK(cmd.limit == 1);
	proto_cmd_free(&cmd);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		snprintf(frame, sizeof(frame), "{\"type\":\"history\","
				 "\"channelId\":\"" U2 "\",%s}", bad[i]);
		CHECK_BAD(frame);
	}
}

static void
test_decode_sync(void)
{
	chat_cmd	cmd;

	CHECK(dec("{\"type\":\"sync\",\"channels\":{\"" U1 "\":0,\""
			  "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE\":42}}", &cmd) == PROTO_OK);
	CHECK(cmd.type == CMD_SYNC);
	CHECK(cmd.n_sync == 2);
	CHECK_STR(cmd.sync[0].channel_id, U1);
	CHECK(cmd.sync[0].last_seq == 0);
	CHECK_STR(cmd.sync[1].channel_id, U3);
	CHECK(cmd.sync[1].last_seq == 42);
	proto_cmd_free(&cmd);
	CHECK(dec("{\"type\":\"sync\",\"channels\":{}}", &cmd) == PROTO_OK);
	CHECK(cmd.n_sync == 0 && cmd.sync == NULL);
	proto_cmd_free(&cmd);

	CHECK_BAD("{\"type\":\"sync\",\"channels\":[]}");
	CHECK_BAD("{\"type\":\"sync\",\"channels\":null}");
	CHECK_BAD("{\"type\":\"sync\",\"channels\":{\"nope\":1}}");
	CHECK_BAD("{\"type\":\"sync\",\"channels\":{\"" U1 "\":-1}}");
	CHECK_BAD("{\"type\":\"sync\",\"channels\":{\"" U1 "\":1.0}}");
	CHECK_BAD("{\"type\":\"sync\",\"channels\":{\"" U1 "\":\"1\"}}");
	CHECK_BAD("{\"type\":\"sync\",\"channels\":{\"" U1 "\":null}}");
	CHECK_BAD("{\"type\":\"sync\",\"channels\":{\"" U1 "\":1,\"" U1 "\":2}}");
	/* the same channel in two spellings */
	CHECK_BAD("{\"type\":\"sync\",\"channels\":{\"" U3 "\":1,"
			  "\"AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE\":2}}");
}

/*
 * sync_frame builds a sync frame of n distinct channels (caller frees).
 */
static char *
sync_frame(size_t n)
{
	char	   *f = malloc(64 + n * 48);
	size_t		i;
	size_t		len;

	len = (size_t) sprintf(f, "{\"type\":\"sync\",\"channels\":{");
	for (i = 0; i < n; i++)
		len += (size_t) sprintf(f + len, "%s\"%08zx-0000-4000-8000-%012zx\":%zu",
								i ? "," : "", i, i, i);
	strcpy(f + len, "}}");
	return f;
}

static void
test_decode_sync_limit(void)
{
	char	   *f = sync_frame(PROTO_MAX_SYNC);
	chat_cmd	cmd;

	CHECK(dec(f, &cmd) == PROTO_OK);
	CHECK(cmd.n_sync == PROTO_MAX_SYNC);
	CHECK(cmd.sync[PROTO_MAX_SYNC - 1].last_seq == PROTO_MAX_SYNC - 1);
	proto_cmd_free(&cmd);
	free(f);
	f = sync_frame(PROTO_MAX_SYNC + 1);
	CHECK_BAD(f);
	free(f);
}

static void
test_decode_refresh(void)
{
	char	   *f = malloc(PROTO_MAX_TOKEN + 64);
	chat_cmd	cmd;

	CHECK(dec("{\"type\":\"refresh\",\"token\":\"a.b.c\",\"ref\":2}", &cmd) ==
		  PROTO_OK);
	CHECK_STR(cmd.token, "a.b.c");
	CHECK_STR(cmd.ref, "2");
	proto_cmd_free(&cmd);
	CHECK_BAD("{\"type\":\"refresh\",\"token\":\"\"}");
	CHECK_BAD("{\"type\":\"refresh\",\"token\":null}");
	CHECK_BAD("{\"type\":\"refresh\",\"token\":12}");
	CHECK_BAD("{\"type\":\"refresh\",\"token\":\"a\\u0000b\"}");
	sprintf(f, "{\"type\":\"refresh\",\"token\":\"%0*d\"}", PROTO_MAX_TOKEN, 0);
	CHECK_OK(f);
	sprintf(f, "{\"type\":\"refresh\",\"token\":\"%0*d\"}",
			PROTO_MAX_TOKEN + 1, 0);
	CHECK_BAD(f);
	free(f);
}

int
main(void)
{
	RUN(test_decode_uuid);
	RUN(test_decode_content);
	RUN(test_decode_kind);
	RUN(test_decode_reply_to);
	RUN(test_decode_attachments_accept);
	RUN(test_decode_attachments_reject);
	RUN(test_decode_attachments_bytes);
	RUN(test_decode_read_seq);
	RUN(test_decode_history);
	RUN(test_decode_sync);
	RUN(test_decode_sync_limit);
	RUN(test_decode_refresh);
	UNIT_EXIT();
}
