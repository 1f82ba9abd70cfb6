"""
Edits and deletes (issue 4, docs/protocol.md "edit, delete" and "sync",
docs/sql-api.md chat_edit / chat_delete / chat_message_audit): over the
WebSocket and from SQL; only the sender edits, the sender or a channel
admin (the first member given to chat_create_channel) deletes, anyone else
gets forbidden; every member gets message_updated / message_deleted after
commit whichever side made the change; a client that was away learns of
the changes through sync with "changes" (ready and synced carry
lastChange); chat_message_audit keeps every version while clients see ""
for a deleted message.
"""
import uuid

import psycopg2

from livelib import close_all, error_for, is_type, new_user


def updated(mid):
    return lambda f: f.get("type") == "message_updated" and f["message"]["id"] == str(mid)


def deleted(mid):
    return is_type("message_deleted", messageId=mid)


def row(live, mid):
    r = live.sql("SELECT content, edited_at IS NOT NULL, deleted_at IS NOT NULL, attachments "
                 "FROM chat.messages WHERE id = %s", (mid,))
    return r[0] if r else None


def last_change(live, channel):
    return live.sql1("SELECT last_change FROM chat.channels WHERE id = %s", (channel,))


def sql_error(live, query, args):
    try:
        live.sql(query, args)
    except psycopg2.Error as e:
        return e.pgcode
    raise AssertionError("%s %r did not fail" % (query, args))


async def test_edit_over_websocket_reaches_every_member(live):
    admin, a, b = new_user("admin"), new_user("a"), new_user("b")
    g = live.group([admin, a, b])
    a1, a2 = await live.client(a), await live.client(a)
    cb, cadm = await live.client(b), await live.client(admin)
    try:
        k = await a1.send_message(g, "Load 7 at dock 2")
        assert k["type"] == "ack"
        mid, seq = k["serverId"], k["seq"]
        await a1.send({"type": "edit", "messageId": mid, "content": "Load 7 at dock 3", "ref": "e1"})
        for rx in (a1, a2, cb, cadm):
            f = await rx.wait_for(updated(mid), timeout=3, what="message_updated")
            m = f["message"]
            assert m["content"] == "Load 7 at dock 3", m
            assert m["seq"] == seq and m["channelId"] == str(g) and m["senderId"] == a, m
            assert m["editedAt"] is not None and m["deletedAt"] is None, m
            assert m["clientId"] == k["clientId"], m
        content, edited, is_deleted, _ = row(live, mid)
        assert (content, edited, is_deleted) == ("Load 7 at dock 3", True, False)
        # history shows the new content
        await cb.send({"type": "history", "channelId": str(g), "ref": "h"})
        h = await cb.wait_for(lambda f: f.get("ref") == "h", timeout=3)
        assert [m["content"] for m in h["messages"]] == ["Load 7 at dock 3"], h
        assert h["messages"][0]["editedAt"] is not None
    finally:
        await close_all(a1, a2, cb, cadm)


async def test_the_editing_connection_gets_one_answer_with_its_ref(live):
    """Any client frame may carry "ref", and the answer carries it
    (docs/protocol.md): the connection that edits or deletes gets its
    message_updated / message_deleted with the ref, once; the other
    connections get the broadcast without it.  An edit that changes nothing
    and a second delete are answered too (and announce nothing)."""
    a, b = new_user("a"), new_user("b")
    g = live.group([a, b])
    a1, a2, cb = await live.client(a), await live.client(a), await live.client(b)
    try:
        k = await a1.send_message(g, "Gate B4")
        mid = k["serverId"]
        await a1.send({"type": "edit", "messageId": mid, "content": "Gate B6", "ref": {"n": 7}})
        f = await a1.wait_for(updated(mid), timeout=3, what="the answer to the edit")
        assert f["ref"] == {"n": 7} and f["message"]["content"] == "Gate B6", f
        for rx in (a2, cb):
            f = await rx.wait_for(updated(mid), timeout=3, what="the broadcast of the edit")
            assert "ref" not in f and f["message"]["content"] == "Gate B6", f
        # Bounded negative wait: the broadcast reached a2 and b, so a second
        # copy for a1 would have gone out in the same pass.
        await a1.expect_none(updated(mid), 0.5, "a second message_updated")

        # an edit to the same content changes nothing, and is still answered
        await a1.send({"type": "edit", "messageId": mid, "content": "Gate B6", "ref": "same"})
        f = await a1.wait_for(lambda f: f.get("ref") == "same", timeout=3)
        assert f["type"] == "message_updated" and f["message"]["content"] == "Gate B6", f
        assert live.sql1("SELECT count(*) FROM chat.message_versions WHERE message_id = %s",
                         (mid,)) == 1

        await a2.send({"type": "delete", "messageId": mid, "ref": "del"})
        f = await a2.wait_for(deleted(mid), timeout=3, what="the answer to the delete")
        assert f == {"type": "message_deleted", "channelId": str(g), "messageId": mid,
                     "seq": k["seq"], "ref": "del"}, f
        for rx in (a1, cb):
            f = await rx.wait_for(deleted(mid), timeout=3)
            assert "ref" not in f, f
        await a2.expect_none(deleted(mid), 0.5, "a second message_deleted")
        # deleting again is no error: answered, nothing broadcast
        await a2.send({"type": "delete", "messageId": mid, "ref": "again"})
        f = await a2.wait_for(lambda f: f.get("ref") == "again", timeout=3)
        assert f["type"] == "message_deleted" and f["messageId"] == mid, f
        await cb.expect_none(deleted(mid), 0.5, "a broadcast of the second delete")
    finally:
        await close_all(a1, a2, cb)


