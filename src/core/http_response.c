/*
 * http_response.c
 *	  What the worker's port writes back over HTTP: the Sec-WebSocket-Accept
 *	  key (RFC 6455 section 4.2.2), the 101 that completes an upgrade, and
 *	  small complete responses such as /healthz, /metrics and the JSON error
 *	  bodies of docs/protocol.md ({"error":..,"reason":..}).
 *
 *	  Every builder writes into the caller's buffer, adds a NUL, and returns
 *	  the length without it, or -1 without a partial response being usable
 *	  when the buffer is too small.  Nothing here allocates.  Every non-101
 *	  response says "Connection: close": after it the worker closes.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "core/b64.h"
#include "core/http.h"

/* RFC 6455 section 1.3 */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_NONCE_BYTES 16
#define WS_ACCEPT_LEN 28		/* base64 of a SHA-1, without NUL */

/* The JSON error body around its two escaped strings. */
#define ERR_OPEN "{\"error\":\""
#define ERR_MID "\",\"reason\":\""
#define ERR_CLOSE "\"}"

/* U+FFFD stands for each byte that is not part of valid UTF-8. */
#define JSON_REPLACEMENT "\\ufffd"

/*
 * http_ws_accept computes Sec-WebSocket-Accept; see http.h.  The key must
 * be the canonical padded base64 of 16 bytes (24 characters).
 */
bool
http_ws_accept(const char *key, char *out, size_t outlen)
{
	unsigned char nonce[WS_NONCE_BYTES + 2];
	char		input[B64_ENCODED_LEN(WS_NONCE_BYTES) + sizeof(WS_GUID)];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t		klen;

	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (key == NULL || out == NULL)
		return false;
	klen = strlen(key);
	if (klen != B64_ENCODED_LEN(WS_NONCE_BYTES) ||
		b64_decode(key, klen, nonce, sizeof(nonce)) != WS_NONCE_BYTES)
		return false;
	memcpy(input, key, klen);
	memcpy(input + klen, WS_GUID, sizeof(WS_GUID) - 1);
	if (EVP_Digest(input, klen + sizeof(WS_GUID) - 1, md, &mdlen,
				   EVP_sha1(), NULL) != 1)
	{
		ERR_clear_error();
		return false;
	}
	return b64_encode(md, mdlen, out, outlen) == WS_ACCEPT_LEN;
}

/*
 * http_reason gives the reason phrase of the statuses the worker uses.
 */
const char *
http_reason(int status)
{
	switch (status)
	{
		case 101:
			return "Switching Protocols";
		case 200:
			return "OK";
		case 204:
			return "No Content";
		case 301:
			return "Moved Permanently";
		case 304:
			return "Not Modified";
		case 400:
			return "Bad Request";
		case 401:
			return "Unauthorized";
		case 403:
			return "Forbidden";
		case 404:
			return "Not Found";
		case 405:
			return "Method Not Allowed";
		case 408:
			return "Request Timeout";
		case 413:
			return "Content Too Large";
		case 426:
			return "Upgrade Required";
		case 429:
			return "Too Many Requests";
		case 431:
			return "Request Header Fields Too Large";
		case 500:
			return "Internal Server Error";
		case 501:
			return "Not Implemented";
		case 503:
			return "Service Unavailable";
		case 505:
			return "HTTP Version Not Supported";
	}
	return "Unknown";
}

/*
 * status_headers: the header lines a status must carry (RFC 9110 sections
 * 11.6.1 and 15.5.6, RFC 6750 section 3, RFC 6455 section 4.4).
 */
static const char *
status_headers(int status)
{
	switch (status)
	{
		case 401:
			return "WWW-Authenticate: Bearer\r\n";
		case 405:
			return "Allow: GET\r\n";
		case 426:
			return "Sec-WebSocket-Version: 13\r\n";
	}
	return "";
}

/*
 * has_ctl tells whether s holds a control character, which in a header
 * value would allow response splitting.
 */
