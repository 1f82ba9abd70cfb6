"""
Bad client frames cost one error frame and keep the connection usable; an
oversized WebSocket message closes it with 1009; a query that fails inside
the worker costs one error frame, not the connection or the batch.
"""
import asyncio
import json
import uuid

import pytest
import websockets

from conftest import RawWs, close_all, new_user

MAX_MESSAGE = 4096    # chat.max_message_bytes of the default cluster
MAX_FRAME = 16384     # chat.max_frame_bytes of the default cluster


async def still_usable(client, channel, peer=None):
    """The connection still sends and receives: a real message round trip."""
    text = "still alive " + uuid.uuid4().hex[:6]
    ack = await client.send_message(channel, text)
    assert ack["type"] == "ack", ack
    if peer is not None:
        m = await peer.wait_message(channel, lambda m: m["seq"] == ack["seq"])
        assert m["content"] == text
    return ack


def is_error(f):
    return f.get("type") == "error"


@pytest.fixture
def pair(cluster):
    a, b = new_user("a"), new_user("b")
    return a, b, cluster.group([a, b])


MALFORMED = [
    # (label, frame text, ref expected back)
    ("not_json", "hello there", None),
    ("truncated_json", '{"type":"send",', None),
    ("json_array", '["send"]', None),
    ("json_string", '"send"', None),
    ("no_type", '{"ref":"r-notype","channelId":"00000000-0000-0000-0000-000000000000"}',
     "r-notype"),
    ("unknown_type", '{"type":"shout","ref":"r-unknown"}', "r-unknown"),
    ("send_without_content",
     '{"type":"send","ref":"r-nocontent","clientId":"%s","channelId":"%s"}', "r-nocontent"),
    ("send_bad_client_id",
     '{"type":"send","ref":{"n":1},"clientId":"nope","channelId":"%s","content":"x"}',
     {"n": 1}),
    ("send_empty_content",
     '{"type":"send","ref":42,"clientId":"%s","channelId":"%s","content":""}', 42),
    ("send_content_not_string",
     '{"type":"send","ref":"r-num","clientId":"%s","channelId":"%s","content":5}', "r-num"),
    ("history_bad_limit", '{"type":"history","ref":"r-lim","channelId":"%s","limit":0}',
     "r-lim"),
    ("sync_bad_seq", '{"type":"sync","ref":"r-sync","channels":{"%s":-1}}', "r-sync"),
    ("duplicate_keys", '{"type":"ping","type":"ping","ref":"r-dup"}', None),
]


@pytest.mark.parametrize("label,text,ref", MALFORMED, ids=[m[0] for m in MALFORMED])
async def test_malformed_frame_gets_bad_request(cluster, pair, label, text, ref):
    a, b, g = pair
    ca = await cluster.client(a)
    cb = await cluster.client(b)
    try:
        n = text.count("%s")
        args = {0: (), 1: (str(g),), 2: (str(uuid.uuid4()), str(g))}[n]
        await ca.send(text % args if n else text)
        err = await ca.wait_for(is_error, what="error frame")
        assert err["code"] == "bad_request", err
        assert isinstance(err["message"], str) and err["message"], err
        if ref is not None:
            assert err.get("ref") == ref, err
        # nothing was stored or broadcast
        assert cluster.last_seq(g) == 0
        await still_usable(ca, g, cb)
        assert cluster.last_seq(g) == 1
    finally:
        await close_all(ca, cb)


async def test_error_echoes_client_id_and_ref(cluster, pair):
    a, _, g = pair
    ca = await cluster.client(a)
    try:
        cid = str(uuid.uuid4())
        await ca.send({"type": "send", "clientId": cid, "channelId": str(g),
                       "content": "x", "kind": "NOT A KIND", "ref": ["r", 1]})
        err = await ca.wait_for(is_error)
        assert err["code"] == "bad_request"
        assert err["clientId"] == cid
        assert err["ref"] == ["r", 1]
        assert cluster.sql1("SELECT count(*) FROM chat.messages WHERE client_id = %s",
                            (cid,)) == 0
    finally:
        await close_all(ca)


