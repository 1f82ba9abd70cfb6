"""
Reconnect and sync: a client that gives {channel: lastSeq} gets exactly the
messages after lastSeq, oldest first, then synced; more than a page (1000)
comes in pages with hasMore.
"""

from conftest import assert_gap_free, close_all, new_user, read_sync


async def test_reconnect_sync_gets_exactly_the_missed(cluster):
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    other = cluster.group([a, b])
    ca = await cluster.client(a)
    cb = await cluster.client(b)
    try:
        for i in range(3):
            k = await ca.send_message(g, "before %d" % i)
            assert k["type"] == "ack"
        seen = [(await cb.wait_message(g))["seq"] for _ in range(3)]
        assert seen == [1, 2, 3]
        last = seen[-1]
        await cb.close()

        # b is away: 4 over the socket, 2 from SQL, and traffic elsewhere
        sent = []
        for i in range(4):
            k = await ca.send_message(g, "missed %d" % i)
            sent.append((k["seq"], "missed %d" % i, k["serverId"]))
        for i in range(2):
            mid, seq = cluster.send_sql(g, a, "missed sql %d" % i)
            sent.append((seq, "missed sql %d" % i, str(mid)))
        cluster.send_sql(other, a, "elsewhere")

        cb = await cluster.client(b)
        info = cb.ready_channel(g)
        assert info["lastSeq"] == 9
        # nothing is pushed before the client asks
        await cb.expect_none(lambda f: f.get("type") == "message", 0.3, "unasked message")

        await cb.send({"type": "sync", "channels": {str(g): last}, "ref": "s1"})
        msgs, synced = await read_sync(cb, g)
        assert [(m["seq"], m["content"], m["id"]) for m in msgs] == sent
        assert all(m["channelId"] == str(g) for m in msgs)
        assert synced["channelId"] == str(g)
        assert synced["lastSeq"] == 9
        assert synced["hasMore"] is False
        assert synced.get("ref") == "s1"

        # live delivery continues from there, without repeats
        k = await ca.send_message(g, "live")
        m = await cb.wait_message(g)
        assert m["seq"] == 10 == k["seq"] and m["content"] == "live"
        assert_gap_free(cb.seqs(g), last, 10, who="b after sync")
    finally:
        await close_all(ca, cb)


async def test_sync_several_channels_and_nothing_missed(cluster):
    a, b = new_user("a"), new_user("b")
    g1, g2, g3 = cluster.group([a, b]), cluster.group([a, b]), cluster.group([a, b])
    for i in range(5):
        cluster.send_sql(g1, a, "g1-%d" % (i + 1))
    for i in range(2):
        cluster.send_sql(g2, a, "g2-%d" % (i + 1))
    cb = await cluster.client(b)
    try:
        await cb.send({"type": "sync", "channels": {str(g1): 2, str(g2): 2, str(g3): 0}})
        m1, s1 = await read_sync(cb, g1)
        assert [m["content"] for m in m1] == ["g1-3", "g1-4", "g1-5"]
        assert s1["lastSeq"] == 5 and s1["hasMore"] is False
        m2, s2 = await read_sync(cb, g2)
        assert m2 == [] and s2["lastSeq"] == 2 and s2["hasMore"] is False
        m3, s3 = await read_sync(cb, g3)
        assert m3 == [] and s3["lastSeq"] == 0 and s3["hasMore"] is False
        # a sync from 0 replays everything, oldest first
        await cb.send({"type": "sync", "channels": {str(g1): 0}})
        m1, s1 = await read_sync(cb, g1)
        assert [m["seq"] for m in m1] == [1, 2, 3, 4, 5]
        assert s1["lastSeq"] == 5
    finally:
        await close_all(cb)


async def test_sync_pages_with_has_more(cluster):
    """1100 missed messages: 1000, synced hasMore:true, then the rest; a
    live message sent between the pages is neither lost nor repeated."""
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    cluster.sql("SELECT count(chat_send(%s, %s, 'bulk ' || i)) "
                "FROM generate_series(1, 1100) AS i", (g, a))
    assert cluster.last_seq(g) == 1100
    cb = await cluster.client(b)
    ca = await cluster.client(a)
    try:
        assert cb.ready_channel(g)["lastSeq"] == 1100
        await cb.send({"type": "sync", "channels": {str(g): 0}, "ref": "p1"})
        msgs, synced = await read_sync(cb, g)
        assert [m["seq"] for m in msgs] == list(range(1, 1001))
        assert msgs[0]["content"] == "bulk 1" and msgs[-1]["content"] == "bulk 1000"
        assert synced["hasMore"] is True
        assert synced["lastSeq"] == 1000

        # a live message while b is between pages
        k = await ca.send_message(g, "live between pages")
        assert k["type"] == "ack" and k["seq"] == 1101

        await cb.send({"type": "sync", "channels": {str(g): synced["lastSeq"]}, "ref": "p2"})
        msgs, synced = await read_sync(cb, g)
        assert [m["seq"] for m in msgs] == list(range(1001, 1102))
        assert msgs[-1]["content"] == "live between pages"
        assert synced["hasMore"] is False and synced["lastSeq"] == 1101
        await cb.expect_none(lambda f: f.get("type") == "message", 0.3, "repeat")
        # the whole stream, pages and live, is gap-free from 0
        assert_gap_free(cb.seqs(g), 0, 1101, who="b")
    finally:
        await close_all(ca, cb)


async def test_sync_of_long_messages_completes(cluster):
    """A client that missed many long messages can catch up: the answer may
    come in several pages (hasMore), but it must arrive.  Here 400 messages
    of 3000 bytes (1.2 MB of content, more than the default 1 MB
    chat.max_outbound_bytes)."""
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    cluster.sql("SELECT count(chat_send(%s, %s, repeat(chr(97 + i %% 26), 3000))) "
                "FROM generate_series(1, 400) AS i", (g, a))
    cb = await cluster.client(b)
    try:
        last, rounds = 0, 0
        while True:
            rounds += 1
            assert rounds <= 400, "no progress"
            await cb.send({"type": "sync", "channels": {str(g): last}})
            msgs, synced = await read_sync(cb, g, timeout=15)
            assert [m["seq"] for m in msgs] == list(range(last + 1, synced["lastSeq"] + 1))
            assert all(len(m["content"]) == 3000 for m in msgs)
            last = synced["lastSeq"]
            if not synced["hasMore"]:
                break
        assert last == 400
    finally:
        await close_all(cb)
