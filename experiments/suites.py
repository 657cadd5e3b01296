"""The three experiments of the seed paper (figures 8-14), each comparing the schedulers side
by side in one run on the same cluster, and writing ``<out>/<name>.csv`` (every trial, one row
per repetition), PNG plots and ``<out>/<name>-summary.md``.

* ``timeline`` — latency over time, the online scheduler kicking in once its metrics window
  is full (figure 8); also ``<out>/timeline-bins.csv``, per-second latency of every trial;
* ``stages`` — average latency and inter-node traffic vs number of chain stages, replication
  2 and 4 (figures 9-12);
* ``alpha`` — the same vs alpha 0..0.2, a 6-stage chain with 5 executors per component
  (figures 13-14). round_robin, partition and latency do not read alpha: measured once per
  repetition;
* ``payload`` — links under load: the tuple's padding from 64 B to 16 KiB on the Wi-Fi board
  file, average latency against the offered load of the busiest link, per scheduler.

Every figure has round_robin, offline, online, partition and — once it is registered in
``squall.rebalance.registry`` — ``latency``. Summaries give mean ± standard deviation over
the repetitions and each scheduler's ratio to round_robin with a 95% bootstrap interval.

Repetitions interleave the schedulers (rep 1 of each, then rep 2 ...), so a slow drift of
the machine's load spreads over all of them instead of favouring one.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from squall.experiments import measure, plots
from squall.experiments.reference import chain_topology, diamond_topology, wordcount_topology
from squall.experiments.runner import Loop, Runner, TrialResult

PAPER_SCHEDULERS = ("round_robin", "offline", "online", "partition")
OPTIONAL_SCHEDULERS = ("latency",)  # joins every figure once registered
ALPHA_FREE = ("round_robin", "partition", "latency")  # schedulers that do not read alpha
METRICS = (
    "latency_avg_ms",
    "latency_p99_ms",
    "inter_node_tps",
    "inter_worker_tps",
    "sink_tps",
    "link_kbit_s",
    "link_util_max",
)
STAGES_FULL = (2, 3, 4, 5, 6, 7)  # figures 9-12: every stage count the paper plots
ALPHAS_FULL = (0.0, 0.05, 0.1, 0.15, 0.2)  # figures 13-14, with the paper's optimum 0.05
PAYLOADS_FULL = (64, 256, 1024, 4096, 8192, 16384)
WIFI_BOARDS = Path(__file__).resolve().parents[1] / "examples" / "boards" / "wifi-mixed.json"


def schedulers() -> tuple[str, ...]:
    """The paper's four, plus every optional one Nimbus's registry knows by name."""
    from squall.rebalance.registry import SCHEDULERS as REGISTERED

    return PAPER_SCHEDULERS + tuple(s for s in OPTIONAL_SCHEDULERS if s in REGISTERED)


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
    ctx.say(
        f"      latency avg {res_row['latency_avg_ms']:.1f} ms, p99 {res_row['latency_p99_ms']:.1f} ms, "
        f"inter-node {res_row['inter_node_tps']:.0f} t/s, {res_row['samples']} samples"
    )


@dataclass
class Trials:
    """The trials of one suite, run one by one: each prints ``[done/total] what`` first and
    its figures after, and its row is added to ``rows`` and the whole of ``rows`` rewritten
    to ``<out>/<csv_name>`` at once, so an interrupted run keeps its data."""

    ctx: Context
    total: int
    csv_name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    done: int = 0

    def run(
        self, what: str, label: str, topology: type, scheduler: str, params: dict[str, Any], **options: Any
    ) -> TrialResult:
        """``Runner.trial(label, topology, scheduler, params, **options)``, recorded."""
        self.done += 1
        _progress(self.ctx, self.done, self.total, what)
        try:
            res = self.ctx.runner.trial(label, topology, scheduler, params, **options)
        except TimeoutError as exc:
            # A trial whose workers never all ran or whose tuples never reached a sink (seen
            # on saturated Wi-Fi links at 16 KiB: a migration's snapshots crowd the control link) is
            # recorded with its reason and no figures, and the sweep goes on: one stuck trial
            # must not lose the others. The runner has killed its topology already.
            self.ctx.say(f"      trial failed: {exc}")
            row = {"scheduler": scheduler, **params, "failed": str(exc)}
            self.rows.append(row)
            write_csv(self.ctx.out / self.csv_name, self.rows)
            return TrialResult(row, [], None)
        self.rows.append(res.row)
        write_csv(self.ctx.out / self.csv_name, self.rows)
        _report(self.ctx, res.row)
        return res


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


def timeline_loop(quick: bool) -> tuple[Loop, float]:
    """The periodic loop's settings and the metrics window (s) of the timeline."""
    return Loop(interval_s=2.0 if quick else 5.0, deadline_s=30.0 if quick else 90.0), (4.0 if quick else 15.0)


