/*
 * http.c
 *	  Request-head parsing for the worker's port (RFC 9112): far enough to
 *	  route a request and to accept a WebSocket upgrade (RFC 6455 section
 *	  4.2).  The accept key and the responses are in http_response.c.
 *
 *	  The parser is a pure function over the bytes received so far: the
 *	  caller appends to its buffer and calls again until the result is not
 *	  HTTP_INCOMPLETE.  It is strict where laxness lets two parsers read one
 *	  request differently: obs-fold, a space before the colon, control
 *	  characters, a bare CR, bodies (Content-Length other than 0,
 *	  Transfer-Encoding) and repeated security headers are all 400.  As RFC
 *	  9112 section 2.2 allows, a bare LF ends a line like CRLF does (handy
 *	  for hand-typed requests), and empty lines before the request line are
 *	  skipped.  A broken line is reported as soon as it is complete, without
 *	  waiting for the rest of the head.
 *
 *	  Of the query string only "token" (percent-decoded, '+' is not a space)
 *	  and "resume" are read; other parameters are ignored undecoded.  A
 *	  token may come from the query or from "Authorization: Bearer"; both
 *	  at once must agree.
 */
#include <string.h>

#include "core/http.h"

/* More header lines than this is a 431, whatever their size. */
#define HTTP_MAX_HEADERS 100

/* What the header handlers remember between lines. */
typedef struct parse_state
{
	int			n_headers;
	bool		seen_ws_key;
	bool		seen_ws_version;
	bool		seen_origin;
	bool		seen_auth;
	bool		seen_query_token;
} parse_state;

typedef http_parse_status (*header_fn) (const char *v, size_t n,
										http_request *req, parse_state *st);

/*
 * is_tchar: the characters of a token (RFC 9110 section 5.6.2), which
 * methods and header names are made of.
 */
static bool
is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/*
 * is_field_char: what may appear in a header value (field-vchar, SP,
 * HTAB, obs-text); everything else is a control character.
 */
static bool
is_field_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/*
 * lower_ascii lower-cases one ASCII letter, whatever the locale.
 */
static char
lower_ascii(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char) (c + 32) : c;
}

/*
 * span_eq_nocase compares s[0..n) with the lower-case literal lit,
 * ignoring ASCII case.
 */
static bool
span_eq_nocase(const char *s, size_t n, const char *lit)
{
	size_t		i;

	if (strlen(lit) != n)
		return false;
	for (i = 0; i < n; i++)
	{
		if (lower_ascii(s[i]) != lit[i])
			return false;
	}
	return true;
}

/*
 * trim_ows drops optional white space (SP, HTAB) from both ends.
 */
