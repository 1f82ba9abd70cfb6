#!/usr/bin/python3
"""Draws bench/run's results as PNG charts (matplotlib, Agg backend), next to
summary.md in the results directory:

    bench/lib/charts.py RESULTS_DIR [--out DIR]

  latency-fanout.png   send->receive p50/p99/p99.9 against offered sends/s,
                       fan-out, chat and the peer on one chart per workers
  latency-send.png     the same for durable sends (send->ack)
  throughput.png       acked sends/s against offered sends/s, fan-out and
                       durable sends: where each saturates
  memory-idle.png      server memory per idle connection
  storm-catchup.png    the reconnect storm: share of the dropped clients
                       ready again and caught up, against time

Every figure is the median over the runs, as in summary.md (report.py), so
the charts and the tables show the same numbers.  The "max" variants have
no offered rate (every sender keeps a window of sends in flight): they are
drawn at the rate they reached, hollow, as the saturation point.  Each chart
names the run (the directory), the machine and the command (machine.txt).
Prints the files written; a chart without data is skipped with a note.
"""
import os
import sys
import textwrap

import matplotlib

# the results file's reader and its figures are report.py's (one home)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SERVERS = (("chat", "tab:blue", "-"), ("peer", "tab:orange", "--"))
PCTS = (("p50_ms", "p50", "o"), ("p99_ms", "p99", "s"), ("p999_ms", "p99.9", "^"))


def load(d):
    return report.load(os.path.join(d, "results.jsonl"))


get = report.get
med = report.med


def select(rows, scenario, variant=None, server=None, workers=None):
    return [r for r in rows if r.get("scenario") == scenario
            and (variant is None or r.get("variant") == variant)
            and (server is None or r.get("server") == server)
            and (workers is None or r.get("workers") == workers)]


def provenance(d):
    """The run, the machine and the command, from machine.txt."""
    info = {}
    try:
        with open(os.path.join(d, "machine.txt")) as f:
            for line in f:
                k, sep, v = line.partition(":")
                if sep and not line.startswith(" "):
                    info.setdefault(k.strip(), v.strip())
    except OSError:
        pass
    run = os.path.basename(os.path.normpath(d))
    lines = ["run %s; %s" % (run, info.get("chat build", "chat build unknown")),
             "machine: %s" % info.get("machine", "unknown"),
             "command: %s" % info.get("command", "bench/run (not recorded)")]
    if "fixture" in info:
        lines.insert(0, "FIXTURE: " + info["fixture"])
    return lines


def finish(fig, d, out, name, notes=()):
    width = int(fig.get_figwidth() * 17)  # characters of 7 pt per line
    text = [textwrap.fill(x, width) for x in list(notes) + provenance(d)]
    n = sum(t.count("\n") + 1 for t in text)
    bottom = 0.03 + 0.028 * n
    fig.text(0.01, 0.01, "\n".join(text), fontsize=7, va="bottom", ha="left", color="0.3")
    fig.tight_layout(rect=(0, bottom, 1, 1))
    path = os.path.join(out, name)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(path)
    return path


def workers_of(rows, scenario):
    return sorted({r.get("workers") for r in select(rows, scenario)})


def offered(rows):
    """(offered sends/s, closed loop?) of a set of runs of one variant."""
    rate = med(rows, "rate")
    if rate:
        return rate, False
    return med(rows, "ack_rate"), True


