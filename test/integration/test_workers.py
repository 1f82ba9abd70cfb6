"""
Several workers and worker restarts: with chat.workers = 2 the clients of
one worker see the messages of the other; a SIGTERM closes a worker's
clients with 1001, the worker comes back, and the clients reconnect and
sync with nothing lost.
"""
import asyncio
import os
import signal
import uuid

import pytest

from conftest import assert_gap_free, async_wait_until, close_all, new_user, worker_only

pytestmark = worker_only("the number of workers, their restarts and the kernel's "
                         "spread over them (SO_REUSEPORT) are the server's own")


@pytest.fixture(scope="module")
def two(cluster_factory):
    return cluster_factory("two-workers", **{"chat.workers": "2"})


async def clients_on_workers(cluster, user, workers=(0, 1), tries=60):
    """Opens connections of user until one lands on each worker; closes the
    spares.  Returns {worker: client}."""
    found, spare = {}, []
    for _ in range(tries):
        c = await cluster.client(user)
        if c.worker in workers and c.worker not in found:
            found[c.worker] = c
        else:
            spare.append(c)
        if len(found) == len(workers):
            break
    await close_all(*spare)
    assert sorted(found) == sorted(workers), \
        "the kernel never put a connection on every worker: %r" % sorted(found)
    return found


def test_two_workers_in_pg_stat_activity(two):
    rows = two.sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'chat worker'")
    assert rows == [(2,)]


async def test_clients_on_different_workers_see_each_other(two):
    a, b = new_user("a"), new_user("b")
    g = two.group([a, b])
    ca = await clients_on_workers(two, a)
    cb = await clients_on_workers(two, b)
    everyone = list(ca.values()) + list(cb.values())
    try:
        assert ca[0].connection_id.startswith("0-") and ca[1].connection_id.startswith("1-")
        # worker 0 -> worker 1 and back
        k = await ca[0].send_message(g, "from worker 0")
        assert k["type"] == "ack" and k["seq"] == 1
        for rx in (cb[1], cb[0], ca[1]):
            m = await rx.wait_message(g)
            assert m["seq"] == 1 and m["content"] == "from worker 0" and m["senderId"] == a
        k = await cb[1].send_message(g, "from worker 1")
        assert k["type"] == "ack" and k["seq"] == 2
        for rx in (ca[0], ca[1], cb[0]):
            m = await rx.wait_message(g, lambda m: m["seq"] == 2)
            assert m["content"] == "from worker 1" and m["senderId"] == b

        # concurrent senders on both workers: every stream stays gap-free
        n = 25

        async def blast(c, tag):
            for i in range(n):
                await c.send({"type": "send", "clientId": str(uuid.uuid4()),
                              "channelId": str(g), "content": "%s %d" % (tag, i)})
        await asyncio.gather(blast(ca[0], "a0"), blast(cb[1], "b1"), blast(ca[1], "a1"))
        total = 2 + 3 * n

        async def drain(c):
            while len(c.seqs(g)) < total:
                await c.wait_for(lambda f: f.get("type") in ("message", "ack"), timeout=15,
                                 what="more of the channel")
        await asyncio.gather(*(drain(c) for c in everyone))
        for c in everyone:
            assert_gap_free(c.seqs(g), 0, total, who=c.connection_id)
        assert two.last_seq(g) == total
    finally:
        await close_all(*everyone)


async def test_sql_changes_reach_both_workers(two):
    a, b, c = new_user("a"), new_user("b"), new_user("c")
    g = two.group([a, b])
    cb = await clients_on_workers(two, b)
    cc = await clients_on_workers(two, c)
    try:
        two.send_sql(g, a, "from the application")
        for w in (0, 1):
            m = await cb[w].wait_message(g)
            assert m["seq"] == 1 and m["content"] == "from the application"
        # membership: c joins on both workers, then receives
        two.sql("SELECT chat_add_member(%s, %s)", (g, c))
        for w in (0, 1):
            j = await cc[w].wait_for(lambda f: f.get("type") == "joined")
            assert j["channel"]["id"] == str(g) and j["channel"]["lastSeq"] == 1
        k = await cb[0].send_message(g, "hello c")
        assert k["seq"] == 2
        for w in (0, 1):
            m = await cc[w].wait_message(g)
            assert m["seq"] == 2 and m["content"] == "hello c"
        # and leaves on both
        two.sql("SELECT chat_remove_member(%s, %s)", (g, c))
        for w in (0, 1):
            left = await cc[w].wait_for(lambda f: f.get("type") == "left")
            assert left["channelId"] == str(g)
        two.send_sql(g, a, "c is gone")
        await cb[1].wait_message(g, lambda m: m["seq"] == 3)
        for w in (0, 1):
            await cc[w].expect_none(lambda f: f.get("type") == "message", 0.3, "after left")
    finally:
        await close_all(*cb.values(), *cc.values())


