"""
Durability under faults: nothing acked is lost, nothing is duplicated.

Real clients (python websockets) keep an outbox: every send stays in it
until its ack arrives, and after any reconnect a client first syncs every
channel from the last seq it holds without a gap, then resends the whole
outbox with the same clientIds.  While they send, faults are injected:

  - abrupt client disconnects (the TCP connection aborted with sends in flight)
  - kill -9 of a worker (the postmaster crash-restarts every backend)
  - SIGTERM of a worker (that worker alone restarts)
  - kill -9 of an application backend right after its chat_send committed
    (the postmaster crash-restarts every backend, the event ring with them)
  - pg_ctl stop -m immediate, then pg_ctl start
  - all clients aborted at once
  - kill -9 of a worker again

and, all along, SQL sessions call chat_send() in transactions that roll
back (ROLLBACK, an error, ROLLBACK TO SAVEPOINT), mixed with committed
chat_send() calls.  The server is never helped: after each fault the test
only waits for it to come back by itself (except for the restart that the
immediate stop itself calls for).

The checker then verifies:
  - every acked message is stored exactly once, with the acked id, seq and
    content; nothing the clients sent is stored without having been acked;
  - every client's per-channel stream, after a final sync, is complete
    (1..last_seq), in seq order on every connection, without repeats;
  - nothing from a rolled-back transaction was stored or delivered;
  - the server came back by itself after every fault.

It prints the counts (messages, faults, resends, losses, duplicates) and
appends PASS/FAIL lines to $RESULTS.  Runs as root (the cluster as the
postgres OS user) in about a minute.
"""
import asyncio
import collections
import importlib.util
import json
import os
import random
import signal
import sys
import threading
import time
import traceback
import uuid

