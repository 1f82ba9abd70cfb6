"""
Read receipts and unread counts (issue 4, docs/protocol.md "read",
docs/sql-api.md chat_mark_read / chat_unread): a read frame advances the
marker and is broadcast as read to every member's connections (the
reader's too), also when the marker moves through SQL chat_mark_read; it
never moves backwards and never passes the channel's lastSeq; ready gives
the exact unread count to a user who was offline; sending marks the
channel read for the sender.
"""
import uuid

import psycopg2

from livelib import close_all, error_for, is_type, new_user


def read_of(channel, user):
    return is_type("read", channelId=channel, userId=user)


def marker(live, channel, user):
    return live.sql1("SELECT last_read_seq FROM chat.channel_members "
                     "WHERE channel_id = %s AND user_id = %s", (channel, user))


async def test_read_frame_reaches_every_member(live):
    a, b, c = new_user("a"), new_user("b"), new_user("c")
    g = live.group([a, b, c])
    for i in range(5):
        live.send_sql(g, c, "m%d" % i)
    a1, a2 = await live.client(a), await live.client(a)
    cb, cc = await live.client(b), await live.client(c)
    try:
        await a1.send({"type": "read", "channelId": str(g), "seq": 3})
        for rx in (a1, a2, cb, cc):
            f = await rx.wait_for(read_of(g, a), timeout=3, what="a's read receipt")
            assert f == {"type": "read", "channelId": str(g), "userId": a, "seq": 3}, f
        assert marker(live, g, a) == 3
        # b's unread view of a does not matter; a's own count follows
        assert dict(live.sql("SELECT channel_id, unread FROM chat_unread(%s)", (a,)))[g] == 2
    finally:
        await close_all(a1, a2, cb, cc)


async def test_read_never_moves_backwards_nor_past_last_seq(live):
    a, b = new_user("a"), new_user("b")
    g = live.group([a, b])
    for i in range(6):
        live.send_sql(g, b, "m%d" % i)
    ca, cb = await live.client(a), await live.client(b)
    try:
        await ca.send({"type": "read", "channelId": str(g), "seq": 4})
        f = await cb.wait_for(read_of(g, a), timeout=3)
        assert f["seq"] == 4, f
        # lower: the stored value stays, and the receipt says the stored value
        await ca.send({"type": "read", "channelId": str(g), "seq": 2})
        f = await cb.wait_for(read_of(g, a), timeout=3)
        assert f["seq"] == 4, "a lower read moved the broadcast marker back: %r" % f
        assert marker(live, g, a) == 4
        # past the channel's lastSeq (6): clamped
        await ca.send({"type": "read", "channelId": str(g), "seq": 1000})
        f = await cb.wait_for(read_of(g, a), timeout=3)
        assert f["seq"] == 6, "read past lastSeq not clamped: %r" % f
        assert marker(live, g, a) == 6
        # a new message: the marker may advance again to it
        live.send_sql(g, b, "m6")
        await ca.wait_message(g, lambda m: m["seq"] == 7)
        await ca.send({"type": "read", "channelId": str(g), "seq": 7})
        f = await cb.wait_for(read_of(g, a), timeout=3)
        assert f["seq"] == 7 and marker(live, g, a) == 7
        # bad values are refused and change nothing
        err = await error_for(ca, {"type": "read", "channelId": str(g), "seq": -1}, ref="neg")
        assert err["code"] == "bad_request", err
        err = await error_for(ca, {"type": "read", "channelId": str(g), "seq": "3"}, ref="str")
        assert err["code"] == "bad_request", err
        assert marker(live, g, a) == 7
    finally:
        await close_all(ca, cb)


async def test_read_of_a_channel_not_joined_is_not_member(live):
    a, m = new_user("a"), new_user("m")
    g = live.group([a])
    live.send_sql(g, a, "hello")
    ca, cm = await live.client(a), await live.client(m)
    try:
        err = await error_for(cm, {"type": "read", "channelId": str(g), "seq": 1}, ref="r")
        assert err["code"] == "not_member", err
        err = await error_for(cm, {"type": "read", "channelId": str(uuid.uuid4()), "seq": 1}, ref="r2")
        assert err["code"] == "not_member", err
        # a saw no receipt of m.  Bounded negative wait: the refusal was
        # answered on the same worker; a broadcast would be queued already.
        await ca.expect_none(lambda f: f.get("type") == "read", 0.3, "read receipt of a non-member")
    finally:
        await close_all(ca, cm)


