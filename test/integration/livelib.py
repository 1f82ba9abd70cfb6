"""
Helpers of the live-state tests (typing, presence, read receipts, edits and
deletes, replies and attachments: test_typing.py, test_presence.py,
test_read.py, test_edits.py, test_replies_attachments.py and
test_across_workers.py), on the suite's fixtures (conftest.py): the short
live-state settings, placing a connection on a given worker, finding a
worker's pid, and frame predicates.
"""
import asyncio
import time

import conftest as it

Cluster = it.Cluster
Client = it.Client
RawWs = it.RawWs
http_get = it.http_get
new_user = it.new_user
wait_until = it.wait_until
async_wait_until = it.async_wait_until
close_all = it.close_all
assert_gap_free = it.assert_gap_free
worker_only = it.worker_only
TOPOLOGY = it.TOPOLOGY

# Timings of every cluster of this suite (postgresql.conf literals).  The
# integration defaults already give heartbeat_interval 1s / timeout 3s.
HEARTBEAT_INTERVAL = 1.0
HEARTBEAT_TIMEOUT = 3.0
TYPING_TIMEOUT = 1.5
TYPING_DEBOUNCE = 1.0
LIVE_SETTINGS = {
    "chat.heartbeat_interval": "'1s'",
    "chat.heartbeat_timeout": "'3s'",
    "chat.typing_timeout": "'1500ms'",
    "chat.typing_debounce": "'1s'",
}

# Scheduling slack of a timer on a loaded machine (a worker loop iteration,
# the NOTIFY hop between workers, the client's own event loop).
EARLY_MARGIN = 0.15    # a timer may look this much early, measured from our side
LATE_MARGIN = 1.0      # ... and this much late


def start(name, **settings):
    """Starts a cluster with the integration defaults, LIVE_SETTINGS and
    settings (full names; values are postgresql.conf literals); stops it
    again if the start fails."""
    conf = dict(LIVE_SETTINGS)
    conf.update(settings)
    c = Cluster(name, conf)
    try:
        return c.start()
    except BaseException:
        c.stop()
        raise


# --------------------------------------------------------------------------
# frame predicates
# --------------------------------------------------------------------------

def is_type(t, **fields):
    """A predicate: frame of type t whose top-level fields equal fields
    (uuids compared as text)."""
    want = {k: (str(v) if not isinstance(v, (int, bool, type(None))) else v)
            for k, v in fields.items()}

    def pred(f):
        return f.get("type") == t and all(f.get(k) == v for k, v in want.items())
    pred.__name__ = "%s%r" % (t, want)
    return pred


def presence_of(user, status):
    return is_type("presence", userId=user, status=status)


def typing_of(channel, user):
    return is_type("typing", channelId=channel, userId=user)


def stopped_of(channel, user):
    return is_type("typing_stopped", channelId=channel, userId=user)


def count(client, pred):
    """How many of every frame client has received so far match pred."""
    return sum(1 for f in client.frames if pred(f))


async def wait_for_t(client, pred, timeout=5.0, what=None):
    """wait_for, returning (frame, monotonic arrival time as seen here)."""
    f = await client.wait_for(pred, timeout=timeout, what=what)
    return f, time.monotonic()


async def error_for(client, frame, ref, timeout=5.0):
    """Sends frame with ref and returns the error frame carrying that ref
    (fails if the answer to ref is anything else)."""
    frame = dict(frame, ref=ref)
    await client.send(frame)
    f = await client.wait_for(lambda f: f.get("ref") == ref, timeout=timeout,
                              what="answer to ref %r" % ref)
    assert f.get("type") == "error", "expected an error for %r, got %r" % (frame, f)
    return f


# --------------------------------------------------------------------------
# workers
# --------------------------------------------------------------------------

async def client_on_worker(cluster, user, worker, tries=80):
    """Opens a connection of user that lands on worker (SO_REUSEPORT picks
    the worker per connection); connections that land elsewhere are closed.
    Callers make sure these spares change nothing they observe (the user is
    in no channel yet, or already online through another device)."""
    for _ in range(tries):
        c = await cluster.client(user)
        if c.worker == worker:
            return c
        await c.close()
    raise AssertionError("the kernel never put a connection of %s on worker %d"
                         % (user, worker))


def worker_pid_of(cluster, worker):
    """The pid of chat worker <worker>, from pg_stat_activity (backend_type
    'chat worker') and the process title 'chat worker N'."""
    for pid in cluster.worker_pids():
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                title = f.read().replace(b"\0", b" ")
        except OSError:
            continue
        if (b"chat worker %d" % worker) in title:
            return pid
    raise AssertionError("no process titled 'chat worker %d' among %r"
                         % (worker, cluster.worker_pids()))


def online(cluster, channel):
    """chat_online(channel) as a list, in the order SQL returns it."""
    return [r[0] for r in cluster.sql("SELECT * FROM chat_online(%s)", (channel,))]


async def sleep_until(t):
    """Waits until monotonic time t: pacing of what a test sends (typing
    every 300ms), never synchronisation with the server."""
    left = t - time.monotonic()
    if left > 0:
        await asyncio.sleep(left)
