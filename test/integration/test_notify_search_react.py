"""
Offline notifications, search and reactions (issue 16), through the worker:
who is "offline" comes from the worker's live connections; search and
reactions are frames; a reaction reaches the other members live, is in the
message that history sends, and a reconnecting client catches up on it
through the change counter.
"""
import asyncio

import psycopg2
import pytest

from conftest import close_all, new_user, wait_until


@pytest.fixture(scope="module")
def qcluster(cluster_factory):
    """A cluster of its own: claims take every due entry, so no other test's
    messages may be in its queue.  A short online delay."""
    return cluster_factory("notify", **{"chat.notify_delay": "'1s'"})


def claim(c, n=100, visibility="1 hour", conn=None):
    q = ("SELECT id, user_id, channel_id, count, last_seq, mention, preview "
         "FROM chat_notifications_claim(%s, %s)")
    if conn is None:
        return c.sql(q, (n, visibility))
    with conn.cursor() as cur:
        cur.execute(q, (n, visibility))
        return cur.fetchall()


def drain(c):
    rows = claim(c, 1000, "1 hour")
    c.sql("SELECT chat_notifications_done(%s)", ([r[0] for r in rows],))


async def test_offline_member_is_due_now_online_one_after_the_delay(qcluster):
    c = qcluster
    a, on, off = new_user("sender"), new_user("online"), new_user("offline")
    g = c.group([a, on, off])
    drain(c)
    ca = await c.client(a)
    con = await c.client(on)
    try:
        k = await ca.send_message(g, "load 7 is ready")
        assert k["type"] == "ack"
        await con.wait_message(g)
        got = claim(c)
        # the offline member at once; the sender never; the online one not yet
        assert [(r[1], r[3], r[4], r[6]) for r in got] == [(off, 1, k["seq"], "load 7 is ready")]
        c.sql("SELECT chat_notifications_done(%s)", ([r[0] for r in got],))
        # unread after chat.notify_delay (1 s): now the online member too
        later = wait_until(lambda: claim(c), timeout=10, what="the online member's entry")
        assert [(r[1], r[4]) for r in later] == [(on, k["seq"])]
        c.sql("SELECT chat_notifications_done(%s)", ([r[0] for r in later],))

        # reading over the WebSocket before the delay cancels the entry
        k2 = await ca.send_message(g, "load 8 too")
        await con.wait_message(g)
        assert c.sql1("SELECT count(*) FROM chat.notifications WHERE user_id = %s", (on,)) == 1
        await con.send({"type": "read", "channelId": str(g), "seq": k2["seq"]})
        await con.wait_for(lambda f: f.get("type") == "read" and f.get("userId") == on)
        assert c.sql1("SELECT count(*) FROM chat.notifications WHERE user_id = %s", (on,)) == 0
        # the offline member's entry is there; after the delay still nothing for on
        got = claim(c)
        assert [r[1] for r in got] == [off]
        c.sql("SELECT chat_notifications_done(%s)", ([r[0] for r in got],))
        await asyncio.sleep(1.5)  # past chat.notify_delay: nothing may appear
        assert claim(c) == []
    finally:
        await close_all(ca, con)