static void
trim_ows(const char **s, size_t *n)
{
	while (*n > 0 && (**s == ' ' || **s == '\t'))
	{
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

/*
 * copy_span copies s[0..n) and a NUL into dst; false when it does not fit.
 */
static bool
copy_span(char *dst, size_t dstsize, const char *s, size_t n)
{
	if (n >= dstsize)
		return false;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return true;
}

/*
 * hex_val is the value of one hex digit, or -1.
 */
static int
hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower_ascii(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * pct_decode percent-decodes s[0..n) into dst with a NUL.  A broken
 * escape, a decoded control character (NUL included) or an output that
 * does not fit make it fail.
 */
static bool
pct_decode(const char *s, size_t n, char *dst, size_t dstsize)
{
	size_t		i = 0;
	size_t		o = 0;

	while (i < n)
	{
		unsigned char c = (unsigned char) s[i++];

		if (c == '%')
		{
			int			hi;
			int			lo;

			if (i + 2 > n)
				return false;
			hi = hex_val(s[i]);
			lo = hex_val(s[i + 1]);
			if (hi < 0 || lo < 0)
				return false;
			c = (unsigned char) (hi * 16 + lo);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f || o + 1 >= dstsize)
			return false;
		dst[o++] = (char) c;
	}
	if (o >= dstsize)
		return false;
	dst[o] = '\0';
	return true;
}

/*
 * list_has_token tells whether a comma-separated header list (Connection,
 * Upgrade) has the element lit, ignoring case and white space.
 */
static bool
list_has_token(const char *v, size_t n, const char *lit)
{
	size_t		pos = 0;

	while (pos <= n)
	{
		const char *comma = memchr(v + pos, ',', n - pos);
		size_t		end = comma ? (size_t) (comma - v) : n;
		const char *item = v + pos;
		size_t		len = end - pos;

		trim_ows(&item, &len);
		if (span_eq_nocase(item, len, lit))
			return true;
		pos = end + 1;
	}
	return false;
}

/*
 * on_upgrade: "Upgrade: websocket" (in any case, possibly in a list).
 */
static http_parse_status
on_upgrade(const char *v, size_t n, http_request *req, parse_state *st)
{
	(void) st;
	if (list_has_token(v, n, "websocket"))
		req->upgrade_websocket = true;
	return HTTP_COMPLETE;
}

/*
 * on_connection: the Connection options; only "upgrade" matters.
 */
static http_parse_status
on_connection(const char *v, size_t n, http_request *req, parse_state *st)
{
	(void) st;
	if (list_has_token(v, n, "upgrade"))
		req->connection_upgrade = true;
	return HTTP_COMPLETE;
}

/*
 * on_ws_key: Sec-WebSocket-Key, at most once.  Its form is checked by
 * http_ws_accept.
 */
static http_parse_status
on_ws_key(const char *v, size_t n, http_request *req, parse_state *st)
{
	if (st->seen_ws_key || !copy_span(req->ws_key, sizeof(req->ws_key), v, n))
		return HTTP_BAD_REQUEST;
	st->seen_ws_key = true;
	return HTTP_COMPLETE;
}

/*
 * on_ws_version: Sec-WebSocket-Version, at most once, 1 to 3 digits.
 */
static http_parse_status
on_ws_version(const char *v, size_t n, http_request *req, parse_state *st)
{
	size_t		i;
	int			version = 0;

	if (st->seen_ws_version || n == 0 || n > 3)
		return HTTP_BAD_REQUEST;
	for (i = 0; i < n; i++)
	{
		if (v[i] < '0' || v[i] > '9')
			return HTTP_BAD_REQUEST;
		version = version * 10 + (v[i] - '0');
	}
	st->seen_ws_version = true;
	req->ws_version = version;
	return HTTP_COMPLETE;
}

/*
 * on_origin: Origin, at most once, since chat.allowed_origins is checked
 * against it.
 */
static http_parse_status
on_origin(const char *v, size_t n, http_request *req, parse_state *st)
{
	if (st->seen_origin || !copy_span(req->origin, sizeof(req->origin), v, n))
		return HTTP_BAD_REQUEST;
	st->seen_origin = true;
	return HTTP_COMPLETE;
}

/*
 * on_host keeps Host when it is a plain host[:port] (letters, digits and
 * ".-:[]" only), since the pages name it in their Content-Security-Policy;
 * anything else is left out, not refused.
 */
static http_parse_status
on_host(const char *v, size_t n, http_request *req, parse_state *st)
{
	(void) st;
	req->host[0] = '\0';
	if (n == 0 || n >= sizeof(req->host))
		return HTTP_COMPLETE;
	for (size_t i = 0; i < n; i++)
	{
		char		c = v[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':' ||
			  c == '[' || c == ']'))
			return HTTP_COMPLETE;
	}
	memcpy(req->host, v, n);
	req->host[n] = '\0';
	return HTTP_COMPLETE;
}

/*
 * on_forwarded_for keeps the last address of X-Forwarded-For: the one the
 * nearest proxy added.  Whether to trust it is the caller's decision.
 */
static http_parse_status
on_forwarded_for(const char *v, size_t n, http_request *req,
				 parse_state *st)
{
	const char *last = v;
	size_t		i;

	(void) st;
	for (i = 0; i < n; i++)
	{
		if (v[i] == ',')
			last = v + i + 1;
	}
	n -= (size_t) (last - v);
	trim_ows(&last, &n);
	if (!copy_span(req->forwarded_for, sizeof(req->forwarded_for), last, n))
		return HTTP_BAD_REQUEST;
	return HTTP_COMPLETE;
}

/*
 * on_authorization takes the credentials of "Bearer <token>" (scheme in
 * any case); other schemes are ignored.  At most one Authorization, and
 * if the query had a token too, the two must be the same.
 */
static http_parse_status
on_authorization(const char *v, size_t n, http_request *req,
				 parse_state *st)
{
	size_t		skip = 0;
	const char *cred;
	size_t		len;

	if (st->seen_auth)
		return HTTP_BAD_REQUEST;
	st->seen_auth = true;
	if (n < 7 || !span_eq_nocase(v, 6, "bearer") || v[6] != ' ')
		return HTTP_COMPLETE;
	while (6 + skip < n && v[6 + skip] == ' ')
		skip++;
	cred = v + 6 + skip;
	len = n - 6 - skip;
	if (st->seen_query_token && req->token[0] != '\0')
	{
		if (strlen(req->token) != len || memcmp(req->token, cred, len) != 0)
			return HTTP_BAD_REQUEST;
		return HTTP_COMPLETE;
	}
	if (!copy_span(req->token, sizeof(req->token), cred, len))
		return HTTP_BAD_REQUEST;
	return HTTP_COMPLETE;
}

/*
 * on_content_length allows only an empty body: nothing here reads bodies,
 * so a body would otherwise be taken for the next request or for frames.
 */
static http_parse_status
on_content_length(const char *v, size_t n, http_request *req,
				  parse_state *st)
{
	size_t		i;

	(void) req;
	(void) st;
	if (n == 0)
		return HTTP_BAD_REQUEST;
	for (i = 0; i < n; i++)
	{
		if (v[i] != '0')
			return HTTP_BAD_REQUEST;
	}
	return HTTP_COMPLETE;
}

/*
 * on_transfer_encoding refuses any: see on_content_length.
 */
static http_parse_status
on_transfer_encoding(const char *v, size_t n, http_request *req,
					 parse_state *st)
{
	(void) v;
	(void) n;
	(void) req;
	(void) st;
	return HTTP_BAD_REQUEST;
}

/* The headers the parser reads, lower-case; all others are skipped. */
static const struct
{
	const char *name;
	header_fn	fn;
}			header_table[] =

{
	{"upgrade", on_upgrade},
	{"connection", on_connection},
	{"sec-websocket-key", on_ws_key},
	{"sec-websocket-version", on_ws_version},
	{"origin", on_origin},
	{"host", on_host},
	{"x-forwarded-for", on_forwarded_for},
	{"authorization", on_authorization},
	{"content-length", on_content_length},
	{"transfer-encoding", on_transfer_encoding},
};

/*
 * parse_header_line checks one "name: value" line and hands known headers
 * to their handler.
 */
static http_parse_status
parse_header_line(const char *line, size_t n, http_request *req,
				  parse_state *st)
{
	const char *colon;
	const char *v;
	size_t		vlen;
	size_t		name_len;
	size_t		i;

	if (line[0] == ' ' || line[0] == '\t')
		return HTTP_BAD_REQUEST;	/* obs-fold, RFC 9112 section 5.2 */
	if (++st->n_headers > HTTP_MAX_HEADERS)
		return HTTP_TOO_LARGE;
	colon = memchr(line, ':', n);
	if (colon == NULL || colon == line)
		return HTTP_BAD_REQUEST;
	name_len = (size_t) (colon - line);
	for (i = 0; i < name_len; i++)
	{
		if (!is_tchar((unsigned char) line[i]))
			return HTTP_BAD_REQUEST;	/* includes "Name :" */
	}
	v = colon + 1;
	vlen = n - name_len - 1;
	for (i = 0; i < vlen; i++)
	{
		if (!is_field_char((unsigned char) v[i]))
			return HTTP_BAD_REQUEST;
	}
	trim_ows(&v, &vlen);
	for (i = 0; i < sizeof(header_table) / sizeof(header_table[0]); i++)
	{
		if (span_eq_nocase(line, name_len, header_table[i].name))
			return header_table[i].fn(v, vlen, req, st);
	}
	return HTTP_COMPLETE;
}

/*
 * parse_query reads the token parameter (at most one) and the resume flag
 * ("resume=1": the client states its positions before live delivery, see
 * docs/protocol.md) from the query string q[0..n).
 */
static http_parse_status
parse_query(const char *q, size_t n, http_request *req, parse_state *st)
{
	size_t		pos = 0;

	while (pos <= n)
	{
		const char *amp = memchr(q + pos, '&', n - pos);
		size_t		end = amp ? (size_t) (amp - q) : n;
		const char *eq = memchr(q + pos, '=', end - pos);
		size_t		name_len = (eq ? (size_t) (eq - q) : end) - pos;

		if (name_len == 5 && memcmp(q + pos, "token", 5) == 0)
		{
			const char *val = eq ? eq + 1 : q + end;

			if (st->seen_query_token ||
				!pct_decode(val, (size_t) (q + end - val), req->token,
							sizeof(req->token)))
				return HTTP_BAD_REQUEST;
			st->seen_query_token = true;
		}
		else if (name_len == 6 && memcmp(q + pos, "resume", 6) == 0)
		{
			const char *val = eq ? eq + 1 : q + end;
			size_t		vlen = (size_t) (q + end - val);

			req->resume = (vlen == 1 && val[0] == '1') ||
				(vlen == 4 && memcmp(val, "true", 4) == 0);
		}
		pos = end + 1;
	}
	return HTTP_COMPLETE;
}

/*
 * strip_authority turns an absolute-form target ("http://host/p?q") into
 * the origin-form part after the authority; an empty path becomes "/" by
 * the caller.  Other targets are left alone.
 */
static void
strip_authority(const char **t, size_t *n)
{
	size_t		skip;
	size_t		i;

	if (*n >= 7 && span_eq_nocase(*t, 7, "http://"))
		skip = 7;
	else if (*n >= 8 && span_eq_nocase(*t, 8, "https://"))
		skip = 8;
	else
		return;
	for (i = skip; i < *n; i++)
	{
		if ((*t)[i] == '/' || (*t)[i] == '?' || (*t)[i] == '#')
			break;
	}
	*t += i;
	*n -= i;
}

/*
 * parse_target splits the request target into the decoded path and the
 * query (whose token it reads); a fragment is dropped.
 */
static http_parse_status
parse_target(const char *t, size_t n, http_request *req, parse_state *st)
{
	const char *hash;
	const char *qmark;
	size_t		path_len;
	bool		absolute;

	absolute = n > 0 && t[0] != '/';
	strip_authority(&t, &n);
	if (absolute && (n == 0 || t[0] == '?' || t[0] == '#'))
		strcpy(req->path, "/");
	else if (n == 0 || t[0] != '/')
		return HTTP_BAD_REQUEST;
	hash = memchr(t, '#', n);
	if (hash != NULL)
		n = (size_t) (hash - t);
	qmark = memchr(t, '?', n);
	path_len = qmark ? (size_t) (qmark - t) : n;
	if (path_len > 0 && !pct_decode(t, path_len, req->path, sizeof(req->path)))
		return HTTP_BAD_REQUEST;
	if (qmark == NULL)
		return HTTP_COMPLETE;
	return parse_query(qmark + 1, n - path_len - 1, req, st);
}

/*
 * parse_request_line reads "METHOD SP target SP HTTP/1.x" with single
 * spaces.  HTTP/1.x above 1.1 is served as 1.1 (RFC 9110 section 6.2).
 */
static http_parse_status
parse_request_line(const char *line, size_t n, http_request *req,
				   parse_state *st)
{
	const char *sp1 = memchr(line, ' ', n);
	const char *target;
	const char *sp2;
	const char *version;
	size_t		i;

	if (sp1 == NULL || sp1 == line ||
		!copy_span(req->method, sizeof(req->method), line,
				   (size_t) (sp1 - line)))
		return HTTP_BAD_REQUEST;
	/* check the received span, not the copy: a NUL would end the copy */
	for (i = 0; line + i < sp1; i++)
	{
		if (!is_tchar((unsigned char) line[i]))
			return HTTP_BAD_REQUEST;
	}
	target = sp1 + 1;
	sp2 = memchr(target, ' ', (size_t) (line + n - target));
	if (sp2 == NULL)
		return HTTP_BAD_REQUEST;
	for (i = 0; target + i < sp2; i++)
	{
		unsigned char c = (unsigned char) target[i];

		if (c <= 0x20 || c >= 0x7f)
			return HTTP_BAD_REQUEST;	/* visible ASCII only */
	}
	version = sp2 + 1;
	if (line + n - version != 8 || memcmp(version, "HTTP/1.", 7) != 0 ||
		version[7] < '0' || version[7] > '9')
		return HTTP_BAD_REQUEST;
	req->http11 = version[7] != '0';
	return parse_target(target, (size_t) (sp2 - target), req, st);
}

/*
 * next_line finds the line starting at pos: its length without CRLF or LF
 * and where the next one starts.  Lines must end inside the first
 * HTTP_MAX_HEAD bytes.
 */
static http_parse_status
next_line(const char *buf, size_t len, size_t pos, size_t *line_len,
		  size_t *next)
{
	size_t		limit = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
	const char *nl = pos < limit ? memchr(buf + pos, '\n', limit - pos) : NULL;

	if (nl == NULL)
		return len >= HTTP_MAX_HEAD ? HTTP_TOO_LARGE : HTTP_INCOMPLETE;
	*next = (size_t) (nl - buf) + 1;
	*line_len = (size_t) (nl - buf) - pos;
	if (*line_len > 0 && buf[pos + *line_len - 1] == '\r')
		(*line_len)--;
	return HTTP_COMPLETE;
}

/*
 * http_parse_request parses a request head; see http.h.  *req is reset on
 * every call and is meaningful only after HTTP_COMPLETE.
 */
http_parse_status
http_parse_request(const char *buf, size_t len, http_request *req)
{
	parse_state st;
	size_t		pos = 0;
	bool		have_request_line = false;

	memset(req, 0, sizeof(*req));
	memset(&st, 0, sizeof(st));
	if (buf == NULL)
		return HTTP_INCOMPLETE;
	for (;;)
	{
		size_t		line_len = 0;
		size_t		next = 0;
		http_parse_status rc = next_line(buf, len, pos, &line_len, &next);

		if (rc != HTTP_COMPLETE)
			return rc;
		if (line_len == 0 && have_request_line)
		{
			req->head_len = next;
			return HTTP_COMPLETE;
		}
		if (line_len > 0)
		{
			rc = have_request_line ?
				parse_header_line(buf + pos, line_len, req, &st) :
				parse_request_line(buf + pos, line_len, req, &st);
			if (rc != HTTP_COMPLETE)
				return rc;
			have_request_line = true;
		}
		pos = next;
	}
}