def run_timeline(ctx: Context, topology: str = "chain") -> list[dict[str, Any]]:
    """Figure 8's shape: warm-up, a stable run while the metrics window fills, then the
    adaptive schedulers (online, latency) decide *by themselves* through Nimbus's periodic
    loop (interval, threshold) when to rebalance; partition, which has no loop, is asked
    once its window is full. Every switch is marked in the figure."""
    base = ctx.runner.timing
    loop, window = timeline_loop(ctx.quick)  # full: 15 s of measurements before any decision
    # round_robin and offline warm up about as long as the adaptive ones wait for their first
    # decision and its probation's verdict (one window after the migration), so no scheduler
    # is measured during the start-up transient and all are measured over about the same stretch.
    ctx.runner.timing = replace(
        base,
        window_s=window,
        warmup_s=window + loop.interval_s + max(base.settle_s, window + 1) + 2,
        measure_s=base.measure_s * (1 if ctx.quick else 2),
    )
    bins: list[dict[str, Any]] = []
    scheds = schedulers()
    trials = Trials(ctx, base.reps * len(scheds), "timeline.csv")
    topo = timeline_topology(topology, ctx.load)
    try:
        for rep in range(1, base.reps + 1):
            for sched in scheds:
                res = trials.run(
                    f"timeline {topology}: {sched}, rep {rep}",
                    "timeline",
                    topo,
                    sched,
                    {"shape": topology, "rep": rep},
                    keep_timeline=True,
                    loop=loop,
                )
                for t, avg, n in measure.timeline(res.samples, 0.0):
                    bins.append({"scheduler": sched, "rep": rep, "t_s": t, "latency_avg_ms": avg, "samples": n})
                write_csv(ctx.out / "timeline-bins.csv", bins)
    finally:
        ctx.runner.timing = base
    report_timeline(ctx, trials.rows, bins, topology)
    return trials.rows


def report_timeline(
    ctx: Context, rows: list[dict[str, Any]], bins: list[dict[str, Any]], topology: str = "chain"
) -> None:
    loop, window = timeline_loop(ctx.quick)
    switches: dict[str, list[float]] = {}
    for r in rows:
        if isinstance(r.get("switched_at_s"), (int, float)):
            switches.setdefault(r["scheduler"], []).append(float(r["switched_at_s"]))
    plots.timeline(
        bins,
        switches,
        ctx.out / "timeline.png",
        f"Latency over time ({topology}); dotted: when each adaptive scheduler rebalanced",
    )
    agg = measure.aggregate(rows, ["scheduler"], METRICS)
    notes = [
        f"Periodic loop: interval {loop.interval_s:g} s, threshold {loop.improvement_pct:g}% of inter-node "
        f"traffic, metrics window {window:g} s; partition (no loop) is asked once its window is full.",
        "",
    ]
    notes += [
        f"- {r['scheduler']} rep {r['rep']}: {r['decided_by']}"
        + (
            f", switched at {r['switched_at_s']} s, moved {r['moved_executors']} executors"
            if r["switched_at_s"] != ""
            else ""
        )
        + (f"; probation: {r['probation']} at {r.get('verdict_at_s', '')} s" if r.get("probation") else "")
        for r in rows
        if r["scheduler"] not in ("round_robin", "offline")
    ]
    write_summary(ctx, "timeline", f"Latency over time, {topology} (figure 8)", agg, [], ["timeline.png"], notes)


# -- stages (figures 9-12) ----------------------------------------------------------------------


