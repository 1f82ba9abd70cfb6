"""
Floods that cost the worker memory or hold its loop (issue 13).

- Ping flood: one client sends tens of MB of 125-byte pings and never reads
  its pongs.  wslay queues a pong for each, outside chat.max_outbound_bytes;
  the worker bounds that queue (it stops reading the socket until it
  drains) and gives each connection a budget per loop pass, so its memory
  stays flat and another client's ping is still answered at once.
- Tiny fragments: 10 clients each send one message as 60,000 one-byte
  fragments (under the 64 kB message cap).  wslay keeps a chunk per
  fragment; the worker caps fragments per message and closes with 1008.
- A close frame with a 1-byte payload is a protocol error: close code 1002
  (RFC 6455 5.5.1; Autobahn 7.3.2), not an echo.

Memory is the worker's RssAnon (its heap), sampled while the attack runs:
it must grow by less than 20 MB.  Under AddressSanitizer (test/asan) freed
memory sits in ASan's quarantine, so there the attacks run and everything
else is checked, but not the growth.
"""
import json
import os
import socket
import statistics
import struct
import threading
import time

import pytest

from seclib import RawWs, assert_no_crash, new_user, proc_status, start, worker_pid, ws_frame

GROWTH_KB = 20 * 1024


@pytest.fixture(scope="module")
def fl():
    c = start("memflood", **{"chat.max_frame_bytes": "'64kB'",
                             "chat.heartbeat_timeout": "'5s'"})
    c.pid0 = worker_pid(c)
    yield c
    c.stop()


class RssSampler(threading.Thread):
    """Samples the worker's RssAnon every 20 ms until stopped."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.base = proc_status(pid, "RssAnon")
        self.peak = self.base
        self.halt = threading.Event()
        self.start()

    def run(self):
        while not self.halt.is_set():
            try:
                self.peak = max(self.peak, proc_status(self.pid, "RssAnon"))
            except (OSError, KeyError):
                return
            time.sleep(0.02)

    def growth(self):
        self.halt.set()
        self.join()
        return self.peak - self.base


def under_asan(pid):
    """Whether the worker runs with the ASan runtime (test/asan)."""
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def assert_growth(pid, growth, what):
    if under_asan(pid):
        return
    assert growth < GROWTH_KB, "worker grew %d kB %s" % (growth, what)


def masked_pings(n, size=125):
    """n masked ping frames of size bytes each, as one buffer."""
    one = ws_frame(0x9, b"p" * size)
    return one * n


def test_ping_flood_is_bounded_and_does_not_starve_others(fl):
    flooder = RawWs(fl.chat_port, fl.token(new_user("pf")))
    other = RawWs(fl.chat_port, fl.token(new_user("po")))
    rss = RssSampler(fl.pid0)
    chunk = masked_pings(8000)                   # about 1 MB
    total = 40 * 1024 * 1024
    sent = [0]

    def flood():
        # blocking: when the server stops reading, sendall waits (until the
        # test shuts the socket down); never a partial frame
        s = flooder.sock
        s.settimeout(None)
        try:
            while sent[0] < total:
                s.sendall(chunk)
                sent[0] += len(chunk)
        except OSError:
            return

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    while sent[0] < 2 * 1024 * 1024:
        assert t.is_alive(), "the flood stopped after %d bytes" % sent[0]
        time.sleep(0.01)
    # the other client's pings, answered while the flood goes on
    lat = []
    for i in range(20):
        t0 = time.monotonic()
        other.send_frame(0x1, json.dumps({"type": "ping", "ref": i}).encode())
        while True:
            op, payload = other.read_frame(10)
            if op == 0x9:
                other.send_frame(0xA, payload)
                continue
            if op == 0x1 and json.loads(payload).get("ref") == i:
                break
        lat.append(time.monotonic() - t0)
        time.sleep(0.05)
    # the flood goes on until all is sent or the server stops taking it
    last, still = sent[0], time.monotonic()
    deadline = time.monotonic() + 20
    while t.is_alive() and time.monotonic() < deadline and time.monotonic() - still < 1.0:
        time.sleep(0.05)
        if sent[0] != last:
            last, still = sent[0], time.monotonic()
    time.sleep(0.5)                              # what the worker holds once it has read it
    growth = rss.growth()
    flooder.sock.shutdown(socket.SHUT_RDWR)
    t.join(10)
    med = statistics.median(lat)
    print("ping flood: sent %.1f MB, worker RssAnon +%d kB, other's ping median %.1f ms, max %.1f ms"
          % (sent[0] / 1e6, growth, med * 1000, max(lat) * 1000))
    assert_growth(fl.pid0, growth, "during the ping flood")
    assert med < 0.1, "another client's ping took %.0f ms (median) during the flood" % (med * 1000)
    flooder.close()
    other.close()
    assert_no_crash(fl)
    assert worker_pid(fl) == fl.pid0


def test_tiny_fragments_are_capped(fl):
    n_conns, n_frags = 10, 60000
    conns = [RawWs(fl.chat_port, fl.token(new_user("tf"))) for _ in range(n_conns)]
    rss = RssSampler(fl.pid0)
    frames = ws_frame(0x1, b"a", fin=False) + ws_frame(0x0, b"a", fin=False) * (n_frags - 1)
    for w in conns:
        w.sock.settimeout(10)
        try:
            w.sock.sendall(frames)
        except OSError:
            pass                                 # closed by the server mid-way
    # the worker has read all it will read: its answers are in
    codes = [w.close_code(10) for w in conns]
    growth = rss.growth()
    print("tiny fragments: close codes %r, worker RssAnon +%d kB" % (codes, growth))
    assert_growth(fl.pid0, growth, "for fragments")
    assert codes == [1008] * n_conns, codes
    for w in conns:
        w.close()
    # a message in a few fragments is still fine
    w = RawWs(fl.chat_port, fl.token(new_user("ok")))
    body = json.dumps({"type": "ping", "ref": "frag"}).encode()
    w.send_frame(0x1, body[:5], fin=False)
    w.send_frame(0x0, body[5:10], fin=False)
    w.send_frame(0x0, body[10:], fin=True)
    while True:
        op, payload = w.read_frame(5)
        if op == 0x1 and json.loads(payload).get("ref") == "frag":
            break
    w.close()
    assert_no_crash(fl)
    assert worker_pid(fl) == fl.pid0


@pytest.mark.parametrize("payload,expect", [(b"\x03", 1002), (b"", 1005), (b"\x03\xe8", 1000)])
def test_close_payload_of_one_byte_is_a_protocol_error(fl, payload, expect):
    w = RawWs(fl.chat_port, fl.token(new_user("cl")))
    w.send_frame(0x8, payload)
    code = w.close_code(5)
    assert code == expect, "close with payload %r answered %r" % (payload, code)
    w.close()
