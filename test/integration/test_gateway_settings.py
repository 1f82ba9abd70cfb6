"""
chat-gateway's own settings, end to end (issue 17, docs/scaling.md): what
test/security checks on the in-server worker, here on a gateway configured
by its file.

- wss:// with chat.ssl_cert_file and chat.ssl_key_file: a client that
  verifies the certificate exchanges messages with a client of the worker;
  /healthz answers over TLS; plain ws:// and a client held to TLS 1.1 are
  refused, and the gateway serves on.
- RS256 and ES256 tokens with chat.jwt_public_key_file, beside the HS256
  key; a token signed by another key, alg "none", and HS256 signed with the
  public key's text (the algorithm confusion attack) get 401.
- SIGHUP: the file is read again.  A changed limit and a rotated key apply
  to what comes next; an open connection stays open and keeps working; a
  file that no longer parses is refused and the old settings stay.

Runs in the worker run of test/integration: each test starts its own
gateway beside the cluster's worker (test/gateway/run deselects it in the
mixed run, which has gateways of its own).
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import ssl
import time
import uuid

import jwt
import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from conftest import (Client, close_all, new_user, open_at, start_gateway, wait_until,
                      write_private, ws_url)
from selfsigned import localhost_certificate

# ssl.TLSVersion.TLSv1_1 is deprecated: that is the point here
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def set_line(g, key, value):
    """Rewrites (or adds) key = value in g's file."""
    with open(g.conf) as f:
        lines = [line for line in f.read().splitlines()
                 if not line.startswith(key + " ")]
    lines.append("%s = %s" % (key, value))
    with open(g.conf, "w") as f:
        f.write("\n".join(lines) + "\n")


def reload(g, expect_in_log):
    """SIGHUP, then waits until the gateway's log says it read the file."""
    before = g.log_tail(10000).count(expect_in_log)
    os.kill(g.proc.pid, signal.SIGHUP)
    wait_until(lambda: g.log_tail(10000).count(expect_in_log) > before, 10,
               what="%r in %s's log after SIGHUP" % (expect_in_log, g.name))
    assert g.proc.poll() is None, g.log_tail()


async def refused_status(url, **kw):
    """The HTTP status of a refused upgrade."""
    with pytest.raises(websockets.InvalidStatusCode) as ei:
        ws = await websockets.connect(url, open_timeout=5, **kw)
        await ws.close()
    return ei.value.status_code


async def exchange(c, a, b, g, text):
    """a sends text to channel g; b (elsewhere) receives it."""
    ack = await a.send_message(g, text)
    assert ack["type"] == "ack", ack
    m = await b.wait_message(g, lambda m: m["content"] == text)
    assert m["seq"] == ack["seq"], (m, ack)


# --------------------------------------------------------------------------
# TLS
# --------------------------------------------------------------------------

def self_signed(directory):
    cert_pem, key_pem = localhost_certificate()
    crt = os.path.join(directory, "gw-tls.crt")
    with open(crt, "wb") as f:
        f.write(cert_pem)
    return crt, write_private(os.path.join(directory, "gw-tls.key"), key_pem)


def tls_healthz(port, ctx):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data, s.version()


async def test_gateway_serves_wss(cluster_factory):
    c = cluster_factory("gw-tls", **{"chat.notify_bus": "on"})
    crt, key = self_signed(c.dir)
    g = start_gateway(c, "gwtls", ["chat.ssl_cert_file = '%s'" % crt,
                                   "chat.ssl_key_file = '%s'" % key], healthy=False)
    ctx = ssl.create_default_context(cafile=crt)
    clients = []
    try:
        def healthy():
            assert g.proc.poll() is None, g.log_tail()
            try:
                return tls_healthz(g.port, ctx)
            except OSError:
                return None
        data, version = wait_until(healthy, 30, what="/healthz over TLS")
        assert data.startswith(b"HTTP/1.1 200"), data[:200]
        assert version in ("TLSv1.2", "TLSv1.3"), version

        a, b = new_user("ta"), new_user("tb")
        ch = c.group([a, b])
        ca = await open_at(c, a, "wss://localhost:%d/ws?token=%s" % (g.port, c.token(a)),
                           ssl=ctx)
        clients.append(ca)
        cb = await Client.open(c, b)            # on the worker
        clients.append(cb)
        await exchange(c, ca, cb, ch, "over tls")
        await exchange(c, cb, ca, ch, "back over tls")

        # plain ws:// to the TLS port: no upgrade, no crash
        with pytest.raises((websockets.exceptions.WebSocketException, OSError,
                            asyncio.TimeoutError, EOFError)):
            ws = await websockets.connect(ws_url(g.port, c.token(a)), open_timeout=3)
            await ws.close()

        # a client held to TLS 1.1 (and really offering it) is refused
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(crt)
        old.set_ciphers("DEFAULT:@SECLEVEL=0")
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises((ssl.SSLError, OSError)):
            tls_healthz(g.port, old)

        # and the gateway serves on: the open connection and a new one
        await exchange(c, ca, cb, ch, "still over tls")
        cc = await open_at(c, a, "wss://localhost:%d/ws?token=%s" % (g.port, c.token(a)),
                           ssl=ctx)
        clients.append(cc)
        assert g.proc.poll() is None, g.log_tail()
    finally:
        await close_all(*clients)
        g.stop()


