"""
Who gets what: a non-member can neither send, read history, sync nor receive
anything of a channel; membership changes made with SQL apply at once to
live connections (joined / left).
"""
import os
import signal
import uuid

from conftest import TOPOLOGY, async_wait_until, close_all, new_user


def mentions(g):
    """Any frame that carries something of channel g."""
    g = str(g)

    def pred(f):
        if f.get("type") == "error":
            return False
        if f.get("channelId") == g:
            return True
        if f.get("type") in ("message", "message_updated") and f["message"]["channelId"] == g:
            return True
        if f.get("type") == "joined" and f["channel"]["id"] == g:
            return True
        return False
    return pred


async def test_non_member_can_do_nothing_with_a_channel(cluster):
    a, b, outsider = new_user("a"), new_user("b"), new_user("x")
    g = cluster.group([a, b])
    first_id, _ = cluster.send_sql(g, a, "secret 1")
    ca = await cluster.client(a)
    cb = await cluster.client(b)
    cx = await cluster.client(outsider)
    try:
        assert cx.ready["channels"] == []

        # send
        cid = str(uuid.uuid4())
        err = await cx.send_message(g, "let me in", client_id=cid, ref="s")
        assert err["type"] == "error" and err["code"] == "not_member", err
        assert err["clientId"] == cid and err["ref"] == "s"
        assert cluster.sql1("SELECT count(*) FROM chat.messages WHERE client_id = %s",
                            (cid,)) == 0
        assert cluster.last_seq(g) == 1

        # history
        await cx.send({"type": "history", "channelId": str(g), "ref": "h"})
        err = await cx.wait_for(lambda f: f.get("ref") == "h")
        assert err["type"] == "error" and err["code"] == "not_member", err

        # sync: an error and no synced, no message
        await cx.send({"type": "sync", "channels": {str(g): 0}, "ref": "y"})
        err = await cx.wait_for(lambda f: f.get("ref") == "y")
        assert err["type"] == "error" and err["code"] == "not_member", err

        # a reply to a message of the channel, sent to the outsider's own channel
        mine = cluster.direct(outsider, a)
        await cx.wait_for(lambda f: f.get("type") == "joined" and f["channel"]["id"] == str(mine))
        err = await cx.send_message(mine, "quoting", replyTo=str(first_id))
        assert err["type"] == "error" and err["code"] == "bad_request", err

        # typing, read and presence are refused too
        for t, extra in (("typing", {}), ("read", {"seq": 1}), ("presence", {})):
            await cx.send(dict({"type": t, "channelId": str(g), "ref": t}, **extra))
            err = await cx.wait_for(lambda f: f.get("ref") == t)
            assert err["type"] == "error" and err["code"] == "not_member", (t, err)

        # edit/delete of a message of the channel
        await cx.send({"type": "edit", "messageId": str(first_id), "content": "mine now",
                       "ref": "e"})
        err = await cx.wait_for(lambda f: f.get("ref") == "e")
        assert err["type"] == "error" and err["code"] in ("forbidden", "not_member"), err
        await cx.send({"type": "delete", "messageId": str(first_id), "ref": "d"})
        err = await cx.wait_for(lambda f: f.get("ref") == "d")
        assert err["type"] == "error" and err["code"] in ("forbidden", "not_member"), err
        assert cluster.sql("SELECT content, deleted_at FROM chat.messages WHERE id = %s",
                           (first_id,)) == [("secret 1", None)]

        # live traffic of the channel, from the socket and from SQL
        k = await ca.send_message(g, "secret 2")
        assert k["type"] == "ack"
        cluster.send_sql(g, b, "secret 3")
        await cb.send({"type": "typing", "channelId": str(g)})
        await cb.send({"type": "read", "channelId": str(g), "seq": 3})
        m = await ca.wait_message(g, lambda m: m["seq"] == 3)
        assert m["content"] == "secret 3"
        await ca.wait_seen(lambda f: f.get("type") == "typing" and f["userId"] == b)
        await ca.wait_seen(lambda f: f.get("type") == "read" and f["userId"] == b)
        await cx.expect_none(mentions(g), 0.6, "frame of a foreign channel")
        leaked = [f for f in cx.frames if "secret" in str(f) and f.get("type") != "error"]
        assert not leaked, leaked
    finally:
        await close_all(ca, cb, cx)