async def test_chat_mark_read_from_sql_is_broadcast(live):
    a, b, c = new_user("a"), new_user("b"), new_user("c")
    g = live.group([a, b, c])
    for i in range(4):
        live.send_sql(g, b, "m%d" % i)
    ca, cb = await live.client(a), await live.client(b)
    try:
        assert live.sql1("SELECT chat_mark_read(%s, %s, %s)", (g, a, 3)) == 3
        for rx in (ca, cb):
            f = await rx.wait_for(read_of(g, a), timeout=3)
            assert f == {"type": "read", "channelId": str(g), "userId": a, "seq": 3}, f
        # backwards from SQL: returns and broadcasts the stored value
        assert live.sql1("SELECT chat_mark_read(%s, %s, %s)", (g, a, 1)) == 3
        f = await cb.wait_for(read_of(g, a), timeout=3)
        assert f["seq"] == 3, f
        # clamped from SQL
        assert live.sql1("SELECT chat_mark_read(%s, %s, %s)", (g, a, 99)) == 4
        f = await cb.wait_for(read_of(g, a), timeout=3)
        assert f["seq"] == 4, f
        # a rolled-back chat_mark_read is never announced
        conn = live.connect(autocommit=False)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT chat_mark_read(%s, %s, %s)", (g, c, 2))
            conn.rollback()
        finally:
            conn.close()
        # ordered sync point: a committed receipt after the rolled-back one
        # (c never sent anything, so its marker is still 0)
        assert live.sql1("SELECT chat_mark_read(%s, %s, %s)", (g, c, 1)) == 1
        f = await ca.wait_for(read_of(g, c), timeout=3)
        assert f["seq"] == 1, "the rolled-back read (seq 2) was broadcast: %r" % f
    finally:
        await close_all(ca, cb)


async def test_offline_user_gets_exact_unread_on_reconnect(live):
    a, b, c = new_user("a"), new_user("b"), new_user("c")
    g = live.group([a, b, c])
    quiet = live.group([b, c])
    cb = await live.client(b)
    ca = cc = None
    try:
        k = await cb.send_message(g, "b before leaving")     # seq 1: b's read -> 1
        assert k["type"] == "ack" and k["seq"] == 1
        await cb.close()
        assert marker(live, g, b) == 1
        # while b is away: a (socket) and c (SQL) write, some gets deleted
        ca = await live.client(a)
        ids = []
        for i in range(3):
            k = await ca.send_message(g, "a %d" % i)          # seq 2..4
            assert k["type"] == "ack"
            ids.append(k["serverId"])
        mid, _ = live.send_sql(g, c, "c 1")                   # seq 5
        live.send_sql(g, c, "c 2")                            # seq 6
        live.sql("SELECT chat_delete(%s, %s)", (ids[1], a))   # seq 3 deleted
        live.sql("SELECT chat_delete(%s, %s)", (mid, c))      # seq 5 deleted
        live.send_sql(quiet, c, "elsewhere")                   # quiet: 1 unread
        cb = await live.client(b)
        ch = cb.ready_channel(g)
        assert ch["lastSeq"] == 6 and ch["lastReadSeq"] == 1, ch
        # seq 2, 4, 6: from others, after the marker, not deleted
        assert ch["unread"] == 3, "ready unread %r, expected 3 (5 new, 2 deleted)" % ch
        assert cb.ready_channel(quiet)["unread"] == 1, cb.ready_channel(quiet)
        sql = dict(live.sql("SELECT channel_id, unread FROM chat_unread(%s)", (b,)))
        assert sql == {g: 3, quiet: 1}, sql
        # the sender's own messages are never unread: a sent 2..4, so a's
        # marker is 4 (its last send) and only c's live message 6 is unread
        assert marker(live, g, a) == 4
        ca2 = await live.client(a)
        try:
            assert ca2.ready_channel(g)["lastReadSeq"] == 4, ca2.ready_channel(g)
            assert ca2.ready_channel(g)["unread"] == 1, ca2.ready_channel(g)
        finally:
            await ca2.close()
        # reading everything zeroes it for the next connection
        await cb.send({"type": "read", "channelId": str(g), "seq": 6})
        await cb.wait_for(read_of(g, b), timeout=3)
        cb2 = await live.client(b)
        try:
            assert cb2.ready_channel(g)["unread"] == 0, cb2.ready_channel(g)
            assert cb2.ready_channel(g)["lastReadSeq"] == 6
        finally:
            await cb2.close()
    finally:
        await close_all(ca, cb, cc)


async def test_sending_marks_read_for_the_sender(live):
    a, b = new_user("a"), new_user("b")
    g = live.group([a, b])
    for i in range(3):
        live.send_sql(g, b, "b %d" % i)                       # 1..3 unread for a
    ca = await live.client(a)
    try:
        assert ca.ready_channel(g)["unread"] == 3
        k = await ca.send_message(g, "a replies")              # seq 4
        assert k["type"] == "ack" and k["seq"] == 4
        assert marker(live, g, a) == 4
        live.send_sql(g, a, "a from sql")                      # seq 5
        assert marker(live, g, a) == 5
        ca2 = await live.client(a)
        try:
            ch = ca2.ready_channel(g)
            assert ch["unread"] == 0 and ch["lastReadSeq"] == 5 and ch["lastSeq"] == 5, ch
        finally:
            await ca2.close()
        assert dict(live.sql("SELECT channel_id, unread FROM chat_unread(%s)", (a,)))[g] == 0
        # b's count holds a's two messages
        assert dict(live.sql("SELECT channel_id, unread FROM chat_unread(%s)", (b,)))[g] == 2
    finally:
        await close_all(ca)


async def test_chat_mark_read_errors(live):
    a = new_user("a")
    g = live.group([a])
    for args, state in (((g, "stranger", 1), "42501"), ((g, a, -1), "22023"),
                        ((str(uuid.uuid4()), a, 1), "P0002")):
        try:
            live.sql("SELECT chat_mark_read(%s, %s, %s)", args)
        except psycopg2.Error as e:
            assert e.pgcode == state, (args, e.pgcode, str(e))
        else:
            raise AssertionError("chat_mark_read%r did not fail" % (args,))
