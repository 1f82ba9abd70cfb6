"""
The Citus tier (docs/scaling.md, "Citus tier"), collected only under
CHAT_CITUS=1 (test/citus/run): every cluster is a coordinator with two
worker nodes, the chat tables distributed on channel_id.

- Changes made through the coordinator's SQL API are heard by the
  coordinator's chat worker, although their rows are written on the nodes
  (no trigger fires on the coordinator): a message from chat_send, an edit,
  a delete, a member added and removed, a new direct channel.
- chat_send called on a worker node (as a delegated call runs) stores
  through Citus, gap-free and idempotent; the coordinator's clients get
  it with the channel's next change.
- One group commit of the worker stores sends to channels whose shards are
  on different nodes (one transaction over both, two-phase commit): all are
  acked, stored once, gap-free, and broadcast.
- A worker node is killed (pg_ctl stop -m immediate) mid-burst of
  WebSocket sends and started again: every acked message is stored once
  with the seq its ack gave, and a client that resyncs gets every channel
  gap-free.
"""
import asyncio
import os
import time
import uuid

import pytest

from conftest import (PGBIN, _as_postgres, assert_gap_free, close_all, metrics,
                      new_user, read_sync, wait_until)


def node_port(cluster, channel):
    """The port of the worker node that holds the channel's shards."""
    return cluster.sql1(
        "SELECT nodeport FROM pg_dist_shard_placement "
        "WHERE shardid = get_shard_id_for_distribution_column('chat.channels', %s)",
        (channel,))


def groups_on_both_nodes(cluster, members):
    """Two group channels of members, whose shards are on different nodes."""
    by_node = {}
    for _ in range(64):
        g = cluster.group(members)
        by_node.setdefault(node_port(cluster, g), g)
        if len(by_node) == 2:
            return by_node
    raise AssertionError("64 channels, all on one node: %r" % by_node)


async def test_changes_through_the_coordinator_reach_its_worker(cluster):
    a, b, c = new_user("a"), new_user("b"), new_user("c")
    g = cluster.group([a, b])
    assert cluster.sql1("SELECT chat._distributed()") is True
    assert cluster.sql1("SELECT count(*) FROM pg_dist_partition "
                        "WHERE logicalrelid = 'chat.messages'::regclass") == 1
    cb = await cluster.client(b)
    cc = await cluster.client(c)
    try:
        # chat_send (C) through the coordinator
        mid, seq = cluster.send_sql(g, a, "from sql")
        m = await cb.wait_message(g, lambda m: m["seq"] == seq)
        assert m["content"] == "from sql"
        # chat._send, as the worker's per-item path calls it
        cluster.sql("SELECT chat._send(%s, %s, 'from _send', gen_random_uuid(), 'text', NULL, NULL)",
                    (g, a))
        await cb.wait_message(g, lambda m: m["seq"] == seq + 1 and m["content"] == "from _send")
        # edit and delete
        cluster.sql("SELECT chat_edit(%s, %s, 'edited')", (mid, a))
        f = await cb.wait_for(lambda f: f.get("type") == "message_updated", what="message_updated")
        assert f["message"]["content"] == "edited" and f["message"]["seq"] == seq
        cluster.sql("SELECT chat_delete(%s, %s)", (mid, a))
        f = await cb.wait_for(lambda f: f.get("type") == "message_deleted", what="message_deleted")
        assert f["seq"] == seq
        # membership
        cluster.sql("SELECT chat_add_member(%s, %s)", (g, c))
        f = await cc.wait_for(lambda f: f.get("type") == "joined", what="joined")
        assert f["channel"]["id"] == str(g)
        cluster.send_sql(g, a, "for c too")
        await cc.wait_message(g, lambda m: m["content"] == "for c too")
        cluster.sql("SELECT chat_remove_member(%s, %s)", (g, c))
        f = await cc.wait_for(lambda f: f.get("type") == "left", what="left")
        assert f["channelId"] == str(g)
        # a new direct channel: both users' connections join it
        d = cluster.direct(b, c)
        assert cluster.direct(c, b) == d
        f = await cb.wait_for(lambda f: f.get("type") == "joined" and f["channel"]["id"] == str(d),
                              what="joined the direct channel")
        assert cluster.sql1("SELECT count(*) FROM chat.direct_pairs WHERE channel_id = %s", (d,)) == 1
    finally:
        await close_all(cb, cc)


