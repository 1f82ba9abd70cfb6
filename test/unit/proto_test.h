/*
 * proto_test.h
 *	  Helpers shared by the protocol codec's unit tests (test_proto*.c):
 *	  decoding a frame with the default limits, and reading an encoder's
 *	  output back with jansson, strictly, as a client would.
 */
#ifndef CHAT_PROTO_TEST_H
#define CHAT_PROTO_TEST_H

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/proto.h"
#include "unit.h"

#define MAXC 16384
#define U1 "0b9a4c1e-5f3d-4e2a-9b7c-1d2e3f4a5b6c"
#define U2 "11111111-2222-4333-8444-555555555555"
#define U3 "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"

static char err[256];

/*
 * take hands an encoder's text out as the tests read it: the pointer, with
 * its length stored in *len.
 */
static inline char *
take(proto_text t, size_t *len)
{
	*len = t.len;
	return t.ptr;
}

/*
 * dec decodes a NUL-terminated frame with the default content limit.
 */
static inline proto_status
dec(const char *s, chat_cmd *cmd)
{
	return proto_decode(s, strlen(s), MAXC, cmd, err, sizeof(err));
}

/*
 * status_of decodes s and returns only the status (the command is freed).
 */
static inline proto_status
status_of(const char *s)
{
	chat_cmd	cmd;
	proto_status st = dec(s, &cmd);

	proto_cmd_free(&cmd);
	return st;
}

#define CHECK_BAD(s) \
	do { \
		proto_status st_ = status_of(s); \
		if (st_ != PROTO_BAD_REQUEST) \
			fprintf(stderr, "  accepted (%d): %s\n", (int) st_, s); \
		CHECK(st_ == PROTO_BAD_REQUEST); \
	} while (0)

#define CHECK_OK(s) \
	do { \
		proto_status st_ = status_of(s); \
		if (st_ != PROTO_OK) \
			fprintf(stderr, "  refused (%s): %s\n", err, s); \
		CHECK(st_ == PROTO_OK); \
	} while (0)

/*
 * parse reads an encoder's output back with jansson and frees the text.
 * len is passed by address so that it is read after the encoder ran.
 */
static inline json_t *
parse(char *text, const size_t *len)
{
	json_error_t e;
	json_t	   *j;

	CHECK(text != NULL);
	if (text == NULL)
		return NULL;
	CHECK(strlen(text) == *len);
	j = json_loadb(text, *len, JSON_REJECT_DUPLICATES, &e);
	if (j == NULL)
		fprintf(stderr, "  unparsable (%s): %s\n", e.text, text);
	CHECK(j != NULL);
	free(text);
	return j;
}

static inline const char *
jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static inline json_int_t
jint(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	CHECK(json_is_integer(v));
	return json_integer_value(v);
}

static inline void
check_null(const json_t *o, const char *key)
{
	CHECK(json_is_null(json_object_get(o, key)));
}

static inline void
check_keys(const json_t *o, size_t n)
{
	CHECK(json_object_size(o) == n);
}

#endif							/* CHAT_PROTO_TEST_H */
