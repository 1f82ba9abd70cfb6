"""
The event path (docs/architecture.md, "The event path"): committed changes
reach the workers through a ring in shared memory, never through a NOTIFY of
the application's transaction; the tables are the truth and an event is only
a hint to read them.

- A role with LOGIN and no grants can neither read user ids from, nor forge
  anything through, NOTIFY: it LISTENs on the bus channel while real traffic
  flows (chat.notify_bus = on) and forges every kind of event.
- Hints lost to an overrun of the ring (a tiny chat.event_ring_size, the
  worker stopped while commits go on) end in a re-read of every table: a
  member removed meanwhile gets "left" and nothing more of that channel, and
  every other stream is complete and gap-free.
"""
import asyncio
import os
import signal
import time
import uuid

import psycopg2
import pytest

from conftest import (assert_gap_free, async_wait_until, close_all, metrics,
                      new_user, wait_until)


@pytest.fixture(scope="module")
def bus(cluster_factory):
    return cluster_factory("bus", **{"chat.workers": "2", "chat.notify_bus": "on",
                                     "chat.typing_timeout": "'500ms'"})


@pytest.fixture(scope="module")
def tiny_ring(cluster_factory):
    return cluster_factory("tiny-ring", **{"chat.event_ring_size": "16"})


def mallory_connect(cluster):
    """A role with LOGIN and nothing granted, connected to the chat database."""
    name = "mallory_" + uuid.uuid4().hex[:8]
    cluster.sql("CREATE ROLE %s LOGIN" % name)
    c = psycopg2.connect(host=cluster.dir, port=cluster.port, user=name, dbname="postgres")
    c.autocommit = True
    return c


def forged_payloads(ch, users):
    """Every kind of event, in the text form of 1.0's NOTIFY and of the bus."""
    out = []
    for u in users:
        out += ["m:%s:999" % ch, "u:%s:1" % ch, "d:%s:1" % ch, "j:%s:%s" % (ch, u),
                "l:%s:%s" % (ch, u), "l:%s" % ch, "j:%s" % ch, "r:%s:1:%s" % (ch, u),
                "r:%s:1" % ch, "t:0:%s:600000:%s" % (ch, u), "t:1:%s:600000:%s" % (ch, u),
                "s:0:%s:%s" % (ch, u), "p:0:0:%s" % u, "p:1:0:%s" % u, "p:0:1:%s" % u, "x:"]
    return out


async def test_a_role_without_grants_reads_no_user_id_and_forges_nothing(bus):
    a, b = new_user("alice"), new_user("bob")
    g = bus.group([a, b])
    mid = bus.send_sql(g, a, "before")[0]
    ca = await bus.client(a)
    cb = await bus.client(b)
    mal = mallory_connect(bus)
    try:
        # the presence of the other connection, then quiet
        await ca.collect(0.5)
        await cb.collect(0.5)
        with mal.cursor() as cur:
            for chan in ("chat", "chat_events", "chat_bus", "chat_worker"):
                cur.execute('LISTEN "%s"' % chan)
            # the inspection function is the superuser's
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("SELECT * FROM chat._events_take()")
        # real traffic of every kind while mallory listens
        k = await ca.send_message(g, "live")
        assert k["type"] == "ack"
        await cb.wait_message(g, lambda m: m["content"] == "live")
        await cb.send({"type": "read", "channelId": str(g), "seq": k["seq"]})
        await ca.wait_for(lambda f: f.get("type") == "read" and f["userId"] == b)
        await ca.send({"type": "typing", "channelId": str(g)})
        await cb.wait_for(lambda f: f.get("type") == "typing")
        await cb.wait_for(lambda f: f.get("type") == "typing_stopped")
        bus.sql("SELECT chat_edit(%s, %s, 'edited')", (mid, a))
        await cb.wait_for(lambda f: f.get("type") == "message_updated")
        carol = new_user("carol")
        bus.sql("SELECT chat_add_member(%s, %s)", (g, carol))
        bus.sql("SELECT chat_remove_member(%s, %s)", (g, carol))

        # the bus carried hints, and none of them names a user
        got = []

        def heard():
            mal.poll()
            while mal.notifies:
                got.append(mal.notifies.pop(0))
            return any(n.payload.startswith("m:%s:" % g) for n in got)
        wait_until(heard, 10, what="the bus relays a message hint")
        wait_until(lambda: heard() and any(n.payload == "l:%s" % g for n in got), 10,
                   what="the bus relays the membership hint")
        for n in got:
            for u in (a, b, carol):
                assert u not in n.payload, "the bus named a user: %r" % n.payload
            assert "live" not in n.payload and "edited" not in n.payload

        # forge everything, many times over: nothing reaches a client, and
        # the server a client is on does not even re-read the tables (a
        # gateway believes NOTIFY chat from the bus relay alone)
        for cl in (ca, cb):
            await cl.collect(0.3)
            cl.cursor = len(cl.frames)
        resyncs = resyncs_everywhere(bus)
        with mal.cursor() as cur:
            for _ in range(100):
                for p in forged_payloads(g, (a, b)):
                    cur.execute("SELECT pg_notify(%s, %s)", ("chat", p))
        await ca.expect_none(lambda f: True, 1.5, "frame after forged events")
        await cb.expect_none(lambda f: True, 0.1, "frame after forged events")
        assert resyncs_everywhere(bus) == resyncs
        # and live delivery to b was not stopped by a forged "left"
        k = await ca.send_message(g, "after the forgery")
        assert k["type"] == "ack"
        m = await cb.wait_message(g, lambda m: m["content"] == "after the forgery")
        assert m["seq"] == k["seq"]
        assert cb.seqs(g) == list(range(2, k["seq"] + 1))
        # presence is what shared memory says, not what mallory said
        assert set(bus.sql1("SELECT array_agg(u) FROM chat_online(%s) u", (g,))) == {a, b}
    finally:
        mal.close()
        await close_all(ca, cb)


