"""
Resume (?resume=1): the client states its positions with its first sync
before any live message of those channels is sent, so a reconnect never
repeats a message frame and never skips ahead.  Also what a sync on a live
connection does when the connection already had frames past the position
it names (docs/protocol.md, "Resuming").

The storm at the end reconnects 50 clients 20 times each, through worker
SIGTERMs and dropped TCP connections, while messages keep coming, and
counts every message frame on the wire per client and channel.
"""
import asyncio
import json
import os
import random
import signal
import threading
import time
import uuid

import pytest
import websockets

from conftest import assert_gap_free, close_all, new_user, read_sync


async def resume_client(cluster, user):
    return await cluster.client(user, token=cluster.token(user) + "&resume=1")


async def no_message_before_pong(client, what):
    """Frames of one connection are in order: a message queued before the
    ping's answer would arrive before the pong."""
    await client.send({"type": "ping", "ref": "p-" + uuid.uuid4().hex[:6]})
    f = await client.wait_for(lambda f: f.get("type") in ("pong", "message"), what="pong")
    assert f["type"] == "pong", "%s: %r" % (what, f)


def messages(client, g):
    return [f["message"]["seq"] for f in client.frames
            if f.get("type") == "message" and f["message"]["channelId"] == str(g)]


async def test_resume_holds_live_messages_until_the_sync(cluster):
    """ready says resume; live messages wait for the client's position; the
    answer is what it missed, then live from there: no repeat, no skip."""
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    for i in range(3):
        cluster.send_sql(g, a, "before %d" % i)
    ca = await cluster.client(a)
    cb = await resume_client(cluster, b)
    try:
        assert cb.ready["resume"] is True
        assert cb.ready_channel(g)["lastSeq"] == 3
        assert "resume" not in ca.ready, "only a client that asks gets held"
        # live messages, over the socket (this worker) and from SQL
        k = await ca.send_message(g, "live 4")
        assert k["seq"] == 4
        cluster.send_sql(g, a, "live 5")
        await ca.wait_message(g, lambda m: m["seq"] == 5)
        await no_message_before_pong(cb, "held channel")

        await cb.send({"type": "sync", "channels": {str(g): 1}, "ref": "r1"})
        msgs, synced = await read_sync(cb, g)
        assert [m["seq"] for m in msgs] == [2, 3, 4, 5]
        assert synced["lastSeq"] == 5 and synced["hasMore"] is False and synced["ref"] == "r1"
        k = await ca.send_message(g, "live 6")
        m = await cb.wait_message(g, lambda m: m["seq"] == 6)
        assert m["content"] == "live 6"
        await no_message_before_pong(cb, "after the sync")
        assert messages(cb, g) == [2, 3, 4, 5, 6]
    finally:
        await close_all(ca, cb)


async def test_resume_first_sync_releases_the_channels_it_does_not_name(cluster):
    a, b = new_user("a"), new_user("b")
    named, unnamed = cluster.group([a, b]), cluster.group([a, b])
    cluster.send_sql(named, a, "n1")
    cluster.send_sql(unnamed, a, "u1")
    cb = await resume_client(cluster, b)
    ca = await cluster.client(a)
    try:
        cluster.send_sql(unnamed, a, "u2 while held")
        await ca.wait_message(unnamed, lambda m: m["seq"] == 2)
        await no_message_before_pong(cb, "held")
        await cb.send({"type": "sync", "channels": {str(named): 0}})
        msgs, synced = await read_sync(cb, named)
        assert [m["seq"] for m in msgs] == [1]
        # the other channel starts at ready's lastSeq (1): 2 comes, 1 not
        m = await cb.wait_message(unnamed)
        assert m["seq"] == 2 and m["content"] == "u2 while held"
        cluster.send_sql(unnamed, a, "u3")
        await cb.wait_message(unnamed, lambda m: m["seq"] == 3)
        assert messages(cb, unnamed) == [2, 3]
    finally:
        await close_all(ca, cb)


