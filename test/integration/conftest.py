"""
Fixtures of the integration suite: a throwaway PostgreSQL 15 cluster with the
chat extension preloaded, SQL over its unix socket (psycopg2), tokens minted
with PyJWT, and a thin layer over an independent WebSocket client
(python3-websockets 10.4, asyncio).

Clusters run as the postgres OS user in a mktemp directory and are always
stopped by pid, also when a test or the start itself fails.  Nothing here
sleeps to synchronise: every wait polls a condition under a deadline.

Tests are plain `async def` functions; the hook below runs each in a fresh
event loop (pytest-asyncio is not needed, and is disabled by test/integration/run).
"""
import asyncio
import base64
import json
import os
import pwd
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid

import jwt
import psycopg2
import psycopg2.extras
import pytest
import websockets

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import pytest_glue  # noqa: E402

PG_CONFIG = shutil.which("pg_config") or "/usr/bin/pg_config"
PGBIN = subprocess.run([PG_CONFIG, "--bindir"], capture_output=True, text=True,
                       check=True).stdout.strip()
TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ARTIFACTS = os.path.join(TOP, "test", "artifacts", "integration")

SECRET = "integration-secret-" + uuid.uuid4().hex

# Settings of the session's default cluster.  Short timings keep the suite
# fast; the sizes are small so that limits are cheap to reach.
DEFAULT_SETTINGS = {
    "chat.workers": "1",
    "chat.heartbeat_interval": "'1s'",
    "chat.heartbeat_timeout": "'3s'",
    "chat.max_message_bytes": "'4kB'",
    "chat.max_frame_bytes": "'16kB'",
    "chat.max_group_members": "50",
    # the worker's own queries; a test holds a lock longer than this
    "chat.statement_timeout": "'2s'",
}

psycopg2.extras.register_uuid()

# --------------------------------------------------------------------------
# topologies (issue 17): CHAT_TOPOLOGY=worker (the default: clients talk to
# the in-server worker), gateway (one chat-gateway in front of the cluster)
# or mixed (two gateways behind HAProxy, and the worker: WebSocket client
# URLs alternate between HAProxy and the worker; raw HTTP and /metrics go to
# the first gateway).  The suites run unchanged; the
# few tests about the in-server worker itself skip with a reason
# (worker_only below).
# --------------------------------------------------------------------------

TOPOLOGY = os.environ.get("CHAT_TOPOLOGY", "worker")
assert TOPOLOGY in ("worker", "gateway", "mixed"), TOPOLOGY
# $CHAT_GATEWAY (an ASan build), or the one `make` built in this tree, or in
# $TOP's (test/asan runs a copy of the test files elsewhere)
GATEWAY_BIN = os.environ.get("CHAT_GATEWAY") or next(
    (p for p in (os.path.join(os.path.dirname(__file__), "..", "..", "build", "chat-gateway"),
                 os.path.join(os.environ.get("TOP", "/nonexistent"), "build", "chat-gateway"))
     if os.path.exists(p)), "chat-gateway")
# The gateway's settings taken over from the cluster's (same names).
GATEWAY_SETTINGS = (
    "chat.heartbeat_interval", "chat.heartbeat_timeout", "chat.typing_timeout",
    "chat.typing_debounce", "chat.max_message_bytes", "chat.max_frame_bytes",
    "chat.max_outbound_bytes", "chat.handshake_timeout", "chat.max_connections",
    "chat.max_connections_per_ip", "chat.max_handshakes",
    "chat.max_handshakes_per_ip", "chat.rate_limit", "chat.rate_burst",
    "chat.user_rate_limit", "chat.user_rate_burst", "chat.statement_timeout",
    "chat.allowed_origins", "chat.jwt_audience", "chat.jwt_issuer",
    "chat.jwt_leeway",
)


def worker_only(reason):
    """Marks a test about the in-server worker itself: skipped (with the
    reason) when the clients talk to gateways."""
    return pytest.mark.skipif(TOPOLOGY != "worker",
                              reason="in-server worker only: " + reason)


