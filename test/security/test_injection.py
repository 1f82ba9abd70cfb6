"""
Injection and odd input: SQL injection through every field a client
controls (content, clientId, channelId, kind, replyTo, attachments, the
message id of edit/delete, and the user id via the token's sub), NUL,
invalid UTF-8, deeply nested JSON and huge numbers in seq fields.  Each is
stored verbatim or refused cleanly (an error frame, the connection open,
nothing half-written); invalid UTF-8 in a text frame closes with 1007; the
tables stay intact and the worker never crashes.
"""
import asyncio
import time
import uuid

import pytest

from seclib import (Client, RawWs, assert_no_crash, new_user, raw_next, read_until_close,
                    start, worker_pid, ws_frame)

INJECTIONS = [
    "'; DROP TABLE chat.messages; --",
    "' OR '1'='1",
    "\\'; SELECT pg_sleep(10); --",
    "'); DELETE FROM chat.channel_members; --",
    "$$; TRUNCATE chat.channels CASCADE; $$",
    "1; UPDATE chat.messages SET content = 'pwned'",
    "\"; DROP TABLE chat.messages; --",
    "%s%s%s%n%x",
    "E'\\x27'",
    "admin'--",
    "' UNION SELECT token FROM pg_stat_activity --",
    "\\\\'\\\\\"",
    "{{7*7}}${7*7}<script>alert(1)</script>",
    "NULL",
    "\u202e\u2066 bidi \U0001F4A3",
]


@pytest.fixture(scope="module")
def odd():
    c = start("odd", **{"chat.rate_limit": "0", "chat.user_rate_limit": "0"})
    c.pid0 = worker_pid(c)
    yield c
    c.stop()


def count(cluster, channel):
    return cluster.sql1("SELECT count(*) FROM chat.messages WHERE channel_id = %s", (channel,))


async def still_works(cluster, ca, cb, g, tag="still works"):
    k = await ca.send_message(g, tag)
    assert k["type"] == "ack", k
    m = await cb.wait_message(g, lambda m: m["content"] == tag)
    assert m["seq"] == k["seq"]


async def pair(cluster):
    a, b = new_user("a"), new_user("b")
    g = cluster.group([a, b])
    return g, await cluster.client(a), await cluster.client(b)


def assert_tables_intact(cluster):
    for t in ("chat.messages", "chat.channels", "chat.channel_members"):
        assert cluster.sql1("SELECT to_regclass(%s) IS NOT NULL", (t,)), "%s is gone" % t
    assert cluster.sql1("SELECT count(*) FROM chat.messages WHERE content = 'pwned'") == 0


# --------------------------------------------------------------------------
# SQL injection
# --------------------------------------------------------------------------

async def test_injection_in_content_is_stored_verbatim(odd):
    g, ca, cb = await pair(odd)
    for s in INJECTIONS:
        t0 = time.monotonic()
        k = await ca.send_message(g, s)
        assert k["type"] == "ack", k
        assert time.monotonic() - t0 < 3, "a send took %.1fs: pg_sleep ran?" % (time.monotonic() - t0)
        assert odd.sql1("SELECT content FROM chat.messages WHERE id = %s", (k["serverId"],)) == s
        assert (await cb.wait_message(g, lambda m: m["seq"] == k["seq"]))["content"] == s
        # and through edit
        await ca.send({"type": "edit", "messageId": k["serverId"], "content": s + " (edited)",
                       "ref": "e"})
        u = await cb.wait_for(lambda f: f.get("type") == "message_updated"
                              and f["message"]["id"] == k["serverId"], timeout=5)
        assert u["message"]["content"] == s + " (edited)"
    assert count(odd, g) == len(INJECTIONS)
    assert_tables_intact(odd)
    await asyncio.gather(ca.close(), cb.close())


def _bad_fields(g):
    """(what, frame) pairs that put an injection string where an id, kind
    or number belongs."""
    out = []
    for s in INJECTIONS[:6]:
        base = {"type": "send", "clientId": str(uuid.uuid4()), "channelId": str(g),
                "content": "x"}
        out += [
            ("clientId", dict(base, clientId=s)),
            ("channelId", dict(base, channelId=s)),
            ("kind", dict(base, kind=s)),
            ("replyTo", dict(base, replyTo=s)),
            ("history.channelId", {"type": "history", "channelId": s}),
            ("history.before", {"type": "history", "channelId": str(g), "before": s}),
            ("sync key", {"type": "sync", "channels": {s: 0}}),
            ("sync value", {"type": "sync", "channels": {str(g): s}}),
            ("read.seq", {"type": "read", "channelId": str(g), "seq": s}),
            ("typing.channelId", {"type": "typing", "channelId": s}),
            ("presence.channelId", {"type": "presence", "channelId": s}),
            ("edit.messageId", {"type": "edit", "messageId": s, "content": "x"}),
            ("delete.messageId", {"type": "delete", "messageId": s}),
            ("type", {"type": s}),
        ]
    return out