async def test_binary_frame_gets_bad_request(cluster, pair):
    a, b, g = pair
    ca = await cluster.client(a)
    cb = await cluster.client(b)
    try:
        await ca.ws.send(b'{"type":"ping","ref":"bin"}')
        err = await ca.wait_for(is_error)
        assert err["code"] == "bad_request", err
        await ca.ws.send(b"\x00\x01\x02\xff")
        err = await ca.wait_for(is_error)
        assert err["code"] == "bad_request", err
        await still_usable(ca, g, cb)
    finally:
        await close_all(ca, cb)


async def test_many_bad_frames_in_a_row(cluster, pair):
    """Bad frames pipelined with good ones: one error each, every good one
    answered, in order."""
    a, b, g = pair
    ca = await cluster.client(a)
    cb = await cluster.client(b)
    try:
        cids = [str(uuid.uuid4()) for _ in range(5)]
        for i, cid in enumerate(cids):
            await ca.send("garbage %d" % i)
            await ca.send({"type": "send", "clientId": cid, "channelId": str(g),
                           "content": "good %d" % i, "ref": i})
        acks = []
        errors = 0
        while len(acks) < len(cids):
            f = await ca.wait_for(lambda f: f.get("type") in ("ack", "error"))
            if f["type"] == "error":
                assert f["code"] == "bad_request", f
                errors += 1
            else:
                acks.append(f)
        assert [x["clientId"] for x in acks] == cids
        assert [x["ref"] for x in acks] == list(range(5))
        assert [x["seq"] for x in acks] == [1, 2, 3, 4, 5]
        errors += len([f for f in await ca.collect(0.3) if is_error(f)])
        assert errors == 5
        got = [(await cb.wait_message(g))["content"] for _ in range(5)]
        assert got == ["good %d" % i for i in range(5)]
    finally:
        await close_all(ca, cb)


async def test_content_over_max_message_bytes_is_too_large(cluster, pair):
    a, b, g = pair
    ca = await cluster.client(a)
    cb = await cluster.client(b)
    try:
        assert ca.ready["maxMessageBytes"] == MAX_MESSAGE
        cid = str(uuid.uuid4())
        # over max_message_bytes, well under max_frame_bytes
        err = await ca.send_message(g, "x" * (MAX_MESSAGE + 1), client_id=cid, ref="big")
        assert err["type"] == "error" and err["code"] == "too_large", err
        assert err["ref"] == "big" and err["clientId"] == cid
        # multi-byte characters count as bytes: 1366 * 3 bytes > 4096
        err = await ca.send_message(g, "\u20ac" * 1366)
        assert err["type"] == "error" and err["code"] == "too_large", err
        # exactly at the limit is fine
        ack = await ca.send_message(g, "y" * MAX_MESSAGE)
        assert ack["type"] == "ack" and ack["seq"] == 1, ack
        m = await cb.wait_message(g)
        assert m["content"] == "y" * MAX_MESSAGE
        assert cluster.sql1("SELECT count(*) FROM chat.messages WHERE channel_id = %s",
                            (g,)) == 1
        await still_usable(ca, g, cb)
    finally:
        await close_all(ca, cb)


async def test_oversized_frame_closes_with_1009(cluster, pair):
    a, b, g = pair
    ca = await cluster.client(a)
    cb = await cluster.client(b)
    try:
        await ca.send("x" * (MAX_FRAME + 1))
        code = await ca.wait_closed(timeout=5)
        assert code == 1009, code
        # only that connection: the other one still works
        await still_usable(cb, g)
    finally:
        await close_all(ca, cb)


async def test_oversized_fragmented_message_closes_with_1009(cluster, pair):
    """The limit is on the whole message, all its fragments together; and
    the client must learn the 1009 even while it is still sending the rest
    of the message (1 MB in 128 fragments of 8 kB, each under the limit)."""
    a, _, g = pair
    ca = await cluster.client(a)
    try:
        try:
            await ca.ws.send(["y" * 8192] * 128)
        except websockets.ConnectionClosed:
            pass      # the server may close before the last fragment is out
        code = await ca.wait_closed(timeout=5)
        assert code == 1009, ("close code seen by the client", code, ca.ws.close_reason)
    finally:
        await close_all(ca)