async def test_resume_send_before_sync_starts_at_ready(cluster):
    """A send names no position: its channel starts at ready's lastSeq, and
    the ack never overtakes what came before it."""
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    cluster.send_sql(g, b, "one")
    ca = await resume_client(cluster, a)
    try:
        cluster.send_sql(g, b, "two, while held")
        k = await ca.send_message(g, "three")
        assert k["type"] == "ack" and k["seq"] == 3
        assert messages(ca, g) == [2], "the message before the ack came first"
    finally:
        await close_all(ca)


async def test_resume_pages_a_long_absence_and_holds_live_until_the_last_page(cluster):
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    cluster.sql("SELECT count(chat_send(%s, %s, 'bulk ' || i)) "
                "FROM generate_series(1, 2100) AS i", (g, a))
    cb = await resume_client(cluster, b)
    ca = await cluster.client(a)
    try:
        last, pages = 5, 0
        while True:
            pages += 1
            await cb.send({"type": "sync", "channels": {str(g): last}})
            msgs, synced = await read_sync(cb, g, timeout=15)
            assert [m["seq"] for m in msgs] == list(range(last + 1, synced["lastSeq"] + 1))
            last = synced["lastSeq"]
            if pages == 1:
                # live while b is between pages: held, then in order
                k = await ca.send_message(g, "live between pages")
                assert k["seq"] == 2101
                await no_message_before_pong(cb, "between pages")
            if not synced["hasMore"]:
                break
        assert pages >= 3 and last == 2101
        await no_message_before_pong(cb, "after the last page")
        assert_gap_free(messages(cb, g), 5, 2101, who="b")
    finally:
        await close_all(ca, cb)


async def test_sync_on_a_live_connection_sends_nothing_twice(cluster):
    """Legacy connection (no resume): ready and live at once.  A sync from a
    position the connection has already been sent past answers only what it
    was not sent; one from below ready's lastSeq restarts the stream."""
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    cluster.send_sql(g, a, "one")
    cb = await cluster.client(b)
    ca = await cluster.client(a)
    try:
        assert cb.ready_channel(g)["lastSeq"] == 1
        for i in range(2, 5):
            await ca.send_message(g, "live %d" % i)
        await cb.wait_message(g, lambda m: m["seq"] == 4)
        # b says 2: it was sent 2..4 on this connection; nothing comes again
        await cb.send({"type": "sync", "channels": {str(g): 2}, "ref": "c"})
        msgs, synced = await read_sync(cb, g)
        assert msgs == [] and synced["lastSeq"] == 4 and synced["hasMore"] is False
        await ca.send_message(g, "live 5")
        await cb.wait_message(g, lambda m: m["seq"] == 5)
        assert messages(cb, g) == [2, 3, 4, 5]
        # below ready's lastSeq: 1 was never sent here, so the stream restarts
        await cb.send({"type": "sync", "channels": {str(g): 0}, "ref": "d"})
        msgs, synced = await read_sync(cb, g)
        assert [m["seq"] for m in msgs] == [1, 2, 3, 4, 5] and synced["lastSeq"] == 5
    finally:
        await close_all(ca, cb)


# --------------------------------------------------------------------------
# the storm
# --------------------------------------------------------------------------

N_CLIENTS = 50
RECONNECTS = 20
N_CHANNELS = 5


@pytest.fixture(scope="module")
def storm(cluster_factory):
    return cluster_factory("resume-storm", **{
        "chat.workers": "2",
        "chat.max_connections_per_ip": "0",
        "chat.handshake_timeout": "'3s'",
    })


class Stream:
    """What one client saw of one channel, across all its connections."""

    def __init__(self):
        self.last = 0
        self.frames = 0
        self.repeats = 0
        self.gaps = 0
        self.first_bad = None

    def frame(self, seq):
        self.frames += 1
        if seq <= self.last:
            self.repeats += 1
        elif seq != self.last + 1:
            self.gaps += 1
        else:
            self.last = seq
            return
        if self.first_bad is None:
            self.first_bad = (self.last, seq)
        self.last = max(self.last, seq)


