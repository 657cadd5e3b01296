"""The three experiments of the seed paper (figures 8-14), each comparing the schedulers side
by side in one run on the same cluster, and writing ``<out>/<name>.csv`` (every trial, one row
per repetition), PNG plots and ``<out>/<name>-summary.md``.

* ``timeline`` — latency over time, the online scheduler kicking in once its metrics window
  is full (figure 8); also ``<out>/timeline-bins.csv``, per-second latency of every trial;
* ``stages`` — average latency and inter-node traffic vs number of chain stages, replication
  2 and 4 (figures 9-12);
* ``alpha`` — the same vs alpha 0..0.2, a 6-stage chain with 5 executors per component
  (figures 13-14). round_robin and partition do not read alpha: measured once per repetition.

Repetitions interleave the schedulers (rep 1 of each, then rep 2 ...), so a slow drift of
the machine's load spreads over all of them instead of favouring one.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from squall.experiments import measure, plots
from squall.experiments.reference import chain_topology, diamond_topology, wordcount_topology
from squall.experiments.runner import Runner

SCHEDULERS = ("round_robin", "offline", "online", "partition")
ALPHA_FREE = ("round_robin", "partition")  # schedulers that do not read alpha
METRICS = ("latency_avg_ms", "latency_p99_ms", "inter_node_tps", "inter_worker_tps", "sink_tps", "link_kbit_s")


@dataclass(frozen=True)
class Load:
    """The chain's input: tuples/s per spout task, busy-loop iterations per tuple, padding bytes."""

    rate: float = 200.0
    work: int = 200
    payload: int = 256


@dataclass
class Context:
    runner: Runner
    out: Path
    quick: bool
    load: Load
    setup: str  # one paragraph describing the cluster, for the summary
    say: Callable[[str], None]


def _progress(ctx: Context, done: int, total: int, what: str) -> None:
    ctx.say(f"[{done}/{total}] {what}")


def _report(ctx: Context, res_row: dict[str, Any]) -> None:
    ctx.say(f"      latency avg {res_row['latency_avg_ms']:.1f} ms, p99 {res_row['latency_p99_ms']:.1f} ms, "
            f"inter-node {res_row['inter_node_tps']:.0f} t/s, {res_row['samples']} samples")


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for row in rows:
            w.writerow({k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else v) for k, v in row.items()})


# -- timeline (figure 8) ------------------------------------------------------------------------

def timeline_topology(kind: str, load: Load) -> type:
    if kind == "diamond":
        return diamond_topology(branches=2, replication=2, work=load.work, rate=load.rate)
    if kind == "wordcount":
        return wordcount_topology(replication=2, rate=load.rate / 2)
    return chain_topology(stages=4, replication=2, work=load.work, rate=load.rate, payload=load.payload)


def run_timeline(ctx: Context, topology: str = "chain") -> list[dict[str, Any]]:
    base = ctx.runner.timing
    window = base.window_s * (1 if ctx.quick else 2.5)  # full: 15 s of round_robin first
    # round_robin and offline warm up as long as online and partition wait for their window,
    # so no scheduler is measured during the start-up transient.
    ctx.runner.timing = replace(base, window_s=window, warmup_s=window + 1.5 + base.settle_s + 2,
                                measure_s=base.measure_s * (1 if ctx.quick else 2))
    rows, bins, switches = [], [], {}
    total, done = base.reps * len(SCHEDULERS), 0
    topo = timeline_topology(topology, ctx.load)
    try:
        for rep in range(1, base.reps + 1):
            for sched in SCHEDULERS:
                done += 1
                _progress(ctx, done, total, f"timeline {topology}: {sched}, rep {rep}")
                res = ctx.runner.trial("timeline", topo, sched, {"shape": topology, "rep": rep}, keep_timeline=True)
                rows.append(res.row)
                _report(ctx, res.row)
                if res.switched_at is not None:
                    switches.setdefault(sched, res.switched_at)
                for t, avg, n in measure.timeline(res.samples, 0.0):
                    bins.append({"scheduler": sched, "rep": rep, "t_s": t, "latency_avg_ms": avg, "samples": n})
    finally:
        ctx.runner.timing = base
    write_csv(ctx.out / "timeline.csv", rows)
    write_csv(ctx.out / "timeline-bins.csv", bins)
    plots.timeline(bins, switches, ctx.out / "timeline.png",
                   f"Latency over time ({topology}); online and partition rebalance once the window is full")
    agg = measure.aggregate(rows, ["scheduler"], METRICS)
    write_summary(ctx, "timeline", f"Latency over time, {topology} (figure 8)", agg, [], ["timeline.png"])
    return rows


# -- stages (figures 9-12) ----------------------------------------------------------------------

def run_stages(ctx: Context) -> list[dict[str, Any]]:
    stage_counts = (3, 5) if ctx.quick else (3, 6)
    replications = (2,) if ctx.quick else (2, 4)
    reps = ctx.runner.timing.reps
    points = [(r, s) for r in replications for s in stage_counts]
    total, done, rows = reps * len(points) * len(SCHEDULERS), 0, []
    for rep in range(1, reps + 1):
        for repl, stages in points:
            topo = chain_topology(stages=stages, replication=repl, work=ctx.load.work, rate=ctx.load.rate,
                                  payload=ctx.load.payload)
            for sched in SCHEDULERS:
                done += 1
                _progress(ctx, done, total, f"stages={stages} replication={repl}: {sched}, rep {rep}")
                res = ctx.runner.trial(f"st{stages}r{repl}", topo, sched,
                                       {"stages": stages, "replication": repl, "rep": rep})
                rows.append(res.row)
                _report(ctx, res.row)
    write_csv(ctx.out / "stages.csv", rows)
    agg = measure.aggregate(rows, ["replication", "stages", "scheduler"], METRICS)
    images = []
    for repl in replications:
        part = [a for a in agg if a["replication"] == repl]
        for metric, label in (("latency_avg_ms", "average latency (ms)"), ("inter_node_tps", "inter-node traffic (tuples/s)")):
            name = f"stages-{metric.split('_')[0].replace('inter', 'traffic')}-r{repl}.png"
            plots.lines(part, "stages", metric, ctx.out / name, f"{label} vs stages, replication {repl}",
                        "stages", label)
            images.append(name)
    write_summary(ctx, "stages", "Latency and inter-node traffic vs number of stages (figures 9-12)", agg,
                  ["replication", "stages"], images)
    return rows