async def test_chat_send_on_a_worker_node(cluster):
    """On a worker node chat's tables are the node's own extension tables,
    which Citus treats as the coordinator's distributed ones: chat_send
    there takes the Citus path (before, Citus refused its statements), so a
    call Citus delegates to the channel's node works.  Its hint lands on
    that node; the node's bus relay and the coordinator's node relay bring it
    to the coordinator's workers, whose clients get it live, in order, as
    they get a membership change made on a node (docs/scaling.md)."""
    a, b, c = new_user("na"), new_user("nb"), new_user("nc")
    g = cluster.group([a, b])
    cb = await cluster.client(b)
    cc = await cluster.client(c)
    try:
        for node in cluster.nodes:
            assert node.sql1("SELECT chat._distributed()") is True, node.name
        relay_listening(cluster)
        holder = next(n for n in cluster.nodes if n.port == node_port(cluster, g))
        other = next(n for n in cluster.nodes if n is not holder)
        sent = []
        for node in (holder, other):
            cid = str(uuid.uuid4())
            row = node.sql("SELECT id, seq FROM chat_send(%s, %s, %s, %s)",
                           (g, a, "on " + node.name, cid))[0]
            again = node.sql("SELECT id, seq FROM chat_send(%s, %s, %s, %s)",
                             (g, a, "on " + node.name, cid))[0]
            assert again == row, (again, row)           # idempotent there too
            sent.append(row)
            # live: nothing else happens on the coordinator meanwhile
            m = await cb.wait_message(g, lambda m, s=row[1]: m["seq"] == s)
            assert m["content"] == "on " + node.name
        assert [s for _, s in sent] == [1, 2], sent
        assert cluster.sql("SELECT seq, content FROM chat.messages WHERE channel_id = %s "
                           "ORDER BY seq", (g,)) == [(1, "on " + holder.name),
                                                     (2, "on " + other.name)]
        assert cluster.sql1("SELECT last_seq FROM chat.channels WHERE id = %s", (g,)) == 2
        assert cb.seqs(g) == [1, 2], cb.seqs(g)
        # a member added on a node joins, live
        other.sql("SELECT chat_add_member(%s, %s)", (g, c))
        j = await cc.wait_for(lambda f: f.get("type") == "joined", timeout=10)
        assert j["channel"]["id"] == str(g)
    finally:
        await close_all(cb, cc)


async def test_the_coordinator_believes_only_a_nodes_bus_relay(cluster):
    """Any role may NOTIFY chat on a node: the coordinator's node relay
    passes on only what the node's bus relay sent (a forged "x:" would make
    every worker re-read every table)."""
    a, b = new_user("fa"), new_user("fb")
    g = cluster.group([a, b])
    cb = await cluster.client(b)
    try:
        node = cluster.nodes[0]
        relay_listening(cluster)
        node.sql("SELECT chat_send(%s, %s, 'before')", (g, a))
        await cb.wait_message(g, lambda m: m["seq"] == 1)
        before = worker_resyncs(cluster)
        for _ in range(20):
            node.sql("SELECT pg_notify('chat', 'x:')")
        node.sql("SELECT chat_send(%s, %s, 'after')", (g, a))
        await cb.wait_message(g, lambda m: m["seq"] == 2)
        assert worker_resyncs(cluster) == before
        assert "chat node relay: listening on node" in cluster.log_text()
    finally:
        await close_all(cb)


@pytest.fixture(scope="module")
def delegated(cluster_factory):
    """A Citus cluster whose chat_send Citus delegates to the channel's node."""
    c = cluster_factory("delegated")
    c.sql("SELECT create_distributed_function("
          "'chat_send(uuid,text,text,uuid,text,uuid,jsonb)', 'channel', "
          "colocate_with := 'chat.channels')")
    return c