async def test_frame_just_under_limit_is_parsed(cluster, pair):
    """A frame under max_frame_bytes whose content is over max_message_bytes
    gets too_large, not a close."""
    a, _, g = pair
    ca = await cluster.client(a)
    try:
        err = await ca.send_message(g, "z" * (MAX_FRAME - 300))
        assert err["type"] == "error" and err["code"] == "too_large", err
        await still_usable(ca, g)
    finally:
        await close_all(ca)


async def test_failing_query_costs_one_error_frame(cluster):
    """replyTo naming a message of another channel fails inside chat_send;
    the sender gets bad_request, a good send in the same moment is stored,
    and the connection stays open."""
    a, b = new_user("a"), new_user("b")
    g1 = cluster.group([a, b])
    g2 = cluster.group([a, b])
    other_id, _ = cluster.send_sql(g2, b, "in the other channel")
    ca = await cluster.client(a)
    cb = await cluster.client(b)
    try:
        bad, good = str(uuid.uuid4()), str(uuid.uuid4())
        # pipelined, so that both usually land in one group-commit batch
        await ca.send({"type": "send", "clientId": bad, "channelId": str(g1),
                       "content": "bad reply", "replyTo": str(other_id), "ref": "bad"})
        await ca.send({"type": "send", "clientId": good, "channelId": str(g1),
                       "content": "good one", "ref": "good"})
        e = await ca.wait_for(lambda f: f.get("clientId") == bad)
        assert e["type"] == "error" and e["code"] == "bad_request", e
        assert e["ref"] == "bad"
        k = await ca.wait_for(lambda f: f.get("clientId") == good)
        assert k["type"] == "ack" and k["seq"] == 1, k
        assert cluster.sql("SELECT client_id::text, seq FROM chat.messages "
                           "WHERE channel_id = %s", (g1,)) == [(good, 1)]
        m = await cb.wait_message(g1)
        assert m["content"] == "good one" and m["seq"] == 1
        await cb.expect_none(lambda f: f.get("type") == "message"
                             and f["message"]["channelId"] == str(g1)
                             and f["message"]["seq"] != 1, 0.3)
        # a reply to a message of the same channel works
        ack = await ca.send_message(g1, "good reply", replyTo=k["serverId"])
        assert ack["type"] == "ack" and ack["seq"] == 2, ack
        m = await cb.wait_message(g1, lambda m: m["seq"] == 2)
        assert m["replyTo"] == k["serverId"]
    finally:
        await close_all(ca, cb)


async def test_unknown_channel_and_message(cluster):
    a = new_user("a")
    mine = cluster.group([a])
    ca = await cluster.client(a)
    try:
        nowhere = str(uuid.uuid4())
        err = await ca.send_message(nowhere, "into the void", ref="void")
        assert err["type"] == "error" and err["code"] in ("not_member", "not_found"), err
        assert err["ref"] == "void"
        await ca.send({"type": "edit", "messageId": str(uuid.uuid4()), "content": "x",
                       "ref": "edit"})
        err = await ca.wait_for(is_error)
        assert err["code"] == "not_found" and err["ref"] == "edit", err
        await still_usable(ca, mine)
    finally:
        await close_all(ca)


