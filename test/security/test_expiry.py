"""
Token expiry on live connections.  A connection lives no longer than its
token: when exp (plus chat.jwt_leeway) passes, the server closes it with
close code 4001, unless the client sent {"type":"refresh","token":...} with
a newer valid token of the same user first (answered by {"type":"pong"}).

Cluster "expiry": chat.jwt_leeway = 0 and a 400 ms heartbeat, so the sweep
that checks expiry runs every 100 ms.
"""
import asyncio
import time

import jwt
import pytest
import websockets

from seclib import (Client, assert_401, assert_no_crash, hs_token, new_user, start, upgrade,
                    worker_pid)


@pytest.fixture(scope="module")
def ex():
    c = start("expiry", **{"chat.jwt_leeway": "0", "chat.heartbeat_interval": "'400ms'",
                           "chat.heartbeat_timeout": "'10s'"})
    c.pid0 = worker_pid(c)
    yield c
    c.stop()


def token_until(cluster, user, exp):
    return jwt.encode({"sub": user, "iat": int(time.time()), "exp": int(exp)},
                      cluster.secret, algorithm="HS256")


async def ping(client, ref):
    await client.send({"type": "ping", "ref": ref})
    f = await client.wait_for(lambda f: f.get("ref") == ref, timeout=3, what="pong %s" % ref)
    assert f["type"] == "pong", f


async def stay_open_until(client, wall, ref):
    """Keeps reading until the wall clock passes wall, then proves the
    connection still answers."""
    while time.time() < wall:
        assert not client.ws.closed, "closed at %.2f, before %.2f" % (time.time(), wall)
        await client.collect(min(0.2, max(0.01, wall - time.time())))
    await ping(client, ref)


async def closed_4001_after(client, exp, slack=3.0):
    code = await client.wait_closed(timeout=exp - time.time() + slack)
    closed_at = time.time()
    assert code == 4001, "close code %r (reason %r), expected 4001" % (code, client.ws.close_reason)
    assert closed_at >= exp, "closed at %.2f, before exp %d" % (closed_at, exp)
    return closed_at


async def test_expired_token_closes_the_connection_with_4001(ex):
    u = new_user("exp")
    exp = int(time.time()) + 2
    t = token_until(ex, u, exp)
    c = await Client.open(ex, u, token=t)
    await ping(c, "before")
    await closed_4001_after(c, exp)
    # and the same token cannot come back
    assert_401(upgrade(ex.chat_port, t), "expired")


async def test_refresh_keeps_the_connection_open_until_the_new_exp(ex):
    u = new_user("ref")
    g = ex.group([u, new_user("peer")])
    exp1 = int(time.time()) + 2
    c = await Client.open(ex, u, token=token_until(ex, u, exp1))
    exp2 = exp1 + 3
    await c.send({"type": "refresh", "token": token_until(ex, u, exp2), "ref": "r1"})
    f = await c.wait_for(lambda f: f.get("ref") == "r1", timeout=3, what="refresh answer")
    assert f["type"] == "pong", f
    # well past the first exp the connection is open and works
    await stay_open_until(c, exp1 + 1.5, "after-exp1")
    k = await c.send_message(g, "still here")
    assert k["type"] == "ack", k
    # and it ends at the refreshed exp
    await closed_4001_after(c, exp2)


REFUSED_REFRESH = ["other-user", "expired", "bad-signature", "garbage", "alg-none",
                   "oversized", "not-a-string", "missing"]


async def refused_refresh(ex, case, exp):
    u = new_user("rr")
    c = await Client.open(ex, u, token=token_until(ex, u, exp))
    later = exp + 3600
    frame = {"type": "refresh", "ref": case}
    frame["token"] = {
        "other-user": token_until(ex, new_user("other"), later),
        "expired": token_until(ex, u, time.time() - 5),
        "bad-signature": jwt.encode({"sub": u, "exp": later}, "not-the-secret", algorithm="HS256"),
        "garbage": "garbage",
        "alg-none": hs_token({"alg": "none"}, {"sub": u, "exp": later}, b"")[:-43],
        "oversized": jwt.encode({"sub": u, "exp": later, "pad": "A" * 10000}, ex.secret,
                                algorithm="HS256"),
        "not-a-string": 12345,
        "missing": None,
    }[case]
    if case == "missing":
        del frame["token"]
    await c.send(frame)
    f = await c.wait_for(lambda f: f.get("ref") == case, timeout=3, what="refresh answer")
    assert f["type"] == "error", "refresh %s was accepted: %r" % (case, f)
    assert f["code"] in (("forbidden",) if case == "other-user" else ("bad_request",)), f
    await ping(c, "alive")                 # the connection stays open ...
    await closed_4001_after(c, exp)        # ... until the original exp


async def test_refused_refresh_does_not_extend_the_connection(ex):
    """Another user's token, an expired one, a bad signature, garbage, alg
    none, an oversized one, a number and no token at all: each gets an error,
    the connection stays open, and it still ends at its own exp."""
    exp = int(time.time()) + 3
    results = await asyncio.gather(*(refused_refresh(ex, case, exp) for case in REFUSED_REFRESH),
                                   return_exceptions=True)
    failed = {case: r for case, r in zip(REFUSED_REFRESH, results) if r is not None}
    assert not failed, "\n".join("%s: %s" % kv for kv in failed.items())


async def test_refresh_of_several_megabytes_closes_1009(ex):
    u = new_user("big")
    c = await Client.open(ex, u, token=token_until(ex, u, time.time() + 60))
    big = jwt.encode({"sub": u, "exp": int(time.time()) + 60, "pad": "A" * (3 << 20)},
                     ex.secret, algorithm="HS256")
    try:
        await c.send({"type": "refresh", "token": big})
    except websockets.ConnectionClosed:
        pass
    assert await c.wait_closed(timeout=10) == 1009
    assert worker_pid(ex) == ex.pid0


async def test_many_connections_expire_together(ex):
    """Expiry is per connection: the ones that refreshed stay."""
    exp = int(time.time()) + 2
    users = [new_user("m") for _ in range(20)]
    clients = await asyncio.gather(*(Client.open(ex, u, token=token_until(ex, u, exp))
                                     for u in users))
    keep = clients[::2]
    for i, c in enumerate(keep):
        await c.send({"type": "refresh", "token": token_until(ex, c.user, exp + 60),
                      "ref": "k%d" % i})
    for i, c in enumerate(keep):
        assert (await c.wait_for(lambda f, i=i: f.get("ref") == "k%d" % i, timeout=3))["type"] == "pong"
    codes = await asyncio.gather(*(c.wait_closed(timeout=exp - time.time() + 3)
                                   for c in clients[1::2]))
    assert codes == [4001] * len(codes), codes
    for i, c in enumerate(keep):
        await ping(c, "kept-%d" % i)
        await c.close()
    assert worker_pid(ex) == ex.pid0
    assert_no_crash(ex)
