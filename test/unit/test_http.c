/*
 * test_http.c
 *	  Unit tests for core/http.c and core/http_response.c: complete,
 *	  incomplete and byte-by-byte heads, bad request lines and header lines,
 *	  size limits (431), header case, the token from the query or Bearer,
 *	  upgrade flags, the RFC 6455 accept key, and the exact responses.
 *
 *	  Every parse runs on a malloc'd copy of exactly the given length, so
 *	  AddressSanitizer catches any read past it.
 */
#include <stdlib.h>

#include <jansson.h>

#include "core/http.h"
#include "unit.h"

static http_request req;

static const char upgrade_head[] =
"GET /ws?v=1&token=abc%2Edef.ghi HTTP/1.1\r\n"
"Host: chat.example:8765\r\n"
"upgrade: WebSocket\r\n"
"Connection: keep-alive, Upgrade\r\n"
"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
"Origin: https://app.example\r\n"
"Sec-WebSocket-Version: 13\r\n"
"User-Agent: test\r\n"
"\r\n";

/*
 * parse_n parses a malloc'd copy of exactly n bytes of s.
 */
static http_parse_status
parse_n(const char *s, size_t n)
{
	char	   *copy = malloc(n > 0 ? n : 1);
	http_parse_status st;

	memcpy(copy, s, n);
	st = http_parse_request(copy, n, &req);
	free(copy);
	return st;
}

/*
 * parse parses a whole C string.
 */
static http_parse_status
parse(const char *s)
{
	return parse_n(s, strlen(s));
}

/*
 * with_header parses "GET / HTTP/1.1", the given header lines and the
 * blank line.
 */
static http_parse_status
with_header(const char *lines)
{
	char		buf[HTTP_MAX_HEAD + 256];

	snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n%s\r\n", lines);
	return parse(buf);
}

/*
 * test_complete_upgrade: a browser-like upgrade fills every field; bytes
 * after the head are not part of it.
 */
static void
test_complete_upgrade(void)
{
	char		buf[1024];
	size_t		n = strlen(upgrade_head);

	CHECK(parse(upgrade_head) == HTTP_COMPLETE);
	CHECK(req.head_len == n);
	CHECK_STR(req.method, "GET");
	CHECK_STR(req.path, "/ws");
	CHECK_STR(req.token, "abc.def.ghi");
	CHECK_STR(req.origin, "https://app.example");
	CHECK_STR(req.ws_key, "dGhlIHNhbXBsZSBub25jZQ==");
	CHECK_STR(req.forwarded_for, "");
	CHECK(req.ws_version == 13);
	CHECK(req.upgrade_websocket && req.connection_upgrade && req.http11);

	memcpy(buf, upgrade_head, n);
	memcpy(buf + n, "\x81\x85", 2); /* a frame right behind it */
	CHECK(parse_n(buf, n + 2) == HTTP_COMPLETE && req.head_len == n);
}

/*
 * test_split_every_byte: every strict prefix is incomplete, never an
 * error; a broken line is reported once it is complete, not before.
 */
static void
test_split_every_byte(void)
{
	const char *bad = "GET / HTTP/1.1\r\nHost: x\r\nBroken line\r\nA: b\r\n\r\n";

	/* the start of a TLS ClientHello, sent to the plain port */
	static const char tls_hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\n";
	size_t		n = strlen(upgrade_head);
	size_t		i;
	int			wrong = 0;

	for (i = 0; i < n; i++)
	{
		if (parse_n(upgrade_head, i) != HTTP_INCOMPLETE)
			wrong++;
	}
	CHECK(wrong == 0);
	CHECK(parse_n(upgrade_head, n) == HTTP_COMPLETE);

	wrong = 0;
	for (i = 0; i < strlen(bad); i++)
	{
		http_parse_status st = parse_n(bad, i);
		http_parse_status want = i < 38 ? HTTP_INCOMPLETE : HTTP_BAD_REQUEST;

		if (st != want)
			wrong++;
	}
	CHECK(wrong == 0);
	CHECK(parse("GARBAGE\r\n") == HTTP_BAD_REQUEST);
	CHECK(parse_n(tls_hello, sizeof(tls_hello) - 1) == HTTP_BAD_REQUEST);
}