async def test_injection_in_ids_kind_and_numbers_is_refused_cleanly(odd):
    g, ca, cb = await pair(odd)
    k0 = await ca.send_message(g, "the one real message")
    before = odd.sql1("SELECT count(*) FROM chat.messages")
    for i, (what, frame) in enumerate(_bad_fields(g)):
        frame["ref"] = i
        await ca.send(frame)
        f = await ca.wait_for(lambda f: f.get("ref") == i, timeout=5, what=what)
        assert f["type"] == "error" and f["code"] in ("bad_request", "not_member", "not_found"), \
            "%s = %r: %r" % (what, frame, f)
    assert odd.sql1("SELECT count(*) FROM chat.messages") == before
    assert odd.sql1("SELECT content FROM chat.messages WHERE id = %s",
                    (k0["serverId"],)) == "the one real message"
    await still_works(odd, ca, cb, g)
    assert_tables_intact(odd)
    await asyncio.gather(ca.close(), cb.close())


async def test_injection_in_attachments_is_stored_verbatim_or_refused(odd):
    g, ca, cb = await pair(odd)
    for s in INJECTIONS:
        att = [{"url": "https://files.example/" + s.replace(" ", "%20"), "name": s,
                "size": 1, "mime": "text/plain"}]
        n0 = count(odd, g)
        k = await ca.send_message(g, "with attachment", attachments=att)
        if k["type"] == "ack":
            stored = odd.sql1("SELECT attachments FROM chat.messages WHERE id = %s",
                              (k["serverId"],))
            assert stored == att, (stored, att)
            m = await cb.wait_message(g, lambda m: m["seq"] == k["seq"])
            assert m["attachments"] == att
        else:
            assert k["code"] == "bad_request", k
            assert count(odd, g) == n0
    # mime and url carrying SQL are refused or kept as text, never executed
    k = await ca.send_message(g, "mime", attachments=[{
        "url": "https://x/'; DROP TABLE chat.messages;--", "name": "n", "size": 2,
        "mime": "text/plain'; DROP TABLE chat.messages; --"}])
    assert k["type"] in ("ack", "error"), k
    assert_tables_intact(odd)
    await asyncio.gather(ca.close(), cb.close())


async def test_injection_in_the_user_id_via_sub(odd):
    peer = new_user("peer")
    subs = [s for s in INJECTIONS if len(s.encode()) <= 200] + ["x" * 200, "Ünïcödé 用户"]
    for sub in subs:
        g = odd.group([sub, peer])
        c = await Client.open(odd, sub, token=odd.token(sub))
        assert c.ready["userId"] == sub
        assert [ch["id"] for ch in c.ready["channels"]] == [str(g)]
        k = await c.send_message(g, "from " + sub)
        assert k["type"] == "ack", (sub, k)
        assert odd.sql1("SELECT sender_id FROM chat.messages WHERE id = %s",
                        (k["serverId"],)) == sub
        await c.send({"type": "presence", "channelId": str(g), "ref": "p"})
        p = await c.wait_for(lambda f: f.get("ref") == "p")
        assert sub in p["online"], p
        await c.close()
    # a sub that names another user's channel by injection sees nothing of it
    victim_g = odd.group([new_user("v1"), new_user("v2")])
    odd.send_sql(victim_g, odd.sql1("SELECT user_id FROM chat.channel_members "
                                    "WHERE channel_id = %s LIMIT 1", (victim_g,)), "secret")
    sneaky = "x' OR channel_id = '%s" % victim_g
    c = await Client.open(odd, sneaky, token=odd.token(sneaky))
    assert c.ready["channels"] == []
    await c.send({"type": "history", "channelId": str(victim_g), "ref": "h"})
    f = await c.wait_for(lambda f: f.get("ref") == "h")
    assert f["type"] == "error" and f["code"] == "not_member", f
    await c.close()
    assert_tables_intact(odd)


# --------------------------------------------------------------------------
# NUL
# --------------------------------------------------------------------------