# --------------------------------------------------------------------------
# RS256 and ES256
# --------------------------------------------------------------------------

def public_pem(private_key):
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def signed(key, alg, sub, **claims):
    now = int(time.time())
    payload = {"sub": sub, "iat": now, "exp": now + 3600}
    payload.update(claims)
    return jwt.encode(payload, key, algorithm=alg)


def unsigned(sub):
    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    return "%s.%s." % (b64({"alg": "none", "typ": "JWT"}),
                       b64({"sub": sub, "exp": int(time.time()) + 3600}))


def hs256_with(secret_bytes, sub):
    """HS256 keyed with arbitrary bytes (PyJWT refuses a PEM as a secret)."""
    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": sub, "exp": int(time.time()) + 3600}).encode())
    sig = hmac.new(secret_bytes, ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (head, body, b64(sig))


async def test_gateway_rs256_es256_and_key_reload(cluster_factory):
    c = cluster_factory("gw-keys", **{"chat.notify_bus": "on"})
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_ec = ec.generate_private_key(ec.SECP256R1())
    pub = os.path.join(c.dir, "gw-jwt.pem")
    with open(pub, "wb") as f:
        f.write(public_pem(rsa_key))
    g = start_gateway(c, "gwkeys", ["chat.jwt_public_key_file = '%s'" % pub])
    a, b = new_user("ka"), new_user("kb")
    ch = c.group([a, b])
    clients = []
    try:
        # RS256 with the configured key, and HS256 beside it
        ca = await open_at(c, a, ws_url(g.port, signed(rsa_key, "RS256", a)))
        clients.append(ca)
        cb = await open_at(c, b, ws_url(g.port, c.token(b)))
        clients.append(cb)
        await exchange(c, ca, cb, ch, "rs256 to hs256")
        for bad in (signed(other_rsa, "RS256", a), signed(ec_key, "ES256", a), unsigned(a),
                    hs256_with(public_pem(rsa_key), a)):
            assert await refused_status(ws_url(g.port, bad)) == 401

        # SIGHUP with the EC key in the file: ES256 now, RS256 no more
        with open(pub, "wb") as f:
            f.write(public_pem(ec_key))
        reload_marker = "chat-gateway %s: reloaded" % g.name
        reload(g, reload_marker)
        ce = await open_at(c, a, ws_url(g.port, signed(ec_key, "ES256", a)))
        clients.append(ce)
        await exchange(c, ce, cb, ch, "es256 after reload")
        for bad in (signed(rsa_key, "RS256", a), signed(other_ec, "ES256", a),
                    hs256_with(public_pem(ec_key), a)):
            assert await refused_status(ws_url(g.port, bad)) == 401
        # the connection opened with the RS256 token stays and works
        await exchange(c, ca, cb, ch, "rs256 connection after reload")
    finally:
        await close_all(*clients)
        g.stop()


# --------------------------------------------------------------------------
# SIGHUP
# --------------------------------------------------------------------------

async def test_gateway_sighup_applies_settings_and_keeps_connections(cluster_factory):
    c = cluster_factory("gw-hup", **{"chat.notify_bus": "on"})
    g = start_gateway(c, "gwhup", ["chat.max_message_bytes = 100"])
    a, b = new_user("ha"), new_user("hb")
    ch = c.group([a, b])
    clients = []
    try:
        ca = await open_at(c, a, ws_url(g.port, c.token(a)))
        clients.append(ca)
        cb = await Client.open(c, b)            # on the worker
        clients.append(cb)
        err = await ca.send_message(ch, "x" * 200)
        assert err["type"] == "error" and err["code"] == "too_large", err

        # a larger limit and a rotated HS256 key
        old_token = c.token(a)
        new_secret = "n" * 48
        write_private(os.path.join(c.dir, "gwhup-secret"), new_secret + "\n")
        set_line(g, "chat.max_message_bytes", "1000")
        reload(g, "chat-gateway %s: reloaded" % g.name)

        # the open connection: still open, and under the new limit
        await exchange(c, ca, cb, ch, "y" * 200)
        # new connections: the new key only
        assert await refused_status(ws_url(g.port, old_token)) == 401
        fresh = jwt.encode({"sub": a, "exp": int(time.time()) + 3600}, new_secret,
                           algorithm="HS256")
        cn = await open_at(c, a, ws_url(g.port, fresh))
        clients.append(cn)
        await exchange(c, cn, cb, ch, "z" * 300)

        # a file that no longer parses: refused, the gateway keeps the last
        # good settings and serves on
        set_line(g, "chat.max_message_bytes", "'lots'")
        reload(g, "chat-gateway: reload:")
        err = await ca.send_message(ch, "w" * 2000)
        assert err["type"] == "error" and err["code"] == "too_large", err
        await exchange(c, cn, cb, ch, "v" * 900)
        assert await refused_status(ws_url(g.port, old_token)) == 401
    finally:
        await close_all(*clients)
        g.stop()