# CHAT_CITUS=1 (test/citus/run): every cluster is a Citus coordinator with
# two worker nodes, the chat tables distributed with chat_distribute()
# (docs/scaling.md, "Citus tier"); the pg_config on PATH names a tree that
# holds citus.  test_citus.py is collected only then.
CITUS = os.environ.get("CHAT_CITUS") == "1"
CITUS_NODES = 2
collect_ignore = [] if CITUS else ["test_citus.py"]
if CITUS:
    # Three servers share the machine and each send is several round trips
    # to a node: a test that blocks its event loop on a long SQL statement
    # (400 sends in one) would miss pings for longer than 3 s, and a loaded
    # machine can take longer than 2 s for a batch.
    DEFAULT_SETTINGS.update({"chat.heartbeat_timeout": "'30s'",
                             "chat.statement_timeout": "'10s'"})


# --------------------------------------------------------------------------
# polling
# --------------------------------------------------------------------------

def wait_until(cond, timeout=30.0, interval=0.05, what="condition"):
    """Polls cond() until it returns a true value, which is returned."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - polled conditions may fail for a while
            last_exc = e
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last error: %r)"
                                 % (timeout, what, last_exc))
        time.sleep(interval)


async def async_wait_until(cond, timeout=30.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001
            last_exc = e
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last error: %r)"
                                 % (timeout, what, last_exc))
        await asyncio.sleep(interval)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------
# raw HTTP over the chat port
# --------------------------------------------------------------------------

def free_port_below_ephemeral():
    """A free TCP port on 127.0.0.1 between 20000 and 32000, below Linux's
    ephemeral range (32768-60999), which outgoing connections use."""
    for _ in range(1000):
        p = random.randint(20000, 32000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port between 20000 and 32000")


class HttpResponse:
    def __init__(self, raw):
        self.raw = raw
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status_line = lines[0]
        parts = lines[0].split(" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        self.headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<HttpResponse %r>" % self.raw[:400]


def http_raw(port, request, timeout=5.0):
    """Sends request bytes, reads until the server closes (every non-101
    response says Connection: close) or a 101 head is complete."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
            if data.startswith(b"HTTP/1.1 101") and b"\r\n\r\n" in data:
                break
        return HttpResponse(data)


def http_get(port, path, headers=None, method="GET"):
    h = {"Host": "127.0.0.1:%d" % port}
    h.update(headers or {})
    req = "%s %s HTTP/1.1\r\n" % (method, path)
    req += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
    return http_raw(port, req.encode("latin-1"))


