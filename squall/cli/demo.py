"""``squall demo``: the main job of the Quickstart.

Until the cluster exists it runs the reference chain topology in this process, with acking
off and then on, and prints throughput and end-to-end latency for each.
"""

from __future__ import annotations

import argparse
import sys
import time

from squall.cli import UsageError
from squall.cli.report import table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the reference topology and print throughput and latency")
    p.add_argument("--seconds", type=float, default=5.0, help="seconds per run (default 5)")
    p.add_argument("--stages", type=int, default=3, help="chain length including the spout (default 3)")
    p.add_argument("--replication", type=int, default=2, help="executors per stage (default 2)")
    p.add_argument("--work", type=int, default=0, help="busy-loop iterations per tuple per bolt (default 0)")
    p.add_argument("--rate", type=float, default=0.0, help="tuples/s per spout task, 0 = unbounded (default)")
    p.set_defaults(func=run)


def measure(stages: int, replication: int, work: int, rate: float, reliable: bool, seconds: float) -> dict:
    """Run one chain in this process and return throughput and latencies (ms)."""
    import numpy as np  # here, not at the top: `squall --help` on a board must not need numpy

    from squall.experiments.reference import chain_topology
    from squall.supervisor.runtime.engine import Engine

    topology = chain_topology(stages, replication, work, rate, reliable=reliable)
    conf = {"topology.max.spout.pending": 1000} if reliable else {}
    engine = Engine(topology.spec, topology.classes, conf)
    engine.start()
    started = time.monotonic()
    engine.run(seconds)
    elapsed = time.monotonic() - started
    engine.drain(timeout_s=5.0)
    sink = f"stage{stages - 1}"
    sinks = [i for ex in engine.bolts if ex.component == sink for i in ex.instances.values()]
    count = sum(i.count for i in sinks)
    samples = np.fromiter((x for i in sinks for x in i.latencies), dtype=float)
    spout = next(s for s in engine.summary() if s.component == "spout")
    return {
        "acking": "on" if reliable else "off",
        "tuples": count,
        "throughput": count / elapsed,
        "avg_ms": float(samples.mean() * 1e3) if samples.size else None,
        "p99_ms": float(np.percentile(samples, 99) * 1e3) if samples.size else None,
        "complete_ms": spout.complete_latency_ms,
        "failed": spout.failed,
    }


def run(args: argparse.Namespace) -> int:
    from squall.extras import missing

    if (need := missing("numpy")) is not None:  # an environment fault, not bad input: exit 1
        print(f"squall demo: {need}", file=sys.stderr)
        return 1
    if args.seconds <= 0 or args.stages < 2 or args.replication < 1 or args.work < 0 or args.rate < 0:
        raise UsageError("need --seconds > 0, --stages >= 2, --replication >= 1, --work >= 0, --rate >= 0")
    print(
        f"Reference chain: {args.stages} stages x {args.replication} executors, work {args.work}, "
        f"rate {'unbounded' if not args.rate else f'{args.rate:g}/s per spout task'}; "
        f"one process, {args.seconds:g} s per run\n"
    )
    rows = []
    for reliable in (False, True):
        r = measure(args.stages, args.replication, args.work, args.rate, reliable, args.seconds)
        rows.append((r["acking"], r["tuples"], r["throughput"], r["avg_ms"], r["p99_ms"], r["complete_ms"], r["failed"]))
    print(table(["acking", "tuples at sink", "tuples/s", "avg latency ms", "p99 ms", "complete ms", "failed"], rows))
    return 0
