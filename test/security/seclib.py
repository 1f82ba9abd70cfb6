"""
Helpers of the security suite.

The cluster, the WebSocket client and the raw HTTP helpers are the
integration suite's (test/integration/conftest.py), loaded here under
another module name so that its pytest hooks stay out of this suite; only
the log artifacts are redirected to test/artifacts/security.  What is added
here: crafted JWTs, raw upgrades (from any loopback source address), and
readers of /proc for a worker's CPU time, memory and descriptors.
"""
import base64
import hashlib
import hmac
import importlib.util
import json
import os
import re
import shutil
import socket
import struct
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _load_integration():
    path = os.path.join(TOP, "test", "integration", "conftest.py")
    spec = importlib.util.spec_from_file_location("chat_integration_helpers", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


it = _load_integration()
it.ARTIFACTS = os.path.join(TOP, "test", "artifacts", "security")

Cluster = it.Cluster
Client = it.Client
RawWs = it.RawWs
HttpResponse = it.HttpResponse
http_raw = it.http_raw
http_get = it.http_get
upgrade_headers = it.upgrade_headers
new_user = it.new_user
wait_until = it.wait_until
async_wait_until = it.async_wait_until
close_all = it.close_all
assert_gap_free = it.assert_gap_free


# --------------------------------------------------------------------------
# clusters
# --------------------------------------------------------------------------

def start(name, cls=None, **settings):
    """Starts a cluster (integration defaults overridden by settings, whose
    values are postgresql.conf literals); stops it again if the start fails."""
    c = (cls or Cluster)(name, settings)
    try:
        return c.start()
    except BaseException:
        c.stop()
        raise


def key_dir():
    """A directory the postgres user can read, for key and certificate files."""
    d = tempfile.mkdtemp(prefix="chat-sec-keys.")
    os.chmod(d, 0o755)
    shutil.chown(d, "postgres", "postgres")
    return d


def write_file(directory, name, data, mode=0o644):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(path, mode)
    shutil.chown(path, "postgres", "postgres")
    return path


def conf_string(raw):
    """A postgresql.conf string literal holding the bytes raw (no NUL):
    every byte outside printable ASCII as an octal escape."""
    out = []
    for b in raw:
        if b == 0:
            raise ValueError("a setting cannot hold NUL")
        if b in (0x27, 0x5C) or b < 0x20 or b > 0x7E:
            out.append("\\%03o" % b)
        else:
            out.append(chr(b))
    return "'" + "".join(out) + "'"


def worker_pid(cluster):
    pids = cluster.worker_pids()
    assert len(pids) == 1, "expected one chat worker, found %r" % pids
    return pids[0]


def assert_no_crash(cluster):
    """The postmaster never had to restart after a backend died."""
    log = cluster.log_text()
    for pat in ("terminated by signal", "was terminated by exception",
                "terminating any other active server processes",
                "all server processes terminated"):
        assert pat not in log, "server log shows a crash (%r):\n%s" % (pat, cluster.log_tail())


# --------------------------------------------------------------------------
# /proc
# --------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status(pid, key):
    """A kB value from /proc/<pid>/status (VmRSS, RssAnon, ...)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def nofile_limit(pid):
    """(soft, hard) Max open files from /proc/<pid>/limits."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise KeyError("Max open files")


# --------------------------------------------------------------------------
# JWTs made by hand
# --------------------------------------------------------------------------

def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(obj):
    if isinstance(obj, (bytes, str)):
        return b64url(obj)
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def hs256(key, signing_input):
    if isinstance(key, str):
        key = key.encode()
    return hmac.new(key, signing_input.encode(), hashlib.sha256).digest()


def hs_token(header, payload, key):
    """A compact JWS over exactly these header and payload (dicts are
    serialised compactly; str/bytes are taken as the exact JSON text)."""
    si = b64url_json(header) + "." + b64url_json(payload)
    return si + "." + b64url(hs256(key, si))


def claims(sub, ttl=600, **extra):
    now = int(time.time())
    c = {"sub": sub, "iat": now, "exp": now + ttl}
    c.update(extra)
    return c


# --------------------------------------------------------------------------
# raw upgrades
# --------------------------------------------------------------------------

def _recv_response(s, timeout):
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
        if data.startswith(b"HTTP/1.1 101") and b"\r\n\r\n" in data:
            break
    return HttpResponse(data)


def connect_from(port, source=None, timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def upgrade(port, token=None, bearer=None, origin=None, headers=None,
            source=None, path=None, timeout=5.0, keep=False):
    """Sends a WebSocket upgrade and returns the HttpResponse (with .sock
    when keep=True and the answer was 101; the caller closes it)."""
    if path is None:
        path = "/ws" if token is None else "/ws?token=" + token
    h = {"Host": "127.0.0.1:%d" % port}
    h.update(upgrade_headers(base64.b64encode(os.urandom(16)).decode()))
    if bearer is not None:
        h["Authorization"] = "Bearer " + bearer
    if origin is not None:
        h["Origin"] = origin
    h.update(headers or {})
    req = "GET %s HTTP/1.1\r\n" % path
    req += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
    s = connect_from(port, source, timeout)
    try:
        s.sendall(req.encode("latin-1"))
        r = _recv_response(s, timeout)
    except BaseException:
        s.close()
        raise
    if keep and r.status == 101:
        r.sock = s
    else:
        s.close()
    return r


def assert_status(resp, status, error=None, reason_has=None, what=""):
    assert resp.status == status, "%s: expected %d, got %r" % (what, status, resp)
    if status == 101:
        return
    assert resp.headers.get("connection", "").lower() == "close", \
        "%s: a refusal must close the connection: %r" % (what, resp)
    body = resp.json()
    if error is not None:
        assert body.get("error") == error, "%s: body %r" % (what, body)
    if reason_has is not None:
        reason = body.get("reason", "").lower()
        assert any(w in reason for w in
                   ([reason_has] if isinstance(reason_has, str) else reason_has)), \
            "%s: reason %r does not say %r" % (what, reason, reason_has)


def assert_401(resp, reason_has=None, what=""):
    assert_status(resp, 401, "unauthorized", reason_has, what)
    assert b"101" not in resp.raw.split(b"\r\n", 1)[0]


# --------------------------------------------------------------------------
# raw WebSocket frames (client side: masked)
# --------------------------------------------------------------------------

ws_frame = it.ws_frame


def read_until_close(raw, timeout=5.0):
    """Reads frames from a RawWs until the server's close frame (returns its
    code) or EOF (returns None); text frames are returned too."""
    texts = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no close within %.1fs; got %r" % (timeout, texts[-5:])
        try:
            op, payload = raw.read_frame(left)
        except EOFError:
            return None, texts
        if op == 0x8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            return code, texts
        if op == 0x1:
            texts.append(json.loads(payload))
        if op == 0x9:
            raw.send_frame(0xA, payload)


def raw_next(raw, pred, timeout=5.0):
    """The next text frame from raw matching pred (answers pings)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no matching frame within %.1fs" % timeout
        op, payload = raw.read_frame(left)
        if op == 0x9:
            raw.send_frame(0xA, payload)
            continue
        if op == 0x8:
            raise AssertionError("closed by the server: %r" % payload)
        if op == 0x1:
            f = json.loads(payload)
            if pred(f):
                return f


def server_log_has(cluster, pattern):
    return re.search(pattern, cluster.log_text()) is not None