def latency_chart(rows, d, out, scenario, hist, title, name):
    ws = workers_of(rows, scenario)
    if not ws:
        print("charts: no %s runs: %s not drawn" % (scenario, name), file=sys.stderr)
        return None
    fig, axes = plt.subplots(1, len(ws), figsize=(6.2 * len(ws), 4.8), squeeze=False)
    for ax, w in zip(axes[0], ws):
        for srv, color, style in SERVERS:
            pts = []
            for variant in sorted({r.get("variant") for r in select(rows, scenario, None, srv, w)}):
                rs = select(rows, scenario, variant, srv, w)
                x, closed = offered(rs)
                if x:
                    pts.append((x, closed, {k: med(rs, "%s.%s" % (hist, k)) for k, _, _ in PCTS}))
            pts.sort(key=lambda p: p[0])
            for key, label, marker in PCTS:
                xy = [(x, v[key]) for x, _, v in pts if v[key] is not None]
                if not xy:
                    continue
                ax.plot([p[0] for p in xy], [p[1] for p in xy], style, color=color, alpha=0.8)
                for (x, closed, v) in pts:
                    if v[key] is not None:
                        ax.plot([x], [v[key]], marker, color=color, markersize=6,
                                markerfacecolor="none" if closed else color)
                ax.plot([], [], style + marker, color=color, label="%s %s" % (srv, label))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("offered sends/s (hollow: as fast as acks allow, drawn at the rate reached)")
        ax.set_ylabel("%s latency, ms" % ("send->receive" if hist == "lat" else "send->ack"))
        ax.set_title("%s, workers = %s" % (title, w))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    return finish(fig, d, out, name, ["Medians of the runs; workers = chat.workers, and the "
                                      "number of peer processes."])