async def connect(url, stop_at):
    """Connects, retrying while a worker restarts."""
    while True:
        try:
            return await websockets.connect(url, max_queue=None, ping_interval=None,
                                            open_timeout=5, close_timeout=1, max_size=None)
        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
            if time.monotonic() > stop_at:
                raise
            await asyncio.sleep(0.05)


async def session(url, streams, until, want=None):
    """One connection: resume, sync every channel from the client's own
    position, read until `until` (or, with want, until every channel has
    reached want[channel]); then drop the TCP connection.  Returns how it
    ended: "dropped", "closed" (by the server) or "caught up"."""
    ws = await connect(url, time.monotonic() + 30)
    try:
        ready = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ready["type"] == "ready", ready
        await ws.send(json.dumps({"type": "sync", "channels":
                                  {c: streams[c].last for c in streams}}))
        while True:
            if want is not None and all(streams[c].last >= want[c] for c in streams):
                return "caught up"
            left = until - time.monotonic()
            if left <= 0:
                if want is not None:
                    raise AssertionError("not caught up: %r of %r" % (
                        {c: s.last for c, s in streams.items()}, want))
                return "dropped"
            try:
                f = json.loads(await asyncio.wait_for(ws.recv(), left))
            except asyncio.TimeoutError:
                continue
            t = f.get("type")
            if t == "message":
                m = f["message"]
                if m["channelId"] in streams:
                    streams[m["channelId"]].frame(m["seq"])
            elif t == "synced" and f["hasMore"]:
                c = f["channelId"]
                await ws.send(json.dumps({"type": "sync", "channels": {c: streams[c].last}}))
    except websockets.exceptions.ConnectionClosed:
        return "closed"
    finally:
        ws.transport.abort()     # a dropped TCP connection, no close frame


def sql_sender(cluster, channels, sender, stop, rate=60.0):
    """The application's steady stream of sends from SQL."""
    conn = cluster.connect()
    with conn.cursor() as cur:
        i = 0
        while not stop.is_set():
            cur.execute("SELECT chat_send(%s, %s, %s)",
                        (channels[i % len(channels)], sender, "sql %d" % i))
            i += 1
            stop.wait(1.0 / rate)
    conn.close()


async def socket_sender(cluster, channels, sender, stop_at, rate=40.0):
    """Sends over a chat socket too (delivered from memory by the worker
    that stored it); reconnects when the worker goes away."""
    i = 0
    url = cluster.url(cluster.token(sender))
    while time.monotonic() < stop_at:
        try:
            ws = await connect(url, stop_at + 10)
        except Exception:  # noqa: BLE001 - the storm ends while connecting
            return
        try:
            while time.monotonic() < stop_at:
                await ws.send(json.dumps({"type": "send", "clientId": str(uuid.uuid4()),
                                          "channelId": channels[i % len(channels)],
                                          "content": "ws %d" % i}))
                i += 1
                await asyncio.sleep(1.0 / rate)
                while True:     # read what came, so the queue never fills
                    try:
                        await asyncio.wait_for(ws.recv(), 0.001)
                    except asyncio.TimeoutError:
                        break
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            ws.transport.abort()