async def test_sigterm_one_of_two_workers(two):
    """Only the signalled worker's clients are closed (1001); the other
    worker's keep working, and the worker comes back."""
    a, b = new_user("a"), new_user("b")
    g = two.group([a, b])
    ca = await clients_on_workers(two, a)
    cb = await clients_on_workers(two, b)
    try:
        victim = ca[1]
        pids = dict(two.sql("SELECT pid, backend_type FROM pg_stat_activity "
                            "WHERE backend_type = 'chat worker'"))
        assert len(pids) == 2
        # which pid is worker 1? bgw name is "chat worker 1" in the activity or
        # in the ps title; the pid that closes our worker-1 clients is the one
        wpid = None
        for pid in pids:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if b"chat worker 1" in f.read():
                    wpid = pid
        assert wpid is not None, "no process titled 'chat worker 1'"
        os.kill(wpid, signal.SIGTERM)
        for c in (ca[1], cb[1]):
            code = await c.wait_closed(timeout=5)
            assert code == 1001, (c.connection_id, code)
        # worker 0's clients did not notice
        k = await ca[0].send_message(g, "still here")
        assert k["type"] == "ack" and k["seq"] == 1
        m = await cb[0].wait_message(g)
        assert m["content"] == "still here"
        # worker 1 comes back (new pid) and takes connections again
        await async_wait_until(
            lambda: len(set(two.worker_pids()) - {wpid}) == 2, timeout=15,
            what="a new chat worker 1")
        back = await clients_on_workers(two, b, workers=(1,))
        try:
            await back[1].send({"type": "sync", "channels": {str(g): 0}})
            m = await back[1].wait_message(g)
            assert m["seq"] == 1 and m["content"] == "still here"
        finally:
            await close_all(*back.values())
        assert victim.ws.closed
    finally:
        await close_all(*ca.values(), *cb.values())


async def test_sigterm_closes_1001_and_clients_resync(cluster_factory):
    solo = cluster_factory("sigterm")
    a, b = new_user("a"), new_user("b")
    g = solo.group([a, b])
    ca = await solo.client(a)
    cb = await solo.client(b)
    try:
        acked = []
        for i in range(3):
            k = await ca.send_message(g, "before %d" % i)
            assert k["type"] == "ack"
            acked.append(k)
        for i in range(3):
            await cb.wait_message(g, lambda m, i=i: m["seq"] == i + 1)
        b_last = max(cb.seqs(g))
        assert b_last == 3

        [pid] = solo.worker_pids()
        # in flight at the moment of the signal: sent, ack maybe never seen
        inflight = [str(uuid.uuid4()) for _ in range(5)]
        for cid in inflight:
            await ca.send({"type": "send", "clientId": cid, "channelId": str(g),
                           "content": "inflight " + cid[:8]})
        os.kill(pid, signal.SIGTERM)
        codes = await asyncio.gather(ca.wait_closed(8), cb.wait_closed(8))
        assert codes == [1001, 1001], codes

        # while the worker is away the application keeps sending
        during = [solo.send_sql(g, a, "during restart %d" % i) for i in range(2)]

        await async_wait_until(lambda: [p for p in solo.worker_pids() if p != pid],
                               timeout=15, what="the worker to restart")
        await async_wait_until(lambda: solo.healthz() == 200, timeout=15, what="/healthz")

        # every acked message is durable
        acked_in_flight = {f["clientId"] for f in ca.frames
                           if f.get("type") == "ack" and f["clientId"] in inflight}
        rows = dict(solo.sql("SELECT client_id::text, seq FROM chat.messages "
                             "WHERE channel_id = %s", (g,)))
        for k in acked:
            assert rows[k["clientId"]] == k["seq"]
        for cid in acked_in_flight:
            assert cid in rows

        # a reconnects and retries what it never saw acked, with the same
        # clientIds: stored exactly once in every case
        ca2 = await solo.client(a)
        cb2 = None
        try:
            for cid in inflight:
                k = await ca2.send_message(g, "inflight " + cid[:8], client_id=cid)
                assert k["type"] == "ack", k
                assert k["duplicate"] is (cid in rows), (cid, k)
            counts = solo.sql("SELECT client_id::text, count(*) FROM chat.messages "
                              "WHERE client_id = ANY(%s::uuid[]) GROUP BY 1", (inflight,))
            assert sorted(counts) == sorted((cid, 1) for cid in inflight)
            total = solo.last_seq(g)
            assert total == 3 + 5 + 2

            # b reconnects and syncs from what it had: everything after it,
            # oldest first, nothing twice
            cb2 = await solo.client(b)
            assert cb2.ready_channel(g)["lastSeq"] == total
            await cb2.send({"type": "sync", "channels": {str(g): b_last}})
            synced = await cb2.wait_for(lambda f: f.get("type") == "synced", timeout=10)
            assert synced["lastSeq"] == total and synced["hasMore"] is False
            assert_gap_free(cb2.seqs(g), b_last, total, who="b after restart")
            table = dict(solo.sql("SELECT seq, content FROM chat.messages "
                                  "WHERE channel_id = %s", (g,)))
            for f in cb2.frames:
                if f.get("type") == "message":
                    assert f["message"]["content"] == table[f["message"]["seq"]]
            assert {s for _, s in during} <= set(cb2.seqs(g))
        finally:
            await close_all(ca2, cb2)
    finally:
        await close_all(ca, cb)
