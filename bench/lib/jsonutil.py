#!/usr/bin/python3
"""Small JSON helpers for bench/run and test/bench/run (so that neither
needs jq).

    jsonutil.py record FILE SCENARIO VARIANT SERVER WORKERS RUN [EXTRA_JSON] < line
        append chatload's JSON line, tagged, to FILE
    jsonutil.py median FILE SCENARIO VARIANT SERVER WORKERS PATH
        median of PATH (a.b.c) over the matching records (0 when none)
    jsonutil.py judge < line
        why a smoke run failed (one line, empty when it passed)
    jsonutil.py expect FIELD < line
        exit 0 when ok is false and FIELD > 0 (the checker caught it)
    jsonutil.py idle HELD PIDS "RSS PSS PRIVATE" "RSS PSS PRIVATE" "TCP SLAB" "TCP SLAB"
        the memory figures of an idle run, as a JSON object
    jsonutil.py metrics PORT WORKERS
        chat's /metrics counters, per worker (fetched until every worker
        answered once, SO_REUSEPORT picks one per connection), as JSON
    jsonutil.py set KEY VALUE < line
        adds "KEY": "VALUE" to a JSON line
    jsonutil.py server-metrics BEFORE AFTER < line
        adds what the server counted during the run (batches, commit time,
        frames per message) to chatload's JSON line
"""
import json
import statistics
import sys


def get(r, path):
    v = r
    for k in path.lstrip(".").split("."):
        if not isinstance(v, dict) or k not in v:
            return None
        v = v[k]
    return v


def read_line():
    text = sys.stdin.read().strip()
    try:
        return json.loads(text.splitlines()[-1]) if text else {}
    except ValueError:
        return {}


def record(path, scenario, variant, server, workers, run, extra="{}"):
    r = read_line() or {"ok": False, "crashed": True}
    r.update({"scenario": scenario, "variant": variant, "server": server,
              "workers": int(workers), "run": int(run)})
    r.update(json.loads(extra or "{}"))
    with open(path, "a") as f:
        f.write(json.dumps(r, separators=(",", ":")) + "\n")


def median(path, scenario, variant, server, workers, key):
    vals = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if (r.get("scenario"), r.get("variant"), r.get("server"), r.get("workers")) == \
                    (scenario, variant, server, int(workers)):
                v = get(r, key)
                if isinstance(v, (int, float)):
                    vals.append(v)
    print(statistics.median(vals) if vals else 0)


def judge():
    j = read_line()
    if not j:
        print("no result")
        return
    why = []
    if not j.get("ok"):
        why.append("checks failed")
    if not j.get("sent_total"):
        why.append("nothing sent")
    if j.get("acked_total") != j.get("sent_total"):
        why.append("%s sends not acked" % ((j.get("sent_total") or 0) - (j.get("acked_total") or 0)))
    for k, what in (("unacked", "unacked"), ("gaps", "gaps"), ("dups", "duplicates or out of order"),
                    ("incomplete", "incomplete streams"), ("lost_seqs", "seqs lost"),
                    ("send_errors", "send errors"), ("unexpected_closes", "connections closed")):
        if j.get(k):
            why.append("%s %s" % (j[k], what))
    st = j.get("storm") or {}
    if st.get("resumed") and st.get("repeated"):
        why.append("%s repeated frames after resuming" % st["repeated"])
    if j.get("conns_ready") != j.get("conns"):
        why.append("%s connections not ready" % ((j.get("conns") or 0) - (j.get("conns_ready") or 0)))
    if j.get("streams") != j.get("conns"):
        why.append("%s of %s streams checked" % (j.get("streams"), j.get("conns")))
    print(", ".join(why))


def expect(field):
    j = read_line()
    sys.exit(0 if j and j.get("ok") is False and (j.get(field) or 0) > 0 else 1)


def idle(held, pids, before, after, k0, k1):
    n = int(held or 0)
    b = [float(x) for x in before.split()]
    a = [float(x) for x in after.split()]
    k0 = [float(x) for x in k0.split()]
    k1 = [float(x) for x in k1.split()]
    out = {"held": n, "procs": len(pids.split()),
           "rss_kb_before": b[0], "pss_kb_before": b[1],
           "rss_kb_after": a[0], "pss_kb_after": a[1],
           "tcp_kb": k1[0] - k0[0], "slab_kb": k1[1] - k0[1]}
    per = (lambda kb: kb * 1024 / n) if n else (lambda kb: None)
    out["rss_per_conn"] = per(a[0] - b[0])
    out["pss_per_conn"] = per(a[1] - b[1])
    # the processes' own pages: RSS less what they share (shared memory)
    if len(a) > 2 and len(b) > 2:
        out["private_per_conn"] = per(a[2] - b[2])
    out["kernel_per_conn"] = per(out["tcp_kb"] + out["slab_kb"])
    print(json.dumps(out, separators=(",", ":")))


COUNTERS = ("chat_frames_out_total", "chat_messages_persisted_total", "chat_deliveries_total",
            "chat_acks_total", "chat_batch_commit_seconds_sum", "chat_batch_commit_seconds_count")


def metrics(port, workers):
    import re
    import urllib.request
    seen = {}
    for _ in range(60):
        try:
            text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=5).read().decode()
        except Exception:
            continue
        vals = {}
        w = None
        for line in text.splitlines():
            m = re.match(r'^(\w+)\{worker="(\d+)"\} ([0-9.eE+-]+)$', line)
            if m and m.group(1) in COUNTERS:
                w = m.group(2)
                vals[m.group(1)] = float(m.group(3))
            # group commits up to 100 ms (the rest took longer: a slow flush)
            m = re.match(r'^chat_batch_commit_seconds_bucket\{worker="(\d+)",le="0.1"\} ([0-9.eE+-]+)$',
                         line)
            if m:
                vals["commits_le_100ms"] = float(m.group(2))
        if w is not None:
            seen[w] = vals
        if len(seen) >= int(workers):
            break
    print(json.dumps(seen))


def server_metrics(before, after):
    j = read_line()
    b, a = json.loads(before or "{}"), json.loads(after or "{}")
    tot = {k: sum(a.get(w, {}).get(k, 0) - b.get(w, {}).get(k, 0) for w in a)
           for k in COUNTERS + ("commits_le_100ms",)}
    batches = tot["chat_batch_commit_seconds_count"]
    persisted = tot["chat_messages_persisted_total"]
    j["srv_metrics"] = {
        "workers_seen": len(a),
        "batches": batches,
        "persisted": persisted,
        "mean_batch": persisted / batches if batches else None,
        "mean_commit_ms": 1000 * tot["chat_batch_commit_seconds_sum"] / batches if batches else None,
        "commits_over_100ms": batches - tot["commits_le_100ms"],
        "frames_out_per_message": tot["chat_frames_out_total"] / persisted if persisted else None,
        "deliveries_per_message": tot["chat_deliveries_total"] / persisted if persisted else None,
    }
    print(json.dumps(j, separators=(",", ":")))


def set_key(key, value):
    j = read_line()
    j[key] = value
    print(json.dumps(j, separators=(",", ":")))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"record": record, "median": median, "judge": judge, "expect": expect,
     "idle": idle, "metrics": metrics, "server-metrics": server_metrics,
     "set": set_key}[cmd](*args)


if __name__ == "__main__":
    main()
