"""
The HTTP side of the port: authentication before the upgrade (401 with a JSON
body, never a 101), the other error statuses, and /healthz.
"""
import asyncio
import base64
import json
import time
import uuid

import jwt
import pytest
import websockets

from conftest import http_get, http_raw, metrics, new_user, upgrade_headers


def b64url(obj):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def bad_tokens(cluster, user):
    now = int(time.time())
    good = {"sub": user, "iat": now, "exp": now + 3600}
    return {
        "garbage": "not-a-jwt",
        "three_garbage_parts": "aaaa.bbbb.cccc",
        "wrong_key": jwt.encode(good, "some-other-secret", algorithm="HS256"),
        # well past chat.jwt_leeway (30s)
        "expired": jwt.encode(dict(good, iat=now - 7200, exp=now - 3600),
                              cluster.secret, algorithm="HS256"),
        "not_yet_valid": jwt.encode(dict(good, nbf=now + 3600),
                                    cluster.secret, algorithm="HS256"),
        "alg_none": b64url({"alg": "none", "typ": "JWT"}) + "." + b64url(good) + ".",
        "alg_none_with_sig": (b64url({"alg": "none", "typ": "JWT"}) + "." + b64url(good)
                              + "." + cluster.token(user).split(".")[2]),
        # the key is an HS256 secret: another HMAC algorithm must not pass
        "alg_hs512": jwt.encode(good, cluster.secret, algorithm="HS512"),
        # a valid signature over a tampered payload
        "tampered": (cluster.token(user).split(".")[0] + "." + b64url(dict(good, sub="root"))
                     + "." + cluster.token(user).split(".")[2]),
    }


def assert_401(resp, what):
    assert resp.status == 401, "%s: %r" % (what, resp)
    assert resp.headers.get("upgrade") is None, "%s: %r" % (what, resp)
    assert "sec-websocket-accept" not in resp.headers, "%s: %r" % (what, resp)
    assert resp.headers.get("content-type", "").startswith("application/json"), resp
    body = resp.json()
    assert body["error"] == "unauthorized", (what, body)
    assert isinstance(body["reason"], str) and body["reason"], (what, body)
    return body


def test_missing_token_is_401(cluster):
    resp = http_get(cluster.chat_port, "/ws", upgrade_headers())
    body = assert_401(resp, "no token")
    assert set(body) == {"error", "reason"}


@pytest.mark.parametrize("kind", ["garbage", "three_garbage_parts", "wrong_key", "expired",
                                  "not_yet_valid", "alg_none", "alg_none_with_sig",
                                  "alg_hs512", "tampered"])
def test_bad_token_in_query_is_401(cluster, kind):
    user = new_user()
    token = bad_tokens(cluster, user)[kind]
    resp = http_get(cluster.chat_port, "/ws?token=" + token, upgrade_headers())
    body = assert_401(resp, kind)
    # the reason never repeats the token
    assert token not in body["reason"]


@pytest.mark.parametrize("kind", ["garbage", "wrong_key", "expired", "not_yet_valid",
                                  "alg_none"])
def test_bad_token_in_header_is_401(cluster, kind):
    user = new_user()
    token = bad_tokens(cluster, user)[kind]
    h = upgrade_headers()
    h["Authorization"] = "Bearer " + token
    assert_401(http_get(cluster.chat_port, "/ws", h), kind)


def test_good_token_upgrades_raw(cluster):
    """The positive control of the raw requests above."""
    user = new_user()
    resp = http_get(cluster.chat_port, "/ws?token=" + cluster.token(user), upgrade_headers())
    assert resp.status == 101, resp
    # RFC 6455 example key and its accept value
    assert resp.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    h = upgrade_headers()
    h["Authorization"] = "Bearer " + cluster.token(user)
    resp = http_get(cluster.chat_port, "/ws", h)
    assert resp.status == 101, resp


async def test_independent_client_sees_401(cluster):
    user = new_user()
    for token in (None, bad_tokens(cluster, user)["expired"],
                  bad_tokens(cluster, user)["wrong_key"]):
        with pytest.raises(websockets.InvalidStatusCode) as ei:
            ws = await websockets.connect(cluster.url(token), open_timeout=5)
            await ws.close()
        assert ei.value.status_code == 401
    # header token through the same client works
    ws = await websockets.connect(cluster.url(), open_timeout=5,
                                  extra_headers={"Authorization":
                                                 "Bearer " + cluster.token(user)})
    try:
        ready = json.loads(await ws.recv())
        assert ready["type"] == "ready" and ready["userId"] == user
    finally:
        await ws.close()


def assert_json_error(resp, status, what):
    assert resp.status == status, "%s: %r" % (what, resp)
    assert "sec-websocket-accept" not in resp.headers
    assert resp.headers.get("content-type", "").startswith("application/json"), resp
    body = resp.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("reason"), str), body
    return body