def upgrade_headers(key="dGhlIHNhbXBsZSBub25jZQ=="):
    return {"Upgrade": "websocket", "Connection": "Upgrade",
            "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}


def ws_frame(opcode, payload=b"", masked=True, fin=True):
    """One WebSocket frame as a client would send it, as bytes (a test may
    send it in pieces)."""
    mask = os.urandom(4) if masked else b""
    mbit = 0x80 if masked else 0
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if masked:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + payload


def metrics(port):
    """One /metrics answer (from whichever worker took the connection),
    parsed: {(name, "{labels}"): value}."""
    resp = http_get(port, "/metrics")
    assert resp.status == 200, resp
    assert resp.headers.get("content-type", "").startswith("text/plain"), resp
    out = {}
    for line in resp.body.decode("utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, value = line.rsplit(" ", 1)
        name, _, labels = name_labels.partition("{")
        out[(name, "{" + labels if labels else "")] = float(value)
    return out


class RawWs:
    """A minimal RFC 6455 client over a blocking socket."""

    def __init__(self, port, token):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /ws?token=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % (token, port, key))
        self.sock.sendall(req.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, "closed during the handshake"
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        self.handshake_done = time.monotonic()

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def read_frame(self, timeout=10.0):
        """Returns (opcode, payload); raises EOFError when the server closed
        the TCP connection, socket.timeout when nothing came."""
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "server frames must not be masked"
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._fill(4, deadline)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._fill(10, deadline)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._fill(off + n, deadline)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return b0 & 0x0F, payload

    def send_frame(self, opcode, payload=b"", masked=True, fin=True):
        self.sock.sendall(ws_frame(opcode, payload, masked, fin))

    def close_code(self, timeout=5.0):
        """Reads until the server's close frame; returns its code (None if
        the TCP connection ended without one)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                op, payload = self.read_frame(timeout=max(0.01, deadline - time.monotonic()))
            except (EOFError, ConnectionResetError):
                return None
            if op == 0x8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005

    def close(self):
        self.sock.close()



# --------------------------------------------------------------------------
# the cluster
# --------------------------------------------------------------------------

def _as_postgres(cmd, **kw):
    if os.geteuid() == pwd.getpwnam("postgres").pw_uid:
        return subprocess.run(cmd, **kw)
    return subprocess.run(["runuser", "-u", "postgres", "--"] + cmd, **kw)


def _alive(pid):
    """pid runs and is not a zombie (an exited postmaster is reparented to
    PID 1, which may take a while to reap it)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class Cluster:
    """A throwaway PostgreSQL cluster with chat preloaded and installed."""

    _all = []

    def __init__(self, name, settings, role=None):
        self.name = name
        # "single" (a plain server), or on Citus "coordinator" / "node"
        self.role = role or ("coordinator" if CITUS else "single")
        self.nodes = []
        self.settings = dict(DEFAULT_SETTINGS)
        self.settings.update(settings or {})
        self.secret = SECRET
        self.dir = tempfile.mkdtemp(prefix="chat-it-%s." % name)
        os.chmod(self.dir, 0o755)
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        # On Citus the coordinator's connections to the nodes take local
        # ports from the ephemeral range, where free_port() finds its ports:
        # a chat port could be taken before the worker binds it.
        self.port = free_port_below_ephemeral() if CITUS else free_port()
        self.chat_port = free_port_below_ephemeral() if CITUS else free_port()
        # the in-server worker's port; chat_port is where clients go
        self.worker_port = self.chat_port
        self.gateways = []
        self.haproxy = None
        self._rr = 0
        self.last_port = self.chat_port
        self.pid = None
        self._conn = None
        Cluster._all.append(self)

    # -- life cycle ---------------------------------------------------------

    def start(self):
        if self.role == "coordinator":
            for i in range(CITUS_NODES):
                node = Cluster("%s-node%d" % (self.name, i + 1), {}, role="node")
                self.nodes.append(node)
                node.start()
        r = _as_postgres([os.path.join(PGBIN, "initdb"), "-D", self.data, "-A", "trust",
                          "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8"],
                         capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("initdb failed: %s%s" % (r.stdout, r.stderr))
        conf = {
            "port": str(self.port),
            "listen_addresses": "''",
            "unix_socket_directories": "'%s'" % self.dir,
            "shared_preload_libraries": "'chat'",
            "fsync": "off",
            "log_line_prefix": "'%m [%p] %b '",
            "chat.port": str(self.chat_port),
            "chat.listen_addresses": "'127.0.0.1'",
            "chat.jwt_secret": "'%s'" % self.secret,
        }
        if TOPOLOGY != "worker":
            conf["chat.notify_bus"] = "on"
        if self.role != "single":
            conf.update({"shared_preload_libraries": "'citus,chat'",
                         "listen_addresses": "'127.0.0.1'",
                         "max_prepared_transactions": "20"})
        # what commits on a node reaches the coordinator's workers through
        # the node's bus and the coordinator's node relay (docs/scaling.md)
        if self.role == "node":
            conf["chat.notify_bus"] = "on"
        if self.role == "coordinator":
            conf["chat.node_relay"] = "on"
        conf.update(self.settings)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# integration suite\n")
            for k, v in conf.items():
                f.write("%s = %s\n" % (k, v))
        r = _as_postgres([os.path.join(PGBIN, "pg_ctl"), "-D", self.data, "-l", self.log,
                          "-w", "-t", "60", "start"], capture_output=True, text=True)
        self._read_pid()
        if r.returncode != 0:
            raise RuntimeError("pg_ctl start failed: %s%s\n%s"
                               % (r.stdout, r.stderr, self.log_tail()))
        if self.role == "node":
            self.sql("CREATE EXTENSION citus")
            return self
        if self.role == "coordinator":
            self.sql("CREATE EXTENSION citus")
            for node in self.nodes:
                self.sql("SELECT citus_add_node('localhost', %s)", (node.port,))
        self.sql("CREATE EXTENSION chat")
        if self.role == "coordinator":
            self.sql("SELECT chat_distribute(4)")
        self.wait_ready()
        if TOPOLOGY != "worker":
            self.start_gateways(1 if TOPOLOGY == "gateway" else 2)
        return self

    # -- gateways (issue 17) ------------------------------------------------

    def start_gateways(self, n):
        """n chat-gateways (and HAProxy in front when n > 1), logged in as a
        role that has chat_gateway and nothing else."""
        if not self.sql1("SELECT 1 FROM pg_roles WHERE rolname = 'chat_gw'"):
            self.sql("CREATE ROLE chat_gw LOGIN IN ROLE chat_gateway")
        secret_file = os.path.join(self.dir, "gw-secret")
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.secret + "\n")
        for i in range(n):
            self.gateways.append(Gateway(self, "gw%d" % (i + 1), secret_file))
        for g in self.gateways:
            g.start()
        for g in self.gateways:
            g.wait_healthy()
        # raw HTTP and /metrics (chat_port) go to the first gateway itself:
        # HAProxy answers a malformed request with its own page, and its
        # /metrics would come from either gateway
        self.chat_port = self.gateways[0].port
        if n > 1:
            self.haproxy = HAProxy(self, [g.port for g in self.gateways])
            self.haproxy.start()

    def client_port(self):
        """Where the next WebSocket client connects: the chat port, or in
        the mixed topology alternately HAProxy (two gateways, round robin)
        and the worker."""
        if TOPOLOGY != "mixed" or self.haproxy is None:
            return self.chat_port
        self._rr += 1
        return self.haproxy.port if self._rr % 2 else self.worker_port

    def worker_port_used(self):
        """Clients connect to the worker too (not only to gateways)."""
        return TOPOLOGY in ("worker", "mixed")

    def stop_gateways(self):
        if self.haproxy:
            self.haproxy.stop()
            self.haproxy = None
        for g in self.gateways:
            g.stop()
        self.gateways = []

    def _read_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                self.pid = int(f.readline().strip())
        except (OSError, ValueError):
            pass

    def wait_ready(self, timeout=30):
        """Every worker is up and the port answers /healthz."""
        n = int(self.settings["chat.workers"])
        wait_until(lambda: len(self.worker_pids()) == n, timeout,
                   what="%d chat worker(s) in pg_stat_activity" % n)
        wait_until(lambda: self.healthz() == 200, timeout, what="/healthz 200")

    def stop(self):
        self.stop_gateways()
        for node in self.nodes:
            node.stop()
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001
                pass
            self._conn = None
        if self.pid is None:
            self._read_pid()
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGINT)  # fast shutdown
            except ProcessLookupError:
                self.pid = None
            deadline = time.monotonic() + 10
            while self.pid is not None and time.monotonic() < deadline:
                if not _alive(self.pid):
                    self.pid = None
                    break
                time.sleep(0.02)
            if self.pid is not None:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.pid = None
        try:
            os.makedirs(ARTIFACTS, exist_ok=True)
            shutil.copy(self.log, os.path.join(ARTIFACTS, "%s.log" % self.name))
        except OSError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
        if self in Cluster._all:
            Cluster._all.remove(self)

    def log_tail(self, n=60):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # -- SQL ----------------------------------------------------------------

    def connect(self, autocommit=True):
        c = psycopg2.connect(host=self.dir, port=self.port, user="postgres",
                             dbname="postgres")
        c.autocommit = autocommit
        return c

    @property
    def conn(self):
        if self._conn is None or self._conn.closed:
            self._conn = self.connect()
        return self._conn

    def sql(self, query, args=None):
        """Runs query in autocommit; returns all rows (or None)."""
        with self.conn.cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall() if cur.description else None

    def sql1(self, query, args=None):
        rows = self.sql(query, args)
        return rows[0][0] if rows else None

    def worker_pids(self):
        with self.connect() as c, c.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity "
                        "WHERE backend_type = 'chat worker' ORDER BY pid")
            pids = [r[0] for r in cur.fetchall()]
        c.close()
        return pids

    # -- chat helpers ---------------------------------------------------------

    def group(self, members, name=None):
        return self.sql1("SELECT chat_create_channel('group', %s, %s)",
                         (name or "g-" + uuid.uuid4().hex[:8], list(members)))

    def direct(self, a, b):
        return self.sql1("SELECT chat_direct_channel(%s, %s)", (a, b))

    def send_sql(self, channel, sender, content, client_id=None):
        """chat_send in its own transaction; returns (id, seq)."""
        if client_id is None:
            return tuple(self.sql("SELECT id, seq FROM chat_send(%s, %s, %s)",
                                  (channel, sender, content))[0])
        return tuple(self.sql("SELECT id, seq FROM chat_send(%s, %s, %s, %s)",
                              (channel, sender, content, client_id))[0])

    def last_seq(self, channel):
        return self.sql1("SELECT last_seq FROM chat.channels WHERE id = %s", (channel,))

    def token(self, sub, ttl=3600, **claims):
        now = int(time.time())
        payload = {"sub": sub, "iat": now, "exp": now + ttl}
        payload.update(claims)
        return jwt.encode(payload, self.secret, algorithm="HS256")

    def url(self, token=None):
        port = self.last_port = self.client_port()
        if token is None:
            return "ws://127.0.0.1:%d/ws" % port
        return "ws://127.0.0.1:%d/ws?token=%s" % (port, token)

    def healthz(self):
        try:
            return http_get(self.chat_port, "/healthz").status
        except OSError:
            return None

    async def client(self, user, **kw):
        return await Client.open(self, user, **kw)


