"""
Live state across two workers (chat.workers = 2; issue 4 "presence is
correct across two workers"): users on different workers see each other's
online and offline, presence_state and chat_online include both, a second
device on the other worker adds nothing and closing one of two removes
nothing; typing, read receipts and edits cross workers, and a typer's
message sent from SQL ends the indicator before it arrives, on both
workers; and after a worker
restart (SIGTERM of one 'chat worker' from pg_stat_activity) no ghost
remains: its users are offline (chat_online) until they reconnect.

Connections are placed on a worker by opening and closing spares
(SO_REUSEPORT chooses per connection); each test arranges that the spares
change nothing it observes: placed users are in no channel yet, or already
online through another device.
"""
import json
import os
import signal
import socket
import struct
import time

from livelib import (TYPING_TIMEOUT, LATE_MARGIN, RawWs, async_wait_until, client_on_worker,
                     close_all, count, is_type, new_user, online, presence_of,
                     stopped_of, typing_of, worker_only, worker_pid_of)

# Across hosts, the same behaviours are the mixed topology's (CHAT_TOPOLOGY):
# test_presence.py and test_typing.py with clients on gateways and the worker.
pytestmark = worker_only("places connections on worker 0 and 1 and restarts one")


def presences(client, user):
    return [f["status"] for f in client.frames
            if f.get("type") == "presence" and f.get("userId") == user]


async def state(client, channel, ref):
    await client.send({"type": "presence", "channelId": str(channel), "ref": ref})
    f = await client.wait_for(lambda f: f.get("ref") == ref, timeout=3)
    assert f["type"] == "presence_state", f
    return sorted(f["online"])


async def marker(two, channel, observers, worker):
    """An ordered sync point on `worker`: a fresh user H there types in
    channel and every observer waits for it (the NOTIFY hop between workers
    keeps the order of what one worker publishes)."""
    h = new_user("h")
    hc = await client_on_worker(two, h, worker)      # in no channel yet
    two.sql("SELECT chat_add_member(%s, %s)", (channel, h))
    await hc.wait_for(is_type("joined"), timeout=3)
    await hc.send({"type": "typing", "channelId": str(channel)})
    for o in observers:
        await o.wait_for(typing_of(channel, h), timeout=5, what="marker typing of H")
    return hc


async def test_presence_across_workers_without_flapping(two):
    a, o0, o1 = new_user("a"), new_user("o0"), new_user("o1")
    # placed while in no channel: the spares flap to nobody
    c0 = await client_on_worker(two, o0, 0)
    c1 = await client_on_worker(two, o1, 1)
    g = two.group([a, o0, o1])
    a_first = a_second = None
    hs = []
    try:
        for o, other in ((c0, o1), (c1, o0)):
            j = await o.wait_for(is_type("joined"), timeout=5)
            assert j["channel"]["id"] == str(g) and other in j["channel"]["online"], j
        # o0 and o1 see each other across the workers
        assert await state(c0, g, "s0") == sorted([o0, o1])
        assert await state(c1, g, "s1") == sorted([o0, o1])

        # a's first connection, whichever worker: both observers see online,
        # one locally, one through the other worker
        a_first = await two.client(a)
        w_first = a_first.worker
        for o in (c0, c1):
            f = await o.wait_for(presence_of(a, "online"), timeout=5)
            assert f == {"type": "presence", "userId": a, "status": "online"}, f
        assert online(two, g) == sorted([a, o0, o1])
        for o, ref in ((c0, "p0"), (c1, "p1")):
            assert await state(o, g, ref) == sorted([a, o0, o1])

        # a second device on the other worker (spares landing on w_first are
        # further devices of an online user: they must change nothing either)
        a_second = await client_on_worker(two, a, 1 - w_first)
        assert o0 in a_second.ready_channel(g)["online"] and o1 in a_second.ready_channel(g)["online"]
        # close the first: a is still online through the other worker
        await a_first.close()
        for w in (0, 1):
            hs.append(await marker(two, g, [c0, c1], w))
        # The markers passed through both workers after the close; allow
        # 0.5s more for a frame published by the closing worker late in the
        # same iteration (bounded negative wait).
        for o in (c0, c1):
            await o.expect_none(lambda f: f.get("type") == "presence" and f.get("userId") == a,
                                0.5, "presence change of a while a has a device left")
            assert presences(o, a) == ["online"], presences(o, a)
        assert a in online(two, g)
        assert a in await state(c0, g, "p2") and a in await state(c1, g, "p3")

        # the last device closes: offline on both workers, exactly once
        await a_second.close()
        for o in (c0, c1):
            f = await o.wait_for(presence_of(a, "offline"), timeout=5)
            assert f == {"type": "presence", "userId": a, "status": "offline"}, f
        await async_wait_until(lambda: a not in online(two, g), timeout=3,
                               what="chat_online without a")
        for o, ref in ((c0, "p4"), (c1, "p5")):
            assert a not in await state(o, g, ref)
        for o in (c0, c1):
            assert presences(o, a) == ["online", "offline"], presences(o, a)
    finally:
        await close_all(a_first, a_second, c0, c1, *hs)


