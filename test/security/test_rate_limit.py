"""
Rate limits (token buckets): every client frame has a cost (send 1, edit 2,
... as ready's frameCosts says) charged to its connection's bucket
(chat.rate_limit per second, chat.rate_burst saved up) and to its user's
bucket shared by the user's connections on the worker (chat.user_rate_limit,
chat.user_rate_burst).  Frames over either get an error rate_limited (with
their clientId/ref) and are not acted on; the connection stays open, and
once the bucket refills the same clientId goes through and is stored once.

Cluster "rate": chat.rate_limit = 5, chat.rate_burst = 10,
chat.user_rate_limit = 8, chat.user_rate_burst = 15.
"""
import asyncio
import time
import uuid

import pytest

from seclib import assert_no_crash, new_user, start

RATE, BURST = 5, 10
USER_RATE, USER_BURST = 8, 15


@pytest.fixture(scope="module")
def rl():
    c = start("rate", **{"chat.rate_limit": str(RATE), "chat.rate_burst": str(BURST),
                         "chat.user_rate_limit": str(USER_RATE),
                         "chat.user_rate_burst": str(USER_BURST)})
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
    # still open: a ping is answered (pong, or rate_limited while the bucket
    # is empty: a ping costs 1 too), and the same clientId goes through later
    await ca.send({"type": "ping", "ref": "p"})
    f = await ca.wait_for(lambda f: f.get("ref") == "p")
    assert f["type"] == "pong" or f.get("code") == "rate_limited", f
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


async def answers_to(client, frames, timeout=10):
    """Sends frames (each with a distinct ref), then a ping marking the end,
    and returns {ref: answer} for the answers that carry a ref (read has
    none when it is carried out: its answer is the read broadcast)."""
    refs = set()
    for f in frames:
        refs.add(f["ref"])
        await client.send(f)
    await client.send({"type": "ping", "ref": "end"})
    await client.wait_for(lambda f: f.get("ref") == "end", timeout=timeout, what="the end")
    return {f["ref"]: f for f in client.frames if f.get("ref") in refs}


@pytest.mark.parametrize("kind", ["edit", "delete", "read", "history", "sync", "presence",
                                  "refresh", "ping"])
async def test_every_costly_frame_is_rate_limited(rl, kind):
    a, b = new_user("ck"), new_user("rx")
    g = rl.group([a, b])
    ca = await rl.client(a)
    k = await ca.send_message(g, "target")
    assert k["type"] == "ack", k
    mid = k["serverId"]
    n = 30
    frames = []
    for i in range(n):
        ref = "%s-%d" % (kind, i)
        f = {"edit": {"type": "edit", "messageId": mid, "content": "v%d" % i},
             "delete": {"type": "delete", "messageId": mid},
             "read": {"type": "read", "channelId": str(g), "seq": 1},
             "history": {"type": "history", "channelId": str(g), "limit": 10},
             "sync": {"type": "sync", "channels": {str(g): 0}},
             "presence": {"type": "presence", "channelId": str(g)},
             "refresh": {"type": "refresh", "token": rl.token(a)},
             "ping": {"type": "ping"}}[kind]
        f["ref"] = ref
        frames.append(f)
    got = await answers_to(ca, frames)
    limited = [r for r, f in got.items() if f.get("code") == "rate_limited"]
    # the bucket holds BURST (minus the send); a frame costs at least 1
    assert len(limited) >= n - BURST - RATE * 2, (kind, len(limited), list(got.values())[:3])
    if kind == "edit":
        versions = rl.sql1("SELECT count(*) FROM chat.message_versions WHERE message_id = %s",
                           (mid,))
        assert versions <= n - len(limited), (versions, len(limited))
        assert versions <= BURST // 2 + RATE, versions
    assert not ca.ws.closed
    # clients learn the costs from ready
    assert ca.ready["frameCosts"][kind] >= 1, ca.ready
    await ca.close()


async def test_user_limit_spans_its_connections(rl):
    """Three connections of one user, each under its own connection limit,
    together go past the user's: the user bucket refuses the excess."""
    u, peer = new_user("ul"), new_user("rx")
    g = rl.group([u, peer])
    conns = [await rl.client(u) for _ in range(3)]
    per = BURST - 1                              # each connection stays under its own burst
    t0 = time.monotonic()
    answers = []
    for c in conns:
        for i in range(per):
            answers.append(await c.send_message(g, "u %d" % i))
    elapsed = time.monotonic() - t0
    acked = [k for k in answers if k["type"] == "ack"]
    limited = [k for k in answers if k.get("code") == "rate_limited"]
    assert len(acked) + len(limited) == len(answers), answers[:3]
    assert len(acked) <= USER_BURST + USER_RATE * elapsed + 1, (len(acked), elapsed)
    assert limited, "the user's connections together were never limited"
    await asyncio.gather(*(c.close() for c in conns))
