/*
 * upgrade.c
 *	  What happens to a complete HTTP request head: the small endpoints
 *	  (/healthz, /metrics) and the WebSocket upgrade.  Authentication comes
 *	  before the upgrade, so an anonymous WebSocket never exists: a missing or
 *	  bad token is answered with 401 and the connection is closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/metrics.h"
#include "core/layers.h"
#include "core/web_assets.h"

#define RESP_MAX 1024

static void
reply_error(chat_conn *c, int status, const char *error, const char *reason)
{
	char		buf[RESP_MAX];
	int			n = http_error_response(status, error, reason, buf, sizeof(buf));

	if (n < 0)
		conn_kill(c);
	else
		conn_send_http(c, buf, (size_t) n);
}

/*
 * reply_body answers with body and the extra header lines headers (or
 * NULL); a HEAD request gets the headers only.
 */
static void
reply_body(chat_conn *c, const http_request *req, int status,
		   const char *type, const char *headers, const char *body,
		   size_t len)
{
	size_t		cap = len + RESP_MAX + (headers ? strlen(headers) : 0);
	char	   *buf = malloc(cap);
	int			n;

	if (buf == NULL)
	{
		conn_kill(c);
		return;
	}
	n = http_response_with(status, type, headers, body, len, buf, cap);
	if (n < 0)
		conn_kill(c);
	else
		conn_send_http(c, buf, (size_t) n -
					   (strcmp(req->method, "HEAD") == 0 ? len : 0));
	free(buf);
}

/*
 * origin_host_end: where the host of an origin "scheme://host[:port]"
 * ends (an IPv6 host is bracketed), or 0 when origin has no "://".
 */
static size_t
origin_host_end(const char *o, size_t len, size_t *scheme_len)
{
	const char *sep = NULL;
	size_t		i;

	for (i = 0; i + 2 < len; i++)
		if (o[i] == ':' && o[i + 1] == '/' && o[i + 2] == '/')
		{
			sep = o + i;
			break;
		}
	if (sep == NULL)
		return 0;
	*scheme_len = (size_t) (sep - o);
	i = *scheme_len + 3;
	if (i < len && o[i] == '[')
	{
		while (i < len && o[i] != ']')
			i++;
		return i < len ? i + 1 : len;
	}
	while (i < len && o[i] != ':' && o[i] != '/')
		i++;
	return i;
}

/*
 * origin_equal compares a listed origin with the request's as RFC 6454
 * does after serialisation: scheme and host without regard to case (they
 * are case-insensitive, and browsers send them lowercased), the port and
 * anything else exactly.  A value without "://" ("null") is compared
 * exactly.
 */
static bool
origin_equal(const char *listed, size_t len, const char *origin)
{
	size_t		olen = strlen(origin);
	size_t		ls = 0,
				os = 0;
	size_t		lh = origin_host_end(listed, len, &ls);
	size_t		oh = origin_host_end(origin, olen, &os);

	if (lh == 0 || oh == 0)
		return len == olen && memcmp(listed, origin, len) == 0;
	return ls == os && lh == oh && len == olen &&
		strncasecmp(listed, origin, lh) == 0 &&
		memcmp(listed + lh, origin + oh, len - lh) == 0;
}

/* origin_allowed: an empty list allows every Origin (and none). */
static bool
origin_allowed(const char *list, const char *origin)
{
	const char *p = list;

	if (list == NULL || list[0] == '\0')
		return true;
	while (*p)
	{
		const char *end;
		size_t		len;

		while (*p == ' ' || *p == ',')
			p++;
		end = p;
		while (*end && *end != ',')
			end++;
		len = end - p;
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len > 0 && origin_equal(p, len, origin))
			return true;
		if (len == 1 && *p == '*')
			return true;
		p = end;
	}
	return false;
}

static int
count_ip(chat_server *srv, const char *addr)
{
	int			n = 0;

	for (chat_conn *c = srv->conns; c; c = c->next)
		if (c->state == CONN_WS && strcmp(c->addr, addr) == 0)
			n++;
	return n;
}

/*
 * send_ready subscribes c to the user's channels and greets it.  With
 * resume (?resume=1) every channel is held: no live message goes out
 * before the client's first sync said where it is, or before
 * chat.handshake_timeout passed (then it starts at ready's lastSeq).
 */
static bool
send_ready(chat_conn *c, const char *user_id, bool resume)
{
	chat_server *srv = c->srv;
	chat_channel_info *chs = NULL;
	size_t		n = 0;
	proto_text	json;
	proto_limits limits;

	if (srv->store.user_channels(srv->store.ctx, user_id, &chs, &n) != CHAT_OK)
		return false;
	if (hub_attach(c, user_id))
		presence_connection(srv, user_id, true);
	for (size_t i = 0; i < n; i++)
		hub_subscribe(c, chs[i].id, chs[i].last_seq, chs[i].last_change);
	if (resume)
		hub_hold(c, srv->now_ms + srv->cfg.handshake_timeout_ms);
	limits.resume = resume;
	limits.heartbeat_ms = srv->cfg.heartbeat_interval_ms;
	limits.typing_timeout_ms = srv->cfg.typing_timeout_ms;
	limits.typing_debounce_ms = srv->cfg.typing_debounce_ms;
	limits.max_message_bytes = srv->cfg.max_message_bytes;
	limits.rate_limit = srv->cfg.rate_limit;
	limits.rate_burst = srv->cfg.rate_burst;
	limits.user_rate_limit = srv->cfg.user_rate_limit;
	limits.user_rate_burst = srv->cfg.user_rate_burst;
	json = proto_ready(user_id, c->id, &limits, chs, n);
	chat_channels_free(chs, n);
	conn_send_owned(c, json);
	return true;
}