async def test_nul_is_refused_in_every_text_field(odd):
    g, ca, cb = await pair(odd)
    k0 = await ca.send_message(g, "target")
    n0 = count(odd, g)
    base = {"type": "send", "clientId": str(uuid.uuid4()), "channelId": str(g), "content": "x"}
    cases = [
        ("content", dict(base, content="a\u0000b")),
        ("content only NUL", dict(base, content="\u0000")),
        ("kind", dict(base, kind="te\u0000xt")),
        ("clientId", dict(base, clientId=str(uuid.uuid4())[:-1] + "\u0000")),
        ("channelId", dict(base, channelId=str(g)[:-1] + "\u0000")),
        ("attachment name", dict(base, attachments=[{"url": "https://x/y", "name": "a\u0000",
                                                     "size": 1, "mime": "text/plain"}])),
        ("attachment url", dict(base, attachments=[{"url": "https://x/\u0000", "name": "a",
                                                    "size": 1, "mime": "text/plain"}])),
        ("edit content", {"type": "edit", "messageId": k0["serverId"], "content": "\u0000"}),
        ("type", {"type": "send\u0000"}),
        ("refresh token", {"type": "refresh", "token": "a\u0000b"}),
    ]
    for i, (what, frame) in enumerate(cases):
        frame = dict(frame, ref=i)
        if frame.get("type") == "send":
            frame["clientId"] = frame["clientId"] if what == "clientId" else str(uuid.uuid4())
        await ca.send(frame)
        f = await ca.wait_for(lambda f: f.get("ref") == i, timeout=5, what=what)
        assert f["type"] == "error" and f["code"] == "bad_request", (what, f)
    # a raw NUL byte (not escaped) is not JSON
    await ca.send('{"type":"ping","ref":"raw\x00nul"}')
    f = await ca.wait_for(lambda f: f.get("type") == "error", timeout=5)
    assert f["code"] == "bad_request", f
    assert count(odd, g) == n0
    assert odd.sql1("SELECT content FROM chat.messages WHERE id = %s", (k0["serverId"],)) == "target"
    await still_works(odd, ca, cb, g)
    await asyncio.gather(ca.close(), cb.close())


# --------------------------------------------------------------------------
# invalid UTF-8
# --------------------------------------------------------------------------

INVALID_UTF8 = {
    "0xff": b"\xff",
    "lone continuation": b"\x80",
    "overlong NUL": b"\xc0\x80",
    "overlong slash": b"\xe0\x80\xaf",
    "surrogate": b"\xed\xa0\x80",
    "above U+10FFFF": b"\xf4\x90\x80\x80",
    "truncated at end": b"\xe2\x82",
    "5-byte form": b"\xf8\x88\x80\x80\x80",
}


def open_raw(cluster):
    return RawWs(cluster.chat_port, cluster.token(new_user("raw")))


@pytest.mark.parametrize("what", sorted(INVALID_UTF8))
def test_invalid_utf8_in_a_text_frame_closes_1007(odd, what):
    bad = INVALID_UTF8[what]
    for payload in (bad, b'{"type":"ping","ref":"' + bad + b'"}'):
        raw = open_raw(odd)
        try:
            raw_next(raw, lambda f: f["type"] == "ready")
            raw.sock.sendall(ws_frame(0x1, payload))
            code, _ = read_until_close(raw)
            assert code == 1007, "%s (%r): close code %r" % (what, payload, code)
        finally:
            raw.close()


def test_utf8_split_across_fragments(odd):
    euro = "€".encode()
    # valid, split inside the character: accepted
    raw = open_raw(odd)
    try:
        raw_next(raw, lambda f: f["type"] == "ready")
        raw.sock.sendall(ws_frame(0x1, b'{"type":"ping","ref":"' + euro[:2], fin=False)
                         + ws_frame(0x0, euro[2:] + b'"}'))
        f = raw_next(raw, lambda f: f.get("type") == "pong")
        assert f["ref"] == "€"
    finally:
        raw.close()
    # invalid continuation in the second fragment: 1007
    raw = open_raw(odd)
    try:
        raw_next(raw, lambda f: f["type"] == "ready")
        raw.sock.sendall(ws_frame(0x1, b'{"type":"ping","ref":"' + euro[:2], fin=False)
                         + ws_frame(0x0, b'A"}'))
        code, _ = read_until_close(raw)
        assert code == 1007, code
    finally:
        raw.close()


async def test_lone_surrogate_escape_is_bad_request(odd):
    g, ca, cb = await pair(odd)
    n0 = count(odd, g)
    for text in ('{"type":"send","clientId":"%s","channelId":"%s","content":"\\ud800","ref":1}',
                 '{"type":"send","clientId":"%s","channelId":"%s","content":"\\udfff x","ref":1}'):
        await ca.send(text % (uuid.uuid4(), g))
        f = await ca.wait_for(lambda f: f.get("type") == "error", timeout=5)
        assert f["code"] == "bad_request", f
    assert count(odd, g) == n0
    await still_works(odd, ca, cb, g)
    await asyncio.gather(ca.close(), cb.close())


# --------------------------------------------------------------------------
# deeply nested JSON
# --------------------------------------------------------------------------