def run_stages(ctx: Context) -> list[dict[str, Any]]:
    stage_counts = (3, 5) if ctx.quick else STAGES_FULL
    replications = (2,) if ctx.quick else (2, 4)
    reps = ctx.runner.timing.reps
    points = [(r, s) for r in replications for s in stage_counts]
    scheds = schedulers()
    trials = Trials(ctx, reps * len(points) * len(scheds), "stages.csv")
    for rep in range(1, reps + 1):
        for repl, stages in points:
            topo = chain_topology(
                stages=stages, replication=repl, work=ctx.load.work, rate=ctx.load.rate, payload=ctx.load.payload
            )
            for sched in scheds:
                trials.run(
                    f"stages={stages} replication={repl}: {sched}, rep {rep}",
                    f"st{stages}r{repl}",
                    topo,
                    sched,
                    {"stages": stages, "replication": repl, "rep": rep},
                )
    report_stages(ctx, trials.rows)
    return trials.rows


def report_stages(ctx: Context, rows: list[dict[str, Any]]) -> None:
    agg = measure.aggregate(rows, ["replication", "stages", "scheduler"], METRICS)
    images = []
    for repl in sorted({r["replication"] for r in rows}):
        part = [a for a in agg if a["replication"] == repl]
        images += plot_figure_metrics(ctx, part, "stages", f"-r{repl}", f"replication {repl}")
    write_summary(
        ctx,
        "stages",
        "Latency and inter-node traffic vs number of stages (figures 9-12)",
        agg,
        ["replication", "stages"],
        images,
    )


# -- alpha (figures 13-14) ----------------------------------------------------------------------


def run_alpha(ctx: Context) -> list[dict[str, Any]]:
    alphas = (0.0, 0.2) if ctx.quick else ALPHAS_FULL
    reps = ctx.runner.timing.reps
    topo = chain_topology(stages=6, replication=5, work=ctx.load.work, rate=ctx.load.rate / 2, payload=ctx.load.payload)
    scheds = schedulers()
    plan = [(s, None) for s in scheds if s in ALPHA_FREE] + [
        (s, a) for a in alphas for s in scheds if s not in ALPHA_FREE
    ]
    trials = Trials(ctx, reps * len(plan), "alpha.csv")
    for rep in range(1, reps + 1):
        for sched, alpha in plan:
            trials.run(
                f"alpha={'-' if alpha is None else alpha}: {sched}, rep {rep}",
                "alpha",
                topo,
                sched,
                {"stages": 6, "replication": 5, "rep": rep},
                alpha=alpha,
            )
    report_alpha(ctx, trials.rows)
    return trials.rows


def report_alpha(ctx: Context, rows: list[dict[str, Any]]) -> None:
    alphas = sorted({r["alpha"] for r in rows if isinstance(r.get("alpha"), (int, float))})
    agg = measure.aggregate(rows, ["alpha", "scheduler"], METRICS)
    # The alpha-free schedulers are drawn as flat references across the whole range.
    spread = [{**a, "alpha": x} for a in agg if a["scheduler"] in ALPHA_FREE for x in alphas]
    drawn = [a for a in agg if a["scheduler"] not in ALPHA_FREE] + spread
    images = plot_figure_metrics(ctx, drawn, "alpha", "", "6 components x 5 executors")
    write_summary(ctx, "alpha", "Latency and inter-node traffic vs alpha (figures 13-14)", agg, ["alpha"], images)


# -- payload: links under load -------------------------------------------------------------------


def run_payload(ctx: Context) -> list[dict[str, Any]]:
    """Tuple padding from 64 B to 16 KiB (on the Wi-Fi board file by default), a 4-stage
    chain, replication 2: latency against the offered load of the busiest link."""
    # Quick mode (CI) checks that the sweep runs on loaded links, not saturated ones: at 16 KiB
    # the Wi-Fi links are saturated, and a migration's snapshots, sent over the control
    # connection, can hold a board's heartbeats past its timeout (docs/experiments.md, known
    # problems; marked heartbeats no longer queue behind data); 4 KiB loads the busiest link
    # to 36-52%.
    payloads = (64, 4096) if ctx.quick else PAYLOADS_FULL
    reps = ctx.runner.timing.reps
    scheds = schedulers()
    trials = Trials(ctx, reps * len(payloads) * len(scheds), "payload.csv")
    for rep in range(1, reps + 1):
        for payload in payloads:
            topo = chain_topology(stages=4, replication=2, work=ctx.load.work, rate=ctx.load.rate, payload=payload)
            for sched in scheds:
                res = trials.run(
                    f"payload={payload} B: {sched}, rep {rep}",
                    f"pl{payload}",
                    topo,
                    sched,
                    {"stages": 4, "replication": 2, "payload": payload, "rep": rep},
                )
                ctx.say(
                    f"      busiest link {res.row.get('link_util_board') or '-'} at "
                    f"{_pct(res.row.get('link_util_max'))} of its rate"
                )
    report_payload(ctx, trials.rows)
    return trials.rows


