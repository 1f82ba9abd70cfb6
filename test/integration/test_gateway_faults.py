"""
Gateways under faults (issue 17, docs/scaling.md): senders spread over two
chat-gateways and the in-server worker, while one gateway is killed
(kill -9) and the other SIGSTOPped for longer than the heartbeat timeout
and then continued.

Checked: everything acked is stored exactly once (a sender resends what was
not acked with the same clientId, on whatever node takes it); every
receiver's stream, over all its resumed connections (resume=1), is
complete, in order and without a repeated frame; the killed gateway's user
goes offline for observers on the worker and on the other gateway, and in
chat_online(); the stopped gateway re-attaches and serves again by itself,
and after the database drops its connections (LISTEN included) it
reconnects, resyncs and delivers again.

Runs in every topology: it starts its own cluster and gateways.
"""
import asyncio
import json
import os
import signal
import time
import uuid

import websockets

from conftest import async_wait_until, close_all, new_user, Client
from test_resume import Stream, connect

HEARTBEAT_TIMEOUT = 3.0


def ws_url(port, token, resume=False):
    return "ws://127.0.0.1:%d/ws?token=%s%s" % (port, token, "&resume=1" if resume else "")


async def client_at(cluster, user, port):
    """A Client (conftest) on the node listening on port."""
    ws = await websockets.connect(ws_url(port, cluster.token(user)), max_queue=None,
                                  ping_interval=None, open_timeout=10, close_timeout=2,
                                  max_size=None)
    c = Client(cluster, user, ws)
    c.ready = await c.wait_for(lambda f: True, timeout=10)
    assert c.ready["type"] == "ready", c.ready
    return c


class Sender:
    """Sends count messages to channel g, each until acked: after a lost
    connection it reconnects (its own node first, then the others) and
    sends the unacked one again with the same clientId."""

    def __init__(self, cluster, user, g, ports, count, pace=0.05):
        self.cluster, self.user, self.g = cluster, user, str(g)
        self.ports, self.count, self.pace = ports, count, pace
        self.acked = {}         # clientId -> seq
        self.resent = 0

    async def run(self, deadline):
        i = 0
        cid = str(uuid.uuid4())
        token = self.cluster.token(self.user)
        k = 0
        while i < self.count and time.monotonic() < deadline:
            port = self.ports[k % len(self.ports)]
            k += 1
            try:
                ws = await websockets.connect(ws_url(port, token), max_queue=None,
                                              ping_interval=None, open_timeout=2,
                                              close_timeout=1, max_size=None)
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                await asyncio.sleep(0.1)
                continue
            try:
                await asyncio.wait_for(ws.recv(), 5)              # ready
                while i < self.count and time.monotonic() < deadline:
                    await ws.send(json.dumps({"type": "send", "clientId": cid,
                                              "channelId": self.g,
                                              "content": "%s %d" % (self.user, i)}))
                    t_end = time.monotonic() + 2.0
                    while True:
                        f = json.loads(await asyncio.wait_for(
                            ws.recv(), max(0.01, t_end - time.monotonic())))
                        if f.get("clientId") == cid and f.get("type") == "ack":
                            self.acked[cid] = f["seq"]
                            i += 1
                            cid = str(uuid.uuid4())
                            k = 0          # back to the preferred node next time
                            break
                        if f.get("clientId") == cid and f.get("type") == "error":
                            raise AssertionError("send refused: %r" % f)
                    await asyncio.sleep(self.pace)
            except (asyncio.TimeoutError, websockets.exceptions.ConnectionClosed):
                self.resent += 1          # the same cid goes again, elsewhere maybe
            finally:
                ws.transport.abort()


class Receiver:
    """Reads channel g through resumed connections (its own node first),
    counting every message frame (test_resume.Stream)."""

    def __init__(self, cluster, user, g, ports):
        self.cluster, self.user, self.g = cluster, user, str(g)
        self.ports = ports
        self.stream = Stream()
        self.sessions = 0

    async def session(self, port, until, want=None):
        ws = await connect(ws_url(port, self.cluster.token(self.user), resume=True),
                           time.monotonic() + 3)
        self.sessions += 1
        try:
            ready = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert ready["type"] == "ready" and ready.get("resume") is True, ready
            await ws.send(json.dumps({"type": "sync", "channels": {self.g: self.stream.last}}))
            while True:
                if want is not None and self.stream.last >= want:
                    return True
                left = until - time.monotonic()
                if left <= 0:
                    return False
                try:
                    f = json.loads(await asyncio.wait_for(ws.recv(), left))
                except asyncio.TimeoutError:
                    continue
                if f.get("type") == "message" and f["message"]["channelId"] == self.g:
                    self.stream.frame(f["message"]["seq"])
                elif f.get("type") == "synced" and f["hasMore"]:
                    await ws.send(json.dumps({"type": "sync",
                                              "channels": {self.g: self.stream.last}}))
        finally:
            ws.transport.abort()

    async def run(self, until, want=None):
        k = 0
        while time.monotonic() < until:
            port = self.ports[k % len(self.ports)]
            k += 1
            try:
                if await self.session(port, until, want):
                    return
                k = 0
            except (OSError, asyncio.TimeoutError, AssertionError,
                    websockets.exceptions.WebSocketException):
                await asyncio.sleep(0.1)


def presences(client, user):
    return [f["status"] for f in client.frames
            if f.get("type") == "presence" and f.get("userId") == user]