async def test_only_the_sender_may_edit(live):
    admin, a, b, m = new_user("admin"), new_user("a"), new_user("b"), new_user("m")
    g = live.group([admin, a, b])
    ca, cb, cadm, cm = (await live.client(a), await live.client(b),
                        await live.client(admin), await live.client(m))
    try:
        k = await ca.send_message(g, "original")
        mid = k["serverId"]
        for who, ref in ((cb, "by-member"), (cadm, "by-admin")):
            err = await error_for(who, {"type": "edit", "messageId": mid, "content": "hijacked"}, ref)
            assert err["code"] == "forbidden", (ref, err)
        err = await error_for(cm, {"type": "edit", "messageId": mid, "content": "hijacked"}, "by-outsider")
        assert err["code"] in ("forbidden", "not_member", "not_found"), err
        err = await error_for(ca, {"type": "edit", "messageId": str(uuid.uuid4()), "content": "x"}, "unknown")
        assert err["code"] == "not_found", err
        err = await error_for(ca, {"type": "edit", "messageId": mid, "content": ""}, "empty")
        assert err["code"] == "bad_request", err
        err = await error_for(ca, {"type": "edit", "messageId": mid, "content": "x" * 5000}, "big")
        assert err["code"] == "too_large", err
        err = await error_for(ca, {"type": "edit", "messageId": "nope", "content": "x"}, "baduuid")
        assert err["code"] == "bad_request", err
        assert row(live, mid)[0] == "original"
        assert last_change(live, g) == 0
        # SQL: the same rule
        assert sql_error(live, "SELECT chat_edit(%s, %s, %s)", (mid, b, "x")) == "42501"
        assert sql_error(live, "SELECT chat_edit(%s, %s, %s)", (mid, admin, "x")) == "42501"
        assert row(live, mid)[0] == "original"
        # nobody saw an update.  Bounded negative wait: every refusal above
        # was answered by the only worker, which would have broadcast first.
        for rx in (ca, cb, cadm):
            await rx.expect_none(lambda f: f.get("type") == "message_updated", 0.3, "an update")
    finally:
        await close_all(ca, cb, cadm, cm)


