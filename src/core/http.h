/*
 * http.h
 *	  HTTP/1.1 request parsing for the worker's port: the WebSocket upgrade
 *	  (RFC 6455 section 4.2), /healthz, /metrics and static pages, plus small
 *	  response builders.  Pure functions over caller buffers: no I/O.
 *	  Parsing is in http.c, the accept key and responses in http_response.c.
 */
#ifndef CHAT_HTTP_H
#define CHAT_HTTP_H

#include <stddef.h>
#include <stdbool.h>

/* Largest request head (request line + headers) accepted. */
#define HTTP_MAX_HEAD 16384

typedef enum http_parse_status
{
	HTTP_INCOMPLETE = 0,		/* need more bytes; nothing consumed */
	HTTP_COMPLETE,				/* *req filled; head ends at req->head_len */
	HTTP_BAD_REQUEST,			/* malformed: answer 400 */
	HTTP_TOO_LARGE				/* head over HTTP_MAX_HEAD: answer 431 */
} http_parse_status;

/*
 * A parsed request.  Strings are NUL-terminated copies owned by the struct
 * (fixed-size fields; a value that does not fit makes the request bad,
 * except token which may be up to HTTP_MAX_HEAD).
 */
typedef struct http_request
{
	size_t		head_len;		/* bytes of the head incl. the blank line */
	char		method[16];
	char		path[256];		/* without the query string, percent-decoded */
	char		token[HTTP_MAX_HEAD];	/* ?token= (decoded) or Bearer; "" */
	char		origin[256];
	char		host[256];		/* Host if a plain host[:port], else "" */
	char		ws_key[64];		/* Sec-WebSocket-Key, "" if absent */
	char		forwarded_for[64];
	int			ws_version;		/* Sec-WebSocket-Version, 0 if absent */
	bool		upgrade_websocket;	/* Upgrade: websocket (case-insensitive) */
	bool		connection_upgrade; /* Connection header lists "upgrade" */
	bool		http11;			/* HTTP/1.1 (not 1.0) */
	bool		resume;			/* ?resume=1: live delivery waits for sync */
} http_request;

/*
 * http_parse_request parses buf[0..len), the bytes received so far; call it
 * again with more until the result is not HTTP_INCOMPLETE.  It never reads
 * beyond len and never writes beyond *req, which it resets and which is
 * meaningful only after HTTP_COMPLETE (bytes after head_len are not part of
 * the request).  A line ends with CRLF or a bare LF; a bare CR, obs-fold,
 * control characters, a header line without ':', a repeated
 * Sec-WebSocket-Key, Sec-WebSocket-Version, Origin or Authorization, a
 * body (Content-Length other than 0, Transfer-Encoding), a query token and
 * a Bearer token that differ, and a field too long for its slot are
 * HTTP_BAD_REQUEST; more than HTTP_MAX_HEAD bytes or 100 header lines are
 * HTTP_TOO_LARGE.  X-Forwarded-For keeps its last (nearest proxy) address.
 */
extern http_parse_status http_parse_request(const char *buf, size_t len,
											http_request *req);

/*
 * http_ws_accept computes Sec-WebSocket-Accept for key into out (at least
 * 29 bytes): base64(SHA-1(key + GUID)) via OpenSSL.  Returns false when the
 * key is not the canonical base64 of a 16-byte nonce.
 */
extern bool http_ws_accept(const char *key, char *out, size_t outlen);

/*
 * The builders below write a response and a NUL into out and return its
 * length without the NUL, or -1 when it does not fit (or an argument would
 * break the response, such as a control character in content_type).
 *
 * http_upgrade_response writes the 101 response for an accept value from
 * http_ws_accept.
 */
extern int	http_upgrade_response(const char *accept, char *out, size_t outlen);

/*
 * http_response writes a complete response with Content-Length and
 * Connection: close; the reason phrase is http_reason(status), and
 * content_type may be NULL for none.  The headers a status requires are
 * added: WWW-Authenticate: Bearer (401), Allow: GET (405),
 * Sec-WebSocket-Version: 13 (426).
 */
extern int	http_response(int status, const char *content_type,
						  const char *body, size_t body_len,
						  char *out, size_t outlen);

/*
 * http_response_with is http_response with more header lines: headers is
 * NULL or complete lines, each ending in CRLF (checked: no other control
 * characters).
 */
extern int	http_response_with(int status, const char *content_type,
							   const char *headers, const char *body,
							   size_t body_len, char *out, size_t outlen);

/*
 * http_error_response writes status like http_response, with the JSON body
 * {"error":<error>,"reason":<reason>} (both JSON-escaped; invalid UTF-8
 * becomes U+FFFD; NULL is "").
 */
extern int	http_error_response(int status, const char *error,
								const char *reason, char *out, size_t outlen);

/* http_reason gives the reason phrase for status ("Unknown" if unknown). */
extern const char *http_reason(int status);

#endif							/* CHAT_HTTP_H */