async def test_typing_reads_and_edits_cross_workers(two):
    a, b = new_user("a"), new_user("b")
    g = two.group([a, b])
    # placed before anyone else is connected: the spares flap to nobody
    a0 = await client_on_worker(two, a, 0)
    a1 = await client_on_worker(two, a, 1)       # a's second device, other worker
    b1 = await client_on_worker(two, b, 1)
    try:
        t0 = time.monotonic()
        await a0.send({"type": "typing", "channelId": str(g)})
        f = await b1.wait_for(typing_of(g, a), timeout=5)
        assert f["expiresInMs"] == int(TYPING_TIMEOUT * 1000), f
        await b1.wait_for(stopped_of(g, a), timeout=TYPING_TIMEOUT + LATE_MARGIN + 2)
        assert time.monotonic() - t0 >= TYPING_TIMEOUT - 0.15
        # the typer's device on the other worker never saw its own typing
        assert count(a1, lambda f: f.get("type") == "typing") == 0, a1.frames

        # read receipt from worker 1 reaches a on both workers
        k = await a0.send_message(g, "hello from worker 0")
        await b1.wait_message(g)
        await b1.send({"type": "read", "channelId": str(g), "seq": k["seq"]})
        for rx in (a0, a1, b1):
            f = await rx.wait_for(is_type("read", channelId=g, userId=b), timeout=5)
            assert f["seq"] == k["seq"], f
        # edit on worker 0, delete from worker 1 by the sender's other device
        await a0.send({"type": "edit", "messageId": k["serverId"], "content": "edited"})
        for rx in (a1, b1):
            f = await rx.wait_for(lambda f: f.get("type") == "message_updated", timeout=5)
            assert f["message"]["content"] == "edited", f
        await a1.send({"type": "delete", "messageId": k["serverId"]})
        for rx in (a0, b1):
            f = await rx.wait_for(is_type("message_deleted", messageId=k["serverId"]), timeout=5)
            assert f["seq"] == k["seq"]
        # b (not admin, not sender) is refused on its worker
        k2 = await a0.send_message(g, "keep")
        await b1.send({"type": "delete", "messageId": k2["serverId"], "ref": "d"})
        err = await b1.wait_for(lambda f: f.get("ref") == "d", timeout=3)
        assert err["type"] == "error" and err["code"] == "forbidden", err
    finally:
        await close_all(a0, a1, b1)


async def test_a_message_from_sql_ends_typing_first_on_every_worker(two):
    """The typer's message sent by the application (chat_send from SQL)
    reaches each worker from the table; each ends the typer's indicator
    before it delivers the message, the owner's worker and the worker that
    only relayed the indicator alike, and says so once."""
    a, b, c = new_user("a"), new_user("b"), new_user("c")
    a0 = await client_on_worker(two, a, 0)
    b0 = await client_on_worker(two, b, 0)
    c1 = await client_on_worker(two, c, 1)
    g = two.group([a, b, c])
    try:
        for o in (b0, c1):
            await o.wait_for(is_type("joined"), timeout=5)
        await a0.send({"type": "typing", "channelId": str(g)})
        for o in (b0, c1):
            await o.wait_for(typing_of(g, a), timeout=5)
        _, seq = two.send_sql(g, a, "sent by the app")
        for o in (b0, c1):
            await o.wait_message(g, lambda m: m["seq"] == seq)
            await o.wait_seen(stopped_of(g, a), timeout=3)
            kinds = [f["type"] for f in o.frames
                     if f.get("type") in ("typing_stopped", "message")]
            assert kinds[:2] == ["typing_stopped", "message"], (o.user, kinds)
        # the owner's own stop, relayed later, is not said a second time
        await c1.expect_none(stopped_of(g, a), TYPING_TIMEOUT + LATE_MARGIN,
                             "a second typing_stopped")
        assert count(c1, lambda f: f.get("type") == "typing_stopped") == 1, c1.frames
    finally:
        await close_all(a0, b0, c1)


