"""
Replies and attachments (issue 4, docs/protocol.md "send", docs/sql-api.md
chat_send): replyTo must name a message of the same channel, else
bad_request; attachments are an array of at most 10 objects with exactly
url (http/https), name, size (integer >= 0) and mime (type/subtype), at most
8 kB as JSON; bad shapes are bad_request, too many or too big bad_request or
too_large; valid ones round-trip through send/ack, broadcast, sync and
history (socket and SQL).
"""
import json
import uuid

from livelib import close_all, is_type, new_user

ATT = [
    {"url": "https://files.example.com/bol.pdf", "name": "bol.pdf", "size": 52311,
     "mime": "application/pdf"},
    {"url": "http://cdn.example.com/p/load.jpg?x=1&y=2", "name": "load 7 (dock 3).jpg",
     "size": 0, "mime": "image/jpeg"},
]


async def test_reply_to_a_message_of_the_same_channel(live):
    a, b = new_user("a"), new_user("b")
    g, other = live.group([a, b]), live.group([a, b])
    ca, cb = await live.client(a), await live.client(b)
    try:
        first = await ca.send_message(g, "question")
        elsewhere = await ca.send_message(other, "in another channel")
        k = await cb.send_message(g, "answer", replyTo=first["serverId"])
        assert k["type"] == "ack", k
        m = await ca.wait_message(g, lambda m: m["seq"] == k["seq"])
        assert m["replyTo"] == first["serverId"], m
        # replying to a deleted message is allowed (docs/sql-api.md)
        live.sql("SELECT chat_delete(%s, %s)", (first["serverId"], a))
        k2 = await cb.send_message(g, "answer to the deleted", replyTo=first["serverId"])
        assert k2["type"] == "ack", k2
        # null is no reply
        k3 = await cb.send_message(g, "no reply", replyTo=None)
        assert k3["type"] == "ack", k3
        m3 = await ca.wait_message(g, lambda m: m["seq"] == k3["seq"])
        assert m3["replyTo"] is None
        last = live.last_seq(g)
        # refused: a message of another channel, an unknown id, not a uuid
        for bad in (elsewhere["serverId"], str(uuid.uuid4()), "not-a-uuid", 42):
            e = await cb.send_message(g, "bad reply", replyTo=bad)
            assert e["type"] == "error" and e["code"] == "bad_request", (bad, e)
            assert e["clientId"]
        assert live.last_seq(g) == last
        # SQL: the same rule
        rows = live.sql("SELECT reply_to FROM chat.messages WHERE id = %s", (k["serverId"],))
        assert rows == [(uuid.UUID(first["serverId"]),)]
        # sync and history carry replyTo
        await ca.send({"type": "history", "channelId": str(g), "ref": "h"})
        h = await ca.wait_for(lambda f: f.get("ref") == "h", timeout=3)
        by_seq = {m["seq"]: m for m in h["messages"]}
        assert by_seq[k["seq"]]["replyTo"] == first["serverId"]
        assert by_seq[k2["seq"]]["replyTo"] == first["serverId"]
        cs = await live.client(a)
        try:
            await cs.send({"type": "sync", "channels": {str(g): 0}, "ref": "s"})
            await cs.wait_for(is_type("synced", channelId=g), timeout=5)
            synced = {f["message"]["seq"]: f["message"] for f in cs.frames
                      if f.get("type") == "message"}
            assert synced[k["seq"]]["replyTo"] == first["serverId"], synced
        finally:
            await cs.close()
    finally:
        await close_all(ca, cb)


async def test_attachments_round_trip(live):
    a, b = new_user("a"), new_user("b")
    g = live.group([a, b])
    ca, a2, cb = await live.client(a), await live.client(a), await live.client(b)
    cs = None
    try:
        k = await ca.send_message(g, "papers", kind="file", attachments=ATT, ref="r1")
        assert k["type"] == "ack" and k["ref"] == "r1" and k["duplicate"] is False, k
        for rx in (a2, cb):
            m = await rx.wait_message(g, lambda m: m["seq"] == k["seq"])
            assert m["attachments"] == ATT, m["attachments"]
            assert m["kind"] == "file"
        stored = live.sql1("SELECT attachments FROM chat.messages WHERE id = %s", (k["serverId"],))
        assert stored == ATT, stored
        # history (socket)
        await cb.send({"type": "history", "channelId": str(g), "ref": "h"})
        h = await cb.wait_for(lambda f: f.get("ref") == "h", timeout=3)
        assert h["messages"][0]["attachments"] == ATT, h
        # sync from scratch on a new connection
        cs = await live.client(b)
        await cs.send({"type": "sync", "channels": {str(g): 0}, "ref": "s"})
        await cs.wait_for(is_type("synced", channelId=g), timeout=5)
        synced = [f["message"] for f in cs.frames if f.get("type") == "message"]
        assert [m["attachments"] for m in synced] == [ATT], synced
        # SQL history
        assert live.sql1("SELECT attachments FROM chat_history(%s)", (g,)) == ATT
        # an application's chat_send with attachments reaches the sockets alike
        live.sql("SELECT chat_send(%s, %s, %s, attachments => %s::jsonb)",
                 (g, b, "from the app", json.dumps(ATT[:1])))
        m = await ca.wait_message(g, lambda m: m["content"] == "from the app")
        assert m["attachments"] == ATT[:1], m
        # an empty array and null
        k = await ca.send_message(g, "none", attachments=None)
        assert k["type"] == "ack", k
        m = await cb.wait_message(g, lambda m: m["seq"] == k["seq"])
        assert m["attachments"] is None, m
        k = await ca.send_message(g, "empty", attachments=[])
        assert k["type"] == "ack", k
        m = await cb.wait_message(g, lambda m: m["seq"] == k["seq"])
        assert m["attachments"] in ([], None), m
        # a duplicate send repeats the ack; nothing new is stored
        again = await ca.send_message(g, "papers", client_id=live.sql1(
            "SELECT client_id FROM chat.messages WHERE channel_id = %s AND seq = 1", (g,)),
            attachments=ATT)
        assert again["type"] == "ack" and again["duplicate"] is True and again["seq"] == 1, again
    finally:
        await close_all(ca, a2, cb, cs)


