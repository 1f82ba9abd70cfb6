"""
Slow consumers: a client that reads nothing while messages flow is dropped
once its bounded outbound queue (chat.max_outbound_bytes) would overflow.
The worker's private memory stays flat, the other members get everything,
and the dropped client gets everything through sync after reconnecting.

Memory is measured as RssAnon from /proc/<pid>/status: that is where a
queue lives.  VmRSS is reported too, but it also counts the shared buffers
the worker touches while storing messages (RssShmem), which grows with the
table whatever the queues do.
"""
import asyncio
import base64
import json
import os
import socket
import struct
import time
import uuid

import pytest

from seclib import assert_no_crash, new_user, proc_status, start, worker_pid

CONTENT_BYTES = 8000
BURST = 2000                 # 16 MB through a queue bounded at 64 kB
WARMUP = 400


@pytest.fixture(scope="module")
def sc():
    c = start("slow-consumer", **{"chat.max_outbound_bytes": "'64kB'",
                                  "chat.rate_limit": "0", "chat.user_rate_limit": "0",
                                  "chat.max_message_bytes": "'16kB'",
                                  "chat.max_frame_bytes": "'64kB'",
                                  "chat.heartbeat_interval": "'10s'",
                                  "chat.heartbeat_timeout": "'60s'"})
    yield c
    c.stop()