async def test_sender_or_admin_may_delete(live):
    admin, a, b, m = new_user("admin"), new_user("a"), new_user("b"), new_user("m")
    g = live.group([admin, a, b])
    assert live.sql1("SELECT role FROM chat.channel_members WHERE channel_id = %s AND user_id = %s",
                     (g, admin)) == "admin"
    ca, cb, cadm, cm = (await live.client(a), await live.client(b),
                        await live.client(admin), await live.client(m))
    try:
        k1 = await ca.send_message(g, "one", attachments=[
            {"url": "https://files.example.com/a.pdf", "name": "a.pdf", "size": 10, "mime": "application/pdf"}])
        k2 = await ca.send_message(g, "two")
        k3 = await cb.send_message(g, "three")
        assert k1["type"] == k2["type"] == k3["type"] == "ack", (k1, k2, k3)
        # b (plain member) may not delete a's message; an outsider neither
        err = await error_for(cb, {"type": "delete", "messageId": k1["serverId"]}, "b-del")
        assert err["code"] == "forbidden", err
        err = await error_for(cm, {"type": "delete", "messageId": k1["serverId"]}, "m-del")
        assert err["code"] in ("forbidden", "not_member", "not_found"), err
        err = await error_for(cb, {"type": "delete", "messageId": str(uuid.uuid4())}, "unknown")
        assert err["code"] == "not_found", err
        assert row(live, k1["serverId"])[2] is False
        # the sender deletes its own
        await ca.send({"type": "delete", "messageId": k1["serverId"]})
        for rx in (ca, cb, cadm):
            f = await rx.wait_for(deleted(k1["serverId"]), timeout=3)
            assert f == {"type": "message_deleted", "channelId": str(g),
                         "messageId": k1["serverId"], "seq": k1["seq"]}, f
        # the admin deletes someone else's
        await cadm.send({"type": "delete", "messageId": k3["serverId"]})
        for rx in (ca, cb, cadm):
            f = await rx.wait_for(deleted(k3["serverId"]), timeout=3)
            assert f["seq"] == k3["seq"], f
        content, _, is_deleted, att = row(live, k1["serverId"])
        assert (content, is_deleted, att) == ("", True, None)
        # SQL: b may not delete a's, the admin may
        assert sql_error(live, "SELECT chat_delete(%s, %s)", (k2["serverId"], b)) == "42501"
        live.sql("SELECT chat_delete(%s, %s)", (k2["serverId"], admin))
        for rx in (ca, cb, cadm):
            await rx.wait_for(deleted(k2["serverId"]), timeout=3)
        # clients see tombstones: content "" and attachments null
        await cb.send({"type": "history", "channelId": str(g), "ref": "h"})
        h = await cb.wait_for(lambda f: f.get("ref") == "h", timeout=3)
        assert [(m["seq"], m["content"], m["attachments"], m["deletedAt"] is not None)
                for m in h["messages"]] == [(3, "", None, True), (2, "", None, True),
                                            (1, "", None, True)], h
    finally:
        await close_all(ca, cb, cadm, cm)


async def test_editing_a_deleted_message_is_refused_without_internal(live):
    """chat_edit raises 55000 for a deleted message (docs/sql-api.md); over
    the socket that must be a refusal the client can act on, not `internal`
    ("a database failure; nothing was stored, retry")."""
    a, b = new_user("a"), new_user("b")
    g = live.group([a, b])
    ca, cb = await live.client(a), await live.client(b)
    try:
        k = await ca.send_message(g, "soon gone")
        await ca.send({"type": "delete", "messageId": k["serverId"]})
        await cb.wait_for(deleted(k["serverId"]), timeout=3)
        assert sql_error(live, "SELECT chat_edit(%s, %s, %s)", (k["serverId"], a, "back")) == "55000"
        err = await error_for(ca, {"type": "edit", "messageId": k["serverId"], "content": "back"},
                              "undead")
        assert row(live, k["serverId"])[0] == ""
        # deleting it again changes nothing and is no error (docs/sql-api.md)
        live.sql("SELECT chat_delete(%s, %s)", (k["serverId"], a))
        # Bounded negative wait: a second message_deleted would come at once.
        await cb.expect_none(deleted(k["serverId"]), 0.5, "a second message_deleted")
        assert err["code"] in ("bad_request", "forbidden", "not_found"), \
            "edit of a deleted message answered %r (internal means 'retry')" % err
    finally:
        await close_all(ca, cb)