def att(**over):
    a = dict(ATT[0])
    for key, v in over.items():
        if v is DROP:
            a.pop(key)
        else:
            a[key] = v
    return a


DROP = object()

BAD_SHAPES = [
    ("object, not an array", {"url": "https://x.example/a", "name": "a", "size": 1, "mime": "a/b"}),
    ("a string", "https://x.example/a"),
    ("element not an object", ["https://x.example/a"]),
    ("missing url", [att(url=DROP)]),
    ("missing name", [att(name=DROP)]),
    ("missing size", [att(size=DROP)]),
    ("missing mime", [att(mime=DROP)]),
    ("extra key", [att(extra="x")]),
    ("javascript: url", [att(url="javascript:alert(1)")]),
    ("ftp url", [att(url="ftp://files.example.com/a")]),
    ("url with a space", [att(url="https://files.example.com/a b")]),
    ("url not a string", [att(url=7)]),
    ("empty name", [att(name="")]),
    ("name not a string", [att(name=["a"])]),
    ("negative size", [att(size=-1)]),
    ("fractional size", [att(size=1.5)]),
    ("size as text", [att(size="10")]),
    ("mime without subtype", [att(mime="pdf")]),
    ("empty mime", [att(mime="")]),
    ("second element bad", [ATT[0], att(mime=None)]),
]


async def test_bad_attachments_are_bad_request(live):
    a, b = new_user("a"), new_user("b")
    g = live.group([a, b])
    ca, cb = await live.client(a), await live.client(b)
    try:
        for what, bad in BAD_SHAPES:
            e = await ca.send_message(g, "with bad attachments", attachments=bad, ref=what)
            assert e["type"] == "error" and e["code"] == "bad_request", (what, e)
            assert e["ref"] == what
        assert live.last_seq(g) == 0, "a message with bad attachments was stored"
        # the connection still works, and b saw nothing.  Bounded negative
        # wait: every refusal was answered; a stored message would have been
        # broadcast by the same worker before its ack/error.
        k = await ca.send_message(g, "fine")
        assert k["type"] == "ack" and k["seq"] == 1
        m = await cb.wait_message(g)
        assert m["seq"] == 1 and m["content"] == "fine"
        await cb.expect_none(lambda f: f.get("type") == "message", 0.2, "another message")
    finally:
        await close_all(ca, cb)


def jsonb_text_len(live, value):
    return live.sql1("SELECT octet_length(%s::jsonb::text)", (json.dumps(value),))


async def test_attachment_limits(live):
    a = new_user("a")
    g = live.group([a])
    ca = await live.client(a)
    try:
        ten = [att(name="f%d.pdf" % i) for i in range(10)]
        k = await ca.send_message(g, "ten", attachments=ten)
        assert k["type"] == "ack", k
        eleven = ten + [att(name="f10.pdf")]
        e = await ca.send_message(g, "eleven", attachments=eleven)
        assert e["type"] == "error" and e["code"] in ("bad_request", "too_large"), e
        # too big: 2 attachments of ~4.5 kB each
        big = [att(name="n" * 4500), att(name="m" * 4500)]
        e = await ca.send_message(g, "big", attachments=big)
        assert e["type"] == "error" and e["code"] in ("bad_request", "too_large"), e
        assert live.last_seq(g) == 1

        # near the 8192-byte limit: the largest set the limit allows is
        # accepted over the socket too (measured as PostgreSQL measures it,
        # jsonb text, which is what chat_send checks)
        def sized(n):
            return [att(name="x" * n)]
        n = 8192 - jsonb_text_len(live, sized(0))
        assert jsonb_text_len(live, sized(n)) == 8192
        k = await ca.send_message(g, "at the limit", attachments=sized(n))
        assert k["type"] == "ack", "attachments of exactly 8192 bytes refused: %r" % k
        e = await ca.send_message(g, "one over", attachments=sized(n + 1))
        assert e["type"] == "error" and e["code"] in ("bad_request", "too_large"), e
        # ten attachments just over the limit as jsonb text but under it as
        # compact JSON: refused, and not as `internal` (a retry cannot help)
        per = (8192 - jsonb_text_len(live, [att(name="") for _ in range(10)])) // 10 + 1
        ten_big = [att(name=("%d" % i) + "y" * (per - 1)) for i in range(10)]
        assert jsonb_text_len(live, ten_big) > 8192
        assert len(json.dumps(ten_big, separators=(",", ":"))) <= 8192
        e = await ca.send_message(g, "ten, a little too big", attachments=ten_big)
        assert e["type"] == "error" and e["code"] in ("bad_request", "too_large"), e
        assert live.last_seq(g) == 2
    finally:
        await close_all(ca)