class SilentClient:
    """A raw WebSocket client with a tiny receive buffer that stops reading
    after the ready frame."""

    def __init__(self, cluster, user):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", cluster.chat_port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /ws?token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n"
                           % (cluster.token(user), key)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        frames = self.parse()
        while not frames:
            self.buf += self.sock.recv(4096)
            frames = self.parse()
        self.ready = frames[0]
        assert self.ready["type"] == "ready", self.ready

    def parse(self):
        """Complete text frames from the buffer (a truncated tail is kept)."""
        out = []
        while len(self.buf) >= 2:
            n, off = self.buf[1] & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    break
                n, off = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    break
                n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
            if len(self.buf) < off + n:
                break
            op, payload = self.buf[0] & 0x0F, self.buf[off:off + n]
            self.buf = self.buf[off + n:]
            if op == 0x1:
                out.append(json.loads(payload))
        return out

    def drain(self, timeout=10):
        """Reads what the kernel still holds until the server's EOF."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                return self.parse()
            if not chunk:
                return self.parse()
            self.buf += chunk
        raise AssertionError("the slow consumer's connection was never closed")


async def burst(sender, channel, n, tag, window=64):
    """Sends n messages with up to window unacked; returns the acks."""
    acks, pending = [], {}
    i = 0
    while len(acks) < n:
        while i < n and len(pending) < window:
            cid = str(uuid.uuid4())
            pending[cid] = i
            await sender.send({"type": "send", "clientId": cid, "channelId": str(channel),
                               "content": ("%s-%06d-" % (tag, i)).ljust(CONTENT_BYTES, "x")})
            i += 1
        f = await sender.wait_for(lambda f: f.get("type") in ("ack", "error"), timeout=20,
                                  what="ack")
        assert f["type"] == "ack", f
        del pending[f["clientId"]]
        acks.append(f)
    return acks


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


async def sync_all(client, channel, pos):
    """Syncs channel from pos, paging through hasMore; returns the seqs the
    sync delivered.  Fails if the server drops the connection meanwhile."""
    import websockets
    first = len(client.frames)
    try:
        while True:
            ref = "s%d" % pos
            await client.send({"type": "sync", "channels": {str(channel): pos}, "ref": ref})
            done = await client.wait_for(
                lambda f: f.get("type") == "synced" and f.get("ref") == ref,
                timeout=30, what="synced")
            pos = done["lastSeq"]
            if not done["hasMore"]:
                break
    except websockets.ConnectionClosed as e:
        got = [f for f in client.frames[first:] if f.get("type") == "message"]
        raise AssertionError(
            "the server dropped the connection while it answered a sync (%d message frames "
            "received, close %r): a catch-up larger than chat.max_outbound_bytes can never "
            "complete" % (len(got), e)) from None
    return [f["message"]["seq"] for f in client.frames[first:]
            if f.get("type") == "message" and f["message"]["channelId"] == str(channel)]


@pytest.fixture(scope="module")
def dropped(sc):
    """One silent member while 16 MB of messages flow (at most 4 unacked
    sends, so one group commit never carries more than 32 kB)."""
    async def scenario():
        a, b, c = new_user("send"), new_user("slow"), new_user("read")
        g = sc.group([a, b, c])
        pid = worker_pid(sc)
        ca, cc = await sc.client(a), await sc.client(c)

        async def reader_until(seq):
            await cc.wait_for(lambda f: f.get("type") == "message" and f["message"]["seq"] >= seq,
                              timeout=60, what="message %d at the reader" % seq)

        # warm up every code path (batch commit, fan-out, encoder) first
        acks = await burst(ca, g, WARMUP, "warm", window=4)
        await reader_until(acks[-1]["seq"])
        slow = SilentClient(sc, b)
        start_seq = [ch for ch in slow.ready["channels"] if ch["id"] == str(g)][0]["lastSeq"]
        r = dict(g=g, b=b, pid=pid, start_seq=start_seq,
                 anon0=proc_status(pid, "RssAnon"), rss0=proc_status(pid, "VmRSS"))
        acks = await burst(ca, g, BURST, "burst", window=4)
        r["last"] = acks[-1]["seq"]
        await reader_until(r["last"])
        r["offline"] = any(f.get("type") == "presence" and f.get("userId") == b
                           and f.get("status") == "offline" for f in cc.frames)
        if not r["offline"]:
            try:
                await cc.wait_seen(lambda f: f.get("type") == "presence" and f.get("userId") == b
                                   and f.get("status") == "offline", timeout=10)
                r["offline"] = True
            except AssertionError:
                pass
        r["anon1"], r["rss1"] = proc_status(pid, "RssAnon"), proc_status(pid, "VmRSS")
        print("worker memory: RssAnon %d -> %d kB, VmRSS %d -> %d kB"
              % (r["anon0"], r["anon1"], r["rss0"], r["rss1"]))
        r["reader_seqs"] = [f["message"]["seq"] for f in cc.frames
                            if f.get("type") == "message"]
        r["slow_seqs"] = [f["message"]["seq"] for f in slow.drain()
                          if f.get("type") == "message"]
        slow.sock.close()
        await asyncio.gather(ca.close(), cc.close())
        return r
    return run(scenario())


def test_silent_member_is_dropped(sc, dropped):
    assert dropped["offline"], "the silent member never went offline: it was not dropped"
    got = dropped["slow_seqs"]
    have = got[-1] if got else dropped["start_seq"]
    assert have < dropped["last"], "the silent member got everything: it was never dropped"


def test_worker_memory_stays_flat(dropped):
    grew = dropped["anon1"] - dropped["anon0"]
    assert grew < 6 * 1024, \
        "worker RssAnon grew %d kB (VmRSS %d -> %d kB) while %d kB went past a 64 kB " \
        "outbound bound" % (grew, dropped["rss0"], dropped["rss1"],
                            BURST * CONTENT_BYTES // 1024)


def test_reading_member_gets_everything_in_order(dropped):
    assert dropped["reader_seqs"] == list(range(1, dropped["last"] + 1)), \
        "the reading member missed or reordered messages"


def test_silent_member_got_a_gap_free_prefix(dropped):
    got, s0 = dropped["slow_seqs"], dropped["start_seq"]
    assert got == list(range(s0 + 1, s0 + 1 + len(got))), got[:20]


async def test_dropped_member_catches_up_through_sync(sc, dropped):
    got = dropped["slow_seqs"]
    have = got[-1] if got else dropped["start_seq"]
    cb = await sc.client(dropped["b"])
    try:
        seqs = await sync_all(cb, dropped["g"], have)
        assert seqs == list(range(have + 1, dropped["last"] + 1)), \
            "sync after the drop: got %d messages (first %r, last %r), expected %d..%d" % (
                len(seqs), seqs[:3], seqs[-3:], have + 1, dropped["last"])
    finally:
        await cb.close()
    assert worker_pid(sc) == dropped["pid"]
    assert_no_crash(sc)


async def test_reader_keeps_up_through_large_group_commits(sc):
    """A member that reads everything must neither be dropped nor left
    behind because one loop iteration committed more than
    chat.max_outbound_bytes for it (here: up to 64 sends of 8 kB in flight,
    a 64 kB bound).  Once its queue drains it must catch up at once, not
    one queue-full per heartbeat sweep."""
    a, c = new_user("send"), new_user("read")
    g = sc.group([a, c])
    ca, cc = await sc.client(a), await sc.client(c)
    try:
        acks = await burst(ca, g, 600, "big-batch", window=64)
        last = acks[-1]["seq"]
        t0 = time.monotonic()
        try:
            await cc.wait_for(lambda f: f.get("type") == "message" and f["message"]["seq"] >= last,
                              timeout=10, what="the last message at the reader")
        except Exception as e:  # noqa: BLE001 - report how far it got
            seqs = [f["message"]["seq"] for f in cc.frames if f.get("type") == "message"]
            raise AssertionError(
                "a reading member had %d of %d messages %.1fs after the last ack (%s): after "
                "one group commit overflowed its queue it was %s" % (
                    len(seqs), last, time.monotonic() - t0, type(e).__name__,
                    "dropped" if cc.ws.closed else "left behind (catching up only a "
                    "queue-full per loop wake-up)")) from None
        seqs = [f["message"]["seq"] for f in cc.frames if f.get("type") == "message"]
        assert seqs == list(range(1, last + 1))
    finally:
        await asyncio.gather(ca.close(), cc.close())