/*
 * test_line_endings: bare LF is accepted, a bare CR never is, and empty
 * lines before the request line are skipped.
 */
static void
test_line_endings(void)
{
	CHECK(parse("GET /healthz HTTP/1.1\nHost: x\n\n") == HTTP_COMPLETE);
	CHECK_STR(req.path, "/healthz");
	CHECK(parse("GET / HTTP/1.1\r\nHost: x\n\r\n") == HTTP_COMPLETE);
	CHECK(parse("GET / HTTP/1.1\rHost: x\r\n\r\n") == HTTP_BAD_REQUEST);
	CHECK(parse("GET / HTTP/1.1\r\r\n\r\n") == HTTP_BAD_REQUEST);
	CHECK(parse("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n") == HTTP_BAD_REQUEST);
	CHECK(parse("\r\n\nGET / HTTP/1.1\r\n\r\n") == HTTP_COMPLETE);
	CHECK(req.head_len == 21);
	CHECK(parse("\r\n\r\n") == HTTP_INCOMPLETE);
	CHECK(parse("GET / HTTP/1.0\r\n\r\n") == HTTP_COMPLETE && !req.http11);
	CHECK(parse("GET / HTTP/1.2\r\n\r\n") == HTTP_COMPLETE && req.http11);
}

/*
 * test_bad_request_lines: spacing, versions, methods and targets.
 */
static void
test_bad_request_lines(void)
{
	const char *bad[] = {
		"GET /\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1 \r\n\r\n",
		" GET / HTTP/1.1\r\n\r\n", "GET / HTTP/2.0\r\n\r\n",
		"GET / http/1.1\r\n\r\n", "GET / HTTP/1.10\r\n\r\n",
		"GET / HTTP/1.x\r\n\r\n", "G@T / HTTP/1.1\r\n\r\n",
		"GETTINGVERYLONG1 / HTTP/1.1\r\n\r\n", "GET ws HTTP/1.1\r\n\r\n",
		"GET /a\x01 HTTP/1.1\r\n\r\n", "GET /a\tb HTTP/1.1\r\n\r\n",
		"GET /\x80 HTTP/1.1\r\n\r\n", "GET /%zz HTTP/1.1\r\n\r\n",
		"GET /%0 HTTP/1.1\r\n\r\n", "GET /% HTTP/1.1\r\n\r\n",
		"GET /a%00b HTTP/1.1\r\n\r\n", "GET /a%0a HTTP/1.1\r\n\r\n",
		"GET\tHTTP/1.1\r\n\r\n", "GET ftp://x/ HTTP/1.1\r\n\r\n",
	};
	size_t		i;
	int			wrong = 0;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		if (parse(bad[i]) != HTTP_BAD_REQUEST)
		{
			fprintf(stderr, "accepted: %s\n", bad[i]);
			wrong++;
		}
	}
	CHECK(wrong == 0);
	CHECK(parse("GETTINGVERYLONG / HTTP/1.1\r\n\r\n") == HTTP_COMPLETE);
	CHECK(parse("GET /a%20b%2Fc%c3%a9 HTTP/1.1\r\n\r\n") == HTTP_COMPLETE);
	CHECK_STR(req.path, "/a b/c\xc3\xa9");
	CHECK(parse("GET /x#frag HTTP/1.1\r\n\r\n") == HTTP_COMPLETE);
	CHECK_STR(req.path, "/x");
	/* a NUL inside the method must not end it early (found by fuzzing) */
	CHECK(parse_n("GET\0x / HTTP/1.1\r\n\r\n", 20) == HTTP_BAD_REQUEST);
	CHECK(parse_n("\0 / HTTP/1.1\r\n\r\n", 16) == HTTP_BAD_REQUEST);
}