# -- alpha (figures 13-14) ----------------------------------------------------------------------

def run_alpha(ctx: Context) -> list[dict[str, Any]]:
    alphas = (0.0, 0.2) if ctx.quick else (0.0, 0.1, 0.2)
    reps = ctx.runner.timing.reps
    topo = chain_topology(stages=6, replication=5, work=ctx.load.work, rate=ctx.load.rate / 2,
                          payload=ctx.load.payload)
    plan = [(s, None) for s in ALPHA_FREE] + [(s, a) for a in alphas for s in SCHEDULERS if s not in ALPHA_FREE]
    total, done, rows = reps * len(plan), 0, []
    for rep in range(1, reps + 1):
        for sched, alpha in plan:
            done += 1
            _progress(ctx, done, total, f"alpha={'-' if alpha is None else alpha}: {sched}, rep {rep}")
            res = ctx.runner.trial("alpha", topo, sched, {"stages": 6, "replication": 5, "rep": rep}, alpha=alpha)
            rows.append(res.row)
            _report(ctx, res.row)
    write_csv(ctx.out / "alpha.csv", rows)
    agg = measure.aggregate(rows, ["alpha", "scheduler"], METRICS)
    # The alpha-free schedulers are drawn as flat references across the whole range.
    spread = [{**a, "alpha": x} for a in agg if a["scheduler"] in ALPHA_FREE for x in alphas]
    drawn = [a for a in agg if a["scheduler"] not in ALPHA_FREE] + spread
    images = []
    for metric, label in (("latency_avg_ms", "average latency (ms)"), ("inter_node_tps", "inter-node traffic (tuples/s)")):
        name = f"alpha-{'latency' if metric.startswith('latency') else 'traffic'}.png"
        plots.lines(drawn, "alpha", metric, ctx.out / name, f"{label} vs alpha, 6 components x 5 executors",
                    "alpha", label)
        images.append(name)
    write_summary(ctx, "alpha", "Latency and inter-node traffic vs alpha (figures 13-14)", agg, ["alpha"], images)
    return rows


EXPERIMENTS: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "timeline": run_timeline, "stages": run_stages, "alpha": run_alpha,
}


# -- summary --------------------------------------------------------------------------------------

def _cell(a: dict[str, Any], metric: str, digits: int = 1) -> str:
    mean, std = a.get(metric, math.nan), a.get(f"{metric}_std", math.nan)
    if not isinstance(mean, float) or not math.isfinite(mean):
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def write_summary(ctx: Context, name: str, title: str, agg: list[dict[str, Any]], keys: list[str],
                  images: list[str]) -> None:
    lines = [f"# {title}", "", ctx.setup, "",
             f"Mode: {'quick' if ctx.quick else 'full'}; {ctx.runner.timing.reps} repetition(s) per point; "
             "mean ± standard deviation over repetitions. Data: "
             f"`{name}.csv`.", "",
             "| " + " | ".join([*keys, "scheduler", "latency avg (ms)", "latency p99 (ms)", "inter-node (t/s)",
                                "inter-worker (t/s)", "sink (t/s)", "n"]) + " |",
             "|" + "---|" * (len(keys) + 7)]
    for a in agg:
        lines.append("| " + " | ".join([*(str(a[k]) for k in keys), a["scheduler"], _cell(a, "latency_avg_ms"),
                                        _cell(a, "latency_p99_ms"), _cell(a, "inter_node_tps", 0),
                                        _cell(a, "inter_worker_tps", 0), _cell(a, "sink_tps", 0), str(a["n"])]) + " |")
    lines += ["", "Online vs round_robin (the paper's default scheduler), average latency:", ""]
    by_key: dict[tuple, dict[str, dict[str, Any]]] = {}
    for a in agg:
        by_key.setdefault(tuple(a[k] for k in keys if k != "alpha"), {})[f"{a['scheduler']}@{a.get('alpha', '')}"] = a
    for key, scheds in by_key.items():
        base = next((v for k, v in scheds.items() if k.startswith("round_robin@")), None)
        for k, v in scheds.items():
            if k.startswith("online@") and base and base["latency_avg_ms"] > 0:
                change = (v["latency_avg_ms"] / base["latency_avg_ms"] - 1) * 100
                where = ", ".join(f"{kk}={vv}" for kk, vv in zip([k2 for k2 in keys if k2 != "alpha"], key))
                alpha = f" alpha={v['alpha']}" if "alpha" in v else ""
                lines.append(f"- {where or 'all'}{alpha}: {change:+.1f}% latency, inter-node traffic "
                             f"{v['inter_node_tps']:.0f} vs {base['inter_node_tps']:.0f} t/s")
    lines += [""] + [f"![{img}]({img})" for img in images] + [""]
    (ctx.out / f"{name}-summary.md").write_text("\n".join(lines) + "\n")