def throughput_chart(rows, d, out):
    panels = [(s, w) for s in ("fanout", "send") for w in workers_of(rows, s)]
    if not panels:
        print("charts: no fanout or send runs: throughput.png not drawn", file=sys.stderr)
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.8), squeeze=False)
    for ax, (scenario, w) in zip(axes[0], panels):
        lo, hi = None, 1
        for srv, color, style in SERVERS:
            pts = []
            for variant in {r.get("variant") for r in select(rows, scenario, None, srv, w)}:
                rs = select(rows, scenario, variant, srv, w)
                x, closed = offered(rs)
                y = med(rs, "ack_rate")
                if x and y:
                    pts.append((x, y, closed, med(rs, "delivery_rate")))
            pts.sort()
            if not pts:
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color, label=srv)
            for x, y, closed, dr in pts:
                hi = max(hi, x, y)
                lo = min(lo or x, x, y)
                ax.plot([x], [y], "o", color=color, markerfacecolor="none" if closed else color)
                if closed:
                    ax.annotate("%s max: %s sends/s\n%s deliveries/s" % (srv, "{:,.0f}".format(y),
                                                                         "{:,.0f}".format(dr or 0)),
                                (x, y), textcoords="offset points", xytext=(6, -6),
                                fontsize=7, color=color, ha="left", va="top")
        lo = (lo or 1) / 2
        ax.plot([lo, hi * 2], [lo, hi * 2], ":", color="0.5", label="acked = offered")
        ax.set_xlim(lo, hi * 8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("offered sends/s (hollow: as fast as acks allow)")
        ax.set_ylabel("acked sends/s")
        ax.set_title("%s, workers = %s" % ("fan-out (groups of 50)" if scenario == "fanout"
                                           else "durable sends (pairs)", w))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    return finish(fig, d, out, "throughput.png",
                  ["Delivered (acked) against offered: on the diagonal the server keeps up; "
                   "a hollow point is the most it carried. Medians of the runs."])


def memory_chart(rows, d, out):
    ws = workers_of(rows, "idle")
    if not ws:
        print("charts: no idle runs: memory-idle.png not drawn", file=sys.stderr)
        return None
    metrics = (("rss_per_conn", "user space, RSS"), ("pss_per_conn", "user space, PSS"),
               ("kernel_per_conn", "kernel (both ends)"))
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    width = 0.38
    labels = []
    for i, (key, label) in enumerate(metrics):
        labels.append(label)
        for j, (srv, color, _) in enumerate(SERVERS):
            rs = [r for w in ws for r in select(rows, "idle", None, srv, w)]
            v = med(rs, key)
            if v is None:
                continue
            x = i + (j - 0.5) * width
            ax.bar([x], [v], width, color=color, label=srv if i == 0 else None)
            ax.annotate("{:,.0f}".format(v), (x, v), ha="center", va="bottom", fontsize=8)
    held = ", ".join("%s %s" % (srv, "{:,.0f}".format(v)) for srv, _, _ in SERVERS
                     for v in [med(select(rows, "idle", None, srv), "held")] if v is not None)
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels(labels)
    ax.set_ylabel("bytes per idle connection")
    ax.set_title("Memory per idle connection (connections held: %s)" % (held or "?"))
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    return finish(fig, d, out, "memory-idle.png",
                  ["Medians of the runs; kernel = TCP buffers + slab growth of the whole "
                   "machine, which holds the client sockets too."])


def storm_chart(rows, d, out):
    ws = workers_of(rows, "storm")
    if not ws:
        print("charts: no storm runs: storm-catchup.png not drawn", file=sys.stderr)
        return None
    fig, axes = plt.subplots(1, len(ws), figsize=(6.2 * len(ws), 4.8), squeeze=False)
    notes = []
    for ax, w in zip(axes[0], ws):
        for srv, color, _ in SERVERS:
            rs = select(rows, "storm", None, srv, w)
            if not rs:
                continue
            # the run whose "all caught up" is the median one (report.py's figure)
            rs = sorted(rs, key=lambda r: get(r, "storm.caught_up_ms") or 0)
            r = rs[(len(rs) - 1) // 2]
            n = get(r, "storm.conns") or 0
            for key, style, what in (("ready_curve_ms", ":", "ready again"),
                                     ("caught_up_curve_ms", "-", "caught up")):
                curve = get(r, "storm." + key)
                if curve:
                    ys = [100.0 * i / (len(curve) - 1) for i in range(len(curve))]
                    ax.plot([0.0] + [c / 1000 for c in curve], [0.0] + ys, style, color=color,
                            label="%s: %s" % (srv, what), drawstyle="steps-post")
            if not get(r, "storm.caught_up_curve_ms"):
                notes.append("%s, workers %s: no curve recorded (a chatload older than the "
                             "curves): the points are the times the last client was ready, "
                             "synced and caught up." % (srv, w))
                for key, marker in (("ready_ms", "o"), ("synced_ms", "s"), ("caught_up_ms", "^")):
                    v = get(r, "storm." + key)
                    if v is not None:
                        ax.plot([v / 1000], [100], marker, color=color,
                                label="%s: all %s" % (srv, key[:-3].replace("_", " ")))
            caught = get(r, "storm.caught_up_ms")
            if caught is not None:
                ax.axvline(caught / 1000, color=color, alpha=0.3)
                ax.annotate("%s: all caught up\nafter %.1f s (%s clients)"
                            % (srv, caught / 1000, "{:,.0f}".format(n)),
                            (caught / 1000, 50), fontsize=7, color=color,
                            textcoords="offset points", xytext=(4, 0))
        ax.set_xlabel("seconds after the dropped clients started to reconnect")
        ax.set_ylabel("% of the dropped clients")
        ax.set_ylim(0, 102)
        ax.set_xlim(left=0)
        ax.set_title("Reconnect storm, workers = %s" % w)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    notes.append("The median run (by the time until all caught up) of each server; caught up = "
                 "at the head its channel had when reconnecting started.")
    return finish(fig, d, out, "storm-catchup.png", notes)


def draw(d, out=None):
    out = out or d
    rows = load(d)
    made = [latency_chart(rows, d, out, "fanout", "lat", "Fan-out: send->receive", "latency-fanout.png"),
            latency_chart(rows, d, out, "send", "ack", "Durable sends: send->ack", "latency-send.png"),
            throughput_chart(rows, d, out),
            memory_chart(rows, d, out),
            storm_chart(rows, d, out)]
    return [m for m in made if m]


def main():
    args = sys.argv[1:]
    out = None
    if "--out" in args:
        i = args.index("--out")
        out = args[i + 1]
        del args[i:i + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    if out:
        os.makedirs(out, exist_ok=True)
    return 0 if draw(args[0], out) else 1


if __name__ == "__main__":
    sys.exit(main())