static bool
has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
	{
		if ((unsigned char) *s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

/*
 * header_lines_ok: s is header lines, each ending in CRLF, with no other
 * control character (so nothing can end the head early).
 */
static bool
header_lines_ok(const char *s)
{
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c == '\r')
		{
			if (s[1] != '\n' || s[2] == ' ' || s[2] == '\t' || s[2] == '\r')
				return false;	/* no bare CR, folding or empty line */
			s++;
			continue;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/*
 * write_head writes the status line and headers of a response whose body
 * has body_len bytes, checking that the body and a NUL fit after it.
 */
static int
write_head(int status, const char *content_type, const char *headers,
		   size_t body_len, char *out, size_t outlen)
{
	char		length[48] = "";
	int			n;

	if (out == NULL || status < 100 || status > 599 ||
		(content_type != NULL && has_ctl(content_type)) ||
		(headers != NULL && !header_lines_ok(headers)) ||
		body_len > INT_MAX / 2)
		return -1;
	/* RFC 9110 section 8.6: no Content-Length on 1xx and 204, nor a body */
	if (status < 200 || status == 204)
	{
		if (body_len > 0)
			return -1;
	}
	else
		snprintf(length, sizeof(length), "Content-Length: %zu\r\n", body_len);
	n = snprintf(out, outlen,
				 "HTTP/1.1 %d %s\r\n%s%s%s%s%s%sConnection: close\r\n\r\n",
				 status, http_reason(status),
				 content_type ? "Content-Type: " : "",
				 content_type ? content_type : "",
				 content_type ? "\r\n" : "",
				 length, status_headers(status), headers ? headers : "");
	if (n < 0 || (size_t) n >= outlen || body_len >= outlen - (size_t) n ||
		(size_t) n + body_len > INT_MAX)
		return -1;
	return n;
}

/*
 * http_upgrade_response writes the 101 that switches to WebSocket.
 */
int
http_upgrade_response(const char *accept, char *out, size_t outlen)
{
	size_t		i;
	int			n;

	if (accept == NULL || out == NULL || strlen(accept) != WS_ACCEPT_LEN)
		return -1;
	for (i = 0; i < WS_ACCEPT_LEN; i++)
	{
		char		c = accept[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '='))
			return -1;
	}
	n = snprintf(out, outlen,
				 "HTTP/1.1 101 Switching Protocols\r\n"
				 "Upgrade: websocket\r\n"
				 "Connection: Upgrade\r\n"
				 "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
	if (n < 0 || (size_t) n >= outlen)
		return -1;
	return n;
}

/*
 * http_response writes a complete response; see http.h.
 */
int
http_response(int status, const char *content_type,
			  const char *body, size_t body_len, char *out, size_t outlen)
{
	return http_response_with(status, content_type, NULL, body, body_len,
							  out, outlen);
}

int
http_response_with(int status, const char *content_type, const char *headers,
				   const char *body, size_t body_len, char *out,
				   size_t outlen)
{
	int			n;

	if (body == NULL && body_len > 0)
		return -1;
	if (headers != NULL && headers[0] != '\0' &&
		(strlen(headers) < 2 ||
		 strcmp(headers + strlen(headers) - 2, "\r\n") != 0))
		return -1;
	n = write_head(status, content_type, headers, body_len, out, outlen);
	if (n < 0)
		return -1;
	if (body_len > 0)
		memcpy(out + n, body, body_len);
	out[(size_t) n + body_len] = '\0';
	return n + (int) body_len;
}

/*
 * utf8_len gives the length of the valid UTF-8 sequence at s (1 to 4), or
 * 0 when s does not start one: overlong forms, surrogates and code points
 * past U+10FFFF are invalid.  s is NUL-terminated, and NUL is never a
 * continuation byte, so this never reads past the end.
 */
static int
utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80;
	unsigned char hi = 0xbf;
	int			n;
	int			i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
	{
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	}
	return n;
}

/*
 * escape_char gives the JSON escape of one ASCII character into esc (at
 * least 7 bytes) and returns its length; 0 means "copy it as it is".
 */
static int
escape_char(unsigned char c, char *esc)
{
	switch (c)
	{
		case '"':
			return snprintf(esc, 7, "\\\"");
		case '\\':
			return snprintf(esc, 7, "\\\\");
		case '\n':
			return snprintf(esc, 7, "\\n");
		case '\r':
			return snprintf(esc, 7, "\\r");
		case '\t':
			return snprintf(esc, 7, "\\t");
	}
	if (c < 0x20 || c == 0x7f)
		return snprintf(esc, 7, "\\u%04x", c);
	return 0;
}

/*
 * json_escape writes the JSON string contents for s at out[0..outlen) and
 * returns the full escaped length, so a first call with outlen 0 measures.
 * Invalid UTF-8 bytes become U+FFFD; NULL counts as "".
 */
static size_t
json_escape(const char *s, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *) (s ? s : "");
	size_t		total = 0;

	while (*p != '\0')
	{
		char		esc[8];
		const char *src = esc;
		int			n = escape_char(*p, esc);
		int			adv = 1;

		if (n == 0)
		{
			adv = utf8_len(p);
			src = adv > 0 ? (const char *) p : JSON_REPLACEMENT;
			n = adv > 0 ? adv : (int) strlen(JSON_REPLACEMENT);
			adv = adv > 0 ? adv : 1;
		}
		if (total + (size_t) n <= outlen)
			memcpy(out + total, src, (size_t) n);
		total += (size_t) n;
		p += adv;
	}
	return total;
}

/*
 * http_error_response writes status with {"error":..,"reason":..}; see
 * http.h.  The body is measured first, so the head can carry its length.
 */
int
http_error_response(int status, const char *error, const char *reason,
					char *out, size_t outlen)
{
	size_t		elen = json_escape(error, NULL, 0);
	size_t		rlen = json_escape(reason, NULL, 0);
	size_t		body_len;
	size_t		pos;
	int			n;

	body_len = strlen(ERR_OPEN) + elen + strlen(ERR_MID) + rlen +
		strlen(ERR_CLOSE);
	n = write_head(status, "application/json", NULL, body_len, out, outlen);
	if (n < 0)
		return -1;
	pos = (size_t) n;
	memcpy(out + pos, ERR_OPEN, strlen(ERR_OPEN));
	pos += strlen(ERR_OPEN);
	pos += json_escape(error, out + pos, elen);
	memcpy(out + pos, ERR_MID, strlen(ERR_MID));
	pos += strlen(ERR_MID);
	pos += json_escape(reason, out + pos, rlen);
	memcpy(out + pos, ERR_CLOSE, strlen(ERR_CLOSE));
	pos += strlen(ERR_CLOSE);
	out[pos] = '\0';
	return (int) pos;
}