import jwt
import psycopg2
import websockets

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _load_integration():
    path = os.path.join(TOP, "test", "integration", "conftest.py")
    spec = importlib.util.spec_from_file_location("chat_integration_helpers", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.ARTIFACTS = os.path.join(TOP, "test", "artifacts", "faults")
    return mod


it = _load_integration()

USERS = 6
WINDOW = 8              # unacked sends per client
PACE = 0.02             # seconds between a client's sends
RECOVER_TIMEOUT = 45
BETWEEN = 60            # acks per client between two faults
CONNECT_ERRORS = (OSError, asyncio.TimeoutError, websockets.InvalidHandshake,
                  websockets.ConnectionClosed, EOFError, json.JSONDecodeError)


def log(msg):
    print("[%6.2f] %s" % (time.monotonic() - T0, msg), flush=True)


T0 = time.monotonic()


# --------------------------------------------------------------------------
# one client with an outbox
# --------------------------------------------------------------------------

class Conn:
    """What one connection saw: ready positions, syncs sent, seqs received."""

    def __init__(self, ready):
        self.ready = {ch["id"]: ch["lastSeq"] for ch in ready["channels"]}
        self.syncs = collections.defaultdict(list)
        self.seqs = collections.defaultdict(list)


class FaultClient:
    def __init__(self, run, user, channels):
        self.run = run
        self.user = user
        self.channels = [str(c) for c in channels]
        self.outbox = collections.OrderedDict()     # clientId -> (channel, content)
        self.acked = {}                             # clientId -> first ack
        self.received = {ch: {} for ch in self.channels}   # seq -> message
        self.conns = []
        self.resends = 0
        self.connects = 0
        self.internal_errors = 0
        self.problems = []
        self.n = 0
        self.ws = None
        self.synced = {}
        self.final_done = False
        self.ack_count = 0

    def token(self):
        now = int(time.time())
        return jwt.encode({"sub": self.user, "iat": now, "exp": now + 3600},
                          self.run.cluster.secret, algorithm="HS256")

    def contiguous(self, ch):
        got, n = self.received[ch], 0
        while n + 1 in got:
            n += 1
        return n

    # -- frames -------------------------------------------------------------

    def on_frame(self, conn, f):
        t = f.get("type")
        if t == "message":
            m = f["message"]
            ch = m["channelId"]
            if ch not in self.received:
                self.problems.append("message of a channel I am not in: %r" % m)
                return
            conn.seqs[ch].append(m["seq"])
            old = self.received[ch].get(m["seq"])
            if old is not None and (old["id"], old["content"]) != (m["id"], m["content"]):
                self.problems.append("seq %d of %s changed: %r then %r" % (m["seq"], ch, old, m))
            self.received[ch][m["seq"]] = m
        elif t == "ack":
            cid = f["clientId"]
            first = self.acked.get(cid)
            if first is not None and (first["serverId"], first["seq"]) != (f["serverId"], f["seq"]):
                self.problems.append("two acks for %s differ: %r / %r" % (cid, first, f))
            if first is None:
                self.acked[cid] = f
                self.ack_count += 1
            entry = self.outbox.pop(cid, None)
            if not f["duplicate"]:
                ch = f["channelId"]
                conn.seqs[ch].append(f["seq"])
                content = entry[1] if entry else (first and first.get("content"))
                self.received[ch][f["seq"]] = {"id": f["serverId"], "seq": f["seq"],
                                               "channelId": ch, "senderId": self.user,
                                               "clientId": cid, "content": content}
            self.acked[cid].setdefault("content", entry[1] if entry else None)
        elif t == "synced":
            self.synced[(f["channelId"], f.get("ref"))] = f
        elif t == "error":
            if f.get("code") == "internal" and f.get("clientId") in self.outbox:
                # nothing stored: resent on the next round with the same id
                self.internal_errors += 1
                self.run.retry_soon.add((self, f["clientId"]))
            else:
                self.problems.append("unexpected error frame: %r" % f)

    # -- one connection -------------------------------------------------------

    async def reader(self, ws, conn):
        async for raw in ws:
            self.on_frame(conn, json.loads(raw))

    async def sync(self, ws, conn):
        pos = {ch: self.contiguous(ch) for ch in self.channels}
        pending = dict(pos)
        while pending:
            ref = "sync-%d-%s" % (len(self.conns), uuid.uuid4().hex[:6])
            for ch, s in pending.items():
                conn.syncs[ch].append(s)
            await ws.send(json.dumps({"type": "sync", "channels": pending, "ref": ref}))
            nxt = {}
            deadline = time.monotonic() + 20
            for ch in pending:
                while (ch, ref) not in self.synced:
                    if time.monotonic() > deadline:
                        raise asyncio.TimeoutError("no synced for %s" % ch)
                    if ws.closed:
                        raise websockets.ConnectionClosedError(None, None)
                    await asyncio.sleep(0.01)
                done = self.synced.pop((ch, ref))
                if done["hasMore"]:
                    nxt[ch] = done["lastSeq"]
            pending = nxt

    async def send_new(self, ws):
        self.n += 1
        cid = str(uuid.uuid4())
        ch = random.choice(self.channels)
        content = "fault-%s-%06d" % (self.user, self.n)
        self.outbox[cid] = (ch, content)
        await ws.send(json.dumps({"type": "send", "clientId": cid, "channelId": ch,
                                  "content": content}))

    async def resend(self, ws, cid):
        ch, content = self.outbox[cid]
        self.resends += 1
        await ws.send(json.dumps({"type": "send", "clientId": cid, "channelId": ch,
                                  "content": content}))

    async def session(self):
        ws = await websockets.connect(self.run.cluster.url(self.token()), open_timeout=5,
                                      close_timeout=1, ping_interval=None, max_queue=None)
        self.ws = ws
        try:
            ready = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert ready["type"] == "ready", ready
            conn = Conn(ready)
            self.conns.append(conn)
            self.connects += 1
            reader = asyncio.ensure_future(self.reader(ws, conn))
            try:
                await self.sync(ws, conn)
                for cid in list(self.outbox):
                    await self.resend(ws, cid)
                while not reader.done():
                    if self.run.finishing:
                        if not self.outbox:
                            await self.sync(ws, conn)     # the final sync
                            self.final_done = True
                            return
                    elif self.run.sending and len(self.outbox) < WINDOW:
                        await self.send_new(ws)
                    for item in [x for x in self.run.retry_soon if x[0] is self]:
                        self.run.retry_soon.discard(item)
                        if item[1] in self.outbox:
                            await self.resend(ws, item[1])
                    await asyncio.sleep(PACE)
                reader.result()
            finally:
                reader.cancel()
        finally:
            self.ws = None
            if not ws.closed:
                ws.transport.abort()

    async def main(self):
        while not self.final_done:
            try:
                await self.session()
            except CONNECT_ERRORS:
                pass
            if not self.final_done:
                await asyncio.sleep(0.05)      # reconnect back-off

    def abort(self):
        """Cuts the TCP connection now, with whatever is in flight."""
        ws = self.ws
        if ws is not None:
            ws.transport.abort()
            return True
        return False


# --------------------------------------------------------------------------
# transactions that roll back
# --------------------------------------------------------------------------

class SqlChurn(threading.Thread):
    """chat_send() in transactions that roll back, mixed with committed
    ones (whose client ids make retries after a crash idempotent)."""

    def __init__(self, ctx):
        super().__init__(daemon=True)
        self.run_ctx = ctx
        self.stop = threading.Event()
        self.rollbacks = 0
        self.committed = {}        # client_id -> (channel, sender, content)
        self.errors = 0
        self.n = 0

    def one(self, conn, members):
        self.n += 1
        ch, users = random.choice(members)
        u = random.choice(users)
        kind = self.n % 4
        with conn.cursor() as cur:
            tag = "ROLLBACK-%06d-%d" % (self.n, kind)
            if kind == 0:
                cur.execute("SELECT chat_send(%s, %s, %s)", (ch, u, tag))
                conn.rollback()
            elif kind == 1:
                cur.execute("SELECT chat_send(%s, %s, %s)", (ch, u, tag))
                try:
                    cur.execute("SELECT 1/0")
                except psycopg2.errors.DivisionByZero:
                    pass
                conn.rollback()
            elif kind == 2:
                cur.execute("SAVEPOINT s")
                cur.execute("SELECT chat_send(%s, %s, %s)", (ch, u, tag))
                cur.execute("ROLLBACK TO SAVEPOINT s")
                cid = str(uuid.uuid4())
                content = "SQLCOMMIT-%06d" % self.n
                self.committed[cid] = (ch, u, content)      # retried until stored
                cur.execute("SELECT chat_send(%s, %s, %s, %s)", (ch, u, content, cid))
                conn.commit()
            else:
                cur.execute("SELECT chat_send(%s, %s, %s)", (ch, u, tag))
                cur.execute("SELECT pg_sleep(0.02)")
                conn.rollback()
            self.rollbacks += 1

    def run(self):
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = self.run_ctx.cluster.connect(autocommit=False)
                self.one(conn, self.run_ctx.members)
            except psycopg2.Error:
                self.errors += 1
                try:
                    if conn is not None:
                        conn.close()
                except psycopg2.Error:
                    pass
                conn = None
                self.stop.wait(0.1)
            self.stop.wait(0.01)     # pace
        if conn is not None:
            conn.close()

    def settle(self):
        """Makes sure every committed send whose COMMIT may have been lost in
        a crash is stored (same client id: idempotent)."""
        conn = self.run_ctx.cluster.connect(autocommit=True)
        with conn.cursor() as cur:
            for cid, (ch, u, content) in self.committed.items():
                cur.execute("SELECT chat_send(%s, %s, %s, %s)", (ch, u, content, cid))
        conn.close()


# --------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------

class Run:
    def __init__(self):
        self.cluster = None
        self.clients = []
        self.members = []
        self.sending = True
        self.finishing = False
        self.retry_soon = set()
        self.faults = []
        self.recovered = []
        self.results = []

    # -- server state -----------------------------------------------------

    def sql(self, query, args=None):
        c = self.cluster.connect()
        try:
            with c.cursor() as cur:
                cur.execute(query, args)
                return cur.fetchall() if cur.description else None
        finally:
            c.close()

    def worker_pids(self):
        try:
            return sorted(r[0] for r in self.sql(
                "SELECT pid FROM pg_stat_activity WHERE backend_type = 'chat worker'"))
        except psycopg2.Error:
            return []

    def postmaster_pid(self):
        with open(os.path.join(self.cluster.data, "postmaster.pid")) as f:
            return int(f.readline())

    async def wait(self, cond, what, timeout=RECOVER_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            try:
                v = cond()
            except Exception:  # noqa: BLE001 - the server may be down meanwhile
                v = False
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %ds waiting for %s" % (timeout, what))
            await asyncio.sleep(0.05)

    async def progress(self, n, what):
        marks = {c: c.ack_count for c in self.clients}
        await self.wait(lambda: all(c.ack_count >= marks[c] + n and c.ws is not None
                                    for c in self.clients),
                        "every client connected with %d new acks (%s)" % (n, what))

    async def server_back(self, what, old_workers, pm, all_new):
        """The server came back by itself: the postmaster is the same one,
        every worker is up (new pids where they died), /healthz answers, and
        every client is connected and acked again."""
        t0 = time.monotonic()
        await self.wait(lambda: len(self.worker_pids()) == 2, "2 workers back (%s)" % what)
        new = self.worker_pids()
        if all_new:
            assert not set(new) & set(old_workers), "%s: workers %r survived" % (what, new)
        await self.wait(lambda: self.cluster.healthz() == 200, "/healthz (%s)" % what)
        if pm is not None:
            assert self.postmaster_pid() == pm, "%s: the postmaster was replaced" % what
        await self.progress(5, what)
        self.recovered.append((what, time.monotonic() - t0))
        log("  recovered from %s in %.1fs (workers %r -> %r)"
            % (what, time.monotonic() - t0, old_workers, new))
        await self.progress(BETWEEN, "traffic after " + what)

    # -- faults -------------------------------------------------------------

    async def abort_clients(self, which, what):
        # a burst of sends with no chance for acks, then the cut
        for c in which:
            ws = c.ws
            if ws is not None:
                for _ in range(3):
                    try:
                        await c.send_new(ws)
                    except websockets.ConnectionClosed:
                        break
            c.abort()
        self.faults.append(what)
        log("fault: %s" % what)
        await self.progress(5, what)
        self.recovered.append((what, 0))
        await self.progress(BETWEEN, "traffic after " + what)

    async def kill_worker(self, sig, what):
        pids = self.worker_pids()
        pm = self.postmaster_pid()
        assert len(pids) == 2, pids
        victim = random.choice(pids)
        os.kill(victim, sig)
        self.faults.append(what)
        log("fault: %s (pid %d)" % (what, victim))
        if sig == signal.SIGKILL:
            await self.server_back(what, pids, pm, all_new=True)
        else:
            await self.wait(lambda: victim not in self.worker_pids()
                            and len(self.worker_pids()) == 2, "the SIGTERMed worker back")
            await self.server_back(what, [victim], pm, all_new=True)

    async def kill_app_backend(self):
        """kill -9 of an application's backend right after its chat_send
        committed: the postmaster restarts every backend (shared memory and
        its event ring with them), and the committed message, whose hint may
        never have been read, must still reach every member."""
        pids = self.worker_pids()
        pm = self.postmaster_pid()
        ch, members = random.choice(self.members)
        u = random.choice(members)
        cid = str(uuid.uuid4())
        content = "SQLCOMMIT-killed-%s" % cid[:8]
        conn = self.cluster.connect()
        with conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            victim = cur.fetchone()[0]
            cur.execute("SELECT seq FROM chat_send(%s, %s, %s, %s)", (ch, u, content, cid))
            cur.fetchone()
        # returned, so committed (autocommit): it must be stored and delivered
        self.churn.committed[cid] = (ch, u, content)
        os.kill(victim, signal.SIGKILL)
        conn.close()
        what = "kill -9 of an application backend after its chat_send committed"
        self.faults.append(what)
        log("fault: %s (pid %d)" % (what, victim))
        await self.server_back(what, pids, pm, all_new=True)

    async def immediate_stop(self):
        pids = self.worker_pids()
        data = self.cluster.data
        r = it._as_postgres([os.path.join(it.PGBIN, "pg_ctl"), "-D", data, "-m", "immediate",
                             "stop"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        self.faults.append("pg_ctl stop -m immediate")
        log("fault: pg_ctl stop -m immediate")
        r = it._as_postgres([os.path.join(it.PGBIN, "pg_ctl"), "-D", data, "-l",
                             self.cluster.log, "-w", "-t", "60", "start"],
                            capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        self.cluster._read_pid()
        self.cluster._conn = None
        await self.server_back("pg_ctl stop -m immediate + start", pids, None, all_new=True)

    # -- the whole thing --------------------------------------------------------

    async def drive(self):
        c = self.cluster
        users = ["u%d-%s" % (i, uuid.uuid4().hex[:6]) for i in range(USERS)]
        chans = {
            c.group(users[0:4], "fault-a"): users[0:4],
            c.group(users[2:6], "fault-b"): users[2:6],
            c.direct(users[0], users[5]): [users[0], users[5]],
            c.group(users, "fault-all"): users,
        }
        self.members = [(str(ch), us) for ch, us in chans.items()]
        for u in users:
            self.clients.append(FaultClient(self, u, [ch for ch, us in chans.items() if u in us]))
        tasks = [asyncio.ensure_future(cl.main()) for cl in self.clients]
        churn = SqlChurn(self)
        churn.start()
        self.churn = churn
        try:
            await self.progress(BETWEEN, "warm-up")
            await self.abort_clients(self.clients[:2], "abrupt disconnect of 2 clients")
            await self.kill_worker(signal.SIGKILL, "kill -9 of a worker")
            await self.kill_worker(signal.SIGTERM, "SIGTERM of a worker")
            await self.kill_app_backend()
            await self.immediate_stop()
            await self.abort_clients(self.clients, "abrupt disconnect of every client")
            await self.kill_worker(signal.SIGKILL, "kill -9 of a worker, again")
            await self.progress(20, "steady again")
        finally:
            churn.stop.set()
            churn.join(10)
        # drain: no new sends; every outbox empties; then a final sync each
        self.sending = False
        await self.wait(lambda: all(not cl.outbox for cl in self.clients),
                        "every outbox acked", timeout=30)
        churn.settle()
        self.finishing = True
        await self.wait(lambda: all(cl.final_done for cl in self.clients),
                        "the final syncs", timeout=30)
        await asyncio.wait_for(asyncio.gather(*tasks), 10)

    # -- the checker ------------------------------------------------------------

    def check(self):
        rows = self.sql("SELECT id::text, channel_id::text, seq, sender_id, client_id::text, "
                        "content FROM chat.messages")
        by_key = {(r[3], r[4]): r for r in rows}
        by_seq = {(r[1], r[2]): r for r in rows}
        last = {ch: 0 for ch, _ in self.members}
        for r in rows:
            last[r[1]] = max(last.get(r[1], 0), r[2])
        losses, dups = [], []

        # 1. every acked message stored exactly once, as acked
        client_rows = [r for r in rows if r[5].startswith("fault-")]
        acked_keys = set()
        for cl in self.clients:
            for cid, ack in cl.acked.items():
                acked_keys.add((cl.user, cid))
                r = by_key.get((cl.user, cid))
                if r is None:
                    losses.append("acked %s of %s not stored" % (cid, cl.user))
                elif (r[0], r[1], r[2], r[5]) != (ack["serverId"], ack["channelId"], ack["seq"],
                                                  ack.get("content")):
                    losses.append("acked %s stored differently: %r vs %r" % (cid, r, ack))
            for cid in cl.outbox:
                losses.append("never acked: %s of %s" % (cid, cl.user))
        unacked_stored = [r for r in client_rows if (r[3], r[4]) not in acked_keys]
        contents = collections.Counter(r[5] for r in client_rows)
        dups += ["content stored %d times: %s" % (n, k) for k, n in contents.items() if n > 1]
        for cid, (ch, u, content) in self.churn.committed.items():
            r = by_key.get((u, cid))
            if r is None or r[5] != content:
                losses.append("committed SQL send %s missing" % content)
        sql_dups = collections.Counter(r[5] for r in rows if r[5].startswith("SQLCOMMIT-"))
        dups += ["SQL send stored %d times: %s" % (n, k) for k, n in sql_dups.items() if n > 1]
        self.result("acked_stored_exactly_once",
                    not [x for x in losses if "acked" in x or "SQL" in x]
                    and not unacked_stored and not dups,
                    losses[:5] + dups[:5] + ["stored but never acked: %r" % unacked_stored[:3]
                                             if unacked_stored else ""])

        # 2. every client's streams: complete, ordered, no repeats
        stream_problems = []
        for cl in self.clients:
            stream_problems += cl.problems
            for ch in cl.channels:
                have = set(cl.received[ch])
                want = set(range(1, last.get(ch, 0) + 1))
                if have != want:
                    missing = sorted(want - have)
                    extra = sorted(have - want)
                    losses.append("%s %s: missing %r extra %r" % (cl.user, ch, missing[:5], extra[:5]))
                for seq, m in cl.received[ch].items():
                    r = by_seq.get((ch, seq))
                    if r is None or r[0] != m["id"] or (m.get("content") is not None
                                                        and r[5] != m["content"]):
                        stream_problems.append("%s %s seq %d differs from the table" % (cl.user, ch, seq))
                for i, conn in enumerate(cl.conns):
                    stream_problems += self.check_conn(cl, i, conn, ch, dups)
        self.result("streams_complete_ordered_no_duplicates",
                    not stream_problems and not [x for x in losses if "missing" in x],
                    stream_problems[:8] + [x for x in losses if "missing" in x][:5])

        # 3. nothing rolled back was stored or delivered
        rolled = [r for r in rows if r[5].startswith("ROLLBACK-")]
        delivered = [(cl.user, m["content"]) for cl in self.clients
                     for ch in cl.channels for m in cl.received[ch].values()
                     if (m.get("content") or "").startswith("ROLLBACK-")]
        self.result("rolled_back_never_stored_or_delivered", not rolled and not delivered,
                    ["stored: %r" % rolled[:3], "delivered: %r" % delivered[:3]])
        self.losses, self.dups = losses, dups
        self.last = last
        return rows

    @staticmethod
    def check_conn(cl, i, conn, ch, dups):
        """One connection's stream of one channel: runs of consecutive seqs,
        each starting right after its ready lastSeq or a sync position."""
        out = []
        seqs = conn.seqs.get(ch, [])
        if not seqs:
            return out
        starts = [conn.ready.get(ch)] + conn.syncs.get(ch, [])
        runs, cur = [], [seqs[0]]
        for s in seqs[1:]:
            if s == cur[-1] + 1:
                cur.append(s)
            else:
                runs.append(cur)
                cur = [s]
        runs.append(cur)
        if len(runs) > 1 + len(conn.syncs.get(ch, [])):
            out.append("%s conn %d %s: %d runs for %d syncs: %r" % (
                cl.user, i, ch, len(runs), len(conn.syncs.get(ch, [])),
                [(r[0], r[-1]) for r in runs][:6]))
        for r in runs:
            if r[0] - 1 not in starts:
                out.append("%s conn %d %s: a run starts at %d, not after the ready position "
                           "%r or a sync position %r" % (cl.user, i, ch, r[0], starts[0], starts[1:]))
        # a repeat inside one connection without a sync that asked for it
        seen = collections.Counter(seqs)
        repeats = [s for s, n in seen.items() if n > 1]
        if repeats and len(runs) == 1:
            dups.append("%s conn %d %s repeats %r" % (cl.user, i, ch, repeats[:5]))
        return out

    def result(self, name, ok, detail):
        self.results.append(("PASS" if ok else "FAIL", name))
        log("%s %s" % ("PASS" if ok else "FAIL", name))
        if not ok:
            for d in detail:
                if d:
                    log("    " + str(d)[:300])


def main():
    run = Run()
    results_file = os.environ.get("RESULTS")
    status = 0
    try:
        run.cluster = it.start_cluster("faults", **{
            "chat.workers": "2", "chat.rate_limit": "0", "chat.user_rate_limit": "0",
            "chat.heartbeat_interval": "'1s'", "chat.heartbeat_timeout": "'3s'"})
        log("cluster up: port %d, workers %r" % (run.cluster.chat_port, run.worker_pids()))
        asyncio.run(asyncio.wait_for(run.drive(), 150))
        ok_recovery = len(run.recovered) == len(run.faults)
        run.result("server_recovered_by_itself", ok_recovery,
                   ["faults %r, recovered %r" % (run.faults, run.recovered)])
        run.check()
        messages = sum(len(cl.acked) for cl in run.clients)
        resends = sum(cl.resends for cl in run.clients)
        print("\ndurability: messages=%d (+%d committed SQL sends) faults=%d resends=%d "
              "losses=%d duplicates=%d rollbacks=%d reconnects=%d internal_errors=%d"
              % (messages, len(run.churn.committed), len(run.faults), resends, len(run.losses),
                 len(run.dups), run.churn.rollbacks,
                 sum(cl.connects - 1 for cl in run.clients),
                 sum(cl.internal_errors for cl in run.clients)), flush=True)
        print("faults: " + "; ".join("%s (%.1fs)" % f for f in run.recovered), flush=True)
        if messages < 1000 or resends == 0 or run.churn.rollbacks < 50:
            run.result("load_was_real", False,
                       ["too little happened: messages %d, resends %d, rollbacks %d"
                        % (messages, resends, run.churn.rollbacks)])
    except BaseException as e:  # noqa: BLE001 - reported as a failure below
        traceback.print_exc()
        run.results.append(("FAIL", "run (%s)" % (str(e).splitlines()[0][:120] if str(e)
                                                  else type(e).__name__)))
        if run.cluster is not None:
            print(run.cluster.log_tail(40))
    finally:
        if run.cluster is not None:
            run.cluster.stop()
    if any(s == "FAIL" for s, _ in run.results):
        status = 1
    if results_file:
        with open(results_file, "a") as f:
            for s, name in run.results:
                f.write("%s test/faults::%s\n" % (s, name))
    return status


if __name__ == "__main__":
    sys.exit(main())