async def test_failed_or_rolled_back_send_makes_no_notification(qcluster):
    c = qcluster
    a, b = new_user("a"), new_user("b")
    g = c.group([a, b])
    drain(c)
    conn = c.connect(autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT seq FROM chat_send(%s, %s, 'never')", (g, a))
            cur.execute("SELECT count(*) FROM chat.notifications WHERE user_id = %s", (b,))
            assert cur.fetchone()[0] == 1  # made in the sending transaction
        conn.rollback()
    finally:
        conn.close()
    assert c.sql1("SELECT count(*) FROM chat.notifications WHERE user_id = %s", (b,)) == 0
    ca = await c.client(a)
    try:
        # refused by the database (a bad replyTo): no message, no entry
        bad = await ca.send_message(g, "reply to nothing",
                                    replyTo="00000000-0000-4000-8000-000000000000")
        assert bad["type"] == "error"
        assert c.sql1("SELECT count(*) FROM chat.notifications WHERE user_id = %s", (b,)) == 0
        ok = await ca.send_message(g, "stored")
        assert ok["type"] == "ack"
        assert c.sql("SELECT count, last_seq FROM chat.notifications WHERE user_id = %s",
                     (b,)) == [(1, ok["seq"])]
    finally:
        await close_all(ca)
        drain(c)


@pytest.fixture(scope="module")
def lcluster(cluster_factory):
    """A long online delay: an entry made while its member is online is
    not due within the test unless something makes it due sooner."""
    return cluster_factory("notify_long", **{"chat.notify_delay": "'1h'"})


async def test_an_entry_due_later_is_due_now_once_its_member_is_gone(lcluster):
    # An open entry is not rewritten for every message, except when a
    # message finds its member gone: then it is due at once.
    c = lcluster
    a, m = new_user("sender"), new_user("leaving")
    g = c.group([a, m])
    drain(c)
    ca = await c.client(a)
    cm = await c.client(m)
    try:
        k1 = await ca.send_message(g, "first")
        await cm.wait_message(g)
        assert claim(c) == []  # m is online: due in an hour
        await cm.close()
        wait_until(lambda: not c.sql1("SELECT chat._user_online(%s)", (m,)),
                   what="m offline")
        k2 = await ca.send_message(g, "second")
        assert k2["type"] == "ack"
        got = claim(c)
        # both messages, counted when claimed
        assert [(r[1], r[3], r[4], r[6]) for r in got] == [(m, 2, k2["seq"], "second")]
        assert k2["seq"] == k1["seq"] + 1
    finally:
        await close_all(ca, cm)
        drain(c)


def test_two_claimers_never_get_the_same_entry(qcluster):
    c = qcluster
    a = new_user("a")
    others = [new_user("m") for _ in range(6)]
    g = c.group([a] + others)
    drain(c)
    c.send_sql(g, a, "to everyone")
    one, two = c.connect(autocommit=False), c.connect(autocommit=False)
    try:
        with two.cursor() as cur:
            # the second claimer must not wait for the first one's locks
            cur.execute("SET statement_timeout = '2s'")
        first = claim(c, 3, conn=one)          # not committed yet: rows locked
        second = claim(c, 100, conn=two)
        assert len(first) == 3 and len(second) == 3
        assert not ({r[0] for r in first} & {r[0] for r in second})
        assert sorted(r[1] for r in first + second) == sorted(others)
        one.commit()
        two.commit()
        assert claim(c, 100) == []   # both hidden for their visibility timeout
    finally:
        one.close()
        two.close()
        drain(c)


async def test_search_frame_sees_only_the_users_channels(cluster):
    c = cluster
    a, b = new_user("a"), new_user("b")
    g1, g2 = c.group([a, b]), c.group([a, b])
    secret = c.group([b])
    word = "zq" + new_user("w").split("-")[1]
    c.send_sql(g1, b, "where is load 7 %s?" % word)
    c.send_sql(g2, b, "load 7 %s is at <dock 3> & ready" % word)
    c.send_sql(secret, b, "secret %s" % word)
    ca = await c.client(a)
    try:
        await ca.send({"type": "search", "query": word, "ref": "s1"})
        f = await ca.wait_for(lambda f: f.get("ref") == "s1")
        assert f["type"] == "search" and f["hasMore"] is False
        assert [(r["channelId"], r["seq"]) for r in f["results"]] == [(str(g2), 1), (str(g1), 1)]
        assert f["results"][0]["headline"] == (
            "load 7 <mark>%s</mark> is at &lt;dock 3&gt; &amp; ready" % word)
        assert f["results"][0]["content"] == "load 7 %s is at <dock 3> & ready" % word

        # paged: one per page, newest first
        await ca.send({"type": "search", "query": word, "limit": 1, "ref": "p1"})
        p1 = await ca.wait_for(lambda f: f.get("ref") == "p1")
        await ca.send({"type": "search", "query": word, "limit": 1, "ref": "p2",
                       "before": p1["results"][0]["messageId"]})
        p2 = await ca.wait_for(lambda f: f.get("ref") == "p2")
        assert p1["hasMore"] is True and p2["hasMore"] is False
        assert [r["channelId"] for r in p1["results"] + p2["results"]] == [str(g2), str(g1)]

        # a leaves g2: never found there again
        c.sql("SELECT chat_remove_member(%s, %s)", (g2, a))
        await ca.wait_for(lambda f: f.get("type") == "left")
        await ca.send({"type": "search", "query": word, "ref": "s2"})
        f = await ca.wait_for(lambda f: f.get("ref") == "s2")
        assert [r["channelId"] for r in f["results"]] == [str(g1)]
        await ca.send({"type": "search", "query": word, "channelId": str(g2), "ref": "s3"})
        f = await ca.wait_for(lambda f: f.get("ref") == "s3")
        assert f["type"] == "error" and f["code"] == "not_member"
        # a query without words
        await ca.send({"type": "search", "query": "!!", "ref": "s4"})
        f = await ca.wait_for(lambda f: f.get("ref") == "s4")
        assert f["type"] == "error" and f["code"] == "bad_request"
    finally:
        await close_all(ca)


async def test_reactions_live_in_history_and_after_a_reconnect(cluster):
    c = cluster
    a, b, x = new_user("a"), new_user("b"), new_user("x")
    g = c.group([a, b])
    ca = await c.client(a)
    cb = await c.client(b)
    try:
        k = await ca.send_message(g, "load 7 is ready")
        mid = k["serverId"]
        await cb.wait_message(g)
        await cb.send({"type": "react", "messageId": mid, "emoji": "👍", "ref": "r1"})
        mine = await cb.wait_for(lambda f: f.get("ref") == "r1")
        assert mine["type"] == "reaction" and mine["seq"] == k["seq"]
        assert mine["reactions"] == [{"emoji": "👍", "count": 1, "users": [b]}]
        live = await ca.wait_for(lambda f: f.get("type") == "reaction")
        assert live["messageId"] == mid and live["reactions"] == mine["reactions"]
        # the reacting connection has its answer and no second copy
        await cb.expect_none(lambda f: f.get("type") == "reaction" and "ref" not in f, 0.3,
                             "reaction broadcast to the reactor")

        # from SQL too
        c.sql("SELECT chat_react(%s, %s, '🚚')", (mid, a))
        f = await cb.wait_for(lambda f: f.get("type") == "reaction")
        assert [r["emoji"] for r in f["reactions"]] == ["👍", "🚚"]

        # history carries them
        await ca.send({"type": "history", "channelId": str(g), "ref": "h"})
        h = await ca.wait_for(lambda f: f.get("ref") == "h")
        assert h["messages"][0]["reactions"] == f["reactions"]

        # members only
        cx = await c.client(x)
        await cx.send({"type": "react", "messageId": mid, "emoji": "👍", "ref": "rx"})
        e = await cx.wait_for(lambda f: f.get("ref") == "rx")
        assert e["type"] == "error" and e["code"] == "forbidden"
        await cx.close()

        # b goes away; meanwhile a reacts, and b's reaction is removed
        change = c.sql1("SELECT last_change FROM chat.channels WHERE id = %s", (g,))
        await cb.close()
        await ca.send({"type": "react", "messageId": mid, "emoji": "✅", "ref": "r2"})
        await ca.wait_for(lambda f: f.get("ref") == "r2")
        c.sql("SELECT chat_unreact(%s, %s, '👍')", (mid, b))

        cb = await c.client(b)
        await cb.send({"type": "sync", "channels": {str(g): k["seq"]},
                       "changes": {str(g): change}, "ref": "sy"})
        upd = await cb.wait_for(lambda f: f.get("type") == "message_updated")
        synced = await cb.wait_for(lambda f: f.get("type") == "synced")
        assert upd["message"]["id"] == mid
        assert upd["message"]["reactions"] == [
            {"emoji": "🚚", "count": 1, "users": [a]},
            {"emoji": "✅", "count": 1, "users": [a]}]
        assert synced["lastChange"] == change + 2
    finally:
        await close_all(ca, cb)