async def test_sql_edits_and_deletes_are_broadcast_after_commit(live):
    a, b = new_user("a"), new_user("b")
    g = live.group([a, b])
    m1, _ = live.send_sql(g, a, "first")
    m2, _ = live.send_sql(g, a, "second")
    ca, cb = await live.client(a), await live.client(b)
    try:
        live.sql("SELECT chat_edit(%s, %s, %s)", (m1, a, "first, edited"))
        for rx in (ca, cb):
            f = await rx.wait_for(updated(m1), timeout=3)
            assert f["message"]["content"] == "first, edited" and f["message"]["editedAt"], f
        # not before commit
        conn = live.connect(autocommit=False)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT chat_edit(%s, %s, %s)", (m2, a, "second, edited"))
            # Bounded negative wait: a broadcast before commit would come from
            # the worker at once; 0.5s is ample on one machine.
            await cb.expect_none(updated(m2), 0.5, "message_updated before commit")
            conn.commit()
        finally:
            conn.close()
        f = await cb.wait_for(updated(m2), timeout=3)
        assert f["message"]["content"] == "second, edited"
        # never for a rolled-back delete
        conn = live.connect(autocommit=False)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT chat_delete(%s, %s)", (m1, a))
            conn.rollback()
        finally:
            conn.close()
        # ordered sync point: a committed change after the rolled-back one
        live.sql("SELECT chat_edit(%s, %s, %s)", (m1, a, "first, again"))
        await cb.wait_for(updated(m1), timeout=3)
        assert not [f for f in cb.frames if f.get("type") == "message_deleted"], cb.frames
        assert row(live, m1)[2] is False
    finally:
        await close_all(ca, cb)


async def test_reconnecting_client_catches_up_on_edits_and_deletes(live):
    admin, a, b = new_user("admin"), new_user("a"), new_user("b")
    g = live.group([admin, a, b])
    ca = await live.client(a)
    cb = await live.client(b)
    cb2 = None
    try:
        ids = {}
        for i in range(1, 6):
            k = await ca.send_message(g, "m%d" % i)
            ids[i] = k["serverId"]
        # an early change, seen live by b
        await ca.send({"type": "edit", "messageId": ids[1], "content": "m1 v2"})
        await cb.wait_seen(lambda f: f.get("type") == "message" and f["message"]["seq"] == 5,
                           timeout=3)
        await cb.wait_seen(updated(ids[1]), timeout=3)
        had_seq = max(cb.seqs(g))
        assert had_seq == 5
        had_change = last_change(live, g)
        assert had_change == 1, had_change
        await cb.close()

        # while b is away: edits and deletes from both sides, and new messages
        await ca.send({"type": "edit", "messageId": ids[2], "content": "m2 v2", "ref": "e2"})
        await ca.wait_for(updated(ids[2]), timeout=3)
        live.sql("SELECT chat_edit(%s, %s, %s)", (ids[2], a, "m2 v3"))     # twice: one frame
        live.sql("SELECT chat_delete(%s, %s)", (ids[3], a))                 # sql delete
        await ca.send({"type": "edit", "messageId": ids[4], "content": "m4 v2"})
        await ca.wait_for(updated(ids[4]), timeout=3)
        live.sql("SELECT chat_delete(%s, %s)", (ids[4], admin))             # edited, then deleted
        k6 = await ca.send_message(g, "m6")
        await ca.send({"type": "edit", "messageId": k6["serverId"], "content": "m6 v2"})
        await ca.wait_for(updated(k6["serverId"]), timeout=3)
        now_change = last_change(live, g)
        assert now_change > had_change

        cb2 = await live.client(b)
        ch = cb2.ready_channel(g)
        assert ch["lastSeq"] == 6 and ch["lastChange"] == now_change, ch
        await cb2.send({"type": "sync", "channels": {str(g): had_seq},
                        "changes": {str(g): had_change}, "ref": "s1"})
        synced = await cb2.wait_for(is_type("synced", channelId=g), timeout=5)
        assert synced == {"type": "synced", "channelId": str(g), "lastSeq": 6,
                          "lastChange": now_change, "hasMore": False, "ref": "s1"}, synced
        got = [f for f in cb2.frames if f.get("type") in ("message", "message_updated",
                                                         "message_deleted")]
        msgs = [f["message"] for f in got if f["type"] == "message"]
        ups = {f["message"]["id"]: f["message"] for f in got if f["type"] == "message_updated"}
        dels = {f["messageId"]: f for f in got if f["type"] == "message_deleted"}
        # the new message, with its current content
        assert [(m["seq"], m["content"]) for m in msgs] == [(6, "m6 v2")], msgs
        assert msgs[0]["editedAt"] is not None
        # one frame per changed old message, with the latest state
        assert set(ups) == {ids[2]}, "message_updated for %r" % sorted(ups)
        assert ups[ids[2]]["content"] == "m2 v3" and ups[ids[2]]["seq"] == 2
        assert set(dels) == {ids[3], ids[4]}, "message_deleted for %r" % sorted(dels)
        assert dels[ids[3]]["seq"] == 3 and dels[ids[4]]["seq"] == 4
        assert all(d["channelId"] == str(g) for d in dels.values())
        # nothing about m1 (changed before had_change) nor m6 (seq > lastSeq)
        assert ids[1] not in ups and k6["serverId"] not in ups

        # syncing again from where it is now: nothing more
        n_before = len(cb2.frames)
        await cb2.send({"type": "sync", "channels": {str(g): 6},
                        "changes": {str(g): now_change}, "ref": "s2"})
        synced = await cb2.wait_for(is_type("synced", channelId=g), timeout=5)
        assert synced["lastChange"] == now_change and synced["lastSeq"] == 6, synced
        extra = [f for f in cb2.frames[n_before:] if f.get("type") != "synced"]
        assert extra == [], extra

        # without "changes" a sync only tells the counter
        n_before = len(cb2.frames)
        await cb2.send({"type": "sync", "channels": {str(g): had_seq}, "ref": "s3"})
        synced = await cb2.wait_for(is_type("synced", channelId=g), timeout=5)
        assert synced["lastChange"] == now_change, synced
        kinds = [f["type"] for f in cb2.frames[n_before:]]
        assert "message_updated" not in kinds and "message_deleted" not in kinds, kinds

        # and live changes keep flowing after the sync
        live.sql("SELECT chat_edit(%s, %s, %s)", (ids[5], a, "m5 v2"))
        f = await cb2.wait_for(updated(ids[5]), timeout=3)
        assert f["message"]["content"] == "m5 v2"
    finally:
        await close_all(ca, cb, cb2)