async def test_add_member_joins_live_connections(cluster):
    a, c = new_user("a"), new_user("c")
    g = cluster.group([a], name="newcomers")
    cluster.send_sql(g, a, "before c")
    cluster.send_sql(g, a, "before c 2")
    ca = await cluster.client(a)
    c1 = await cluster.client(c)
    c2 = await cluster.client(c)
    try:
        assert c1.ready["channels"] == []
        cluster.sql("SELECT chat_add_member(%s, %s)", (g, c))
        for rx in (c1, c2):
            j = await rx.wait_for(lambda f: f.get("type") == "joined")
            ch = j["channel"]
            assert ch["id"] == str(g)
            assert ch["type"] == "group" and ch["name"] == "newcomers"
            assert ch["lastSeq"] == 2
        # then messages, starting right after the joined lastSeq
        k = await ca.send_message(g, "welcome")
        assert k["seq"] == 3
        for rx in (c1, c2):
            m = await rx.wait_message(g)
            assert m["seq"] == 3 and m["content"] == "welcome"
        # and c may send now
        k = await c1.send_message(g, "thanks")
        assert k["type"] == "ack" and k["seq"] == 4
        m = await ca.wait_message(g, lambda m: m["seq"] == 4)
        assert m["senderId"] == c
        m = await c2.wait_message(g, lambda m: m["seq"] == 4)
        assert m["content"] == "thanks"
        # history and sync work for the new member
        await c1.send({"type": "history", "channelId": str(g), "ref": "h"})
        h = await c1.wait_for(lambda f: f.get("ref") == "h")
        assert h["type"] == "history" and [m["seq"] for m in h["messages"]] == [4, 3, 2, 1]
    finally:
        await close_all(ca, c1, c2)


async def test_remove_member_stops_delivery_at_once(cluster):
    a, c = new_user("a"), new_user("c")
    g = cluster.group([a, c])
    ca = await cluster.client(a)
    cc = await cluster.client(c)
    try:
        k = await ca.send_message(g, "while member")
        assert (await cc.wait_message(g))["seq"] == k["seq"] == 1
        cluster.sql("SELECT chat_remove_member(%s, %s)", (g, c))
        left = await cc.wait_for(lambda f: f.get("type") == "left")
        assert left["channelId"] == str(g)

        # nothing of the channel after left
        k = await ca.send_message(g, "after removal")
        assert k["type"] == "ack" and k["seq"] == 2
        cluster.send_sql(g, a, "after removal, sql")
        await ca.send({"type": "typing", "channelId": str(g)})
        await cc.expect_none(lambda f: (f.get("type") == "message"
                                        and f["message"]["channelId"] == str(g))
                             or (f.get("type") == "typing" and f["channelId"] == str(g)),
                             0.6, "delivery after left")

        # sends are refused, history and sync too
        err = await cc.send_message(g, "can I still?")
        assert err["type"] == "error" and err["code"] == "not_member", err
        await cc.send({"type": "history", "channelId": str(g), "ref": "h"})
        err = await cc.wait_for(lambda f: f.get("ref") == "h")
        assert err["type"] == "error" and err["code"] == "not_member", err
        await cc.send({"type": "sync", "channels": {str(g): 0}, "ref": "y"})
        err = await cc.wait_for(lambda f: f.get("ref") == "y")
        assert err["type"] == "error" and err["code"] == "not_member", err
        assert cluster.sql1("SELECT count(*) FROM chat.messages WHERE sender_id = %s",
                            (c,)) == 0

        # a new connection of c does not list the channel
        c2 = await cluster.client(c)
        try:
            assert c2.ready_channel(g) is None
        finally:
            await c2.close()

        # added again: joined again, delivery resumes after the new lastSeq
        cluster.sql("SELECT chat_add_member(%s, %s)", (g, c))
        j = await cc.wait_for(lambda f: f.get("type") == "joined")
        assert j["channel"]["id"] == str(g) and j["channel"]["lastSeq"] == 3
        k = await ca.send_message(g, "welcome back")
        m = await cc.wait_message(g)
        assert m["seq"] == k["seq"] == 4 and m["content"] == "welcome back"
        k = await cc.send_message(g, "glad to be back")
        assert k["type"] == "ack" and k["seq"] == 5
    finally:
        await close_all(ca, cc)