async def test_deeply_nested_json_is_refused_cleanly(odd):
    g, ca, cb = await pair(odd)
    n0 = count(odd, g)
    frames = {
        "top-level arrays 8000 deep": "[" * 8000 + "]" * 8000,
        "top-level arrays unclosed": "[" * 15000,
        "objects 2500 deep": '{"a":' * 2500 + "1" + "}" * 2500,
        "in ref": '{"type":"ping","ref":%s}' % ("[" * 100 + "]" * 100),
        "in attachments": ('{"type":"send","clientId":"%s","channelId":"%s","content":"x",'
                           '"attachments":%s}' % (uuid.uuid4(), g, "[" * 5000 + "]" * 5000)),
        "in content": ('{"type":"send","clientId":"%s","channelId":"%s","content":%s}'
                       % (uuid.uuid4(), g, '{"a":' * 2000 + "1" + "}" * 2000)),
        "in sync": '{"type":"sync","channels":%s}' % ('{"a":' * 2000 + "1" + "}" * 2000),
    }
    for what, text in frames.items():
        assert len(text) < 16 * 1024, what
        await ca.send(text)
        f = await ca.wait_for(lambda f: f.get("type") == "error", timeout=5, what=what)
        assert f["code"] == "bad_request", (what, f)
    # a moderately nested ref is fine and echoed
    await ca.send({"type": "ping", "ref": [[[1]]]})
    assert (await ca.wait_for(lambda f: f.get("type") == "pong"))["ref"] == [[[1]]]
    assert count(odd, g) == n0
    await still_works(odd, ca, cb, g)
    assert worker_pid(odd) == odd.pid0
    await asyncio.gather(ca.close(), cb.close())


# --------------------------------------------------------------------------
# huge numbers in seq fields
# --------------------------------------------------------------------------

HUGE = ["1e400", "-1e400", "99999999999999999999999", "9223372036854775807",
        "9223372036854775808", "-9223372036854775808", "18446744073709551616",
        "9007199254740993", "1e308", "-1", "1.5", "0.0000001", "\"5\"", "true", "null", "{}",
        "[]"]


async def test_huge_numbers_in_seq_fields(odd):
    g, ca, cb = await pair(odd)
    for i in range(3):
        await ca.send_message(g, "m%d" % i)
    last = odd.last_seq(g)
    answers = {}
    for i, num in enumerate(HUGE):
        for kind, text in (
                ("sync", '{"type":"sync","channels":{"%s":%s},"ref":"%s"}'),
                ("history.before", '{"type":"history","channelId":"%s","before":%s,"ref":"%s"}'),
                ("history.limit", '{"type":"history","channelId":"%s","limit":%s,"ref":"%s"}'),
                ("read.seq", '{"type":"read","channelId":"%s","seq":%s,"ref":"%s"}'),
                ("sync.changes", '{"type":"sync","channels":{"%s":0},"changes":{"%s":%s},'
                                 '"ref":"%s"}')):
            ref = "%s/%d" % (kind, i)
            if kind == "sync.changes":
                frame = text % (g, g, num, ref)
            else:
                frame = text % (g, num, ref)
            await cb.send(frame)
            # a ping behind it fences the answer (an unparsable frame's error
            # cannot carry the ref)
            await cb.send({"type": "ping", "ref": "fence " + ref})
            start = len(cb.frames)
            await cb.wait_for(lambda f: f.get("ref") == "fence " + ref, timeout=5, what=ref)
            got = [f for f in cb.frames[start - 1:]
                   if (f.get("ref") == ref and f.get("type") in ("error", "synced", "history"))
                   or (f.get("type") == "error" and "ref" not in f)]
            got = got or [f for f in cb.frames[-40:] if f.get("ref") == ref]
            assert len(got) == 1, (ref, got)
            f = answers[ref] = got[0]
            if f["type"] == "error":
                assert f["code"] == "bad_request", (ref, num, f)
            elif f["type"] == "synced":
                assert 0 <= f["lastSeq"] <= last, (ref, num, f)
            else:
                assert all(1 <= m["seq"] <= last for m in f["messages"]), (ref, num, f)
    # the read marker never passed the channel's end
    marker = odd.sql1("SELECT last_read_seq FROM chat.channel_members "
                      "WHERE channel_id = %s AND user_id = %s", (g, cb.user))
    assert 0 <= marker <= last, marker
    # after all that, a normal sync and live delivery still work on this
    # connection, gap-free from where the sync put it
    await cb.send({"type": "sync", "channels": {str(g): 0}, "ref": "final"})
    done = await cb.wait_for(lambda f: f.get("ref") == "final" and f["type"] == "synced")
    assert done["lastSeq"] == last
    k = await ca.send_message(g, "live after the odd numbers")
    m = await cb.wait_message(g, lambda m: m["content"] == "live after the odd numbers")
    assert m["seq"] == k["seq"] == last + 1
    assert worker_pid(odd) == odd.pid0
    await asyncio.gather(ca.close(), cb.close())


def test_odd_cluster_never_crashed(odd):
    assert worker_pid(odd) == odd.pid0
    assert_no_crash(odd)
    assert_tables_intact(odd)