static void
do_upgrade(chat_conn *c, const http_request *req)
{
	chat_server *srv = c->srv;
	jwt_claims	claims;
	jwt_status	st;
	char		accept[64];
	char		resp[RESP_MAX];
	int			n;

	if (strcmp(req->method, "GET") != 0)
	{
		reply_error(c, 405, "method_not_allowed", "use GET");
		return;
	}
	if (!req->upgrade_websocket || !req->connection_upgrade)
	{
		reply_error(c, 400, "bad_request",
					"not a WebSocket upgrade (RFC 6455)");
		return;
	}
	if (req->ws_version != 13)
	{
		/* RFC 6455 4.2.2: 426 names the version we speak */
		reply_error(c, req->ws_version == 0 ? 400 : 426, "bad_request",
					"Sec-WebSocket-Version must be 13");
		return;
	}
	if (!http_ws_accept(req->ws_key, accept, sizeof(accept)))
	{
		reply_error(c, 400, "bad_request", "bad Sec-WebSocket-Key");
		return;
	}
	if (!origin_allowed(srv->origins, req->origin))
	{
		reply_error(c, 403, "forbidden", "origin not allowed");
		return;
	}
	if (req->token[0] == '\0')
	{
		reply_error(c, 401, "unauthorized", "missing token");
		return;
	}
	st = jwt_verify(&srv->cfg.keys, req->token, strlen(req->token),
					srv->now_s, &claims);
	if (st != JWT_OK)
	{
		reply_error(c, 401, "unauthorized", jwt_status_reason(st));
		return;
	}
	if (srv->cfg.max_connections_per_ip > 0 &&
		(srv->host.admit_ip ?
		 !srv->host.admit_ip(srv->host.ctx, c->addr, 1,
							 srv->cfg.max_connections_per_ip) :
		 count_ip(srv, c->addr) >= srv->cfg.max_connections_per_ip))
	{
		reply_error(c, 429, "too_many_connections",
					"too many connections from this address");
		return;
	}
	c->ip_admitted = srv->cfg.max_connections_per_ip > 0 &&
		srv->host.admit_ip != NULL;
	if ((int) srv->n_ws >= srv->cfg.max_connections ||
		(srv->host.admit &&
		 !srv->host.admit(srv->host.ctx, 1, srv->cfg.max_connections)))
	{
		if (c->ip_admitted)
			srv->host.admit_ip(srv->host.ctx, c->addr, -1, 0);
		c->ip_admitted = false;
		reply_error(c, 503, "unavailable", "too many connections");
		return;
	}
	c->admitted = srv->host.admit != NULL;

	n = http_upgrade_response(accept, resp, sizeof(resp));
	if (n < 0 || conn_start_ws(c) != 0)
	{
		conn_kill(c);
		return;
	}
	if (conn_send_upgrade(c, resp, (size_t) n) != 0)
	{
		conn_kill(c);
		return;
	}
	c->token_exp = claims.exp;
	srv->n_ws++;
	srv->stats.connections_open++;
	srv->stats.connections_total++;
	if (!send_ready(c, claims.sub, req->resume))
	{
		conn_close(c, 1011, "could not load channels");
		return;
	}
	srv_log(srv, CHAT_LOG_DEBUG, "connection %s upgraded", c->id);
}

/*
 * page_headers: what the pages (/, /chat.js and the files they load) are
 * served with.  The demo page carries the token in its URL, so it must
 * not leak through the Referer, nor run anything but its own scripts:
 * the policy allows only the page's own origin, and WebSockets to the
 * same host (the Host the browser asked for; 'self' covers ws: only in
 * CSP level 3 browsers).  nosniff keeps a browser from running a file
 * as another type than the one we say.
 */
static void
page_headers(const http_request *req, char *out, size_t outlen)
{
	char		ws[600] = "";

	if (req->host[0])
		snprintf(ws, sizeof(ws), " ws://%s wss://%s", req->host, req->host);
	snprintf(out, outlen,
			 "X-Content-Type-Options: nosniff\r\n"
			 "Referrer-Policy: no-referrer\r\n"
			 "Content-Security-Policy: default-src 'self'; connect-src 'self'%s; "
			 "base-uri 'none'; frame-ancestors 'none'\r\n", ws);
}

void
upgrade_on_head(chat_conn *c, const http_request *req)
{
	if (strcmp(req->path, "/healthz") == 0)
	{
		if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
		{
			reply_error(c, 405, "method_not_allowed", "use GET");
			return;
		}
		{
			reply_body(c, req, 200, "application/json", NULL,
					   "{\"status\":\"ok\"}", 15);
			return;
		}
	}
	if (strcmp(req->path, "/metrics") == 0 && strcmp(req->method, "GET") == 0)
	{
		size_t		len;
		char	   *text = metrics_render(c->srv, &len);

		if (text == NULL)
		{
			conn_kill(c);
			return;
		}
		reply_body(c, req, 200, "text/plain; version=0.0.4", NULL, text, len);
		free(text);
		return;
	}
	if (strcmp(req->path, "/ws") == 0 || req->upgrade_websocket)
	{
		do_upgrade(c, req);
		return;
	}
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
	{
		reply_error(c, 405, "method_not_allowed", "use GET");
		return;
	}
	{
		/* the demo page and the JS client, embedded by tools/embed-assets */
		const web_asset *a = web_asset_find(req->path);

		if (a != NULL)
		{
			char		headers[1024];

			page_headers(req, headers, sizeof(headers));
			reply_body(c, req, 200, web_asset_type(a->path), headers,
					   (const char *) a->data, a->len);
			return;
		}
	}
	reply_error(c, 404, "not_found", "no such path");
}