class Gateway:
    """One chat-gateway process of a cluster (build/chat-gateway, or
    $CHAT_GATEWAY: an ASan build), configured by a file."""

    def __init__(self, cluster, name, secret_file):
        self.cluster = cluster
        self.name = name
        self.port = free_port()
        self.conf = os.path.join(cluster.dir, name + ".conf")
        self.log = os.path.join(cluster.dir, name + ".log")
        self.proc = None
        lines = [
            "chat.conninfo = 'host=%s port=%d dbname=postgres user=chat_gw'"
            % (cluster.dir, cluster.port),
            "chat.node_name = '%s'" % name,
            "chat.port = %d" % self.port,
            "chat.jwt_secret_file = '%s'" % secret_file,
        ]
        for k in GATEWAY_SETTINGS:
            if k in cluster.settings:
                lines.append("%s = %s" % (k, cluster.settings[k]))
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        self._logf = open(self.log, "ab")
        self.proc = subprocess.Popen([GATEWAY_BIN, "-c", self.conf],
                                     stdout=self._logf, stderr=self._logf)

    def wait_healthy(self, timeout=30):
        def ok():
            assert self.proc.poll() is None, "%s exited: %s" % (self.name, self.log_tail())
            try:
                return http_get(self.port, "/healthz").status == 200
            except OSError:
                return False
        wait_until(ok, timeout, what="%s /healthz 200" % self.name)

    def log_tail(self, n=30):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def restart(self):
        """SIGTERM (close 1001, goodbye), then a new process on the port."""
        self.proc.terminate()
        self.proc.wait(10)
        self.start()
        self.wait_healthy()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
                self.proc.terminate()
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        try:
            self._logf.close()
        except Exception:  # noqa: BLE001
            pass
        try:
            os.makedirs(ARTIFACTS, exist_ok=True)
            shutil.copy(self.log, os.path.join(ARTIFACTS, "%s-%s.log"
                                               % (self.cluster.name, self.name)))
        except OSError:
            pass