async def test_audit_keeps_every_version(live):
    a, admin = new_user("a"), new_user("admin")
    g = live.group([admin, a])
    att = [{"url": "https://files.example.com/bol.pdf", "name": "bol.pdf", "size": 52311,
            "mime": "application/pdf"}]
    ca = await live.client(a)
    try:
        k = await ca.send_message(g, "Load 7 at dock 2", attachments=att)
        mid = k["serverId"]
        await ca.send({"type": "edit", "messageId": mid, "content": "Load 7 at dock 3"})
        await ca.wait_for(updated(mid), timeout=3)
        live.sql("SELECT chat_edit(%s, %s, %s)", (mid, a, "Load 7 at dock 4"))
        await ca.wait_for(updated(mid), timeout=3)
        await ca.send({"type": "delete", "messageId": mid})
        await ca.wait_for(deleted(mid), timeout=3)
        rows = live.sql("SELECT version, action, by_user, content, attachments, at IS NOT NULL "
                        "FROM chat_message_audit(%s)", (mid,))
        assert [r[:4] for r in rows] == [
            (1, "send", a, "Load 7 at dock 2"),
            (2, "edit", a, "Load 7 at dock 3"),
            (3, "edit", a, "Load 7 at dock 4"),
            (4, "delete", a, ""),
        ], rows
        assert rows[0][4] == att and rows[1][4] == att and rows[2][4] == att, rows
        assert all(r[5] for r in rows)
        # the clients see the tombstone only
        assert row(live, mid)[0] == "" and row(live, mid)[3] is None
        await ca.send({"type": "history", "channelId": str(g), "ref": "h"})
        h = await ca.wait_for(lambda f: f.get("ref") == "h", timeout=3)
        assert h["messages"][0]["content"] == "" and h["messages"][0]["attachments"] is None, h
        # chat_app (what applications get) may not read the audit
        role = "live_app_" + uuid.uuid4().hex[:8]
        live.sql("CREATE ROLE %s LOGIN IN ROLE chat_app" % role)
        conn = live.connect(autocommit=False)
        try:
            with conn.cursor() as cur:
                cur.execute("SET ROLE %s" % role)
                try:
                    cur.execute("SELECT * FROM chat_message_audit(%s)", (mid,))
                except psycopg2.Error as e:
                    assert e.pgcode == "42501", (e.pgcode, str(e))
                else:
                    raise AssertionError("chat_app read the audit trail: %r" % cur.fetchall())
        finally:
            conn.rollback()
            conn.close()
            live.sql("DROP ROLE %s" % role)
        # unknown message
        assert sql_error(live, "SELECT * FROM chat_message_audit(%s)", (str(uuid.uuid4()),)) == "P0002"
    finally:
        await close_all(ca)
