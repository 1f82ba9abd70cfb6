#!/usr/bin/python3
"""Summarises bench/run's results.jsonl as markdown: medians of the runs,
chat and peer side by side, and the ratio chat/peer.

    bench/lib/report.py RESULTS_DIR [RESULTS_DIR ...]

Several directories (scenarios run as separate commands) are merged.
"""
import json
import os
import statistics
import sys


# what bench/lib/charts.py draws, linked from the summary when present
CHARTS = (("latency-fanout.png", "fan-out latency against offered load"),
          ("latency-send.png", "durable send latency against offered load"),
          ("throughput.png", "acked against offered sends/s"),
          ("memory-idle.png", "memory per idle connection"),
          ("storm-catchup.png", "reconnect storm: catch-up over time"))


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def get(r, path):
    v = r
    for k in path.split("."):
        if not isinstance(v, dict) or k not in v:
            return None
        v = v[k]
    return v


def med(rows, path):
    vals = [get(r, path) for r in rows]
    vals = [v for v in vals if isinstance(v, (int, float))]
    return statistics.median(vals) if vals else None


def fmt(v, digits=0):
    if v is None:
        return "-"
    if digits == 0:
        return "{:,.0f}".format(v)
    return "{:,.{}f}".format(v, digits)


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return "-"
    return "{:.{}f}".format(a / b, digits)


def checks(rows):
    """'3/3' runs whose streams were complete and in order, plus what failed."""
    ok = sum(1 for r in rows if r.get("ok"))
    bad = {}
    for k in ("gaps", "dups", "incomplete", "lost_seqs", "unacked", "send_errors",
              "connect_failures", "unexpected_closes", "sync_mismatch"):
        n = sum(r.get(k) or 0 for r in rows)
        if n:
            bad[k] = n
    s = "{}/{}".format(ok, len(rows))
    if bad:
        s += " (" + ", ".join("{} {}".format(v, k) for k, v in bad.items()) + ")"
    return s


def select(rows, scenario, variant, server, workers):
    return [r for r in rows if r.get("scenario") == scenario and r.get("variant") == variant
            and r.get("server") == server and r.get("workers") == workers]


def table(title, rows, scenario, metrics, variants_workers, note=None):
    out = ["### " + title, ""]
    if note:
        out += [note, ""]
    out += ["| workers | metric | chat | peer | chat/peer |", "|---:|---|---:|---:|---:|"]
    for variant, w in variants_workers:
        c = select(rows, scenario, variant, "chat", w)
        p = select(rows, scenario, variant, "peer", w)
        if not c and not p:
            continue
        for label, path, digits in metrics(variant):
            if path == "checks":
                out.append("| {} | {} | {} | {} | |".format(w, label, checks(c), checks(p)))
                continue
            a, b = med(c, path), med(p, path)
            out.append("| {} | {} | {} | {} | {} |".format(
                w, label, fmt(a, digits), fmt(b, digits), ratio(a, b)))
    out.append("")
    return out


