"""``squall demo``: the main job of the Quickstart.

It starts the embedded cluster (emulated boards when this machine allows it, otherwise four
supervisors on loopback), runs the reference chain under Storm's ``round_robin``, then lets
``online`` and then ``latency`` rebalance it live — each change judged by its probation and
rolled back if latency rose — and prints inter-node and inter-worker traffic, complete
latency (measured and predicted), boards used and tuples emitted / acked / lost for each
(``squall.experiments.demo``). ``--in-process`` instead measures the engine alone: the chain
in this process, acking off and on, throughput and latency.
"""

from __future__ import annotations

import argparse
import sys
import time

from squall.cli import UsageError
from squall.cli.report import table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="round robin vs live online and latency rebalancing on a local cluster")
    p.add_argument(
        "--window",
        type=float,
        default=15.0,
        help="seconds measured under each scheduler (the metrics window; default 15)",
    )
    p.add_argument(
        "--loopback", action="store_true", help="loopback supervisors even when emulated boards are possible"
    )
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="measure the engine alone: the chain in this process, acking off and on",
    )
    p.add_argument("--seconds", type=float, default=5.0, help="--in-process: seconds per run (default 5)")
    p.add_argument("--stages", type=int, help="chain length including the spout (default 4; --in-process 3)")
    p.add_argument("--replication", type=int, default=2, help="executors per stage (default 2)")
    p.add_argument("--work", type=int, help="busy-loop iterations per tuple per bolt (default 200; --in-process 0)")
    p.add_argument("--rate", type=float, help="tuples/s per spout task (default 250; --in-process 0 = unbounded)")
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

    if (need := missing("numpy", "networkx")) is not None:  # an environment fault, not bad input: exit 1
        print(f"squall demo: {need}", file=sys.stderr)
        return 1
    if not args.in_process:
        return run_cluster_demo(args)
    return run_in_process(args)


def run_cluster_demo(args: argparse.Namespace) -> int:
    import json

    from squall.experiments.demo import render, run_demo

    if args.window < 5:
        raise UsageError("--window must be at least 5 seconds")
    stages = 4 if args.stages is None else args.stages
    rate = 250.0 if args.rate is None else args.rate
    work = 200 if args.work is None else args.work
    if stages < 2 or args.replication < 1 or work < 0 or rate <= 0:
        raise UsageError("need --stages >= 2, --replication >= 1, --work >= 0, --rate > 0")
    result = run_demo(
        window_s=args.window, rate=rate, stages=stages, replication=args.replication, work=work, loopback=args.loopback
    )
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print()
        print(render(result))
    return 0 if result["lost"] == 0 else 1


def run_in_process(args: argparse.Namespace) -> int:
    args.stages = 3 if args.stages is None else args.stages
    args.work = 0 if args.work is None else args.work
    args.rate = 0.0 if args.rate is None else args.rate
    from squall.extras import missing

    if (need := missing("numpy", "networkx")) is not None:  # an environment fault, not bad input: exit 1
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
        rows.append(
            (r["acking"], r["tuples"], r["throughput"], r["avg_ms"], r["p99_ms"], r["complete_ms"], r["failed"])
        )
    print(table(["acking", "tuples at sink", "tuples/s", "avg latency ms", "p99 ms", "complete ms", "failed"], rows))
    return 0
