#!/usr/bin/python3
"""
Real clients against a running cluster whose chat worker is built with
AddressSanitizer (test/asan/run starts it).  The point is to drive every
path of the worker once with sockets and real frames -- connect, send, ack,
broadcast, sync, history, the other frame types, bad frames, oversized
frames, abrupt disconnects, plain HTTP -- while ASan watches; the checks
here are deliberately coarse (the integration suite checks behaviour).

    smoke.py SOCKET_DIR PG_PORT CHAT_PORT

Prints one "PASS asan/smoke::<step>" or "FAIL asan/smoke::<step>" line per
step (test/asan/run appends them to $RESULTS) and exits 1 on any failure.
Debian's python3 on purpose: psycopg2 comes from python3-psycopg2.
"""
import json
import os
import socket
import struct
import sys
import time
import traceback
import uuid

import psycopg2

SOCK_DIR, PG_PORT, CHAT_PORT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

db = psycopg2.connect(host=SOCK_DIR, port=PG_PORT, user="postgres", dbname="postgres")
db.autocommit = True


def sql(q, *args):
    with db.cursor() as cur:
        cur.execute(q, args)
        return cur.fetchall() if cur.description else None


def token(user):
    return sql("SELECT chat_mint_token(%s)", user)[0][0]


class Ws:
    """A minimal RFC 6455 client over a blocking socket."""

    def __init__(self, user=None, tok=None, ready=True):
        self.sock = socket.create_connection(("127.0.0.1", CHAT_PORT), timeout=10)
        self.buf = b""
        self.closed = None          # close code once the server sent one
        tok = tok if tok is not None else token(user)
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        self.sock.sendall(("GET /ws?token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n" % (tok, key)).encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed during the handshake")
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head[:200]
        self.ready = self.recv_json(lambda f: True) if ready else None
        if ready:
            assert self.ready["type"] == "ready", self.ready

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, length=None):
        if isinstance(payload, str):
            payload = payload.encode()
        n = len(payload) if length is None else length
        head = bytes([(0x80 if fin else 0) | opcode])
        mbit = 0x80 if mask else 0
        if n < 126:
            head += bytes([mbit | n])
        elif n < 65536:
            head += bytes([mbit | 126]) + struct.pack("!H", n)
        else:
            head += bytes([mbit | 127]) + struct.pack("!Q", n)
        if mask:
            key = os.urandom(4)
            payload = key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + payload)

    def send(self, obj):
        self.send_frame(1, json.dumps(obj))

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def recv_frame(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        n, off = self.buf[1] & 0x7F, 2
        if n == 126:
            self._fill(4, deadline)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._fill(10, deadline)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._fill(off + n, deadline)
        op, payload = self.buf[0] & 0x0F, self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        if op == 8:
            self.closed = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        return op, payload

    def recv_json(self, pred, timeout=5.0):
        """The next text frame matching pred (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            op, payload = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if op == 8:
                raise EOFError("closed with %s" % self.closed)
            if op == 1:
                f = json.loads(payload)
                if pred(f):
                    return f

    def wait_closed(self, timeout=5.0):
        """Reads until the server closes; returns its close code or 'eof'."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                op, _ = self.recv_frame(max(0.01, deadline - time.monotonic()))
                if op == 8:
                    return self.closed
        except (EOFError, ConnectionError):
            return "eof"
        raise AssertionError("still open after %.1fs" % timeout)

    def ping(self):
        ref = uuid.uuid4().hex
        self.send({"type": "ping", "ref": ref})
        self.recv_json(lambda f: f.get("type") == "pong" and f.get("ref") == ref)

    def abort(self):
        """Hang up with a RST, whatever is in flight."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        try:
            self.send_frame(8, struct.pack("!H", 1000))
            self.wait_closed(2)
        except (OSError, AssertionError, EOFError):
            pass
        self.sock.close()


def http(raw, timeout=5.0):
    with socket.create_connection(("127.0.0.1", CHAT_PORT), timeout=timeout) as s:
        s.sendall(raw)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk


# ---------------------------------------------------------------- the steps

RUN = uuid.uuid4().hex[:8]
ALICE, BOB = "alice-" + RUN, "bob-" + RUN
CH = str(sql("SELECT chat_create_channel('group', %s, %s)", "asan-" + RUN, [ALICE, BOB])[0][0])
state = {}
failures = 0


def step(fn):
    global failures
    name = fn.__name__
    try:
        fn()
        print("PASS asan/smoke::%s" % name, flush=True)
    except Exception:  # noqa: BLE001 - every failure is reported, then the next step runs
        failures += 1
        print("FAIL asan/smoke::%s" % name, flush=True)
        traceback.print_exc()
    return fn


def send(ws, content, **extra):
    cid = str(uuid.uuid4())
    f = {"type": "send", "clientId": cid, "channelId": CH, "content": content}
    f.update(extra)
    ws.send(f)
    return ws.recv_json(lambda f: f.get("clientId") == cid and f["type"] in ("ack", "error"))


def worker_pids():
    return sorted(r[0] for r in sql("SELECT pid FROM pg_stat_activity "
                                    "WHERE backend_type = 'chat worker'"))


state["pids"] = worker_pids()


@step
def connect():
    state["alice"] = Ws(ALICE)
    state["bob"] = Ws(BOB)
    assert any(c["id"] == CH for c in state["alice"].ready["channels"])


@step
def send_ack_broadcast():
    a, b = state["alice"], state["bob"]
    ack = send(a, "hello ☃", ref={"n": 1}, kind="text")
    assert ack["type"] == "ack" and ack["ref"] == {"n": 1}, ack
    m = b.recv_json(lambda f: f["type"] == "message")["message"]
    assert m["content"] == "hello ☃" and m["seq"] == ack["seq"], m
    state["seq"] = m["seq"]


@step
def history():
    a = state["alice"]
    a.send({"type": "history", "channelId": CH, "limit": 10, "ref": "h"})
    h = a.recv_json(lambda f: f["type"] == "history")
    assert h["messages"] and h["messages"][0]["content"] == "hello ☃", h


@step
def sync_after_reconnect():
    a = state["alice"]
    state["bob"].close()
    acks = [send(a, "missed %d" % i) for i in range(3)]
    b = state["bob"] = Ws(BOB)
    b.send({"type": "sync", "channels": {CH: state["seq"]}, "changes": {CH: 0}})
    got = []
    while True:
        f = b.recv_json(lambda f: f["type"] in ("message", "synced"))
        if f["type"] == "synced":
            break
        got.append(f["message"]["seq"])
    assert got == [x["seq"] for x in acks], (got, acks)


@step
def other_frames():
    a, b = state["alice"], state["bob"]
    a.send({"type": "typing", "channelId": CH})
    b.recv_json(lambda f: f["type"] == "typing")
    a.send({"type": "presence", "channelId": CH, "ref": 1})
    a.recv_json(lambda f: f["type"] == "presence_state")
    ack = send(a, "to be edited", attachments=[{"url": "https://x.example/a.png",
                                                "name": "a.png", "size": 1,
                                                "mime": "image/png"}])
    a.send({"type": "edit", "messageId": ack["serverId"], "content": "edited"})
    b.recv_json(lambda f: f["type"] == "message_updated")
    a.send({"type": "delete", "messageId": ack["serverId"]})
    b.recv_json(lambda f: f["type"] == "message_deleted")
    b.send({"type": "read", "channelId": CH, "seq": ack["seq"]})
    a.recv_json(lambda f: f["type"] == "read")
    a.send({"type": "refresh", "token": token(ALICE)})
    a.recv_json(lambda f: f["type"] in ("pong", "error"))
    sql("SELECT chat_send(%s, %s, %s)", CH, BOB, "from SQL")
    a.recv_json(lambda f: f["type"] == "message" and f["message"]["content"] == "from SQL")


@step
def bad_frames():
    w = Ws(ALICE)
    for bad in (b"{not json", b'{"type":"nope"}', b"[1,2]", b'{"type":"send"}',
                b'{"type":"ping","ref":"' + b"r" * 400 + b'"}', b"[" * 40 + b"]" * 40,
                json.dumps({"type": "send", "clientId": "x", "channelId": CH,
                            "content": "a\u0000b"}).encode()):
        w.send_frame(1, bad)
        w.recv_json(lambda f: f["type"] == "error")
    w.send_frame(2, b"\x00\x01")
    w.recv_json(lambda f: f["type"] == "error")
    for i in range(200):
        w.send_frame(1, b"{")
    for i in range(200):
        w.recv_json(lambda f: f["type"] == "error")
    w.ping()
    w.close()


@step
def protocol_violations():
    for send_bad in (lambda w: w.send_frame(1, b'{"a":"\xff"}'),          # invalid UTF-8
                     lambda w: w.send_frame(1, b'{"type":"ping"}', mask=False),
                     lambda w: w.send_frame(9, b"p" * 126),             # control > 125
                     lambda w: w.send_frame(9, b"p", fin=False),        # fragmented control
                     lambda w: w.send_frame(0, b"x"),                   # continuation first
                     lambda w: w.send_frame(3, b"x")):                  # reserved opcode
        w = Ws(ALICE)
        send_bad(w)
        w.wait_closed()
        w.sock.close()


@step
def oversized():
    w = Ws(ALICE)
    ack = send(w, "x" * 2000)                      # over chat.max_message_bytes
    assert ack["type"] == "error" and ack["code"] == "too_large", ack
    w.send_frame(1, b"", length=1 << 20)          # a header claiming 1 MB
    w.sock.sendall(b"y" * 1000)
    w.wait_closed()
    w.sock.close()
    w = Ws(ALICE)                                  # fragments adding up past the limit
    w.send_frame(1, b"a" * 3000, fin=False)
    w.send_frame(0, b"b" * 3000, fin=False)
    w.send_frame(0, b"c" * 3000)
    w.wait_closed()
    w.sock.close()
    w = Ws(ALICE)                                  # 2^63 - 1: no allocation may follow
    w.sock.sendall(bytes([0x81, 0xFF]) + struct.pack("!Q", (1 << 63) - 1) + b"\0" * 4
                   + b"z" * 16)                   # (the limit applies once data comes)
    w.wait_closed()
    w.sock.close()


@step
def fragmented():
    w = Ws(ALICE)
    w.send_frame(1, b'{"type":"pi', fin=False)
    w.send_frame(9, b"in-between")
    w.send_frame(0, b'ng","ref":7}')
    got = [w.recv_frame() for _ in range(2)]
    assert sorted(op for op, _ in got) == [1, 10], got
    assert any(op == 1 and json.loads(p)["type"] == "pong" for op, p in got), got
    w.close()


@step
def abrupt_disconnects():
    a = state["alice"]
    socks = []
    for i in range(10):                            # half a handshake
        s = socket.create_connection(("127.0.0.1", CHAT_PORT))
        s.sendall(b"GET /ws?token=" + token(BOB).encode()[: 10 + i])
        socks.append(s)
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    for i in range(10):                            # mid-frame
        w = Ws(BOB)
        w.sock.sendall(bytes([0x81, 0xFE, 0x10, 0x00]) + b"\0\0\0\0" + b"{" * (i * 50))
        w.abort()
    for i in range(10):                            # with answers in flight
        w = Ws(BOB)
        for _ in range(30):
            w.send({"type": "history", "channelId": CH, "limit": 200})
        send(a, "while they hang up %d" % i)
        w.abort()
    for i in range(5):                             # after a send, before the ack
        w = Ws(BOB)
        w.send({"type": "send", "clientId": str(uuid.uuid4()), "channelId": CH,
                "content": "gone %d" % i})
        w.abort()
    a.ping()
    state["bob"].ping()


@step
def plain_http():
    assert http(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200")
    assert http(b"GET /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200")
    assert http(b"GET /nowhere HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404")
    assert http(b"\x16\x03\x01 not http\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert http(b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n").startswith(b"HTTP/1.1 431")
    r = http(b"GET /ws?token=nope HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 401"), r[:100]


@step
def worker_survived():
    state["alice"].ping()
    state["alice"].close()
    state["bob"].close()
    assert worker_pids() == state["pids"], "a chat worker restarted: %s -> %s" % (
        state["pids"], worker_pids())


sys.exit(1 if failures else 0)