async def test_worker_restart_leaves_no_ghost(two):
    """x only on worker 1, y only on worker 0, z on both, observer o on
    worker 0.  SIGTERM worker 1: x goes offline (o is told), z and y stay,
    chat_online never lists x again until x reconnects."""
    o, x, y, z = new_user("o"), new_user("x"), new_user("y"), new_user("z")
    # placed while in no channel: spares change nothing anyone sees
    co = await client_on_worker(two, o, 0)
    cx = await client_on_worker(two, x, 1)
    cy = await client_on_worker(two, y, 0)
    cz0 = await client_on_worker(two, z, 0)
    cz1 = await client_on_worker(two, z, 1)
    cx2 = None
    try:
        g = two.group([o, x, y, z])
        j = await co.wait_for(is_type("joined"), timeout=5)
        assert j["channel"]["id"] == str(g)
        assert {x, y, z} <= set(j["channel"]["online"]), j
        assert online(two, g) == sorted([o, x, y, z])

        victim = worker_pid_of(two, 1)
        os.kill(victim, signal.SIGTERM)
        for c in (cx, cz1):
            code = await c.wait_closed(timeout=8)
            assert code == 1001, (c.user, code)
        # (whether o is told that x went offline is the next test's subject)
        await async_wait_until(lambda: online(two, g) == sorted([o, y, z]), timeout=5,
                               what="chat_online == o, y, z after the SIGTERM (got %r)"
                               % online(two, g))
        # the worker comes back with a new pid
        await async_wait_until(lambda: len(set(two.worker_pids()) - {victim}) == 2, timeout=20,
                               what="a new chat worker 1")
        await async_wait_until(lambda: two.healthz() == 200, timeout=10, what="/healthz")
        # no ghost: x stays offline, in SQL and for o
        assert online(two, g) == sorted([o, y, z]), online(two, g)
        assert await state(co, g, "after") == sorted([o, y, z])
        assert presences(co, z) == [] and presences(co, y) == [], (presences(co, z), presences(co, y))
        # x reconnects (any worker): online again, announced once
        cx2 = await two.client(x)
        await co.wait_for(presence_of(x, "online"), timeout=5)
        assert online(two, g) == sorted([o, x, y, z])
        assert presences(co, x)[-1] == "online" and presences(co, x).count("online") == 1, \
            presences(co, x)
    finally:
        await close_all(co, cx, cy, cz0, cz1, cx2)


def raw_on_worker(two, user, worker, tries=80):
    """A raw socket of user (RawWs) on worker: it reads the ready frame to
    learn its connectionId; misplaced ones are closed."""
    for _ in range(tries):
        raw = RawWs(two.chat_port, two.token(user))
        op, payload = raw.read_frame(timeout=5)
        ready = json.loads(payload)
        assert op == 0x1 and ready["type"] == "ready", ready
        if ready["connectionId"].startswith("%d-" % worker):
            return raw
        raw.close()
    raise AssertionError("no raw connection of %s landed on worker %d" % (user, worker))


def pump(raw, answer_close):
    """Reads what raw has (without blocking): answers pings, and the close
    frame only when answer_close.  Returns the close code seen, if any."""
    code = None
    while True:
        try:
            op, payload = raw.read_frame(timeout=0.01)
        except (socket.timeout, BlockingIOError):
            return code
        except (EOFError, ConnectionResetError):
            return code or -1
        if op == 0x9:
            raw.send_frame(0xA, payload)
        elif op == 0x8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            if answer_close:
                raw.send_frame(0x8, payload[:2])


async def test_worker_restart_tells_the_other_workers(two):
    """x's only connection is on worker 1 and x is typing; o is on worker 0.
    SIGTERM worker 1: x's last connection closes, so o must get presence
    offline and typing_stopped for x (docs/protocol.md: offline "when the last
    one closes"; issue 4: typing_stopped "when the user's last connection
    closes").  x's client is slow to answer the close frame (it answers
    pings, but not the close), as a client on a poor network would be."""
    o, x = new_user("o"), new_user("x")
    co = await client_on_worker(two, o, 0)
    raw = raw_on_worker(two, x, 1)                  # x in no channel yet
    try:
        g = two.group([o, x])
        await co.wait_for(is_type("joined"), timeout=5)
        pump(raw, answer_close=False)
        raw.send_frame(0x1, json.dumps({"type": "typing", "channelId": str(g)}).encode())
        await co.wait_for(typing_of(g, x), timeout=5)
        pump(raw, answer_close=False)
        victim = worker_pid_of(two, 1)
        os.kill(victim, signal.SIGTERM)
        # keep x's socket open and answering pings (not the close) while
        # waiting for o's frames, with a deadline
        deadline = time.monotonic() + 6
        got_offline = got_stopped = None
        while time.monotonic() < deadline and not (got_offline and got_stopped):
            pump(raw, answer_close=False)
            await co.collect(0.05)
            got_offline = got_offline or any(presence_of(x, "offline")(f) for f in co.frames)
            got_stopped = got_stopped or any(stopped_of(g, x)(f) for f in co.frames)
        await async_wait_until(lambda: len(set(two.worker_pids()) - {victim}) == 2, timeout=20,
                               what="a new chat worker 1")
        assert x not in online(two, g), online(two, g)
        assert got_offline and got_stopped, \
            "after SIGTERM of x's worker, o (other worker) got presence offline: %s, " \
            "typing_stopped: %s; frames: %s" % (bool(got_offline), bool(got_stopped),
                                                json.dumps(co.frames[-6:])[:1500])
    finally:
        raw.close()
        await close_all(co)
