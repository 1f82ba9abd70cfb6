"""
Slowloris and connection floods.

- A handshake not completed within chat.handshake_timeout is closed, however
  slowly its bytes keep coming; upgraded connections are not affected.
- chat.max_connections (across workers) and chat.max_connections_per_ip are
  enforced with a clean HTTP refusal (503 / 429 with a JSON body), and the
  slots come back when connections close.
- Out of file descriptors, the worker does not spin on accept (EMFILE): its
  CPU time stays low while the listen queue is full, existing connections
  are still served, and it accepts again once descriptors are free.
"""
import asyncio
import json
import socket
import subprocess
import time

import pytest
import websockets

from seclib import (Client, assert_no_crash, assert_status, close_all, cpu_seconds, fd_count,
                    new_user, nofile_limit, server_log_has, start, upgrade, wait_until,
                    worker_pid)


# --------------------------------------------------------------------------
# slowloris
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def slow():
    # the 300 slow connections come from the real clients' address: the
    # per-address handshake cap (test_handshake_caps.py) must not refuse them
    c = start("slowloris", **{"chat.handshake_timeout": "'1s'",
                              "chat.max_handshakes_per_ip": "1000",
                              "chat.heartbeat_interval": "'400ms'",
                              "chat.heartbeat_timeout": "'10s'"})
    c.pid0 = worker_pid(c)
    yield c
    c.stop()