async def test_kill_one_gateway_stop_another(cluster_factory):
    c = cluster_factory("faults", **{"chat.notify_bus": "on",
                                     "chat.heartbeat_interval": "'1s'",
                                     "chat.heartbeat_timeout": "'3s'"})
    if len(c.gateways) < 2:
        c.stop_gateways()
        c.start_gateways(2)
    gw1, gw2 = c.gateways[0], c.gateways[1]
    pw, p1, p2 = c.worker_port, gw1.port, gw2.port

    senders_u = [new_user("sw"), new_user("s1"), new_user("s2")]
    recv_u = [new_user("rw"), new_user("r1"), new_user("r2")]
    ghost, ow, o2 = new_user("ghost"), new_user("ow"), new_user("o2")
    g = c.group(senders_u + recv_u + [ghost, ow, o2])

    # presence: ghost only on gw1; observers on the worker and on gw2
    cow = await client_at(c, ow, pw)
    co2 = await client_at(c, o2, p2)
    cgh = await client_at(c, ghost, p1)
    await async_wait_until(lambda: ghost in {r[0] for r in c.sql(
        "SELECT * FROM chat_online(%s)", (g,))}, 5, what="ghost online in chat_online()")

    senders = [Sender(c, senders_u[0], g, [pw], 120),
               Sender(c, senders_u[1], g, [p1, pw, p2], 120),
               Sender(c, senders_u[2], g, [p2, pw, p1], 120)]
    receivers = [Receiver(c, recv_u[0], g, [pw]),
                 Receiver(c, recv_u[1], g, [p1, p2, pw]),
                 Receiver(c, recv_u[2], g, [p2, pw])]
    t0 = time.monotonic()
    end = t0 + 40

    async def faults():
        await asyncio.sleep(1.5)
        # kill -9: no goodbye; its lease runs out within the timeout
        os.kill(gw1.proc.pid, signal.SIGKILL)
        t_kill = time.monotonic()
        for obs in (cow, co2):
            await obs.wait_for(lambda f: f.get("type") == "presence"
                               and f.get("userId") == ghost and f["status"] == "offline",
                               timeout=HEARTBEAT_TIMEOUT + 4, what="ghost offline")
        took = time.monotonic() - t_kill
        assert ghost not in {r[0] for r in c.sql("SELECT * FROM chat_online(%s)", (g,))}
        # then stop the other gateway for longer than the heartbeat timeout
        os.kill(gw2.proc.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(HEARTBEAT_TIMEOUT + 2)
        finally:
            os.kill(gw2.proc.pid, signal.SIGCONT)
        return took

    readers = [asyncio.ensure_future(r.run(end)) for r in receivers]
    results = await asyncio.gather(faults(), *(s.run(end) for s in senders))
    ghost_offline_s = results[0]
    for t in readers:          # the final catch-up below reads the rest
        t.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for s in senders:
        assert len(s.acked) == s.count, (s.user, len(s.acked), s.count)

    # the stopped gateway is back by itself: healthy, attached, delivering
    gw2.wait_healthy(10)
    late = new_user("late")
    c.sql("SELECT chat_add_member(%s, %s)", (g, late))
    cl = await client_at(c, late, p2)
    await async_wait_until(lambda: late in {r[0] for r in c.sql(
        "SELECT * FROM chat_online(%s)", (g,))}, 10, what="a user on the continued gateway online")
    await cow.wait_for(lambda f: f.get("type") == "presence" and f.get("userId") == late
                       and f["status"] == "online", timeout=10, what="late online at the worker")
    k = await cow.send_message(g, "after the faults")
    assert k["type"] == "ack"
    await cl.wait_message(g, lambda m: m["seq"] == k["seq"], timeout=10)

    # the database drops every gateway connection (its LISTEN too), and a
    # message commits before the gateway listens again: the gateway
    # reconnects, resyncs, and its client gets it, then live ones again
    c.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'chat_gw'")
    k = await cow.send_message(g, "while the gateway reconnects")
    assert k["type"] == "ack"
    await cl.wait_message(g, lambda m: m["seq"] == k["seq"], timeout=10)
    await async_wait_until(lambda: c.sql1("SELECT count(*) FROM pg_stat_activity "
                                          "WHERE usename = 'chat_gw' AND query = 'LISTEN chat'"),
                           10, what="the gateway listening again")
    k = await cow.send_message(g, "live again")
    await cl.wait_message(g, lambda m: m["seq"] == k["seq"], timeout=10)

    # everything acked stored once
    acked = {cid: seq for s in senders for cid, seq in s.acked.items()}
    rows = c.sql("SELECT client_id::text, seq FROM chat.messages WHERE channel_id = %s", (g,))
    by_cid = {}
    for cid, seq in rows:
        by_cid.setdefault(cid, []).append(seq)
    for cid, seq in acked.items():
        assert by_cid.get(cid) == [seq], (cid, seq, by_cid.get(cid))
    assert len(rows) == len(by_cid), "a clientId stored twice"

    # every stream complete, in order, without repeats
    last = c.last_seq(g)
    await asyncio.gather(*(r.run(time.monotonic() + 20, want=last) for r in receivers))
    for r in receivers:
        s = r.stream
        assert (s.last, s.repeats, s.gaps) == (last, 0, 0), (r.user, s.last, last, s.repeats,
                                                             s.gaps, s.first_bad)
    print("faults: ghost offline after %.1fs; %d messages; resent %r; sessions %r"
          % (ghost_offline_s, last, [s.resent for s in senders], [r.sessions for r in receivers]))
    await close_all(cow, co2, cgh, cl)
