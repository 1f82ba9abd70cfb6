"""
Ordering and idempotency: several concurrent senders, every stream gap-free
and strictly increasing; a repeated clientId stores nothing and returns the
first message's ack with duplicate:true, also after a reconnect.
"""
import asyncio
import threading
import uuid

from conftest import assert_gap_free, close_all, new_user

SENDERS = 4
PER_SENDER = 30
SQL_SENDS = 20


async def test_concurrent_senders_every_stream_gap_free(cluster):
    users = [new_user("s%d" % i) for i in range(SENDERS)]
    watcher = new_user("w")
    g = cluster.group(users + [watcher])
    senders = [await cluster.client(u) for u in users]
    # a receive-only device of one sender, and a receive-only member
    extra = [await cluster.client(users[0]), await cluster.client(watcher)]
    everyone = senders + extra
    for c in everyone:
        assert c.ready_channel(g)["lastSeq"] == 0
    total = SENDERS * PER_SENDER + SQL_SENDS
    try:
        async def blast(c, i):
            # pipelined: every send goes out before any ack is read
            for k in range(PER_SENDER):
                await c.send({"type": "send", "clientId": str(uuid.uuid4()),
                              "channelId": str(g), "content": "%s #%d" % (c.user, k)})
                if k % 7 == 0:
                    await asyncio.sleep(0)

        def sql_sender():
            conn = cluster.connect()
            try:
                with conn.cursor() as cur:
                    for k in range(SQL_SENDS):
                        cur.execute("SELECT chat_send(%s, %s, %s)", (g, watcher, "sql #%d" % k))
            finally:
                conn.close()

        t = threading.Thread(target=sql_sender)
        t.start()
        await asyncio.gather(*(blast(c, i) for i, c in enumerate(senders)))
        await asyncio.get_running_loop().run_in_executor(None, t.join)

        # wait until every connection has seen the whole channel
        async def drain(c):
            while len(c.seqs(g)) < total:
                await c.wait_for(lambda f: f.get("type") in ("message", "ack", "error"),
                                 timeout=15, what="more of the channel")
        await asyncio.gather(*(drain(c) for c in everyone))

        for c in everyone:
            errors = [f for f in c.frames if f.get("type") == "error"]
            assert not errors, errors
            assert_gap_free(c.seqs(g), 0, total, who="%s %s" % (c.user, c.connection_id))
        for c in senders:
            acks = [f for f in c.frames if f.get("type") == "ack"]
            assert len(acks) == PER_SENDER
            assert all(a["duplicate"] is False for a in acks)
        # the receive-only device of users[0] got that user's sends as messages
        own = [f["message"] for f in extra[0].frames if f.get("type") == "message"
               and f["message"]["senderId"] == users[0]]
        assert len(own) == PER_SENDER
        # and nobody got anything more after the head
        for c in everyone:
            await c.expect_none(lambda f: f.get("type") in ("message", "ack"), 0.2)
        rows = cluster.sql("SELECT seq FROM chat.messages WHERE channel_id = %s ORDER BY seq",
                           (g,))
        assert [r[0] for r in rows] == list(range(1, total + 1))
        # every message frame carries what the table has for that seq
        table = dict(cluster.sql("SELECT seq, content FROM chat.messages "
                                 "WHERE channel_id = %s", (g,)))
        for c in everyone:
            for f in c.frames:
                if f.get("type") == "message":
                    assert table[f["message"]["seq"]] == f["message"]["content"]
    finally:
        await close_all(*everyone)


async def test_duplicate_client_id_is_not_stored_again(cluster):
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    a1 = await cluster.client(a)
    a2 = await cluster.client(a)
    b1 = await cluster.client(b)
    try:
        cid = str(uuid.uuid4())
        first = await a1.send_message(g, "original", client_id=cid, ref="one")
        assert first["type"] == "ack" and first["duplicate"] is False and first["seq"] == 1
        m = await b1.wait_message(g)
        assert m["content"] == "original"
        await a2.wait_message(g)

        # the same clientId again, even with other content
        again = await a1.send_message(g, "changed my mind", client_id=cid, ref="two")
        assert again["type"] == "ack", again
        assert again["duplicate"] is True
        assert again["ref"] == "two"
        for k in ("clientId", "serverId", "channelId", "seq", "createdAt"):
            assert again[k] == first[k], (k, again, first)

        # nothing stored, nothing broadcast
        assert cluster.sql("SELECT count(*), min(content) FROM chat.messages "
                           "WHERE sender_id = %s AND client_id = %s", (a, cid)) == [(1, "original")]
        assert cluster.last_seq(g) == 1
        for rx in (b1, a2):
            await rx.expect_none(lambda f: f.get("type") == "message", 0.4, "rebroadcast")

        # from the sender's other device too
        dup2 = await a2.send_message(g, "original", client_id=cid)
        assert dup2["type"] == "ack" and dup2["duplicate"] is True
        assert dup2["serverId"] == first["serverId"] and dup2["seq"] == 1

        # after a reconnect
        await a1.close()
        a3 = await cluster.client(a)
        try:
            dup3 = await a3.send_message(g, "original", client_id=cid, ref=3)
            assert dup3["type"] == "ack" and dup3["duplicate"] is True, dup3
            assert dup3["serverId"] == first["serverId"] and dup3["seq"] == 1
            assert dup3["ref"] == 3
            # a new clientId is a new message, the next seq
            new = await a3.send_message(g, "second")
            assert new["type"] == "ack" and new["duplicate"] is False and new["seq"] == 2
            m = await b1.wait_message(g)
            assert m["seq"] == 2 and m["content"] == "second"
        finally:
            await a3.close()
        assert cluster.sql1("SELECT count(*) FROM chat.messages WHERE channel_id = %s",
                            (g,)) == 2
        assert cluster.sql1("SELECT count(*) FROM chat.messages WHERE client_id = %s",
                            (cid,)) == 1
    finally:
        await close_all(a1, a2, b1)


async def test_duplicate_in_one_batch(cluster):
    """The same clientId twice, pipelined (one group commit), is one message."""
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    ca = await cluster.client(a)
    cb = await cluster.client(b)
    try:
        cid = str(uuid.uuid4())
        for r in ("x", "y", "z"):
            await ca.send({"type": "send", "clientId": cid, "channelId": str(g),
                           "content": "same", "ref": r})
        acks = [await ca.wait_for(lambda f: f.get("ref") == r) for r in ("x", "y", "z")]
        assert all(k["type"] == "ack" for k in acks), acks
        assert len({k["serverId"] for k in acks}) == 1
        assert {k["seq"] for k in acks} == {1}
        assert sorted(k["duplicate"] for k in acks) == [False, True, True]
        assert cluster.sql1("SELECT count(*) FROM chat.messages WHERE channel_id = %s",
                            (g,)) == 1
        await cb.wait_message(g)
        await cb.expect_none(lambda f: f.get("type") == "message", 0.4, "second copy")
    finally:
        await close_all(ca, cb)


async def test_client_id_is_scoped_per_sender(cluster):
    """Two users may pick the same clientId: both messages are stored."""
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    ca = await cluster.client(a)
    cb = await cluster.client(b)
    try:
        cid = str(uuid.uuid4())
        ka = await ca.send_message(g, "from a", client_id=cid)
        kb = await cb.send_message(g, "from b", client_id=cid)
        assert ka["type"] == kb["type"] == "ack"
        assert ka["duplicate"] is False and kb["duplicate"] is False
        assert ka["serverId"] != kb["serverId"]
        assert sorted([ka["seq"], kb["seq"]]) == [1, 2]
    finally:
        await close_all(ca, cb)