def closed_by_peer(s):
    """True when the server closed s (EOF or reset); False if still open."""
    try:
        data = s.recv(65536, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    return data == b""


def open_idle(port, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        socks.append(s)
    return socks


def test_silent_connection_closed_after_handshake_timeout(slow):
    s = socket.create_connection(("127.0.0.1", slow.chat_port), timeout=5)
    t0 = time.monotonic()
    try:
        wait_until(lambda: closed_by_peer(s), timeout=5, interval=0.02,
                   what="the server closing a silent connection")
        took = time.monotonic() - t0
    finally:
        s.close()
    assert 0.9 <= took <= 3.5, "closed after %.2fs with handshake_timeout 1s" % took


def test_trickled_request_head_closed_after_handshake_timeout(slow):
    head = ("GET /ws?token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            % slow.token(new_user("sl"))).encode()
    s = socket.create_connection(("127.0.0.1", slow.chat_port), timeout=5)
    t0 = time.monotonic()
    closed = False
    try:
        # one byte every 50 ms, never the blank line that ends the head
        for i in range(200):
            try:
                s.send(head[i % len(head):i % len(head) + 1] if i < len(head) else b"X")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if closed_by_peer(s):
                closed = True
                break
            time.sleep(0.05)  # the attacker's pace, not a synchronisation
        took = time.monotonic() - t0
    finally:
        s.close()
    assert closed, "a trickling request head was never closed"
    assert 0.9 <= took <= 3.5, "closed after %.2fs with handshake_timeout 1s" % took


async def test_upgraded_connections_outlive_the_handshake_timeout(slow):
    u = new_user("up")
    c = await Client.open(slow, u)
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        await c.collect(0.25)
        assert not c.ws.closed, "an upgraded connection was closed by the handshake timeout"
    await c.send({"type": "ping", "ref": 1})
    assert (await c.wait_for(lambda f: f.get("ref") == 1))["type"] == "pong"
    await c.close()


async def test_many_slowloris_connections_do_not_starve_real_clients(slow):
    attackers = open_idle(slow.chat_port, 300)
    try:
        for s in attackers:
            s.send(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        a, b = new_user("a"), new_user("b")
        g = slow.group([a, b])
        t0 = time.monotonic()
        ca, cb = await slow.client(a), await slow.client(b)
        k = await ca.send_message(g, "through the flood")
        assert k["type"] == "ack"
        assert (await cb.wait_message(g))["content"] == "through the flood"
        assert time.monotonic() - t0 < 2.0, "a real client waited %.2fs" % (time.monotonic() - t0)
        await close_all(ca, cb)
        wait_until(lambda: all(closed_by_peer(s) for s in attackers), timeout=5, interval=0.05,
                   what="all 300 slow connections closed")
    finally:
        for s in attackers:
            s.close()
    assert worker_pid(slow) == slow.pid0
    assert_no_crash(slow)


# --------------------------------------------------------------------------
# connection caps
# --------------------------------------------------------------------------

MAX_CONN = 4
PER_IP = 2


@pytest.fixture(scope="module")
def caps():
    """Two workers: chat.max_connections is counted across them."""
    c = start("caps", **{"chat.workers": "2", "chat.max_connections": str(MAX_CONN),
                         "chat.max_connections_per_ip": str(PER_IP)})
    yield c
    c.stop()


@pytest.fixture(scope="module")
def caps1():
    """One worker: the per-IP cap without the question of several workers."""
    c = start("caps-one", **{"chat.max_connections": str(MAX_CONN),
                             "chat.max_connections_per_ip": str(PER_IP)})
    yield c
    c.stop()


async def ws_from(cluster, user, source):
    ws = await websockets.connect(cluster.url(cluster.token(user)), local_addr=(source, 0),
                                  open_timeout=5, close_timeout=1, ping_interval=None)
    ready = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert ready["type"] == "ready"
    ws.connection_id = ready["connectionId"]
    return ws


async def refused_from(cluster, user, source):
    """The status of an upgrade that must be refused."""
    try:
        ws = await ws_from(cluster, user, source)
    except websockets.InvalidStatusCode as e:
        return e.status_code
    await ws.close()
    return 101


async def close_ws(*conns):
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


async def per_ip_cap(cluster, src, src_other):
    conns = []
    try:
        statuses = []
        # enough attempts that, with several workers, some land on each
        for _ in range(PER_IP + 6):
            try:
                conns.append(await ws_from(cluster, new_user("ip"), src))
                statuses.append(101)
            except websockets.InvalidStatusCode as e:
                statuses.append(e.status_code)
        workers = sorted({c.connection_id.split("-")[0] for c in conns})
        assert statuses == [101] * PER_IP + [429] * 6, \
            "from one address with chat.max_connections_per_ip = %d and chat.workers = %s: " \
            "statuses %r, accepted on workers %r" % (PER_IP, cluster.settings["chat.workers"],
                                                     statuses, workers)
        r = upgrade(cluster.chat_port, cluster.token(new_user("ip")), source=src)
        assert_status(r, 429, "too_many_connections", what="raw upgrade over the per-IP cap")
        # another address is not affected
        conns.append(await ws_from(cluster, new_user("ip"), src_other))
        # a slot comes back when a connection closes
        await close_ws(conns.pop(0))
        wait_until(lambda: upgrade(cluster.chat_port, cluster.token(new_user("ip")),
                                   source=src).status == 101,
                   timeout=5, what="a freed per-IP slot")
    finally:
        await close_ws(*conns)


async def test_per_ip_cap_gives_429_and_frees_on_close(caps1):
    await per_ip_cap(caps1, "127.0.0.11", "127.0.0.12")
    assert_no_crash(caps1)


async def test_per_ip_cap_holds_across_workers(caps):
    await per_ip_cap(caps, "127.0.0.13", "127.0.0.14")


async def test_max_connections_across_workers_gives_503(caps):
    conns = []
    try:
        for i in range(MAX_CONN):
            conns.append(await ws_from(caps, new_user("mc"), "127.0.0.%d" % (21 + i)))
        r = upgrade(caps.chat_port, caps.token(new_user("mc")), source="127.0.0.31")
        assert_status(r, 503, "unavailable", what="upgrade over chat.max_connections")
        # a flood of refused upgrades leaves nothing behind
        for i in range(50):
            assert upgrade(caps.chat_port, caps.token(new_user("mc")),
                           source="127.0.0.32").status == 503
        # plain HTTP is still served at the cap
        assert caps.healthz() == 200
        await close_ws(conns.pop())
        wait_until(lambda: upgrade(caps.chat_port, caps.token(new_user("mc")),
                                   source="127.0.0.33").status == 101,
                   timeout=5, what="a freed connection slot")
    finally:
        await close_ws(*conns)
    # every slot comes back
    async def all_back():
        got = []
        try:
            for i in range(MAX_CONN):
                got.append(await ws_from(caps, new_user("mc"), "127.0.0.%d" % (41 + i)))
            return True
        except websockets.InvalidStatusCode:
            return False
        finally:
            await close_ws(*got)
    deadline = time.monotonic() + 5
    while not await all_back():
        assert time.monotonic() < deadline, "slots did not come back after every close"
        await asyncio.sleep(0.1)
    assert_no_crash(caps)


# --------------------------------------------------------------------------
# EMFILE
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def emfile():
    c = start("emfile", **{"chat.heartbeat_interval": "'30s'", "chat.heartbeat_timeout": "'120s'",
                           "chat.handshake_timeout": "'60s'"})
    yield c
    c.stop()


def set_nofile(pid, soft, hard):
    # as the worker's own user: lowering the soft limit needs no privilege
    # (and root here may lack CAP_SYS_RESOURCE)
    subprocess.run(["runuser", "-u", "postgres", "--", "prlimit", "--pid", str(pid),
                    "--nofile=%d:%d" % (soft, hard)], check=True)


async def test_accept_does_not_spin_on_emfile(emfile):
    pid = worker_pid(emfile)
    soft0, hard0 = nofile_limit(pid)
    assert soft0 == hard0, "the worker did not raise its soft fd limit: %d/%d" % (soft0, hard0)
    a, b = new_user("a"), new_user("b")
    g = emfile.group([a, b])
    ca, cb = await emfile.client(a), await emfile.client(b)
    # warm up: the relation files the sends need are open before the limit bites
    for i in range(3):
        assert (await ca.send_message(g, "warm %d" % i))["type"] == "ack"
        await cb.wait_message(g)
    limit = fd_count(pid) + 30
    set_nofile(pid, limit, hard0)
    flood = []
    try:
        assert nofile_limit(pid)[0] == limit
        # far more connections than free descriptors: the rest wait in the
        # listen queue and make the listener readable all the time
        for _ in range(120):
            flood.append(socket.create_connection(("127.0.0.1", emfile.chat_port), timeout=5))
        wait_until(lambda: fd_count(pid) >= limit - 1, timeout=10,
                   what="the worker using every descriptor (%d)" % limit)
        wait_until(lambda: server_log_has(emfile, "accept paused"), timeout=10,
                   what="the worker reporting EMFILE")
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        # meanwhile existing connections are served
        k = await ca.send_message(g, "during EMFILE")
        assert k["type"] == "ack", k
        assert (await cb.wait_message(g))["content"] == "during EMFILE"
        while time.monotonic() - t0 < 3.0:
            await cb.collect(0.1)   # the measuring window; nothing to wait for
        used = cpu_seconds(pid) - cpu0
        window = time.monotonic() - t0
        print("worker CPU while out of descriptors: %.2fs in %.2fs" % (used, window))
        assert fd_count(pid) >= limit - 1, "descriptors were freed during the window"
        assert used < 0.25 * window, \
            "worker used %.2fs CPU in %.2fs while out of descriptors: it spins" % (used, window)
    finally:
        for s in flood:
            s.close()
        set_nofile(pid, soft0, hard0)
    # it serves new connections again
    c2 = None
    deadline = time.monotonic() + 10
    while c2 is None:
        try:
            c2 = await emfile.client(new_user("after"))
        except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake, AssertionError):
            assert time.monotonic() < deadline, "no new connection after the descriptors came back"
            await asyncio.sleep(0.1)
    assert c2.ready["type"] == "ready"
    await close_all(ca, cb, c2)
    assert worker_pid(emfile) == pid
    assert_no_crash(emfile)
