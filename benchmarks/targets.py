"""Every speed and memory target of issue 17, measured in one run and printed beside its
target with "met" or "NOT met".

    python benchmarks/targets.py [--quick] [--nimbus] [--runs 5]

It calls the figure scripts' own measuring functions (``engine_figures.py``,
``worker_figures.py``, ``scheduler_figures.py`` and, with ``--nimbus``, ``scale.py`` at 500
boards and 5,000 executors, about three minutes more), so each figure means what that
script's docstring says. One-process throughput is per CPU second of this process (the
steadier figure on a shared machine); the two-worker figures are wall clock, as a user sees
them. The load average is printed at the start and the end: on a busy machine the wall-clock
rows measure the neighbours too. ``--quick`` takes fewer rounds and tuples (a smoke run,
not figures to quote).

Nothing here is a verdict on its own: a row is one run. Quote several runs, and the load.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


@dataclass
class Row:
    what: str
    value: float
    unit: str
    target: float
    higher_is_better: bool
    counted: bool = True  # False: shown beside a target row for comparison, not a target itself

    @property
    def met(self) -> bool:
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    def line(self) -> str:
        sign = ">=" if self.higher_is_better else "<="
        verdict = ("met" if self.met else "NOT met") if self.counted else "(comparison, not a target row)"
        shown = f"{self.value:,.0f}" if self.value >= 100 else f"{self.value:.3g}"
        return f"{self.what:<62} {shown:>10} {self.unit:<12} target {sign} {self.target:>9,} {verdict}"


def engine_rows(tuples: int, runs: int) -> list[Row]:
    from engine_figures import measure

    rows = []
    for acking, target in ((False, 1_000_000), (True, 300_000)):
        for chain in ("per-tuple", "batch"):
            _, cpu = measure(acking, tuples, runs, chain)
            what = f"one process, {chain} chain, acking {'on' if acking else 'off'}"
            rows.append(Row(what, max(cpu), "tuples/CPU s", target, True))
    return rows


def worker_rows() -> list[Row]:
    from worker_figures import measure_latency, measure_throughput

    rows = []
    for chain in ("per-tuple", "batch"):
        t = measure_throughput(chain=chain)
        rows.append(Row(f"two workers, {chain} chain, acking off", t.tuples_per_s, "tuples/s", 800_000, True))
        if chain == "per-tuple":
            for name, mb in sorted(t.rss_mb.items()):
                rows.append(Row(f"worker {name} RSS after the throughput run", mb, "MB", 30, False))
    # The target rows: one acker per worker, the spout's trees on the acker beside it (two
    # crossings per tree). The earlier placement (the one acker on the other worker, four
    # crossings) follows for comparison. Both at the production heartbeat period (1 s).
    placements = (("beside", "acker beside the spout", True), ("away", "acker away, 4 crossings", False))
    for placement, what, counted in placements:
        lat = measure_latency(placement=placement)
        for q, value, target in (("p50", lat.p50_ms, 0.4), ("p99", lat.p99_ms, 1.0)):
            rows.append(Row(f"complete latency 1,000/s, two workers, {what}, {q}", value, "ms", target, False, counted))
    return rows


def scheduler_rows(runs: int) -> list[Row]:
    from scheduler_figures import best_of
    from test_latency_speed import boards, profiled
    from test_rebalance_speed import case

    from squall.rebalance import SchedulerParams, get_scheduler

    rows = []
    for n, target in ((1_000, 0.1), (10_000, 1.0)):
        workload, nodes = case(n)
        call = partial(get_scheduler("online").schedule, [workload], nodes, SchedulerParams())
        _, cpu, _ = best_of(runs, call)
        rows.append(Row(f"online scheduler, {n:,} executors", cpu, "CPU s", target, False))
        profiled_workload = profiled(n, n // 10)
        cluster = boards(-(-n // 40), -(-(n // 10) // -(-n // 40)))
        call = partial(get_scheduler("latency").schedule, [profiled_workload], cluster, SchedulerParams())
        _, cpu, _ = best_of(runs, call)
        rows.append(Row(f"latency scheduler, {n:,} executors", cpu, "CPU s", target, False))
    return rows


def nimbus_rows() -> list[Row]:
    from scale import run_scale

    fig = run_scale(500, 5_000, procs=3, measure_s=10.0, timeout_s=5.0, heartbeat_s=1.0, scrape_every_s=2.0)
    return [
        Row("Nimbus, 500 boards / 5,000 executors, loop lag p99", fig.lag_p99_ms, "ms", 50, False),
        # A second window as long, /metrics scraped as Prometheus would, every 2 s (the usual
        # period is 15 s: this is five scrapes where a 10 s window would hold one).
        Row(
            "Nimbus, same, loop lag p99 with /metrics scraped every 2 s", fig.scrape_lag_p99_ms, "ms", 50, False, False
        ),
        Row("Nimbus, same, CPU (share of one core)", fig.cpu_pct, "%", 50, False),
        Row("Nimbus, same, lost board detected after its last heartbeat", fig.detect_s, "s", 6.0, False),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="rounds per one-process figure (best taken)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer tuples and rounds")
    parser.add_argument("--nimbus", action="store_true", help="also Nimbus at 500 boards (~3 min)")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    tuples = 20_000 if args.quick else 100_000
    print(f"# load average {os.getloadavg()[0]:.1f} at start", flush=True)
    parts: list[Callable[[], list[Row]]] = [
        lambda: engine_rows(tuples, runs),
        worker_rows,
        lambda: scheduler_rows(1 if args.quick else 3),
    ]
    if args.nimbus:
        parts.append(nimbus_rows)
    rows: list[Row] = []
    for part in parts:
        for row in part():
            print(row.line(), flush=True)
            rows.append(row)
    counted = [r for r in rows if r.counted]
    met = sum(r.met for r in counted)
    print(f"# load average {os.getloadavg()[0]:.1f} at end; {met} of {len(counted)} targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