def test_ping_frame_answer_is_exact(cluster):
    """The application-level ping is answered with exactly {"type":"pong"}
    (plus ref): a valid UTF-8 text frame holding nothing else."""
    ws = RawWs(cluster.chat_port, cluster.token(new_user("p")))
    try:
        op, payload = ws.read_frame()
        assert op == 0x1
        for ref, expected in (("alive", b'{"type":"pong","ref":"alive"}'),
                              (None, b'{"type":"pong"}'),
                              ({"k": [1, 2]}, b'{"type":"pong","ref":{"k":[1,2]}}')):
            frame = {"type": "ping"}
            if ref is not None:
                frame["ref"] = ref
            ws.send_frame(0x1, json.dumps(frame).encode())
            while True:
                op, payload = ws.read_frame(timeout=5)
                if op == 0x9:
                    ws.send_frame(0xA, payload)
                    continue
                break
            assert op == 0x1
            assert payload == expected, payload[:200]
    finally:
        ws.close()


VIOLATIONS = [
    ("unmasked_frame", dict(opcode=0x1, payload=b'{"type":"ping"}', masked=False), 1002),
    ("invalid_utf8_text", dict(opcode=0x1, payload=b'{"type":"\xff\xfe"}'), 1007),
    ("reserved_opcode", dict(opcode=0x3, payload=b"x"), 1002),
    ("orphan_continuation", dict(opcode=0x0, payload=b"x"), 1002),
    ("fragmented_ping", dict(opcode=0x9, payload=b"x", fin=False), 1002),
    ("ping_over_125_bytes", dict(opcode=0x9, payload=b"x" * 126), 1002),
]


@pytest.mark.parametrize("label,frame,code", VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_protocol_violation_closes_with_rfc6455_code(cluster, label, frame, code):
    a = new_user("v")
    g = cluster.group([a])
    ws = RawWs(cluster.chat_port, cluster.token(a))
    other = RawWs(cluster.chat_port, cluster.token(a))
    try:
        assert ws.read_frame()[0] == 0x1
        assert other.read_frame()[0] == 0x1
        ws.send_frame(**frame)
        assert ws.close_code() == code, label
        # the same user's other connection is untouched
        other.send_frame(0x1, json.dumps({"type": "send", "clientId": str(uuid.uuid4()),
                                          "channelId": str(g), "content": "ok",
                                          "ref": "after"}).encode())
        while True:
            op, payload = other.read_frame(timeout=5)
            if op == 0x9:
                other.send_frame(0xA, payload)
            elif op == 0x1 and json.loads(payload).get("ref") == "after":
                assert json.loads(payload)["type"] == "ack"
                break
    finally:
        ws.close()
        other.close()


async def test_websocket_ping_is_answered(cluster):
    ca = await cluster.client(new_user("p"))
    try:
        waiter = await ca.ws.ping(b"are you there")
        await asyncio.wait_for(waiter, 3)
    finally:
        await close_all(ca)


async def test_statement_timeout_costs_one_internal_error(cluster):
    """A send stuck behind an application's lock for longer than
    chat.statement_timeout (2s here) gets `internal`; nothing is stored, the
    connection stays, the worker serves others again, and a retry with the
    same clientId succeeds once the lock is gone."""
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    other = cluster.group([a, b])
    ca = await cluster.client(a)
    cb = await cluster.client(b)
    app = cluster.connect(autocommit=False)
    try:
        with app.cursor() as cur:
            cur.execute("SELECT 1 FROM chat.channels WHERE id = %s FOR UPDATE", (g,))
        cid = str(uuid.uuid4())
        # the optimistic batch and its isolated retry may each take the timeout
        err = await ca.send_message(g, "stuck", client_id=cid, ref="stuck", timeout=8)
        assert err["type"] == "error" and err["code"] == "internal", err
        assert err["clientId"] == cid and err["ref"] == "stuck"
        assert cluster.sql1("SELECT count(*) FROM chat.messages WHERE client_id = %s",
                            (cid,)) == 0
        # the worker is free again: another channel works while the lock is held
        k = await cb.send_message(other, "elsewhere")
        assert k["type"] == "ack" and k["seq"] == 1
        app.rollback()
        k = await ca.send_message(g, "stuck", client_id=cid, ref="retry")
        assert k["type"] == "ack" and k["duplicate"] is False and k["seq"] == 1, k
        m = await cb.wait_message(g)
        assert m["clientId"] == cid
    finally:
        app.close()
        await close_all(ca, cb)