def main():
    dirs = sys.argv[1:]
    rows = []
    out = []
    for d in dirs:
        if os.path.exists(os.path.join(d, "results.jsonl")):
            rows += load(os.path.join(d, "results.jsonl"))
        mach = os.path.join(d, "machine.txt")
        if os.path.exists(mach):
            out += ["```"] + open(mach).read().rstrip().split("\n") + ["```", ""]
    runs = max([r.get("run", 1) for r in rows] or [0])
    out += ["Medians of {} run(s) each; latencies in ms; chat/peer above 1 means chat "
            "is higher (better for rates, worse for latency and memory).".format(runs), ""]
    workers = sorted({r.get("workers") for r in rows
                      if r.get("scenario") not in ("idle", "floor", "gateway")})

    def fanout_metrics(variant):
        if variant == "max":
            return [("max deliveries/s", "delivery_rate", 0),
                    ("acked sends/s", "ack_rate", 0),
                    ("send->receive p50 at max", "lat.p50_ms", 2),
                    ("send->receive p99 at max", "lat.p99_ms", 2),
                    ("server CPU per delivery (us)", "cpu.server_us_per_delivery", 2),
                    ("server CPU per acked send (us)", "cpu.server_us_per_send", 0),
                    ("server cores busy / run-queue wait (s)", "cpu.server_cores", 2),
                    ("", "cpu.server_wait_s", 1),
                    ("chat: messages per group commit / commit ms", "srv_metrics.mean_batch", 1),
                    ("", "srv_metrics.mean_commit_ms", 2),
                    ("chat: frames out per message", "srv_metrics.frames_out_per_message", 1),
                    ("runs with complete, ordered streams", "checks", 0)]
        name = "half of its max load" if variant == "half" else "the same fixed rate"
        return [("sends/s offered at " + name, "rate", 0),
                ("deliveries/s", "delivery_rate", 0),
                ("send->receive p50", "lat.p50_ms", 2),
                ("send->receive p99", "lat.p99_ms", 2),
                ("send->receive p99.9", "lat.p999_ms", 2),
                ("send->ack p99", "ack.p99_ms", 2),
                ("server CPU per delivery (us)", "cpu.server_us_per_delivery", 2),
                ("CPU stolen by the hypervisor (share of all CPUs)", "cpu.machine_steal", 2),
                ("chat: messages per group commit / commit ms", "srv_metrics.mean_batch", 1),
                ("", "srv_metrics.mean_commit_ms", 2),
                ("chat: group commits over 100 ms (a slow flush)", "srv_metrics.commits_over_100ms", 0),
                ("runs with complete, ordered streams", "checks", 0)]

    if any(r.get("scenario") == "fanout" for r in rows):
        vw = [(v, w) for w in workers for v in ("max", "half", "fixed")]
        out += table("Fan-out: groups of 50 members", rows, "fanout", fanout_metrics, vw)

    def send_metrics(variant):
        if variant == "half":
            return [("sends/s offered at half of its max", "rate", 0),
                    ("acked durable sends/s", "ack_rate", 0),
                    ("send->ack p50", "ack.p50_ms", 2),
                    ("send->ack p99", "ack.p99_ms", 2),
                    ("send->ack p99.9", "ack.p999_ms", 2),
                    ("runs with complete, ordered streams", "checks", 0)]
        return [("acked durable sends/s", "ack_rate", 0),
                ("send->ack p50", "ack.p50_ms", 2),
                ("send->ack p99", "ack.p99_ms", 2),
                ("server CPU per acked send (us)", "cpu.server_us_per_send", 0),
                ("server cores busy / run-queue wait (s)", "cpu.server_cores", 2),
                ("", "cpu.server_wait_s", 1),
                ("deliveries/s (to the other member)", "delivery_rate", 0),
                ("chat: messages per group commit / commit ms", "srv_metrics.mean_batch", 1),
                ("", "srv_metrics.mean_commit_ms", 2),
                ("runs with complete, ordered streams", "checks", 0)]

    if any(r.get("scenario") == "send" for r in rows):
        out += table("Durable sends: pairs, a window of sends per sender", rows, "send",
                     send_metrics, [(v, w) for w in workers for v in ("max", "half")])

    def storm_metrics(_):
        return [("clients dropped", "storm.conns", 0),
                ("all reconnected (ready), ms", "storm.ready_ms", 0),
                ("all synced, ms", "storm.synced_ms", 0),
                ("all caught up, ms", "storm.caught_up_ms", 0),
                ("messages replayed by sync", "storm.replayed", 0),
                ("repeated frames", "storm.repeated", 0),
                ("send->receive p99 over the run", "lat.p99_ms", 2),
                ("runs with nothing lost", "checks", 0)]

    if any(r.get("scenario") == "storm" for r in rows):
        out += table("Reconnect storm", rows, "storm", storm_metrics,
                     [("storm", w) for w in workers])

    def idle_metrics(_):
        return [("connections held", "held", 0),
                ("user space per connection, RSS (bytes)", "rss_per_conn", 0),
                ("user space per connection, PSS (bytes)", "pss_per_conn", 0),
                ("user space per connection, private (bytes)", "private_per_conn", 0),
                ("kernel per connection (bytes, both ends)", "kernel_per_conn", 0),
                ("connect->ready p99", "connect.p99_ms", 1),
                ("ramp (s)", "ramp_s", 1)]

    idle_w = sorted({r.get("workers") for r in rows if r.get("scenario") == "idle"})
    if idle_w:
        out += table("Idle connections", rows, "idle", idle_metrics,
                     [("idle", w) for w in idle_w],
                     note="workers = chat workers and peer processes (Node + its Redis); "
                          "kernel = TCP buffers (sockstat) + slab growth of the whole machine, "
                          "which holds the client sockets too.")

    gw = [r for r in rows if r.get("scenario") == "gateway"]
    if gw:
        out += ["### chat-gateway beside the in-server worker (scenario gateway)", "",
                "One cluster (chat.notify_bus = on, chat.workers = 1) and one chat-gateway "
                "on it; the same load through each, alternating.", "",
                "| load | metric | worker | gateway | gateway/worker |",
                "|---|---|---:|---:|---:|"]
        for variant, metrics in (
                ("send", (("acked durable sends/s", "ack_rate", 0),
                          ("send->ack p50", "ack.p50_ms", 2),
                          ("send->ack p99", "ack.p99_ms", 2))),
                ("fanout", (("deliveries/s", "delivery_rate", 0),
                            ("acked sends/s", "ack_rate", 0),
                            ("send->receive p50", "lat.p50_ms", 2),
                            ("send->receive p99", "lat.p99_ms", 2)))):
            w = [r for r in gw if r.get("variant") == variant and r.get("server") == "chat"]
            g = [r for r in gw if r.get("variant") == variant and r.get("server") == "gateway"]
            for label, path, digits in metrics:
                a, b = med(w, path), med(g, path)
                out.append("| {} | {} | {} | {} | {} |".format(
                    variant, label, fmt(a, digits), fmt(b, digits), ratio(b, a)))
            out.append("| {} | checks | {} | {} | |".format(variant, checks(w), checks(g)))
        out.append("")

    floor = [r for r in rows if r.get("scenario") == "floor"]
    if floor:
        out += ["### What the machine allows: loopback TCP alone (bench/floor/loopfloor)", "",
                "No server: one process writes {}-byte frames to {:,} loopback connections that "
                "{} reader processes read (the generator's share of the work, at nice {}). "
                "Every server that delivers over loopback pays at least this.".format(
                    floor[0].get("size"), floor[0].get("conns") or 0,
                    floor[0].get("readers"), floor[0].get("reader_nice")), "",
                "| frames per send | offered frames/s | delivered frames/s | writer cores | "
                "writer us per send | writer us per frame | reader cores |",
                "|---:|---:|---:|---:|---:|---:|---:|"]
        for variant in ("1-max", "16-max", "1-half", "16-1M"):
            rs = [r for r in floor if r.get("variant") == variant]
            if not rs:
                continue
            rate = med(rs, "rate")
            out.append("| {} | {} | {} | {} | {} | {} | {} |".format(
                fmt(med(rs, "batch")), fmt(rate) if rate else "as fast as it can",
                fmt(med(rs, "frames_per_s")), fmt(med(rs, "writer_cores"), 2),
                fmt(med(rs, "writer_us_per_send"), 2), fmt(med(rs, "writer_us_per_frame"), 2),
                fmt(med(rs, "reader_cores"), 2)))
        out.append("")
        rs = [r for r in floor if r.get("variant") == "fsync"]
        if rs:
            out += ["The disk (bench/floor/syncfloor): fdatasync() of one 8 kB WAL page, again "
                    "and again, as every commit with synchronous_commit = on does; medians of "
                    "the runs, and the worst run's maximum.", "",
                    "| flushes/s | p50 ms | p99 ms | p99.9 ms | max ms (worst run) "
                    "| over 50 ms | over 100 ms |",
                    "|---:|---:|---:|---:|---:|---:|---:|",
                    "| {} | {} | {} | {} | {} | {} | {} |".format(
                        fmt((med(rs, "flushes") or 0) / (med(rs, "duration") or 1)),
                        fmt(med(rs, "p50_ms"), 3), fmt(med(rs, "p99_ms"), 3),
                        fmt(med(rs, "p999_ms"), 3),
                        fmt(max(get(r, "max_ms") or 0 for r in rs), 1),
                        fmt(med(rs, "over_50ms")), fmt(med(rs, "over_100ms"))), ""]

    charts = [(f, t) for d in dirs[:1] for f, t in CHARTS if os.path.exists(os.path.join(d, f))]
    if charts:
        out += ["### Charts (bench/lib/charts.py)", ""]
        out += ["![{}]({})".format(t, f) for f, t in charts] + [""]

    for d in dirs:
        hist = os.path.join(d, "history.md")
        if os.path.exists(hist):
            out += ["### History (bench/sql/run)", ""] + open(hist).read().rstrip().split("\n") + [""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
