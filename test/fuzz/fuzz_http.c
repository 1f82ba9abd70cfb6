/*
 * fuzz_http.c
 *	  libFuzzer target: the HTTP request-head parser (http_parse_request),
 *	  the Sec-WebSocket-Accept computation on the parsed key
 *	  (http_ws_accept) and the response builders fed with parsed fields.
 *
 *	  The input is the bytes a client sent on the worker's port.  Beyond
 *	  "no crash, no leak, no UB" it checks the parser's contract (http.h):
 *	  a complete head ends in LF inside the input and inside HTTP_MAX_HEAD,
 *	  every field is NUL-terminated in its slot, the result does not depend
 *	  on bytes after the head, and every shorter prefix of a complete or
 *	  incomplete head is incomplete (the worker calls it again as bytes
 *	  arrive).  Responses built from request fields must stay one response:
 *	  only CRLF line ends in the head, a Content-Length that matches, and a
 *	  JSON error body that parses.
 */
#include <stdlib.h>
#include <string.h>

#include "core/http.h"
#include "fuzz_util.h"

/* The slot upgrade.c answers in. */
#define RESP_MAX 1024

static http_request req;
static http_request req2;

/* terminated: a fixed-size field holds a NUL inside its slot. */
#define TERMINATED(field) (strnlen((field), sizeof(field)) < sizeof(field))

static bool
no_controls(const char *s)
{
	for (; *s; s++)
		if ((unsigned char) *s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/*
 * check_request asserts what a complete head guarantees its callers.
 */
static void
check_request(const uint8_t *data, size_t size, const http_request *r)
{
	FZ_CHECK(r->head_len > 0 && r->head_len <= size);
	FZ_CHECK(r->head_len <= HTTP_MAX_HEAD);
	FZ_CHECK(data[r->head_len - 1] == '\n');
	FZ_CHECK(TERMINATED(r->method) && TERMINATED(r->path) &&
			 TERMINATED(r->token) && TERMINATED(r->origin) &&
			 TERMINATED(r->ws_key) && TERMINATED(r->forwarded_for));
	/* the method is a non-empty token (a NUL inside it is refused) */
	FZ_CHECK(r->method[0] != '\0');
	FZ_CHECK(r->path[0] == '/');
	FZ_CHECK(no_controls(r->path) && no_controls(r->method));
	FZ_CHECK(r->ws_version >= 0 && r->ws_version <= 999);
}

/*
 * check_response asserts that a builder wrote exactly one well-formed
 * response of n bytes: CRLF-only line ends in the head, no control
 * characters, and a Content-Length equal to the body's size.
 */
static void
check_response(const char *buf, int n, bool json_body)
{
	const char *end;
	const char *cl;
	size_t		head;

	FZ_CHECK(n > 0 && strlen(buf) <= (size_t) n);
	end = strstr(buf, "\r\n\r\n");
	FZ_CHECK(end != NULL);
	head = (size_t) (end - buf);
	for (size_t i = 0; i < head; i++)
	{
		unsigned char c = (unsigned char) buf[i];

		if (c == '\r')
			FZ_CHECK(buf[i + 1] == '\n');
		else if (c == '\n')
			FZ_CHECK(i > 0 && buf[i - 1] == '\r');
		else
			FZ_CHECK(c >= 0x20 && c != 0x7f);
	}
	cl = strstr(buf, "\r\nContent-Length: ");
	if (cl != NULL && cl < end)
		FZ_CHECK(strtoul(cl + 18, NULL, 10) == (size_t) n - head - 4);
	if (json_body)
		FZ_CHECK(fz_json_object_valid(end + 4, (size_t) n - head - 4, false));
}

static void
fuzz_accept(const char *key, size_t outlen)
{
	char	   *out = malloc(outlen ? outlen : 1);
	bool		ok = http_ws_accept(key, out, outlen);

	if (ok)
	{
		FZ_CHECK(outlen >= 29 && strlen(out) == 28 && out[27] == '=');
		FZ_CHECK(strlen(key) == 24 && key[23] == '=');
	}
	free(out);
}

/*
 * fuzz_responses builds what upgrade.c would answer with the parsed
 * fields in the places where a client controls text.
 */
static void
fuzz_responses(const http_request *r, const uint8_t *data, size_t size)
{
	char	   *buf = malloc(RESP_MAX);
	size_t		cap = size + RESP_MAX;
	char	   *big = malloc(cap);
	char		accept[64];
	int			n;

	n = http_error_response(400, r->method, r->path, buf, RESP_MAX);
	if (n >= 0)
		check_response(buf, n, true);
	n = http_error_response(401, r->origin, r->token, buf, RESP_MAX);
	if (n >= 0)
		check_response(buf, n, true);
	/* a content type that would split the response must be refused */
	n = http_response(200, r->origin, (const char *) data, size, big, cap);
	if (n >= 0)
		check_response(big, n, false);
	if (http_ws_accept(r->ws_key, accept, sizeof(accept)))
	{
		n = http_upgrade_response(accept, buf, RESP_MAX);
		FZ_CHECK(n > 0);
		check_response(buf, n, false);
		FZ_CHECK(strncmp(buf, "HTTP/1.1 101 ", 13) == 0);
	}
	free(big);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *) data;
	http_parse_status st = http_parse_request(buf, size, &req);
	char		key[65];

	FZ_CHECK(st == HTTP_INCOMPLETE || st == HTTP_COMPLETE ||
			 st == HTTP_BAD_REQUEST || st == HTTP_TOO_LARGE);
	if (st == HTTP_COMPLETE)
	{
		check_request(data, size, &req);
		/* the bytes after the head are not part of the request */
		FZ_CHECK(http_parse_request(buf, req.head_len, &req2) == HTTP_COMPLETE);
		FZ_CHECK(memcmp(&req, &req2, sizeof(req)) == 0);
		/* as bytes trickle in, every shorter prefix is incomplete */
		FZ_CHECK(http_parse_request(buf, req.head_len - 1, &req2) ==
				 HTTP_INCOMPLETE);
		FZ_CHECK(http_parse_request(buf, req.head_len / 2, &req2) ==
				 HTTP_INCOMPLETE);
		fuzz_accept(req.ws_key, 29);
		fuzz_accept(req.ws_key, 28);
		fuzz_responses(&req, data, size);
	}
	else if (st == HTTP_INCOMPLETE)
	{
		FZ_CHECK(size < HTTP_MAX_HEAD);
		FZ_CHECK(http_parse_request(buf, size / 2, &req2) == HTTP_INCOMPLETE);
	}

	/* the accept key over raw bytes, into buffers of every small size */
	memcpy(key, data, size < 64 ? size : 64);
	key[size < 64 ? size : 64] = '\0';
	fuzz_accept(key, size % 31);
	return 0;
}