async def test_reconnect_storm_no_repeats_no_gaps(storm):
    """50 clients reconnect 20 times each during a steady stream of sends,
    through worker SIGTERMs and dropped TCP connections: per client and
    channel, every message frame on the wire comes once, in order, from
    the client's own position."""
    rnd = random.Random(14)
    sender = new_user("sender")
    users = [new_user("r%02d" % i) for i in range(N_CLIENTS)]
    channels = []
    for k in range(N_CHANNELS):
        members = [u for i, u in enumerate(users) if i % N_CHANNELS in (k, (k + 1) % N_CHANNELS)]
        channels.append(str(storm.group([sender] + members)))
    mine = {u: [channels[i % N_CHANNELS], channels[(i - 1) % N_CHANNELS]]
            for i, u in enumerate(users)}
    streams = {u: {c: Stream() for c in mine[u]} for u in users}
    urls = {u: storm.url(storm.token(u)) + "&resume=1" for u in users}

    t0 = time.monotonic()
    storm_s = 40.0
    stop_at = t0 + storm_s
    stop = threading.Event()
    sql_thread = threading.Thread(target=sql_sender, daemon=True,
                                  args=(storm, channels, sender, stop))
    sql_thread.start()
    endings = {"dropped": 0, "closed": 0}
    sigterms = 0

    async def client(u):
        for r in range(RECONNECTS):
            # the reconnects spread over the storm
            until = min(stop_at, time.monotonic() + rnd.uniform(0.3, 3.2))
            endings[await session(urls[u], streams[u], until)] += 1

    async def killer():
        nonlocal sigterms
        while time.monotonic() < stop_at - 4:
            await asyncio.sleep(5)
            if storm.gateways and (not storm.worker_port_used() or sigterms % 2):
                # a gateway's SIGTERM closes 1001 too; it is started again
                g = rnd.choice(storm.gateways)
                await asyncio.get_running_loop().run_in_executor(None, g.restart)
                sigterms += 1
                continue
            pids = storm.worker_pids()
            if pids:
                os.kill(rnd.choice(pids), signal.SIGTERM)
                sigterms += 1

    try:
        await asyncio.gather(killer(), socket_sender(storm, channels, sender, stop_at),
                             *(client(u) for u in users))
    finally:
        stop.set()
        sql_thread.join(10)
    assert sigterms >= 5 and endings["closed"] > 0 and endings["dropped"] > 0, (sigterms, endings)

    # one last connection each, until every channel is caught up
    want = {c: storm.last_seq(c) for c in channels}
    assert min(want.values()) > 300, want
    await asyncio.gather(*(session(urls[u], streams[u], time.monotonic() + 30,
                                   {c: want[c] for c in mine[u]}) for u in users))

    frames = sum(s.frames for u in users for s in streams[u].values())
    repeats = {(u, c): s.repeats for u in users for c, s in streams[u].items() if s.repeats}
    gaps = {(u, c): (s.gaps, s.first_bad) for u in users for c, s in streams[u].items() if s.gaps}
    print("storm: %d reconnects (%r), %d SIGTERMs, %d message frames, %.1fs"
          % (sum(endings.values()), endings, sigterms, frames, time.monotonic() - t0))
    assert not repeats, "repeated message frames (%d streams, %d frames): %r" % (
        len(repeats), sum(repeats.values()), sorted(repeats.items())[:5])
    assert not gaps, "gaps: %r" % (sorted(gaps.items())[:5],)
    for u in users:
        for c in mine[u]:
            s = streams[u][c]
            assert s.last == want[c] and s.frames == want[c], (u, c, s.last, s.frames, want[c])


async def test_resume_without_a_sync_starts_at_ready_after_the_handshake_timeout(storm):
    """A client that asked to resume and never syncs is not held forever:
    chat.handshake_timeout (3s here) after ready its channels go live from
    ready's lastSeq, with what arrived meanwhile first."""
    a, b = new_user("a"), new_user("b")
    g = storm.group([a, b])
    storm.send_sql(g, a, "one")
    cb = await resume_client(storm, b)
    try:
        t0 = time.monotonic()
        storm.send_sql(g, a, "two, while held")
        await no_message_before_pong(cb, "held")
        m = await cb.wait_message(g, timeout=10)
        waited = time.monotonic() - t0
        assert m["seq"] == 2 and m["content"] == "two, while held"
        assert waited >= 2.0, "released after %.1fs, before the timeout" % waited
        storm.send_sql(g, a, "three")
        await cb.wait_message(g, lambda m: m["seq"] == 3)
        assert messages(cb, g) == [2, 3]
    finally:
        await close_all(cb)
