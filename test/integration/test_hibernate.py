"""
An idle connection gives up its wslay context (two 4 KB buffers, most of
what a connection costs) and gets a fresh one with its next byte.  What must
hold: a hibernated connection works as before (sends, pings, pongs, close),
and a connection is never put to sleep in the middle of a frame or of a
fragmented message, whose bytes only that context holds.

/metrics' chat_connections_hibernating shows when the worker put
connections to sleep; the tests wait for it, never for a fixed time.
"""
import json
import struct
import uuid

import pytest

from conftest import RawWs, metrics, new_user, wait_until, ws_frame


@pytest.fixture(scope="module")
def one_worker(cluster_factory):
    return cluster_factory("hibernate", **{"chat.workers": "1"})


def hibernating(c):
    """Connections asleep on the node behind c.chat_port (the worker, or a
    gateway: its node id labels it)."""
    return int(sum(v for (name, _), v in metrics(c.chat_port).items()
                   if name == "chat_connections_hibernating"))


def open_ready(c, user):
    ws = RawWs(c.chat_port, c.token(user))
    op, payload = ws.read_frame()
    assert op == 0x1 and json.loads(payload)["type"] == "ready", payload
    return ws


def send_payload(channel, content):
    return json.dumps({"type": "send", "channelId": str(channel),
                       "clientId": str(uuid.uuid4()), "content": content}).encode()


def read_json_until(ws, type_):
    while True:
        op, payload = ws.read_frame()
        assert op in (0x1, 0x9), (op, payload)
        if op == 0x1:
            j = json.loads(payload)
            assert j["type"] != "error", j
            if j["type"] == type_:
                return j


def test_idle_connection_sleeps_and_wakes_for_a_send_and_a_ping(one_worker):
    """A new connection has no context until it sends (it counts as
    hibernating at once); after a send it sleeps again once idle, and a
    ping and a close wake it."""
    c = one_worker
    a, b = new_user("ha"), new_user("hb")
    g = c.group([a, b])
    base = hibernating(c)
    ws = open_ready(c, a)
    try:
        wait_until(lambda: hibernating(c) >= base + 1, timeout=15,
                   what="the idle connection to hibernate")
        ws.sock.sendall(ws_frame(0x1, send_payload(g, "after a nap")))
        ack = read_json_until(ws, "ack")
        assert ack["seq"] == 1, ack
        # asleep again, then a ping: wslay's pong carries the same payload
        wait_until(lambda: hibernating(c) >= base + 1, timeout=15,
                   what="the connection to hibernate again")
        ws.sock.sendall(ws_frame(0x9, b"still there?"))
        while True:
            op, payload = ws.read_frame()
            if op == 0xA:
                break
        assert payload == b"still there?"
        # and a close handshake from a sleeping connection
        wait_until(lambda: hibernating(c) >= base + 1, timeout=15,
                   what="the connection to hibernate a third time")
        ws.sock.sendall(ws_frame(0x8, struct.pack("!H", 1000)))
        assert ws.close_code() == 1000
    finally:
        ws.close()


def awake_witness(c, user):
    """A connection that has just sent a ping (so it has a wslay context and
    its last activity is now); returns after the pong."""
    w = open_ready(c, user)
    w.sock.sendall(ws_frame(0x9, b"w"))
    while w.read_frame()[0] != 0xA:
        pass
    return w


def test_half_a_frame_keeps_the_connection_awake(one_worker):
    """
    Half a frame sits in wslay's buffer.  A witness connection, active after
    it, goes to sleep: a server that put connections to sleep regardless
    would have put the half frame's connection to sleep no later, and the
    rest of its frame would be garbage to a fresh context (close 1002).
    Here the rest completes a send that is acknowledged.
    """
    c = one_worker
    a, b = new_user("pa"), new_user("pb")
    g = c.group([a, b])
    ws = open_ready(c, a)
    data = ws_frame(0x1, send_payload(g, "split across a sweep"))
    ws.sock.sendall(data[:5])      # the header and part of the mask
    witness = awake_witness(c, b)
    base = hibernating(c)          # ws and the witness both awake
    try:
        wait_until(lambda: hibernating(c) >= base + 1, timeout=15,
                   what="the witness to hibernate")
        ws.sock.sendall(data[5:])
        assert read_json_until(ws, "ack")["seq"] == 1
    finally:
        ws.close()
        witness.close()


def test_half_a_fragmented_message_keeps_the_connection_awake(one_worker):
    c = one_worker
    a, b = new_user("fa"), new_user("fb")
    g = c.group([a, b])
    ws = open_ready(c, a)
    payload = send_payload(g, "in two fragments")
    ws.sock.sendall(ws_frame(0x1, payload[:10], fin=False))
    witness = awake_witness(c, b)  # see above
    base = hibernating(c)
    try:
        wait_until(lambda: hibernating(c) >= base + 1, timeout=15,
                   what="the witness to hibernate")
        ws.sock.sendall(ws_frame(0x0, payload[10:], fin=True))
        assert read_json_until(ws, "ack")["seq"] == 1
    finally:
        ws.close()
        witness.close()


def test_server_ping_wakes_a_sleeping_connection(cluster_factory):
    """The heartbeat pings every connection, sleeping or not, and a pong
    keeps it alive: with a 2 s interval and a 3 s timeout, a connection that
    answers outlives several timeouts while it sleeps in between."""
    c = cluster_factory("hibernate-ping", **{"chat.workers": "1",
                                             "chat.heartbeat_interval": "2s",
                                             "chat.heartbeat_timeout": "3s"})
    a = new_user("pp")
    c.group([a, new_user("pq")])
    ws = open_ready(c, a)
    try:
        pings = 0
        while pings < 4:                # about 8 s: more than two timeouts
            op, payload = ws.read_frame(timeout=10)
            if op == 0x9:
                pings += 1
                ws.sock.sendall(ws_frame(0xA, payload))
                if pings == 1:
                    wait_until(lambda: hibernating(c) >= 1, timeout=10,
                               what="the connection to sleep between pings")
        ws.sock.sendall(ws_frame(0x9, b"alive"))
        while True:
            op, payload = ws.read_frame(timeout=5)
            if op == 0xA:
                assert payload == b"alive"
                break
    finally:
        ws.close()
