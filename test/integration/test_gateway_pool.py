"""
A gateway's connections to the database (issue 17, docs/scaling.md): with
chat.pool_size = 3, the default, it commits group-commit batches on two
connections ("chat-gateway batches" in pg_stat_activity) while its loop
serves the sockets and gathers the next batch, beside one connection for
the other requests ("chat-gateway requests"); chat.pool_size = 1 commits
on the request connection, the loop waiting, as the in-server worker does.

- A channel whose row is locked (an application's long transaction, a slow
  node) holds up only its own sends: a send to another channel is acked
  and delivered meanwhile, and the held send is acked, in order, once the
  lock goes.  With chat.pool_size = 1 the other channel's send waits too.
- A batch connection that dies while its batch is in flight: the batch is
  sent again on a new connection, and each send is acked once and stored
  once (its clientId).

Runs in the worker run of test/integration: each test starts its own
gateway beside the cluster's worker (test/gateway/run deselects it in the
mixed run).
"""
import uuid

import pytest

from conftest import close_all, new_user, open_at, start_gateway, wait_until, ws_url


def batch_waiting_on_lock(c, label):
    """The backend of the gateway's connection label waiting for a lock."""
    return c.sql1("SELECT pid FROM pg_stat_activity "
                  "WHERE application_name = %s AND wait_event_type = 'Lock'",
                  ("chat-gateway " + label,))


def stored(c, client_id):
    return c.sql1("SELECT count(*) FROM chat.messages WHERE client_id = %s", (client_id,))


class Locked:
    """A gateway (its file's extra lines), clients of users a and b on it,
    two channels x and y of both, and a transaction holding x's row lock."""

    async def start(self, c, name, extra):
        self.c = c
        self.a, self.b = new_user("a"), new_user("b")
        self.x, self.y = c.group([self.a, self.b]), c.group([self.a, self.b])
        self.g = start_gateway(c, name, extra)
        self.lock = c.connect(autocommit=False)
        self.clients = []
        try:
            self.ca = await self.client(self.a)
            self.cb = await self.client(self.b)
            with self.lock.cursor() as cur:
                cur.execute("SELECT 1 FROM chat.channels WHERE id = %s FOR UPDATE", (self.x,))
        except BaseException:
            await self.stop()
            raise
        return self

    async def client(self, user):
        cl = await open_at(self.c, user, ws_url(self.g.port, self.c.token(user)))
        self.clients.append(cl)
        return cl

    async def stop(self):
        self.lock.close()
        await close_all(*self.clients)
        self.g.stop()


@pytest.mark.parametrize("pool_size", [3, 1])
async def test_a_locked_channel_holds_up_only_its_own_sends(cluster, pool_size):
    c = cluster
    t = await Locked().start(c, "gwpool%d" % pool_size, ["chat.pool_size = %d" % pool_size])
    ca, cb, x, y, lock = t.ca, t.cb, t.x, t.y, t.lock
    try:
        held = str(uuid.uuid4())
        await ca.send({"type": "send", "clientId": held, "channelId": str(x),
                       "content": "held", "ref": "held"})
        label = "batches" if pool_size > 1 else "requests"
        wait_until(lambda: batch_waiting_on_lock(c, label), 10,
                   what="the batch with x's send waiting for x's lock")

        other = str(uuid.uuid4())
        await ca.send({"type": "send", "clientId": other, "channelId": str(y),
                       "content": "not held", "ref": "other"})
        if pool_size > 1:
            ack = await ca.wait_for(lambda f: f.get("clientId") == other, timeout=10,
                                    what="the ack of y's send while x is locked")
            assert ack["type"] == "ack" and ack["seq"] == 1, ack
            await cb.wait_message(y, lambda m: m["content"] == "not held")
            assert not [f for f in ca.frames if f.get("clientId") == held]
        else:
            # the loop waits for the batch: nothing of y's send comes back
            await ca.expect_none(lambda f: f.get("clientId") == other, 1.0,
                                 what="an answer to y's send while x is locked")
        lock.commit()

        acks = []
        for cid in (held, other):
            f = await ca.wait_seen(lambda f, cid=cid: f.get("clientId") == cid, timeout=10,
                                   what="the ack of %s" % cid)
            acks.append(f)
        assert [f["type"] for f in acks] == ["ack", "ack"], acks
        assert acks[0]["channelId"] == str(x) and acks[0]["seq"] == 1
        await cb.wait_message(x, lambda m: m["content"] == "held")
        assert stored(c, held) == 1 and stored(c, other) == 1
        # each ack came once, and the held one after y's when pipelined
        order = [f["clientId"] for f in ca.frames
                 if f.get("type") == "ack" and f.get("clientId") in (held, other)]
        assert order == ([other, held] if pool_size > 1 else [held, other]), order
    finally:
        await t.stop()


async def test_a_batch_connection_that_dies_in_flight_loses_nothing(cluster):
    c = cluster
    t = await Locked().start(c, "gwkill", [])
    ca, cb, x, lock, g = t.ca, t.cb, t.x, t.lock, t.g
    try:
        cid = str(uuid.uuid4())
        await ca.send({"type": "send", "clientId": cid, "channelId": str(x), "content": "survives"})
        pid = wait_until(lambda: batch_waiting_on_lock(c, "batches"), 10,
                         what="the batch waiting for x's lock")
        assert c.sql1("SELECT pg_terminate_backend(%s)", (pid,))
        # sent again on a new connection, which waits for the lock in turn
        wait_until(lambda: (batch_waiting_on_lock(c, "batches") or pid) != pid, 10,
                   what="the batch sent again on a new connection")
        assert not [f for f in ca.frames if f.get("clientId") == cid]
        lock.commit()
        ack = await ca.wait_for(lambda f: f.get("clientId") == cid, timeout=10,
                                what="the ack of the send")
        assert ack["type"] == "ack" and ack["seq"] == 1 and not ack["duplicate"], ack
        got = await cb.wait_message(x, lambda m: m["content"] == "survives")
        assert got["seq"] == 1
        assert stored(c, cid) == 1
        # the gateway serves on: a next send is acked in order
        nxt = await ca.send_message(x, "after")
        assert nxt["type"] == "ack" and nxt["seq"] == 2, nxt
        assert [f for f in ca.frames if f.get("clientId") == cid] == [ack]
        assert g.proc.poll() is None, g.log_tail()
    finally:
        await t.stop()
