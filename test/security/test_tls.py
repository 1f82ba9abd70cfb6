"""
wss:// with chat.ssl_cert_file / chat.ssl_key_file: a self-signed
certificate made here (python cryptography), clients that verify the server
against it, a full exchange, the protocol minimum (TLS 1.2; TLS 1.1 and 1.0
refused, checked against a local TLS 1.1 server so the client is known to
really offer them), plain ws:// and plain HTTP to the TLS port failing
cleanly, a stalled TLS handshake that blocks no one and is closed by
chat.handshake_timeout, and many frames in one TLS
record (bytes OpenSSL holds before the socket turns readable again).
The TLS cluster's heartbeat is 1 s, so a frame left inside OpenSSL would
wait for the next 250 ms sweep and show as latency.
"""
import asyncio
import base64
import json
import os
import socket
import ssl
import threading
import time
import uuid

import pytest
import websockets

from selfsigned import localhost_certificate
from seclib import (Client, Cluster, assert_no_crash, key_dir, new_user, start, wait_until,
                    worker_pid, write_file, ws_frame)

# ssl.TLSVersion.TLSv1 and TLSv1_1 are deprecated: that is the point here
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def self_signed(directory):
    cert_pem, key_pem = localhost_certificate()
    return (write_file(directory, "server.crt", cert_pem),
            write_file(directory, "server.key", key_pem, 0o600), cert_pem, key_pem)


class TlsCluster(Cluster):
    """A cluster whose chat port speaks TLS; clients verify against cafile."""

    cafile = None

    def context(self, **kw):
        ctx = ssl.create_default_context(cafile=self.cafile)
        for k, v in kw.items():
            setattr(ctx, k, v)
        return ctx

    def url(self, token=None):
        base = "wss://localhost:%d/ws" % self.chat_port
        return base if token is None else base + "?token=" + token

    def healthz(self):
        try:
            with socket.create_connection(("127.0.0.1", self.chat_port), timeout=3) as raw:
                with self.context().wrap_socket(raw, server_hostname="localhost") as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
            return int(data.split(b" ", 2)[1])
        except (OSError, ValueError, IndexError):
            return None

    async def tls_client(self, user, token=None, **ctx):
        ws = await websockets.connect(self.url(token or self.token(user)), ssl=self.context(**ctx),
                                      max_queue=None, ping_interval=None, open_timeout=10,
                                      close_timeout=2, max_size=None)
        c = Client(self, user, ws)
        c.ready = await c.wait_for(lambda f: True, timeout=10)
        assert c.ready["type"] == "ready", c.ready
        return c


@pytest.fixture(scope="module")
def tls():
    d = key_dir()
    cert, key, cert_pem, _ = self_signed(d)
    TlsCluster.cafile = cert
    c = start("tls", cls=TlsCluster, **{"chat.ssl_cert_file": "'%s'" % cert,
                                        "chat.ssl_key_file": "'%s'" % key,
                                        "chat.handshake_timeout": "'2s'"})
    c.cert_pem = cert_pem
    c.pid0 = worker_pid(c)
    yield c
    c.stop()


async def test_wss_full_exchange_with_verification(tls):
    a, b = new_user("a"), new_user("b")
    g = tls.group([a, b])
    ca = await tls.tls_client(a)
    cb = await tls.tls_client(b)
    assert ca.ws.transport.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
    assert [ch["id"] for ch in cb.ready["channels"]] == [str(g)]
    for i in range(20):
        k = await ca.send_message(g, "over TLS %d" % i + "x" * (i * 150))
        assert k["type"] == "ack" and k["seq"] == i + 1, k
        m = await cb.wait_message(g, lambda m, i=i: m["seq"] == i + 1)
        assert m["content"].startswith("over TLS %d" % i) and m["senderId"] == a
    k = await cb.send_message(g, "and back")
    assert (await ca.wait_message(g, lambda m: m["seq"] == k["seq"]))["content"] == "and back"
    await asyncio.gather(ca.close(), cb.close())


async def test_verification_fails_against_another_certificate(tls):
    d = key_dir()
    other, _, _, _ = self_signed(d)
    ctx = ssl.create_default_context(cafile=other)
    with pytest.raises(ssl.SSLCertVerificationError):
        await websockets.connect(tls.url(tls.token(new_user("v"))), ssl=ctx, open_timeout=5)


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
async def test_modern_versions_are_served(tls, version):
    v = getattr(ssl.TLSVersion, version)
    c = await tls.tls_client(new_user("v"), minimum_version=v, maximum_version=v)
    got = c.ws.transport.get_extra_info("ssl_object").version()
    assert got == version.replace("_", "."), got
    await c.close()


def _old_tls_context(cafile, version):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ctx.maximum_version = version
    return ctx


def _control_server(cert_pem, key_pem, version):
    """A local TLS server that speaks only version; returns (port, result)."""
    d = key_dir()
    cf, kf = write_file(d, "c.pem", cert_pem), write_file(d, "k.pem", key_pem)
    srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.load_cert_chain(cf, kf)
    srv.set_ciphers("DEFAULT:@SECLEVEL=0")
    srv.minimum_version = srv.maximum_version = version
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen()
    result = {}

    def serve():
        ls.settimeout(10)
        try:
            c, _ = ls.accept()
            with srv.wrap_socket(c, server_side=True) as s:
                result["version"] = s.version()
        except (OSError, ssl.SSLError) as e:
            result["error"] = e
        finally:
            ls.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return ls.getsockname()[1], result, t