def test_bad_upgrade_is_400(cluster):
    token = cluster.token(new_user())
    port = cluster.chat_port
    # a plain GET of /ws without any upgrade headers
    assert_json_error(http_get(port, "/ws?token=" + token), 400, "no upgrade")
    # wrong version: 400, or the 426 with Sec-WebSocket-Version that RFC 6455
    # section 4.4 suggests
    h = upgrade_headers()
    h["Sec-WebSocket-Version"] = "8"
    resp = http_get(port, "/ws?token=" + token, h)
    assert_json_error(resp, resp.status if resp.status in (400, 426) else 400, "version 8")
    if resp.status == 426:
        assert resp.headers.get("sec-websocket-version") == "13", resp
    # a key that is not base64 of 16 bytes
    assert_json_error(http_get(port, "/ws?token=" + token, upgrade_headers(key="short")),
                      400, "bad key")
    # no Connection: Upgrade
    h = upgrade_headers()
    del h["Connection"]
    assert_json_error(http_get(port, "/ws?token=" + token, h), 400, "no Connection")
    # not HTTP at all
    resp = http_raw(port, b"HELLO THERE\r\n\r\n")
    assert_json_error(resp, 400, "garbage request")


def test_unknown_path_is_404(cluster):
    body = assert_json_error(http_get(cluster.chat_port, "/nope"), 404, "404")
    assert body["error"] == "not_found"


def test_wrong_method_is_405(cluster):
    token = cluster.token(new_user())
    resp = http_get(cluster.chat_port, "/ws?token=" + token, upgrade_headers(), method="POST")
    assert_json_error(resp, 405, "POST /ws")
    assert "GET" in resp.headers.get("allow", "")
    assert_json_error(http_get(cluster.chat_port, "/healthz", method="DELETE"), 405,
                      "DELETE /healthz")


def test_healthz(cluster):
    resp = http_get(cluster.chat_port, "/healthz")
    assert resp.status == 200, resp
    assert resp.json() == {"status": "ok"}


@pytest.fixture(scope="module")
def no_leeway(cluster_factory):
    return cluster_factory("no-leeway", **{"chat.jwt_leeway": "0"})


async def test_token_expiring_on_a_live_connection_closes_4001(no_leeway):
    c = no_leeway
    user = new_user("e")
    g = c.group([user])
    short = c.token(user, ttl=2)
    ws = await websockets.connect(c.url(short), open_timeout=5, ping_interval=None)
    try:
        ready = json.loads(await ws.recv())
        assert ready["type"] == "ready"
        t0 = time.monotonic()
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 6)
        assert ws.close_code == 4001, ws.close_code
        assert time.monotonic() - t0 < 5
    finally:
        await ws.close()

    # a refresh with a newer token of the same user keeps the connection
    ws = await websockets.connect(c.url(c.token(user, ttl=2)), open_timeout=5,
                                  ping_interval=None)
    try:
        assert json.loads(await ws.recv())["type"] == "ready"
        await ws.send(json.dumps({"type": "refresh", "token": c.token(user, ttl=3600),
                                  "ref": "r"}))
        answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert answer.get("ref") == "r" and answer["type"] != "error", answer
        # a token of another user is refused and changes nothing
        await ws.send(json.dumps({"type": "refresh", "token": c.token("someone-else"),
                                  "ref": "x"}))
        answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert answer["type"] == "error" and answer["code"] == "forbidden", answer
        # still open well after the first token's exp
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline:
            try:
                await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
            except asyncio.TimeoutError:
                break
        assert not ws.closed, ws.close_code
        await ws.send(json.dumps({"type": "send", "clientId": str(uuid.uuid4()),
                                  "channelId": str(g), "content": "still here",
                                  "ref": "s"}))
        while True:
            f = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if f.get("ref") == "s":
                assert f["type"] == "ack", f
                break
    finally:
        await ws.close()


async def test_metrics_count_what_the_worker_did(cluster):
    """
    /metrics answers for the worker that took the connection: after a send on
    a connection of worker W, W's counters show the message, its batch and
    the loop passes, and every histogram is cumulative and ends in its count.
    """
    a, b = new_user("ma"), new_user("mb")
    g = cluster.group([a, b])
    ca = await cluster.client(a)
    try:
        await ca.send_message(g, "counted")
        w = 'worker="%d"' % ca.worker
        m = None
        for _ in range(200):    # SO_REUSEPORT: any worker may answer
            got = metrics(ca.port)
            if any(w in labels for (_, labels) in got):
                m = got
                break
        assert m is not None, "no /metrics answer from " + w

        def val(name, extra=""):
            return m[(name, "{" + w + extra + "}")]
        assert val("chat_messages_persisted_total") >= 1
        assert val("chat_acks_total") >= 1
        assert val("chat_connections_open") >= 1
        for h in ("chat_batch_commit_seconds", "chat_loop_iteration_seconds"):
            buckets = [(float("inf") if lab.split('le="')[1][:-2] == "+Inf"
                        else float(lab.split('le="')[1][:-2]), v)
                       for (name, lab), v in m.items()
                       if name == h + "_bucket" and w in lab]
            buckets.sort()
            assert len(buckets) == 12, (h, buckets)
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), (h, "not cumulative", buckets)
            assert counts[-1] == val(h + "_count") >= 1, (h, buckets)
            assert val(h + "_sum") > 0, h
    finally:
        await ca.close()