/*
 * test_absolute_form: a proxy-style target is reduced to its path.
 */
static void
test_absolute_form(void)
{
	CHECK(parse("GET http://h.example/ws?token=t HTTP/1.1\r\n\r\n") ==
		  HTTP_COMPLETE);
	CHECK_STR(req.path, "/ws");
	CHECK_STR(req.token, "t");
	CHECK(parse("GET HTTPS://h.example?token=u HTTP/1.1\r\n\r\n") ==
		  HTTP_COMPLETE);
	CHECK_STR(req.path, "/");
	CHECK_STR(req.token, "u");
	CHECK(parse("GET http://h.example HTTP/1.1\r\n\r\n") == HTTP_COMPLETE);
	CHECK_STR(req.path, "/");
}

/*
 * test_header_lines: obs-fold, missing colon, empty name, space before
 * the colon, control characters; obs-text and OWS are fine.
 */
static void
test_header_lines(void)
{
	static const char nul_value[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";

	CHECK(with_header("A: b\r\n c\r\n") == HTTP_BAD_REQUEST);
	CHECK(with_header("A: b\r\n\tc\r\n") == HTTP_BAD_REQUEST);
	CHECK(with_header("NoColon\r\n") == HTTP_BAD_REQUEST);
	CHECK(with_header(": v\r\n") == HTTP_BAD_REQUEST);
	CHECK(with_header("Host : x\r\n") == HTTP_BAD_REQUEST);
	CHECK(with_header("Ho st: x\r\n") == HTTP_BAD_REQUEST);
	CHECK(with_header("A: b\x01\r\n") == HTTP_BAD_REQUEST);
	CHECK(with_header("A: b\x7f\r\n") == HTTP_BAD_REQUEST);
	CHECK(parse_n(nul_value, sizeof(nul_value) - 1) == HTTP_BAD_REQUEST);
	CHECK(with_header("A: caf\xc3\xa9\r\nB:\r\nC:x\r\n") == HTTP_COMPLETE);
	CHECK(with_header("Origin: \t http://x \t\r\n") == HTTP_COMPLETE);
	CHECK_STR(req.origin, "http://x");
	CHECK(with_header("Content-Length: 0\r\n") == HTTP_COMPLETE);
	CHECK(with_header("Content-Length: 5\r\n") == HTTP_BAD_REQUEST);
	CHECK(with_header("Content-Length:\r\n") == HTTP_BAD_REQUEST);
	CHECK(with_header("Transfer-Encoding: chunked\r\n") == HTTP_BAD_REQUEST);
}

/*
 * test_header_case_and_duplicates: names in any case; security headers
 * at most once.
 */
static void
test_header_case_and_duplicates(void)
{
	CHECK(with_header("sEC-wEBsOCKET-kEY: k\r\nSEC-WEBSOCKET-VERSION: 8\r\n"
					  "ORIGIN: o\r\n") == HTTP_COMPLETE);
	CHECK_STR(req.ws_key, "k");
	CHECK(req.ws_version == 8);
	CHECK_STR(req.origin, "o");
	CHECK(with_header("Sec-WebSocket-Key: a\r\nsec-websocket-key: a\r\n") ==
		  HTTP_BAD_REQUEST);
	CHECK(with_header("Origin: a\r\nOrigin: b\r\n") == HTTP_BAD_REQUEST);
	CHECK(with_header("Sec-WebSocket-Version: 13\r\n"
					  "Sec-WebSocket-Version: 13\r\n") == HTTP_BAD_REQUEST);
	CHECK(with_header("Sec-WebSocket-Version: 13a\r\n") == HTTP_BAD_REQUEST);
	CHECK(with_header("Sec-WebSocket-Version: 1300\r\n") == HTTP_BAD_REQUEST);
	CHECK(with_header("Authorization: Basic a\r\nAuthorization: Basic a\r\n")
		  == HTTP_BAD_REQUEST);
	CHECK(with_header("X-Forwarded-For: 1.2.3.4, 10.0.0.1 \r\n") ==
		  HTTP_COMPLETE);
	CHECK_STR(req.forwarded_for, "10.0.0.1");
	CHECK(with_header("x-forwarded-for: ::1\r\n") == HTTP_COMPLETE);
	CHECK_STR(req.forwarded_for, "::1");
}

/*
 * test_upgrade_flags: Connection and Upgrade are token lists.
 */
static void
test_upgrade_flags(void)
{
	CHECK(with_header("Connection: keep-alive\r\nConnection: UPGRADE\r\n"
					  "Upgrade: h2c, websocket\r\n") == HTTP_COMPLETE);
	CHECK(req.connection_upgrade && req.upgrade_websocket);
	CHECK(with_header("Connection: upgraded, keep-alive\r\n"
					  "Upgrade: websockets\r\n") == HTTP_COMPLETE);
	CHECK(!req.connection_upgrade && !req.upgrade_websocket);
	CHECK(with_header("Connection: ,, upgrade ,\r\nUpgrade:websocket\r\n") ==
		  HTTP_COMPLETE);
	CHECK(req.connection_upgrade && req.upgrade_websocket);
	CHECK(with_header("Host: x\r\n") == HTTP_COMPLETE);
	CHECK(!req.connection_upgrade && !req.upgrade_websocket);
	CHECK(req.ws_version == 0 && req.ws_key[0] == '\0');
}

/*
 * test_token_sources: query (percent-decoded, other parameters ignored)
 * and Bearer (scheme in any case); both must agree.
 */
static void
test_token_sources(void)
{
	CHECK(parse("GET /ws?x=%zz&token=a%2bb+c&y HTTP/1.1\r\n\r\n") ==
		  HTTP_COMPLETE);
	CHECK_STR(req.token, "a+b+c");
	CHECK(parse("GET /ws?token HTTP/1.1\r\n\r\n") == HTTP_COMPLETE);
	CHECK_STR(req.token, "");
	CHECK(parse("GET /ws?tokens=x&Token=y#token=z HTTP/1.1\r\n\r\n") ==
		  HTTP_COMPLETE);
	CHECK_STR(req.token, "");
	CHECK(parse("GET /ws?token=a&token=a HTTP/1.1\r\n\r\n") ==
		  HTTP_BAD_REQUEST);
	CHECK(parse("GET /ws?token=%zz HTTP/1.1\r\n\r\n") == HTTP_BAD_REQUEST);
	CHECK(parse("GET /ws?token=a%00 HTTP/1.1\r\n\r\n") == HTTP_BAD_REQUEST);

	CHECK(with_header("Authorization: bearer   x.y.z\r\n") == HTTP_COMPLETE);
	CHECK_STR(req.token, "x.y.z");
	CHECK(with_header("Authorization: BEARER x.y.z\r\n") == HTTP_COMPLETE);
	CHECK_STR(req.token, "x.y.z");
	CHECK(with_header("Authorization: Basic dXNlcjpwdw==\r\n") ==
		  HTTP_COMPLETE);
	CHECK_STR(req.token, "");
	CHECK(with_header("Authorization: Bearerx.y.z\r\n") == HTTP_COMPLETE);
	CHECK_STR(req.token, "");
	CHECK(parse("GET /ws?token=t1 HTTP/1.1\r\nAuthorization: Bearer t1\r\n"
				"\r\n") == HTTP_COMPLETE);
	CHECK_STR(req.token, "t1");
	CHECK(parse("GET /ws?token=t1 HTTP/1.1\r\nAuthorization: Bearer t2\r\n"
				"\r\n") == HTTP_BAD_REQUEST);
}

/*
 * test_resume_flag: ?resume=1 (or true) asks for held live delivery;
 * anything else, or no flag, keeps the 1.0 behaviour.
 */
static void
test_resume_flag(void)
{
	CHECK(parse("GET /ws?token=t&resume=1 HTTP/1.1\r\n\r\n") == HTTP_COMPLETE);
	CHECK(req.resume);
	CHECK_STR(req.token, "t");
	CHECK(parse("GET /ws?resume=true&token=t HTTP/1.1\r\n\r\n") ==
		  HTTP_COMPLETE);
	CHECK(req.resume);
	CHECK(parse("GET /ws?token=t HTTP/1.1\r\n\r\n") == HTTP_COMPLETE);
	CHECK(!req.resume);
	CHECK(parse("GET /ws?resume=0 HTTP/1.1\r\n\r\n") == HTTP_COMPLETE);
	CHECK(!req.resume);
	CHECK(parse("GET /ws?resume HTTP/1.1\r\n\r\n") == HTTP_COMPLETE);
	CHECK(!req.resume);
	CHECK(parse("GET /ws?resumes=1&xresume=1 HTTP/1.1\r\n\r\n") ==
		  HTTP_COMPLETE);
	CHECK(!req.resume);
}

/*
 * test_long_token: a token of most of the head still fits req.token.
 */
static void
test_long_token(void)
{
	static char buf[HTTP_MAX_HEAD + 16];
	size_t		tlen = HTTP_MAX_HEAD - 40;
	int			n = snprintf(buf, sizeof(buf), "GET /ws?token=");

	memset(buf + n, 'a', tlen);
	memcpy(buf + n + tlen, " HTTP/1.1\r\n\r\n", 14);
	CHECK(parse(buf) == HTTP_COMPLETE);
	CHECK(strlen(req.token) == tlen);
}

/*
 * test_limits: the head limit (431), header count, and fields too long
 * for their slots (400).
 */
static void
test_limits(void)
{
	static char buf[HTTP_MAX_HEAD + 64];
	char		lines[8192] = "";
	char		field[400];
	size_t		n;
	int			i;

	/* a head of exactly HTTP_MAX_HEAD bytes, then one byte more */
	n = (size_t) snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nX: ");
	memset(buf + n, 'v', HTTP_MAX_HEAD - n - 4);
	memcpy(buf + HTTP_MAX_HEAD - 4, "\r\n\r\n", 5);
	CHECK(parse(buf) == HTTP_COMPLETE && req.head_len == HTTP_MAX_HEAD);
	memmove(buf + 1, buf, HTTP_MAX_HEAD + 1);
	buf[0] = '\n';				/* one skipped blank line in front */
	CHECK(parse(buf) == HTTP_TOO_LARGE);
	memset(buf, 'a', HTTP_MAX_HEAD + 10);
	CHECK(parse_n(buf, HTTP_MAX_HEAD - 1) == HTTP_INCOMPLETE);
	CHECK(parse_n(buf, HTTP_MAX_HEAD) == HTTP_TOO_LARGE);
	CHECK(parse_n(buf, HTTP_MAX_HEAD + 10) == HTTP_TOO_LARGE);

	for (i = 0; i < 101; i++)
		strcat(lines, "A: b\r\n");
	CHECK(with_header(lines) == HTTP_TOO_LARGE);
	lines[6 * 100] = '\0';
	CHECK(with_header(lines) == HTTP_COMPLETE);

	memset(field, 'p', sizeof(field));
	snprintf(buf, sizeof(buf), "GET /%.*s HTTP/1.1\r\n\r\n", 254, field);
	CHECK(parse(buf) == HTTP_COMPLETE && strlen(req.path) == 255);
	snprintf(buf, sizeof(buf), "GET /%.*s HTTP/1.1\r\n\r\n", 255, field);
	CHECK(parse(buf) == HTTP_BAD_REQUEST);
	snprintf(buf, sizeof(buf), "Origin: %.*s\r\n", 256, field);
	CHECK(with_header(buf) == HTTP_BAD_REQUEST);
	snprintf(buf, sizeof(buf), "Sec-WebSocket-Key: %.*s\r\n", 64, field);
	CHECK(with_header(buf) == HTTP_BAD_REQUEST);
	snprintf(buf, sizeof(buf), "X-Forwarded-For: %.*s\r\n", 64, field);
	CHECK(with_header(buf) == HTTP_BAD_REQUEST);
}

/*
 * test_ws_accept: the RFC 6455 section 1.3 example, and keys that are not
 * the canonical base64 of 16 bytes.
 */
static void
test_ws_accept(void)
{
	char		out[64];

	CHECK(http_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", out, sizeof(out)));
	CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	CHECK(http_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", out, 29));
	CHECK(!http_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", out, 28));
	CHECK(!http_ws_accept("dGhlIHNhbXBsZSBub25jZR==", out, sizeof(out)));
	CHECK(!http_ws_accept("dGhlIHNhbXBsZSBub25jZQ", out, sizeof(out)));
	CHECK(!http_ws_accept("dGhlIHNhbXBsZSBub25jZQ=", out, sizeof(out)));
	CHECK(!http_ws_accept("dGhlIHNhbXBsZSBub25jZ-==", out, sizeof(out)));
	CHECK(!http_ws_accept("dGhlIHNhbXBsZSBub25jZXh4eA==", out, sizeof(out)));
	CHECK(!http_ws_accept("", out, sizeof(out)));
	CHECK(!http_ws_accept(NULL, out, sizeof(out)) && out[0] == '\0');
}

/*
 * test_responses: the exact 101 and a plain response, required headers
 * per status, and bounded writes.
 */
static void
test_responses(void)
{
	char		out[512];
	const char *want101 = "HTTP/1.1 101 Switching Protocols\r\n"
	"Upgrade: websocket\r\nConnection: Upgrade\r\n"
	"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
	const char *want200 = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	"Content-Length: 3\r\nConnection: close\r\n\r\nok\n";
	int			n;

	n = http_upgrade_response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", out, sizeof(out));
	CHECK(n == (int) strlen(want101));
	CHECK_STR(out, want101);
	CHECK(http_upgrade_response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", out,
								(size_t) n) == -1);
	CHECK(http_upgrade_response("s3pPLMBiTxaQ9kYGzzhZRbK\r\nX: y", out,
								sizeof(out)) == -1);

	n = http_response(200, "text/plain", "ok\n", 3, out, sizeof(out));
	CHECK(n == (int) strlen(want200));
	CHECK_STR(out, want200);
	memset(out, 'Z', sizeof(out));
	CHECK(http_response(200, "text/plain", "ok\n", 3, out, (size_t) n) == -1);
	CHECK(out[n] == 'Z');
	CHECK(http_response(200, "text/plain", "ok\n", 3, out, (size_t) n + 1) == n);
	CHECK(http_response(204, NULL, NULL, 0, out, sizeof(out)) > 0);
	CHECK_STR(out, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
	CHECK(http_response(204, NULL, "x", 1, out, sizeof(out)) == -1);
	CHECK(http_response(404, NULL, NULL, 0, out, sizeof(out)) > 0);
	CHECK(strstr(out, "Content-Type") == NULL);
	CHECK(strstr(out, "\r\nContent-Length: 0\r\n") != NULL);
	CHECK(http_response(405, NULL, NULL, 0, out, sizeof(out)) > 0);
	CHECK(strstr(out, "\r\nAllow: GET\r\n") != NULL);
	CHECK(http_response(426, NULL, NULL, 0, out, sizeof(out)) > 0);
	CHECK(strstr(out, "\r\nSec-WebSocket-Version: 13\r\n") != NULL);
	CHECK(http_response(200, "text/plain\r\nX: y", "", 0, out,
						sizeof(out)) == -1);
	CHECK(http_response(99, NULL, "", 0, out, sizeof(out)) == -1);
	CHECK(http_response(600, NULL, "", 0, out, sizeof(out)) == -1);
	CHECK(http_response(200, NULL, NULL, 5, out, sizeof(out)) == -1);
	n = http_response(200, "application/octet-stream", "a\0b", 3, out,
					  sizeof(out));
	CHECK(n > 3 && memcmp(out + n - 3, "a\0b", 3) == 0);
	CHECK_STR(http_reason(404), "Not Found");
	CHECK_STR(http_reason(431), "Request Header Fields Too Large");
	CHECK_STR(http_reason(299), "Unknown");
}

/*
 * body_field parses the JSON body of a response and returns one string
 * member (into a static buffer), or NULL.
 */
static const char *
body_field(const char *resp, const char *name)
{
	static char val[256];
	const char *body = strstr(resp, "\r\n\r\n");
	json_t	   *j = body ? json_loads(body + 4, 0, NULL) : NULL;
	const char *s = j ? json_string_value(json_object_get(j, name)) : NULL;

	if (s != NULL)
		snprintf(val, sizeof(val), "%s", s);
	json_decref(j);
	return s ? val : NULL;
}

/*
 * test_error_response: the 401 body of the contract, escaping of every
 * kind of character, Content-Length, and WWW-Authenticate on 401.
 */
static void
test_error_response(void)
{
	char		out[1024];
	const char *body;
	int			n;

	n = http_error_response(401, "unauthorized", "token expired", out,
							sizeof(out));
	CHECK(n > 0 && (size_t) n == strlen(out));
	CHECK(strncmp(out, "HTTP/1.1 401 Unauthorized\r\n", 27) == 0);
	CHECK(strstr(out, "\r\nWWW-Authenticate: Bearer\r\n") != NULL);
	CHECK(strstr(out, "\r\nContent-Type: application/json\r\n") != NULL);
	body = strstr(out, "\r\n\r\n") + 4;
	CHECK_STR(body, "{\"error\":\"unauthorized\",\"reason\":\"token expired\"}");
	CHECK(strstr(out, "Content-Length: 49\r\n") != NULL);

	n = http_error_response(400, "bad\"one", "a\\b\n\t\x01\x7f caf\xc3\xa9 \xff"
							"\xed\xa0\x80 \xf0\x9f\x98\x80", out, sizeof(out));
	CHECK(n > 0);
	body = strstr(out, "\r\n\r\n") + 4;
	CHECK_STR(body, "{\"error\":\"bad\\\"one\",\"reason\":\"a\\\\b\\n\\t"
			  "\\u0001\\u007f caf\xc3\xa9 \\ufffd\\ufffd\\ufffd\\ufffd "
			  "\xf0\x9f\x98\x80\"}");
	CHECK_STR(body_field(out, "error"), "bad\"one");
	CHECK(body_field(out, "reason") != NULL);
	{
		char		cl[64];

		snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", strlen(body));
		CHECK(strstr(out, cl) != NULL);
	}
	CHECK(http_error_response(500, NULL, NULL, out, sizeof(out)) > 0);
	CHECK_STR(body_field(out, "reason"), "");
	n = http_error_response(401, "unauthorized", "x", out, sizeof(out));
	memset(out, 'Z', sizeof(out));
	CHECK(http_error_response(401, "unauthorized", "x", out, (size_t) n) == -1);
	CHECK(out[n] == 'Z');
}

int
main(void)
{
	RUN(test_complete_upgrade);
	RUN(test_split_every_byte);
	RUN(test_line_endings);
	RUN(test_bad_request_lines);
	RUN(test_absolute_form);
	RUN(test_header_lines);
	RUN(test_header_case_and_duplicates);
	RUN(test_upgrade_flags);
	RUN(test_token_sources);
	RUN(test_resume_flag);
	RUN(test_long_token);
	RUN(test_limits);
	RUN(test_ws_accept);
	RUN(test_responses);
	RUN(test_error_response);
	UNIT_EXIT();
}