@pytest.mark.parametrize("version", ["TLSv1_1", "TLSv1"])
def test_old_tls_versions_are_refused(tls, version):
    v = getattr(ssl.TLSVersion, version)
    d = key_dir()
    # control: this client context really negotiates the old version
    cert, _, cert_pem, key_pem = self_signed(d)
    port, result, t = _control_server(cert_pem, key_pem, v)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with _old_tls_context(cert, v).wrap_socket(raw, server_hostname="localhost") as s:
            assert s.version() == version.replace("_", "."), s.version()
    t.join(5)
    assert result.get("version"), result
    # the chat port refuses it
    with socket.create_connection(("127.0.0.1", tls.chat_port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError) as e:
            _old_tls_context(tls.cafile, v).wrap_socket(raw, server_hostname="localhost")
    assert "version" in str(e.value).lower() or "protocol" in str(e.value).lower(), e.value
    assert tls.healthz() == 200


async def test_plain_ws_to_the_tls_port_fails_cleanly(tls):
    t0 = time.monotonic()
    with pytest.raises((websockets.InvalidHandshake, websockets.ConnectionClosed, OSError,
                        EOFError, asyncio.TimeoutError)):
        await websockets.connect("ws://127.0.0.1:%d/ws?token=%s"
                                 % (tls.chat_port, tls.token(new_user("p"))), open_timeout=5)
    assert time.monotonic() - t0 < 4, "plain ws:// hung for %.1fs" % (time.monotonic() - t0)
    # plain HTTP: the server closes the connection and never answers in clear
    s = socket.create_connection(("127.0.0.1", tls.chat_port), timeout=5)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    t0 = time.monotonic()
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    finally:
        s.close()
    assert time.monotonic() - t0 < 4
    assert b"HTTP/1.1" not in data and b"status" not in data, data
    # and the TLS side is unharmed
    c = await tls.tls_client(new_user("after"))
    await c.close()
    assert worker_pid(tls) == tls.pid0


def _partial_client_hello(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert len(hello) > 20
    return hello[:len(hello) // 2]


async def test_stalled_tls_handshake_blocks_no_one_and_times_out(tls):
    stalled = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", tls.chat_port), timeout=5)
        s.sendall(_partial_client_hello(tls.cafile))
        stalled.append(s)
    t0 = time.monotonic()
    try:
        a, b = new_user("a"), new_user("b")
        g = tls.group([a, b])
        ca, cb = await tls.tls_client(a), await tls.tls_client(b)
        k = await ca.send_message(g, "while others stall")
        assert k["type"] == "ack"
        assert (await cb.wait_message(g))["content"] == "while others stall"
        assert time.monotonic() - t0 < 1.5, "stalled handshakes slowed a real client"
        await asyncio.gather(ca.close(), cb.close())

        def all_closed():
            for s in stalled:
                try:
                    if s.recv(4096, socket.MSG_DONTWAIT) != b"":
                        continue
                except BlockingIOError:
                    return False
                except ConnectionResetError:
                    pass
            return True
        wait_until(all_closed, timeout=6, what="stalled TLS handshakes closed (timeout 2s)")
        assert time.monotonic() - t0 >= 1.5, "closed before chat.handshake_timeout"
    finally:
        for s in stalled:
            s.close()


def test_many_frames_in_one_tls_record(tls):
    """Twenty frames in one TLS record: OpenSSL decrypts them at once, and
    every one is answered without waiting for the socket to turn readable
    again."""
    a, b = new_user("a"), new_user("b")
    g = tls.group([a, b])
    key = base64.b64encode(os.urandom(16)).decode()
    head = ("GET /ws?token=%s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (tls.token(a), key)).encode()
    cids = [str(uuid.uuid4()) for _ in range(20)]
    frames = b"".join(ws_frame(0x1, json.dumps({"type": "send", "clientId": c, "channelId": str(g),
                                                "content": "pipelined %d" % i}).encode())
                      for i, c in enumerate(cids))
    raw = socket.create_connection(("127.0.0.1", tls.chat_port), timeout=5)
    s = tls.context().wrap_socket(raw, server_hostname="localhost")
    try:
        s.sendall(head)
        data = b""
        while b'"type":"ready"' not in data:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 101")
        assert len(frames) < 16384
        t0 = time.monotonic()
        s.sendall(frames)                 # one write: one TLS record
        data = b""
        deadline = time.monotonic() + 5
        while sum(data.count(c.encode()) for c in cids) < len(cids):
            assert time.monotonic() < deadline, "only %d of %d acks over TLS" % (
                sum(data.count(c.encode()) for c in cids), len(cids))
            chunk = s.recv(65536)
            assert chunk, "closed: %r" % data[-300:]
            data += chunk
        assert data.count(b'"type":"ack"') == len(cids)
        assert time.monotonic() - t0 < 0.5, "frames in one record waited %.2fs" % (time.monotonic() - t0)
    finally:
        s.close()
    assert tls.sql1("SELECT count(*) FROM chat.messages WHERE channel_id = %s", (g,)) == len(cids)
    assert worker_pid(tls) == tls.pid0
    assert_no_crash(tls)
