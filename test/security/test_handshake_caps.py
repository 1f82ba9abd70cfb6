"""
Connections that are still upgrading are capped (issue 13).

Before the token is checked, each connection holds a descriptor and a head
buffer until chat.handshake_timeout.  chat.max_handshakes_per_ip (default
256 per worker) and chat.max_handshakes (default 2048 per worker) bound
them: past the cap the worker answers at once with a complete 429 (per
address) or 503 (in total) and closes, and everyone else still connects.

Cluster "hs" runs with the defaults, as an attacker would find them.
"""
import json
import resource
import selectors
import socket
import time

import pytest

from seclib import (assert_no_crash, assert_status, connect_from, new_user, proc_status,
                    start, upgrade, worker_pid)


@pytest.fixture(scope="module")
def hs():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    c = start("hs", **{"chat.handshake_timeout": "'30s'"})
    c.pid0 = worker_pid(c)
    yield c
    c.stop()


def half_open(port, source, n):
    """n connections that send the start of an upgrade and never finish it."""
    socks = []
    for _ in range(n):
        s = connect_from(port, source)
        s.sendall(b"GET /ws?token=x HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        socks.append(s)
    return socks


def answers(socks, timeout=10.0, quiet=1.0):
    """What each socket got: its bytes up to EOF, or None for a socket still
    open and silent once nothing has happened for quiet seconds."""
    sel = selectors.DefaultSelector()
    data = {s: b"" for s in socks}
    done = set()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while len(done) < len(socks) and time.monotonic() < deadline:
        events = sel.select(quiet)
        if not events:
            break
        for key, _ in events:
            s = key.fileobj
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                chunk = b""
                data[s] = data[s] or b"<reset>"
            if chunk:
                data[s] += chunk
            else:
                done.add(s)
                sel.unregister(s)
    sel.close()
    for s in socks:
        s.setblocking(True)
    return [data[s] if s in done else None for s in socks]


def status_of(raw):
    line = raw.split(b"\r\n", 1)[0]
    return int(line.split()[1]) if line.startswith(b"HTTP/1.1 ") else None


def test_half_open_flood_from_one_address_is_refused_cleanly(hs):
    base = proc_status(hs.pid0, "RssAnon")
    socks = half_open(hs.chat_port, "127.0.0.1", 2000)
    got = answers(socks, 10)
    held = [g for g in got if g is None]
    refused = [g for g in got if g is not None]
    statuses = {}
    for g in refused:
        statuses[status_of(g)] = statuses.get(status_of(g), 0) + 1
    growth = proc_status(hs.pid0, "RssAnon") - base
    print("2000 half-open: %d held, refused %r, worker RssAnon +%d kB"
          % (len(held), statuses, growth))
    assert len(held) == 256, "expected the per-address cap (256) to hold, %d held" % len(held)
    assert statuses == {429: 2000 - 256}, statuses
    # each refusal is one complete HTTP response with a JSON reason
    head, _, body = refused[0].partition(b"\r\n\r\n")
    assert b"Connection: close" in head
    assert json.loads(body)["error"] == "too_many_connections"
    with open("/proc/%d/maps" % hs.pid0) as f:
        asan = "libasan" in f.read()          # test/asan: the quarantine holds freed memory
    assert asan or growth < 20 * 1024, growth
    # a normal client (another address) connects meanwhile, and quickly
    u = new_user("hs")
    t0 = time.monotonic()
    r = upgrade(hs.chat_port, hs.token(u), source="127.0.0.2")
    assert_status(r, 101, what="a normal client during the flood")
    assert time.monotonic() - t0 < 1.0
    for s in socks:
        s.close()
    # the slots come back: the flooding address may upgrade again
    deadline = time.monotonic() + 10
    while True:
        r = upgrade(hs.chat_port, hs.token(u), source="127.0.0.1")
        if r.status == 101 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert_status(r, 101, what="after the flood")
    assert_no_crash(hs)
    assert worker_pid(hs) == hs.pid0


@pytest.fixture(scope="module")
def hs_total():
    c = start("hs-total", **{"chat.handshake_timeout": "'30s'", "chat.max_handshakes": "100",
                             "chat.max_handshakes_per_ip": "60"})
    yield c
    c.stop()


def test_total_handshake_cap_gives_503(hs_total):
    a = half_open(hs_total.chat_port, "127.0.0.3", 60)
    b = half_open(hs_total.chat_port, "127.0.0.4", 60)
    got = answers(a + b, 5)
    statuses = {}
    for g in got:
        k = None if g is None else status_of(g)
        statuses[k] = statuses.get(k, 0) + 1
    assert statuses == {None: 100, 503: 20}, statuses
    for s in a + b:
        s.close()
    deadline = time.monotonic() + 10
    while True:
        r = upgrade(hs_total.chat_port, hs_total.token(new_user("ht")), source="127.0.0.5")
        if r.status == 101 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert_status(r, 101, what="after the handshakes closed")