def write_private(path, data):
    """A file only its owner may read (the gateway refuses others)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return path


def start_gateway(c, name, extra, healthy=True):
    """A gateway of cluster c (logged in as a role with chat_gateway only)
    with the lines extra added to its file; the caller stops it."""
    if not c.sql1("SELECT 1 FROM pg_roles WHERE rolname = 'chat_gw'"):
        c.sql("CREATE ROLE chat_gw LOGIN IN ROLE chat_gateway")
    secret = write_private(os.path.join(c.dir, name + "-secret"), c.secret + "\n")
    g = Gateway(c, name, secret)
    with open(g.conf, "a") as f:
        f.write("".join(line + "\n" for line in extra))
    g.start()
    if healthy:
        g.wait_healthy()
    return g


def ws_url(port, token):
    return "ws://127.0.0.1:%d/ws?token=%s" % (port, token)


async def open_at(c, user, url, **kw):
    ws = await websockets.connect(url, max_queue=None, ping_interval=None,
                                  open_timeout=10, close_timeout=2, max_size=None, **kw)
    cl = Client(c, user, ws)
    cl.ready = await cl.wait_for(lambda f: True, timeout=10)
    assert cl.ready["type"] == "ready", cl.ready
    return cl


class HAProxy:
    """HAProxy in front of gateways: round robin, health checks on
    /healthz, WebSockets passed through (timeout tunnel)."""

    def __init__(self, cluster, ports):
        self.cluster = cluster
        self.port = free_port()
        self.conf = os.path.join(cluster.dir, "haproxy.cfg")
        self.log = os.path.join(cluster.dir, "haproxy.log")
        self.proc = None
        servers = "".join("    server gw%d 127.0.0.1:%d check inter 500ms fall 2 rise 1\n"
                          % (i + 1, p) for i, p in enumerate(ports))
        with open(self.conf, "w") as f:
            f.write(HAPROXY_CFG % {"port": self.port, "servers": servers})

    def start(self):
        self._logf = open(self.log, "ab")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", self.conf],
                                     stdout=self._logf, stderr=self._logf)
        wait_until(lambda: self.proc.poll() is None and http_get(self.port, "/healthz").status == 200,
                   30, what="HAProxy /healthz 200")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


# docs/scaling.md shows the same configuration.
HAPROXY_CFG = """global
    maxconn 4096
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
frontend chat
    bind 127.0.0.1:%(port)d
    default_backend gateways
