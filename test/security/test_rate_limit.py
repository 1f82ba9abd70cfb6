"""
Per-connection rate limit on send and typing (token bucket,
chat.rate_limit per second, chat.rate_burst saved up): frames over it get
an error rate_limited (with their clientId/ref) and are not acted on; the
connection stays open, other frames are still answered, and once the bucket
refills the same clientId goes through and is stored once.

Cluster "rate": chat.rate_limit = 5, chat.rate_burst = 10.
"""
import asyncio
import time
import uuid

import pytest

from seclib import assert_no_crash, new_user, start

RATE, BURST = 5, 10


@pytest.fixture(scope="module")
def rl():
    c = start("rate", **{"chat.rate_limit": str(RATE), "chat.rate_burst": str(BURST)})
    yield c
    c.stop()


async def test_send_flood_is_rate_limited_without_disconnect(rl):
    a, b = new_user("fl"), new_user("rx")
    g = rl.group([a, b])
    ca, cb = await rl.client(a), await rl.client(b)
    n = 40
    cids = [str(uuid.uuid4()) for _ in range(n)]
    t0 = time.monotonic()
    for i, cid in enumerate(cids):
        await ca.send({"type": "send", "clientId": cid, "channelId": str(g),
                       "content": "flood %d" % i, "ref": i})
    answers = {}
    while len(answers) < n:
        f = await ca.wait_for(lambda f: f.get("type") in ("ack", "error") and "clientId" in f,
                              timeout=10, what="answers to the flood")
        answers[f["clientId"]] = f
    elapsed = time.monotonic() - t0
    acked = [c for c in cids if answers[c]["type"] == "ack"]
    limited = [c for c in cids if answers[c]["type"] == "error"]
    assert all(answers[c]["code"] == "rate_limited" for c in limited), \
        [answers[c] for c in limited][:3]
    assert all(answers[c].get("ref") == cids.index(c) for c in limited), "error lost its ref"
    # the burst, plus what refilled while the frames were read
    assert BURST <= len(acked) <= BURST + RATE * elapsed + 2, (len(acked), elapsed)
    assert len(limited) >= n - BURST - RATE * elapsed - 2
    # nothing refused was stored or broadcast
    stored = rl.sql1("SELECT count(*) FROM chat.messages WHERE channel_id = %s", (g,))
    assert stored == len(acked)
    got = []
    while len(got) < len(acked):
        got.append(await cb.wait_message(g))
    await cb.expect_none(lambda f: f.get("type") == "message", 0.5, "message of a refused send")
    assert sorted(m["clientId"] for m in got) == sorted(acked)
    # still open: pings are not limited, and the same clientId goes through later
    await ca.send({"type": "ping", "ref": "p"})
    assert (await ca.wait_for(lambda f: f.get("ref") == "p"))["type"] == "pong"
    retry = limited[0]
    deadline = time.monotonic() + 10
    while True:
        k = await ca.send_message(g, "retry", client_id=retry)
        if k["type"] == "ack":
            break
        assert k["code"] == "rate_limited", k
        assert time.monotonic() < deadline, "the bucket never refilled"
        await asyncio.sleep(1.0 / RATE)
    assert k["duplicate"] is False
    assert rl.sql1("SELECT count(*) FROM chat.messages WHERE client_id = %s", (retry,)) == 1
    assert not ca.ws.closed and not cb.ws.closed
    await asyncio.gather(ca.close(), cb.close())


async def test_typing_flood_is_rate_limited_without_disconnect(rl):
    a, b = new_user("ty"), new_user("rx")
    g = rl.group([a, b])
    ca, cb = await rl.client(a), await rl.client(b)
    for i in range(40):
        await ca.send({"type": "typing", "channelId": str(g), "ref": "t%d" % i})
    await ca.send({"type": "ping", "ref": "after"})
    await ca.wait_for(lambda f: f.get("ref") == "after", timeout=5)
    errs = [f for f in ca.frames if f.get("type") == "error"]
    assert errs and all(f["code"] == "rate_limited" for f in errs), errs[:3]
    assert len(errs) >= 40 - BURST - 5
    # the peer saw the typing indicator (debounced), the typer is still connected
    await cb.wait_for(lambda f: f.get("type") == "typing" and f.get("userId") == a, timeout=5)
    k = None
    deadline = time.monotonic() + 10
    while k is None or k["type"] != "ack":
        assert time.monotonic() < deadline, k
        k = await ca.send_message(g, "after typing flood")
        if k["type"] != "ack":
            assert k["code"] == "rate_limited", k
            await asyncio.sleep(1.0 / RATE)
    await asyncio.gather(ca.close(), cb.close())


async def test_limit_is_per_connection(rl):
    u, peer = new_user("pc"), new_user("rx")
    g = rl.group([u, peer])
    c1, c2 = await rl.client(u), await rl.client(u)
    for i in range(BURST + 10):
        await c1.send({"type": "send", "clientId": str(uuid.uuid4()), "channelId": str(g),
                       "content": "c1 %d" % i})
    await c1.wait_for(lambda f: f.get("type") == "error" and f["code"] == "rate_limited",
                      timeout=5)
    # the same user's other connection has its own bucket
    k = await c2.send_message(g, "from the other device")
    assert k["type"] == "ack", k
    await asyncio.gather(c1.close(), c2.close())
    assert_no_crash(rl)