async def test_a_membership_change_is_read_for_its_channel_alone(cluster):
    """The bus names no user in a membership hint ("j:<channel>",
    "l:<channel>"), so a gateway reads that channel's members, and nothing
    else: joined and left reach the live connections of the user, and no
    server re-reads every connected user's memberships (chat_resyncs_total
    stays).  A worker hears the user from the ring: the same holds."""
    a, b, carol = new_user("a"), new_user("b"), new_user("carol")
    g = cluster.group([a, b])
    ca = await cluster.client(a)
    cc = await cluster.client(carol)
    # some other connected users, whose memberships a resync would read
    others = [await cluster.client(new_user("o")) for _ in range(3)]
    try:
        before = resyncs_everywhere(cluster)
        cluster.sql("SELECT chat_add_member(%s, %s)", (g, carol))
        j = await cc.wait_for(lambda f: f.get("type") == "joined", timeout=5)
        assert j["channel"]["id"] == str(g)
        k = await ca.send_message(g, "carol is in")
        m = await cc.wait_message(g)
        assert m["seq"] == k["seq"]
        cluster.sql("SELECT chat_remove_member(%s, %s)", (g, carol))
        left = await cc.wait_for(lambda f: f.get("type") == "left", timeout=5)
        assert left["channelId"] == str(g)
        await ca.send_message(g, "carol is out")
        await cc.expect_none(lambda f: f.get("type") == "message", 0.5, "message after left")
        assert resyncs_everywhere(cluster) == before
    finally:
        await close_all(ca, cc, *others)


def resyncs_of(port):
    """chat_resyncs_total of the server that answers on port."""
    return sum(v for (name, _), v in metrics(port).items() if name == "chat_resyncs_total")


def resyncs_everywhere(cluster, timeout=10):
    """chat_resyncs_total summed over every server a client can be on: each
    gateway, asked on its own port (through HAProxy /metrics would come from
    either), and each worker (one port for all: asked until every
    worker="N" has answered)."""
    total = sum(resyncs_of(g.port) for g in getattr(cluster, "gateways", []))
    if cluster.worker_port_used():
        want = int(cluster.settings["chat.workers"])
        seen = {}
        deadline = time.monotonic() + timeout
        while len(seen) < want and time.monotonic() < deadline:
            for (name, labels), v in metrics(cluster.worker_port).items():
                if name == "chat_resyncs_total":
                    seen[labels] = v
        assert len(seen) == want, "only %s of %d workers answered /metrics" % (sorted(seen), want)
        total += sum(seen.values())
    return total


async def seen_seq(client, channel, seq, timeout=10):
    """Waits until client has got message seq of channel, whenever it came."""
    return await client.wait_seen(
        lambda f: f.get("type") == "message" and f["message"]["channelId"] == str(channel)
        and f["message"]["seq"] == seq, timeout, "message %d of %s" % (seq, channel))


def resyncs(cluster):
    """chat_resyncs_total of the in-server worker (whose ring overruns),
    wherever the clients are: a gateway hears the removal from the bus
    relay, which did not fall behind, and needs no resync."""
    return resyncs_of(cluster.worker_port)


def worker_pid(cluster):
    pids = cluster.worker_pids()
    assert len(pids) == 1
    return pids[0]


async def test_an_overrun_of_the_ring_ends_in_a_resync_with_left(tiny_ring):
    c = tiny_ring
    a, b, carol = new_user("a"), new_user("b"), new_user("carol")
    g = c.group([a, b, carol])
    h = c.group([a, b, carol])
    cb = await c.client(b)
    cc = await c.client(carol)
    resyncs_before = resyncs(c)
    pid = worker_pid(c)
    try:
        for i in range(3):
            c.send_sql(g, a, "g%d" % i)
            c.send_sql(h, a, "h%d" % i)
        await seen_seq(cc, h, 3)
        await seen_seq(cb, g, 3)

        # The worker is stopped; the application goes on committing, one
        # transaction each, far more hints than the ring holds: the removal
        # of carol is overwritten before the worker can read it.
        os.kill(pid, signal.SIGSTOP)
        try:
            c.sql("SELECT chat_remove_member(%s, %s)", (g, carol))
            for i in range(3, 23):
                c.send_sql(g, a, "g%d" % i)
                c.send_sql(h, a, "h%d" % i)
        finally:
            os.kill(pid, signal.SIGCONT)

        left = await cc.wait_seen(lambda f: f.get("type") == "left", 10, "left")
        assert left["channelId"] == str(g)
        await seen_seq(cc, h, 23)
        await seen_seq(cb, g, 23)
        await seen_seq(cb, h, 23)
        # nothing of g after "left", even when more comes
        c.send_sql(g, a, "after")
        c.send_sql(h, a, "after")
        await seen_seq(cc, h, 24)
        await seen_seq(cb, g, 24)
        await seen_seq(cb, h, 24)
        i_left = cc.frames.index(left)
        assert not [f for f in cc.frames[i_left:] if f.get("type") == "message"
                    and f["message"]["channelId"] == str(g)]
        # every stream complete, in order, without a repeat
        assert_gap_free(cb.seqs(g), 0, 24, "b in g")
        assert_gap_free(cb.seqs(h), 0, 24, "b in h")
        assert_gap_free(cc.seqs(h), 0, 24, "carol in h")
        assert_gap_free(cc.seqs(g), 0, 3, "carol in g, until she left")
        # the resync path was taken, not a lucky read
        assert resyncs(c) > resyncs_before
        assert "event ring overrun" in c.log_text()
    finally:
        await close_all(cb, cc)