backend gateways
    balance roundrobin
    option httpchk GET /healthz
%(servers)s"""


def new_user(prefix="u"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


# async tests in their own event loop (90 s each), one result line per test
# for test/run, and every cluster stopped at exit: the glue that
# test/security uses too
pytest_glue.install(globals(), os.environ.get("CHAT_SUITE", "test/integration"), 90, Cluster)


def start_cluster(name, **settings):
    """Starts a cluster with DEFAULT_SETTINGS overridden by settings, whose
    values are postgresql.conf literals (e.g. workers=... is not accepted:
    use the full name, {'chat.workers': '2'})."""
    c = Cluster(name, settings)
    try:
        return c.start()
    except BaseException:
        c.stop()
        raise


@pytest.fixture(scope="session")
def cluster():
    """The session's default cluster: one worker, short timings."""
    c = start_cluster("default")
    yield c
    c.stop()


@pytest.fixture(scope="session")
def live():
    """The live-state tests' cluster: one worker, short heartbeat and typing
    timings (livelib.LIVE_SETTINGS)."""
    import livelib
    c = livelib.start("live")
    yield c
    c.stop()


@pytest.fixture(scope="session")
def two():
    """The same with chat.workers = 2 (test_across_workers.py)."""
    import livelib
    c = livelib.start("live-two", **{"chat.workers": "2"})
    yield c
    c.stop()


@pytest.fixture(scope="session")
def cluster_factory():
    """Starts clusters with custom settings, e.g.
    cluster_factory('two', **{'chat.workers': '2'}); all stop at the end."""
    made = []

    def make(name, **settings):
        c = start_cluster(name, **settings)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


# --------------------------------------------------------------------------
# the WebSocket client
# --------------------------------------------------------------------------