async def test_a_delegated_chat_send_is_heard_live(delegated):
    """With the relays, a call Citus hands to the channel's node is heard by
    the coordinator's workers like one it ran itself (bench/citus/run
    measures delegation against plain routing)."""
    c = delegated
    a, b = new_user("da"), new_user("db")
    g = c.group([a, b])
    cb = await c.client(b)
    try:
        relay_listening(c)
        args = (g, a, "delegated", str(uuid.uuid4()), "text", None, None)
        sql = "SELECT seq FROM chat_send(%s, %s, %s, %s, %s, %s, %s)"
        plan = "\n".join(r[0] for r in c.sql("EXPLAIN (VERBOSE) " + sql, args))
        assert "chat_send(" in plan and "Task Count: 1" in plan, plan  # pushed down
        seqs = [c.sql(sql, (g, a, "delegated %d" % i, str(uuid.uuid4()), "text", None, None))[0][0]
                for i in range(5)]
        assert seqs == [1, 2, 3, 4, 5], seqs
        for s in seqs:
            await cb.wait_message(g, lambda m, s=s: m["seq"] == s)
        assert cb.seqs(g) == seqs
    finally:
        await close_all(cb)


def relay_listening(cluster):
    """Waits until the coordinator's node relay is connected to every node
    (it LISTENs before it shows there, and resyncs right after)."""
    for node in cluster.nodes:
        wait_until(lambda node=node: node.sql1(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'chat node relay'") == 1,
            30, what="the coordinator's node relay on %s" % node.name)


def worker_resyncs(cluster):
    return sum(v for (name, _), v in metrics(cluster.worker_port).items()
               if name == "chat_resyncs_total")


async def test_one_batch_over_both_nodes(cluster):
    s, r = new_user("s"), new_user("r")
    by_node = groups_on_both_nodes(cluster, [s, r])
    g1, g2 = by_node.values()
    cs = await cluster.client(s)
    cr = await cluster.client(r)
    n = 40
    try:
        # sent without waiting, alternating: the worker's batches hold both
        ids = {}
        for i in range(n):
            for g in (g1, g2):
                cid = str(uuid.uuid4())
                ids[cid] = g
                await cs.send({"type": "send", "clientId": cid, "channelId": str(g),
                               "content": "m%d" % i})
        acks = {}
        while len(acks) < len(ids):
            f = await cs.wait_for(lambda f: f.get("type") in ("ack", "error"), timeout=20,
                                  what="acks")
            assert f["type"] == "ack", f
            acks[f["clientId"]] = f["seq"]
        def got(g):
            return [f["message"]["seq"] for f in cr.frames
                    if f.get("type") == "message" and f["message"]["channelId"] == str(g)]
        deadline = time.monotonic() + 20
        while any(len(got(g)) < n for g in (g1, g2)) and time.monotonic() < deadline:
            await cr.collect(0.2)
        for g in (g1, g2):
            seqs = sorted(acks[c] for c, ch in ids.items() if ch == g)
            assert_gap_free(seqs, 0, n, "acks of %s" % g)
            assert_gap_free(got(g), 0, n, "reader of %s" % g)
            rows = cluster.sql("SELECT count(*), count(DISTINCT client_id), min(seq), max(seq) "
                               "FROM chat.messages WHERE channel_id = %s", (g,))[0]
            assert rows == (n, n, 1, n), rows
    finally:
        await close_all(cs, cr)


def pg_ctl(node, *args):
    r = _as_postgres([os.path.join(PGBIN, "pg_ctl"), "-D", node.data, "-l", node.log, "-w",
                      "-t", "60"] + list(args), capture_output=True, text=True)
    assert r.returncode == 0, "pg_ctl %s: %s%s" % (" ".join(args), r.stdout, r.stderr)


@pytest.fixture(scope="module")
def fault(cluster_factory):
    # a dead node fails fast, and an interrupted two-phase commit is
    # finished within a second of the node's return
    return cluster_factory("fault", **{"citus.recover_2pc_interval": "'1s'",
                                       "citus.node_connection_timeout": "'2s'"})


async def test_a_worker_node_killed_mid_burst(fault):
    cluster = fault
    s, r = new_user("s"), new_user("r")
    by_node = groups_on_both_nodes(cluster, [s, r])
    victim = next(nd for nd in cluster.nodes if nd.port in by_node)
    cs = await cluster.client(s)
    cr = await cluster.client(r)
    n = 60
    acked = {}          # clientId -> (channel, seq)
    errors = 0
    killed = restarted = False
    try:
        pending = []
        for i in range(n):
            for g in by_node.values():
                pending.append((str(uuid.uuid4()), g, "m%d" % i))
        deadline = time.monotonic() + 75
        # in flight at most 8 at a time; an error or a silence re-sends the
        # same clientId (what a client does), until acked
        inflight = {}
        while pending or inflight:
            assert time.monotonic() < deadline, "not all acked: %d left, %d errors" % (
                len(pending) + len(inflight), errors)
            while pending and len(inflight) < 8:
                cid, g, text = pending.pop(0)
                inflight[cid] = (g, text, time.monotonic())
                await cs.send({"type": "send", "clientId": cid, "channelId": str(g),
                               "content": text})
            try:
                f = await cs.wait_for(lambda f: f.get("type") in ("ack", "error"), timeout=1)
            except AssertionError:
                f = None
            if f is not None and f.get("clientId") in inflight:
                cid = f["clientId"]
                g, text, _ = inflight.pop(cid)
                if f["type"] == "ack":
                    assert cid not in acked or acked[cid] == (g, f["seq"]), (cid, f)
                    acked[cid] = (g, f["seq"])
                else:
                    errors += 1
                    pending.insert(0, (cid, g, text))
            for cid, (g, text, t) in list(inflight.items()):
                if time.monotonic() - t > 8:        # no answer: send again
                    del inflight[cid]
                    pending.insert(0, (cid, g, text))
            if not killed and len(acked) >= 30:
                pg_ctl(victim, "stop", "-m", "immediate")
                killed, t_kill = True, time.monotonic()
            if killed and not restarted and time.monotonic() - t_kill > 1.5:
                pg_ctl(victim, "start")
                restarted = True
        assert killed and restarted
        assert errors > 0, "the node's death went unnoticed: the test proved nothing"

        # every acked message stored once, with its acked seq (an interrupted
        # two-phase commit is finished by Citus's recovery)
        def stored():
            rows = cluster.sql("SELECT client_id::text, channel_id, seq FROM chat.messages "
                               "WHERE channel_id = ANY(%s)", (list(by_node.values()),))
            return rows if len(rows) == 2 * n else None
        rows = wait_until(stored, 30, what="all %d messages stored" % (2 * n))
        got = {cid: (ch, seq) for cid, ch, seq in rows}
        assert len(got) == len(rows) == len(acked) == 2 * n
        assert got == acked
        for g in by_node.values():
            assert_gap_free(sorted(seq for ch, seq in got.values() if ch == g), 0, n, str(g))
            assert cluster.last_seq(g) == n

        # the reader's live stream has no gap as far as it goes, and a
        # sync from its end brings the rest
        for g in by_node.values():
            live = [f["message"]["seq"] for f in cr.frames
                    if f.get("type") == "message" and f["message"]["channelId"] == str(g)]
            assert_gap_free(live, 0, len(live), "live stream of %s" % g)
            await cr.send({"type": "sync", "channels": {str(g): len(live)}})
            msgs, synced = await read_sync(cr, g, timeout=15)
            assert_gap_free(live + [m["seq"] for m in msgs], 0, n, "resync of %s" % g)
            assert synced["lastSeq"] == n
    finally:
        if killed and not restarted:
            pg_ctl(victim, "start")
        await close_all(cs, cr)
