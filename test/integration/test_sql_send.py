"""
chat_send() called by application code in its own transaction reaches the
sockets only after COMMIT, and never for a rolled-back transaction.
"""

from conftest import close_all, new_user

QUIET = 0.8   # how long "nothing arrives" is watched (>> a delivery, ~ms)


def is_msg(g):
    return lambda f: f.get("type") == "message" and f["message"]["channelId"] == str(g)


async def test_sql_send_reaches_sockets_only_after_commit(cluster):
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    ca = await cluster.client(a)
    cb = await cluster.client(b)
    app = cluster.connect(autocommit=False)
    try:
        with app.cursor() as cur:
            cur.execute("SELECT id, seq FROM chat_send(%s, %s, %s)", (g, a, "held back"))
            mid, seq = cur.fetchone()
        assert seq == 1
        # the transaction is open: nothing may arrive
        await cb.expect_none(is_msg(g), QUIET, "message of an open transaction")
        await ca.expect_none(is_msg(g), 0.05, "message of an open transaction")
        app.commit()
        for rx in (cb, ca):     # a's own socket too: it did not send it
            m = await rx.wait_message(g)
            assert m["id"] == str(mid) and m["seq"] == 1
            assert m["content"] == "held back" and m["senderId"] == a

        # several sends in one transaction arrive together, in order
        with app.cursor() as cur:
            for i in range(3):
                cur.execute("SELECT chat_send(%s, %s, %s)", (g, b, "batch %d" % i))
        await cb.expect_none(is_msg(g), QUIET / 2, "message of an open transaction")
        app.commit()
        got = [await cb.wait_message(g) for _ in range(3)]
        assert [(m["seq"], m["content"]) for m in got] == [(2, "batch 0"), (3, "batch 1"),
                                                          (4, "batch 2")]
    finally:
        app.close()
        await close_all(ca, cb)


async def test_sql_send_never_reaches_sockets_after_rollback(cluster):
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    k0 = cluster.send_sql(g, a, "committed before")
    cb = await cluster.client(b)
    app = cluster.connect(autocommit=False)
    try:
        assert cb.ready_channel(g)["lastSeq"] == 1
        with app.cursor() as cur:
            cur.execute("SELECT seq FROM chat_send(%s, %s, %s)", (g, a, "rolled back"))
            assert cur.fetchone()[0] == 2
        await cb.expect_none(is_msg(g), QUIET / 2, "message of an open transaction")
        app.rollback()
        await cb.expect_none(is_msg(g), QUIET, "message of a rolled-back transaction")

        # a rolled-back savepoint inside a committed transaction is not sent either
        with app.cursor() as cur:
            cur.execute("SAVEPOINT s")
            cur.execute("SELECT chat_send(%s, %s, %s)", (g, a, "rolled back savepoint"))
            cur.execute("ROLLBACK TO SAVEPOINT s")
            cur.execute("SELECT seq FROM chat_send(%s, %s, %s)", (g, a, "after savepoint"))
            assert cur.fetchone()[0] == 2
        app.commit()

        m = await cb.wait_message(g)
        # the next delivered message is the committed one, with the seq the
        # rolled-back ones had held
        assert m["seq"] == 2 and m["content"] == "after savepoint"
        _, seq = cluster.send_sql(g, a, "after")
        assert seq == 3
        m = await cb.wait_message(g)
        assert m["seq"] == 3 and m["content"] == "after"
        await cb.collect(0.2)
        contents = [f["message"]["content"] for f in cb.frames if is_msg(g)(f)]
        assert contents == ["after savepoint", "after"]
        assert cluster.sql("SELECT seq, content FROM chat.messages WHERE channel_id = %s "
                           "ORDER BY seq", (g,)) == [(1, "committed before"),
                                                   (2, "after savepoint"), (3, "after")]
        assert k0[1] == 1
    finally:
        app.close()
        await close_all(cb)


async def test_sql_send_to_offline_member_is_synced_later(cluster):
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    cluster.send_sql(g, a, "while b was away")
    cb = await cluster.client(b)
    try:
        info = cb.ready_channel(g)
        assert info["lastSeq"] == 1 and info["unread"] == 1 and info["lastReadSeq"] == 0
        await cb.send({"type": "sync", "channels": {str(g): 0}})
        m = await cb.wait_message(g)
        assert m["content"] == "while b was away"
        s = await cb.wait_for(lambda f: f.get("type") == "synced")
        assert s["lastSeq"] == 1
    finally:
        await close_all(cb)


async def test_bulk_sql_insert_of_long_messages_reaches_connected_member(cluster):
    """An application imports 400 messages of 3000 bytes in one transaction
    (1.2 MB, above the default 1 MB chat.max_outbound_bytes).  A connected
    member that reads its socket gets all of them, in order, and is not
    dropped as a slow consumer."""
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    cb = await cluster.client(b)
    try:
        cluster.sql("SELECT count(chat_send(%s, %s, repeat(chr(97 + i %% 26), 3000))) "
                    "FROM generate_series(1, 400) AS i", (g, a))
        seqs = []
        while len(seqs) < 400:
            m = await cb.wait_message(g, timeout=10)
            assert len(m["content"]) == 3000
            seqs.append(m["seq"])
        assert seqs == list(range(1, 401))
        assert not cb.ws.closed
    finally:
        await close_all(cb)