class Client:
    """One WebSocket connection of one user.

    Every frame received is kept in .frames (in arrival order), so a test can
    check afterwards that something never came; wait_for() consumes frames
    through a cursor and skips those that do not match.
    """

    def __init__(self, cluster, user, ws):
        self.cluster = cluster
        self.user = user
        self.ws = ws
        self.frames = []
        self.cursor = 0
        self.ready = None

    @classmethod
    async def open(cls, cluster, user, token=None, wait_ready=True):
        ws = await websockets.connect(cluster.url(token or cluster.token(user)),
                                      max_queue=None, ping_interval=None,
                                      open_timeout=10, close_timeout=2,
                                      max_size=None)
        c = cls(cluster, user, ws)
        c.port = cluster.last_port      # the node (or HAProxy) it connected to
        if wait_ready:
            c.ready = await c.wait_for(lambda f: True, timeout=10)
            assert c.ready["type"] == "ready", c.ready
        return c

    @property
    def connection_id(self):
        return self.ready["connectionId"]

    @property
    def worker(self):
        return int(self.connection_id.split("-", 1)[0])

    def ready_channel(self, channel_id):
        for ch in self.ready["channels"]:
            if ch["id"] == str(channel_id):
                return ch
        return None

    async def send(self, obj):
        await self.ws.send(json.dumps(obj) if isinstance(obj, dict) else obj)

    async def _recv(self, timeout):
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(raw, str), "server sent a binary frame: %r" % raw[:100]
        f = json.loads(raw)
        self.frames.append(f)
        return f

    async def wait_for(self, pred, timeout=5.0, what=None):
        """Returns the next frame (after the cursor) matching pred."""
        deadline = time.monotonic() + timeout
        while True:
            while self.cursor < len(self.frames):
                f = self.frames[self.cursor]
                self.cursor += 1
                if pred(f):
                    return f
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: no frame matching %s within %.1fs; recent frames: %s"
                                     % (self.user, what or pred, timeout,
                                        json.dumps(self.frames[-8:])[:2000]))
            try:
                await self._recv(left)
            except asyncio.TimeoutError:
                continue

    async def wait_seen(self, pred, timeout=5.0, what=None):
        """Like wait_for, but also matches frames received (and skipped)
        earlier."""
        for f in self.frames[:self.cursor]:
            if pred(f):
                return f
        return await self.wait_for(pred, timeout, what)

    async def collect(self, window):
        """Receives everything for window seconds; returns the new frames."""
        start = len(self.frames)
        deadline = time.monotonic() + window
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                await self._recv(left)
            except asyncio.TimeoutError:
                break
        return self.frames[start:]

    async def expect_none(self, pred, window, what="frame"):
        """Asserts that nothing matching pred arrives within window seconds
        (also among frames already received but not yet consumed)."""
        pending = self.frames[self.cursor:]
        new = await self.collect(window)
        bad = [f for f in pending + new if pred(f)]
        assert not bad, "%s: unexpected %s: %s" % (self.user, what, json.dumps(bad)[:2000])

    async def send_message(self, channel, content, client_id=None, ref=None, timeout=5.0,
                           **extra):
        """Sends and returns the ack or error frame answering it."""
        cid = str(client_id or uuid.uuid4())
        frame = {"type": "send", "clientId": cid, "channelId": str(channel),
                 "content": content}
        if ref is not None:
            frame["ref"] = ref
        frame.update(extra)
        await self.send(frame)
        return await self.wait_for(
            lambda f: f.get("type") in ("ack", "error") and f.get("clientId") == cid,
            timeout=timeout, what="ack/error for %s" % cid)

    async def wait_message(self, channel, pred=lambda m: True, timeout=5.0):
        return (await self.wait_for(
            lambda f: f.get("type") == "message"
            and f["message"]["channelId"] == str(channel) and pred(f["message"]),
            timeout=timeout, what="message in %s" % channel))["message"]

    async def wait_closed(self, timeout=5.0):
        """Waits for the connection to close (reading what is left) and
        returns the close code the server sent."""
        async def drain():
            try:
                while True:
                    raw = await self.ws.recv()
                    if isinstance(raw, str):
                        self.frames.append(json.loads(raw))
            except websockets.ConnectionClosed:
                pass
        await asyncio.wait_for(drain(), timeout)
        return self.ws.close_code

    def seqs(self, channel, own_acks=True):
        """The channel's seqs in the order this connection got them, as
        message frames and (own_acks) as acks of its own non-duplicate sends."""
        out = []
        for f in self.frames:
            if f.get("type") == "message" and f["message"]["channelId"] == str(channel):
                out.append(f["message"]["seq"])
            elif (own_acks and f.get("type") == "ack" and f["channelId"] == str(channel)
                  and not f["duplicate"]):
                out.append(f["seq"])
        return out

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 3)
        except Exception:  # noqa: BLE001
            pass


def assert_gap_free(seqs, start, end=None, who=""):
    """seqs must be exactly start+1, start+2, ... (, end)."""
    expected = list(range(start + 1, (end if end is not None else start + len(seqs)) + 1))
    if seqs != expected:
        # show the first place where it goes wrong
        for i, (a, b) in enumerate(zip(seqs, expected)):
            if a != b:
                raise AssertionError("%s: stream differs at index %d: got %r, expected %r "
                                     "(got %d seqs, expected %d)"
                                     % (who, i, seqs[max(0, i - 3):i + 4],
                                        expected[max(0, i - 3):i + 4], len(seqs), len(expected)))
        raise AssertionError("%s: got %d seqs, expected %d (last got %r, last expected %r)"
                             % (who, len(seqs), len(expected), seqs[-3:], expected[-3:]))


def in_channel(g):
    """Frames of channel g that answer a sync: its messages, synced, error."""
    g = str(g)
    return lambda f: ((f.get("type") == "message" and f["message"]["channelId"] == g)
                      or (f.get("type") in ("synced", "error") and f.get("channelId", g) == g))


async def read_sync(client, g, timeout=10):
    """Reads the answer to one sync of channel g: (messages, synced)."""
    msgs = []
    while True:
        f = await client.wait_for(in_channel(g), timeout=timeout, what="sync answer")
        if f["type"] == "message":
            msgs.append(f["message"])
        elif f["type"] == "synced":
            return msgs, f
        else:
            raise AssertionError("sync failed: %r" % f)


async def close_all(*clients):
    await asyncio.gather(*(c.close() for c in clients if c is not None))
