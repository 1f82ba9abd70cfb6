"""
The worker process, the ready frame, and the core path: a message sent by A
reaches B's stream and A's other device.
"""
import re
import uuid

from conftest import close_all, new_user

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$")

MESSAGE_KEYS = {"id", "channelId", "seq", "senderId", "clientId", "content", "kind",
                "replyTo", "attachments", "createdAt", "editedAt", "deletedAt"}


def test_worker_in_pg_stat_activity(cluster):
    rows = cluster.sql("SELECT backend_type, datname FROM pg_stat_activity "
                       "WHERE backend_type = 'chat worker'")
    assert len(rows) == 1, rows
    # chat.database defaults to postgres: the worker is connected there
    assert rows[0] == ("chat worker", "postgres")


async def test_ready_lists_channels(cluster):
    a, b, c = new_user("a"), new_user("b"), new_user("c")
    g = cluster.group([a, b], name="dispatch")
    d = cluster.direct(a, c)
    cluster.send_sql(g, b, "one")
    cluster.send_sql(g, b, "two")
    cluster.send_sql(g, a, "three")     # sending marks read for the sender
    cluster.send_sql(g, b, "four")

    ca = await cluster.client(a)
    try:
        r = ca.ready
        assert r["type"] == "ready"
        assert r["userId"] == a
        assert isinstance(r["connectionId"], str) and re.match(r"^\d+-\d+$", r["connectionId"])
        assert r["heartbeatMs"] == 1000          # chat.heartbeat_interval = 1s
        assert r["maxMessageBytes"] == 4096      # chat.max_message_bytes = 4kB
        assert r["typingTimeoutMs"] == 3000 and r["typingDebounceMs"] == 2000
        ids = sorted(ch["id"] for ch in r["channels"])
        assert ids == sorted([str(g), str(d)])
        gi = ca.ready_channel(g)
        assert gi["type"] == "group" and gi["name"] == "dispatch"
        assert gi["lastSeq"] == 4
        assert gi["lastReadSeq"] == 3
        assert gi["unread"] == 1
        di = ca.ready_channel(d)
        assert di["type"] == "direct" and di["lastSeq"] == 0 and di["unread"] == 0
    finally:
        await close_all(ca)


async def test_message_reaches_other_member_and_second_device(cluster):
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    a1 = await cluster.client(a)
    a2 = await cluster.client(a)
    b1 = await cluster.client(b)
    try:
        assert a1.connection_id != a2.connection_id
        cid = str(uuid.uuid4())
        ack = await a1.send_message(g, "hello from a", client_id=cid, ref="r-1")
        assert ack["type"] == "ack", ack
        assert ack["clientId"] == cid
        assert ack["channelId"] == str(g)
        assert ack["seq"] == 1
        assert ack["duplicate"] is False
        assert ack["ref"] == "r-1"
        assert UUID_RE.match(ack["serverId"])
        assert TS_RE.match(ack["createdAt"]), ack["createdAt"]

        for rx in (b1, a2):
            m = await rx.wait_message(g)
            assert set(m) == MESSAGE_KEYS, m
            assert m["id"] == ack["serverId"]
            assert m["channelId"] == str(g)
            assert m["seq"] == 1
            assert m["senderId"] == a
            assert m["clientId"] == cid
            assert m["content"] == "hello from a"
            assert m["kind"] == "text"
            assert m["replyTo"] is None and m["attachments"] is None
            assert m["editedAt"] is None and m["deletedAt"] is None
            assert m["createdAt"] == ack["createdAt"]

        # the sender's own connection gets the ack, never the message as well
        await a1.expect_none(lambda f: f.get("type") == "message", 0.5, "echo of own send")

        # the row is there, acked means committed
        row = cluster.sql("SELECT seq, sender_id, content, client_id::text "
                          "FROM chat.messages WHERE id = %s", (ack["serverId"],))
        assert row == [(1, a, "hello from a", cid)]

        # and the other way round
        ack2 = await b1.send_message(g, "hi a")
        assert ack2["type"] == "ack" and ack2["seq"] == 2
        for rx in (a1, a2):
            m = await rx.wait_message(g, lambda m: m["seq"] == 2)
            assert m["content"] == "hi a" and m["senderId"] == b
    finally:
        await close_all(a1, a2, b1)


async def test_history_newest_first(cluster):
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    for i in range(1, 8):
        cluster.send_sql(g, a if i % 2 else b, "m%d" % i)
    ca = await cluster.client(a)
    try:
        await ca.send({"type": "history", "channelId": str(g), "limit": 3, "ref": 7})
        h = await ca.wait_for(lambda f: f.get("type") == "history")
        assert h["channelId"] == str(g) and h["ref"] == 7
        assert [m["seq"] for m in h["messages"]] == [7, 6, 5]
        assert [m["content"] for m in h["messages"]] == ["m7", "m6", "m5"]
        assert h["hasMore"] is True
        await ca.send({"type": "history", "channelId": str(g), "before": 3, "limit": 50})
        h = await ca.wait_for(lambda f: f.get("type") == "history")
        assert [m["seq"] for m in h["messages"]] == [2, 1]
        assert h["hasMore"] is False
    finally:
        await close_all(ca)


async def test_content_kind_and_attachments_round_trip(cluster):
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    ca = await cluster.client(a)
    cb = await cluster.client(b)
    try:
        tricky = 'quote " backslash \\ newline \n tab \t emoji \U0001F600 \u00e9t\u00e9 <b>&amp;</b> \u2028'
        att = [{"url": "https://example.com/a.png", "name": "a.png", "size": 1234,
                "mime": "image/png"}]
        ack = await ca.send_message(g, tricky, kind="image", attachments=att)
        assert ack["type"] == "ack", ack
        m = await cb.wait_message(g)
        assert m["content"] == tricky
        assert m["kind"] == "image"
        assert m["attachments"] == att
        assert cluster.sql("SELECT content, kind, attachments FROM chat.messages WHERE id = %s",
                           (ack["serverId"],)) == [(tricky, "image", att)]
        # a NUL cannot be stored: refused, nothing half-written
        err = await ca.send_message(g, "nul \u0000 here")
        assert err["type"] == "error" and err["code"] == "bad_request", err
        assert cluster.last_seq(g) == 1
        # a user id that is not ASCII works end to end
        u = "\u00fcser-" + uuid.uuid4().hex[:6]
        cluster.sql("SELECT chat_add_member(%s, %s)", (g, u))
        cu = await cluster.client(u)
        try:
            assert cu.ready["userId"] == u and cu.ready_channel(g)["lastSeq"] == 1
            ack = await cu.send_message(g, "hi")
            m = await cb.wait_message(g, lambda m: m["seq"] == 2)
            assert m["senderId"] == u
        finally:
            await cu.close()
    finally:
        await close_all(ca, cb)
