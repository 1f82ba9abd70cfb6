"""
chat.allowed_origins against cross-site WebSocket hijacking: a browser on
another site carries the user's credentials along (a token in a cookie-set
URL, a stolen Bearer) and always sends its own Origin.  Upgrades from an
Origin that is not listed get 403 and never a 101; listed ones get 101.
"""
import asyncio
import uuid

import pytest
import websockets

from seclib import (assert_401, assert_no_crash, assert_status, http_get, http_raw, new_user,
                    start, upgrade)

APP = "https://app.example.com"
ADMIN = "https://admin.example.com"


@pytest.fixture(scope="module")
def oc():
    c = start("origin", **{"chat.allowed_origins": "'%s, %s'" % (APP, ADMIN)})
    yield c
    c.stop()


def test_listed_origins_upgrade(oc):
    for origin in (APP, ADMIN):
        assert_status(upgrade(oc.chat_port, oc.token(new_user("o")), origin=origin), 101,
                      what=origin)


@pytest.mark.parametrize("origin", [
    "https://evil.example.net",
    "http://app.example.com",            # other scheme
    "https://app.example.com:8443",      # other port
    "https://app.example.com.evil.net",  # suffix
    "https://evil.net/https://app.example.com",
    "https://app.example.co",            # prefix
    "https://xapp.example.com",
    "null",                               # sandboxed iframes, file://
    "https://app.example.com, https://evil.net",
    "*",
])
def test_other_origins_get_403(oc, origin):
    r = upgrade(oc.chat_port, oc.token(new_user("o")), origin=origin)
    assert_status(r, 403, "forbidden", what="Origin %r" % origin)


def test_missing_origin_gets_403_when_a_list_is_set(oc):
    # browsers always send Origin on a WebSocket upgrade; only non-browser
    # clients omit it, and with a list set they must send a listed one
    assert_status(upgrade(oc.chat_port, oc.token(new_user("o"))), 403, "forbidden")


def test_repeated_origin_header_is_refused(oc):
    # two Origin lines must not let the server check one and a proxy the other
    for first, second in ((APP, "https://evil.example.net"), ("https://evil.example.net", APP)):
        req = ("GET /ws?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\nOrigin: %s\r\nOrigin: %s\r\n\r\n"
               % (oc.token(new_user("o")), first, second))
        r = http_raw(oc.chat_port, req.encode())
        assert r.status in (400, 403), r


def test_origin_is_checked_before_the_token(oc):
    # a bad origin learns nothing about the token
    assert_status(upgrade(oc.chat_port, "garbage", origin="https://evil.example.net"), 403)
    # a good origin with a bad token is an ordinary 401
    assert_401(upgrade(oc.chat_port, "garbage", origin=APP))


async def test_independent_client_with_and_without_a_listed_origin(oc):
    a, b = new_user("a"), new_user("b")
    g = oc.group([a, b])
    with pytest.raises(websockets.InvalidStatusCode) as e:
        await websockets.connect(oc.url(oc.token(a)), origin="https://evil.example.net",
                                 open_timeout=5)
    assert e.value.status_code == 403
    wa = await websockets.connect(oc.url(oc.token(a)), origin=APP, open_timeout=5)
    wb = await websockets.connect(oc.url(oc.token(b)), origin=ADMIN, open_timeout=5)
    try:
        import json
        assert json.loads(await wa.recv())["type"] == "ready"
        assert json.loads(await wb.recv())["type"] == "ready"
        cid = str(uuid.uuid4())
        await wa.send(json.dumps({"type": "send", "clientId": cid, "channelId": str(g),
                                  "content": "same-origin hello"}))
        got = {}
        while "ack" not in got or "message" not in got:
            for name, ws in (("ack", wa), ("message", wb)):
                if name in got:
                    continue
                try:
                    f = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
                except asyncio.TimeoutError:
                    continue
                if f["type"] == name:
                    got[name] = f
        assert got["ack"]["clientId"] == cid
        assert got["message"]["message"]["content"] == "same-origin hello"
    finally:
        await wa.close()
        await wb.close()
    assert_no_crash(oc)


def test_scheme_and_host_are_case_insensitive(oc):
    """RFC 6454: scheme and host compare without regard to case (browsers
    send them lowercased anyway); the port must be the listed one."""
    for origin in ("HTTPS://App.Example.COM", "https://APP.example.com"):
        assert_status(upgrade(oc.chat_port, oc.token(new_user("o")), origin=origin), 101,
                      what=origin)
    assert_status(upgrade(oc.chat_port, oc.token(new_user("o")),
                          origin="HTTPS://APP.EXAMPLE.COM:443"), 403, "forbidden")


@pytest.fixture(scope="module")
def onull():
    c = start("origin-null", **{"chat.allowed_origins": "'null, https://[::1]:8443'"})
    yield c
    c.stop()


def test_opaque_origin_is_compared_exactly(onull):
    """A listed value that is not scheme://host[:port] ("null") matches only
    itself, case included."""
    assert_status(upgrade(onull.chat_port, onull.token(new_user("o")), origin="null"), 101)
    for origin in ("NULL", "Null"):
        assert_status(upgrade(onull.chat_port, onull.token(new_user("o")), origin=origin),
                      403, "forbidden", what=origin)
    assert_status(upgrade(onull.chat_port, onull.token(new_user("o")),
                          origin="HTTPS://[::1]:8443"), 101)


# --------------------------------------------------------------------------
# the pages: the demo page carries the token in its URL
# --------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/chat.js", "/app.js"])
def test_pages_send_security_headers(oc, path):
    r = http_get(oc.chat_port, path)
    assert r.status == 200, r
    h = r.headers
    assert h.get("x-content-type-options") == "nosniff", h
    assert h.get("referrer-policy") == "no-referrer", h
    csp = h.get("content-security-policy", "")
    assert "default-src 'self'" in csp, csp
    # WebSockets only to the page's own host
    host = "127.0.0.1:%d" % oc.chat_port
    assert "connect-src 'self' ws://%s wss://%s" % (host, host) in csp, csp
    assert "*" not in csp and "unsafe" not in csp, csp