async def test_remove_in_a_rolled_back_transaction_changes_nothing(cluster):
    a, c = new_user("a"), new_user("c")
    g = cluster.group([a, c])
    ca = await cluster.client(a)
    cc = await cluster.client(c)
    app = cluster.connect(autocommit=False)
    try:
        with app.cursor() as cur:
            cur.execute("SELECT chat_remove_member(%s, %s)", (g, c))
        app.rollback()
        await cc.expect_none(lambda f: f.get("type") == "left", 0.5, "left")
        k = await ca.send_message(g, "still here?")
        m = await cc.wait_message(g)
        assert m["seq"] == k["seq"] and m["content"] == "still here?"
    finally:
        app.close()
        await close_all(ca, cc)


async def test_no_delivery_of_a_message_committed_after_removal(cluster):
    """A send that commits after chat_remove_member committed must not reach
    the removed user.  The send is made to wait for the removal's lock, so
    the order of the two commits is certain: removal first, then message.

    A gateway hears of the removal from the bus relay, which may be later
    than the gateway's own commit of the send (CI saw it once): the relay is
    held still (SIGSTOP) until the send is acked, so that the gateway must
    learn of the removal from the tables."""
    a, c = new_user("a"), new_user("c")
    g = cluster.group([a, c])
    ca = await cluster.client(a)
    cc = await cluster.client(c)
    app = cluster.connect(autocommit=False)
    relay = None
    try:
        if TOPOLOGY != "worker":
            relay = cluster.sql1("SELECT chat._gateway_bus_pid()")
            assert relay, "no bus relay"
            os.kill(relay, signal.SIGSTOP)
        with app.cursor() as cur:
            cur.execute("SELECT chat_remove_member(%s, %s)", (g, c))
        # a's send now waits for the channel row lock the removal holds
        cid = str(uuid.uuid4())
        await ca.send({"type": "send", "clientId": cid, "channelId": str(g),
                       "content": "after c was removed"})
        await async_wait_until(
            lambda: cluster.sql1("SELECT count(*) FROM pg_stat_activity "
                                 "WHERE (backend_type = 'chat worker' OR usename = 'chat_gw') "
                                 "AND wait_event_type = 'Lock'") >= 1,
            timeout=5, what="the worker to wait for the removal's lock")
        app.commit()
        k = await ca.wait_for(lambda f: f.get("clientId") == cid, timeout=10)
        assert k["type"] == "ack" and k["seq"] == 1, k
        if relay:
            # what the send's own host delivered is out by the ack; the
            # relay's hints (the removal first) may follow now
            await cc.collect(0.3)
            os.kill(relay, signal.SIGCONT)
            relay = None
        left = await cc.wait_for(lambda f: f.get("type") == "left", timeout=5)
        assert left["channelId"] == str(g)
        await cc.collect(0.3)
        got = [f["message"] for f in cc.frames if f.get("type") == "message"]
        assert got == [], ("removed user received a message committed after its removal",
                           got)
    finally:
        if relay:
            os.kill(relay, signal.SIGCONT)
        app.close()
        await close_all(ca, cc)