def report_payload(ctx: Context, rows: list[dict[str, Any]]) -> None:
    agg = measure.aggregate(rows, ["payload", "scheduler"], METRICS)
    images = []
    for x, name, label in (
        ("payload", "payload-latency.png", "tuple padding (bytes)"),
        ("link_util_max", "payload-load.png", "offered load of the busiest link (share of its rate)"),
    ):
        plots.lines(
            agg,
            x,
            "latency_avg_ms",
            ctx.out / name,
            f"average latency vs {label}",
            label,
            "average latency (ms)",
            logx=(x == "payload"),
        )
        images.append(name)
    write_summary(
        ctx,
        "payload",
        "Links under load: latency vs tuple size and link load",
        agg,
        ["payload"],
        images,
        extra_columns=(("link_util_max", "busiest link load", 2),),
    )


# The paper's two figures per sweep: (column, axis label, file name part).
FIGURE_METRICS = (
    ("latency_avg_ms", "average latency (ms)", "latency"),
    ("inter_node_tps", "inter-node traffic (tuples/s)", "traffic"),
)


def plot_figure_metrics(ctx: Context, agg: list[dict[str, Any]], x: str, suffix: str, caption: str) -> list[str]:
    """One line plot per figure metric of ``agg`` against column ``x``, one line per
    scheduler, written as ``{x}-latency{suffix}.png`` and ``{x}-traffic{suffix}.png`` into
    the output folder; returns the file names (for the summary)."""
    images = []
    for metric, label, part in FIGURE_METRICS:
        name = f"{x}-{part}{suffix}.png"
        plots.lines(agg, x, metric, ctx.out / name, f"{label} vs {x}, {caption}", x, label)
        images.append(name)
    return images


def _pct(value: Any) -> str:
    return f"{value * 100:.0f}%" if isinstance(value, float) and math.isfinite(value) else "-"


EXPERIMENTS: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "timeline": run_timeline,
    "stages": run_stages,
    "alpha": run_alpha,
    "payload": run_payload,
}


def report_only(ctx: Context, name: str) -> None:
    """Summary and plots again from ``<out>/<name>.csv`` (and ``timeline-bins.csv``) as
    written so far — for a run that was interrupted, or to redraw; measures nothing."""
    rows = read_csv(ctx.out / f"{name}.csv")
    if not rows:
        raise FileNotFoundError(f"{ctx.out / (name + '.csv')} has no rows")
    # The repetitions that ran, not those planned: an interrupted run says how many it has.
    done = max((r["rep"] for r in rows if isinstance(r.get("rep"), int)), default=1)
    ctx.runner.timing = replace(ctx.runner.timing, reps=done)
    if name == "timeline":
        bins_path = ctx.out / "timeline-bins.csv"
        report_timeline(
            ctx, rows, read_csv(bins_path) if bins_path.exists() else [], str(rows[0].get("shape", "chain"))
        )
    else:
        {"stages": report_stages, "alpha": report_alpha, "payload": report_payload}[name](ctx, rows)


# -- summary --------------------------------------------------------------------------------------


def _cell(a: dict[str, Any], metric: str, digits: int = 1) -> str:
    mean, std = a.get(metric, math.nan), a.get(f"{metric}_std", math.nan)
    if not isinstance(mean, float) or not math.isfinite(mean):
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def write_summary(
    ctx: Context,
    name: str,
    title: str,
    agg: list[dict[str, Any]],
    keys: list[str],
    images: list[str],
    notes: list[str] | None = None,
    extra_columns: tuple[tuple[str, str, int], ...] = (),
) -> None:
    """``<name>-summary.md``: the table of means ± std, each scheduler's latency and
    inter-node traffic as a ratio to round_robin in the same cell with a 95% bootstrap
    interval over repetitions, notes, and the figures."""
    rows = _rows_of(ctx, name)
    lines = [
        f"# {title}",
        "",
        ctx.setup,
        "",
        f"Mode: {'quick' if ctx.quick else 'full'}; {ctx.runner.timing.reps} repetition(s) per point; "
        "mean ± standard deviation over repetitions. Data: "
        f"`{name}.csv`.",
        "",
        "| "
        + " | ".join(
            [
                *keys,
                "scheduler",
                "latency avg (ms)",
                "latency p99 (ms)",
                "inter-node (t/s)",
                "inter-worker (t/s)",
                "sink (t/s)",
                *(c[1] for c in extra_columns),
                "n",
                "rolled back",
            ]
        )
        + " |",
        "|" + "---|" * (len(keys) + 8 + len(extra_columns)),
    ]
    for a in agg:
        lines.append(
            "| "
            + " | ".join(
                [
                    *(str(a[k]) for k in keys),
                    a["scheduler"],
                    _cell(a, "latency_avg_ms"),
                    _cell(a, "latency_p99_ms"),
                    _cell(a, "inter_node_tps", 0),
                    _cell(a, "inter_worker_tps", 0),
                    _cell(a, "sink_tps", 0),
                    *(_cell(a, c[0], c[2]) for c in extra_columns),
                    str(a["n"]),
                    _rolled_back(rows, a, keys),
                ]
            )
            + " |"
        )
    lines += [
        "",
        "rolled back: trials whose switch Nimbus's probation rolled back, of those it judged (the "
        "runner measures after the verdict, so such a trial measured the placement moved back to); "
        "-: nothing on probation, or a CSV from before the runner recorded it.",
        "",
        "Ratio to round_robin in the same cell (mean of the scheduler / mean of round_robin, "
        "[95% bootstrap interval over repetitions]; < 1 is better):",
        "",
        "| " + " | ".join([*keys, "scheduler", "latency avg", "inter-node traffic"]) + " |",
        "|" + "---|" * (len(keys) + 3),
    ]
    for line in ratio_lines(rows, keys):
        lines.append(line)
    if notes:
        lines += [""] + notes
    lines += [""] + [f"![{img}]({img})" for img in images] + [""]
    (ctx.out / f"{name}-summary.md").write_text("\n".join(lines) + "\n")


def _rolled_back(rows: list[dict[str, Any]], a: dict[str, Any], keys: list[str]) -> str:
    """How many of the cell's trials Nimbus's probation rolled back (measured after the move
    back: round_robin's placement, not the scheduler's), of those judged; "-" when the CSV
    predates the ``probation`` column or nothing in the cell was on probation."""
    members = [r for r in rows if r.get("scheduler") == a["scheduler"] and all(r.get(k) == a[k] for k in keys)]
    judged = [r for r in members if r.get("probation") not in (None, "")]
    if not judged:
        return "-"
    back = sum(1 for r in judged if r["probation"] == "rolled_back")
    return f"{back} of {len(judged)}"


def _rows_of(ctx: Context, name: str) -> list[dict[str, Any]]:
    return read_csv(ctx.out / f"{name}.csv")


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV this module wrote, numbers as numbers (empty cells stay "")."""
    try:
        with open(path, newline="") as f:
            return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]
    except FileNotFoundError:
        return []


def _number(text: str) -> Any:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    return int(value) if value.is_integer() and "." not in text else value


def ratio_lines(rows: list[dict[str, Any]], keys: list[str]) -> list[str]:
    """One table row per (cell, scheduler other than round_robin). round_robin does not read
    alpha, so in the alpha sweep every alpha is compared with its one measurement."""
    cell_keys = [k for k in keys if k != "alpha"]
    out = []
    cells: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault(tuple(r.get(k) for k in cell_keys), []).append(r)
    for cell, members in cells.items():
        base = [r for r in members if r["scheduler"] == "round_robin"]
        groups: dict[tuple, list[dict[str, Any]]] = {}
        for r in members:
            if r["scheduler"] != "round_robin":
                groups.setdefault((r.get("alpha", ""), r["scheduler"]), []).append(r)
        for (alpha, sched), rs in groups.items():
            cols = []
            for metric in ("latency_avg_ms", "inter_node_tps"):
                ratio, lo, hi = measure.bootstrap_ratio_ci([r.get(metric) for r in rs], [r.get(metric) for r in base])
                cols.append("-" if not math.isfinite(ratio) else f"{ratio:.2f} [{lo:.2f}, {hi:.2f}]")
            where = [str(v) for v in cell] + ([str(alpha)] if "alpha" in keys else [])
            out.append("| " + " | ".join([*where, sched, *cols]) + " |")
    return out
