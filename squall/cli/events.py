"""Rebalancing verbs against a running Nimbus:

``squall events NAME [--json]`` lists the topology's rebalance events (applied and declined,
oldest first); ``squall stats NAME [--json]`` prints its measured figures over the metrics
window (traffic crossing workers and nodes, complete latency, spout counts).

Exit codes as the other management verbs: 0 success, 1 refused or unreachable, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from squall.cli.manage import _call, _common
from squall.cli.report import table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("events", help="rebalance events of a topology (applied and declined)")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=run_events)

    p = sub.add_parser("stats", help="measured traffic, latency and counts of a topology")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=run_stats)


def _tps(cost: dict[str, Any] | None, key: str) -> str:
    return "-" if not cost else f"{cost[key]:.1f}"


def run_events(args: argparse.Namespace) -> int:
    code, events = _call(args, lambda c: c.events(args.name))
    if code:
        return code
    if args.json:
        print(json.dumps(events, indent=2))
        return 0
    if not events:
        print(f"no rebalance events for {args.name!r} yet")
        return 0
    rows = []
    for e in events:
        paused = "-" if e.get("paused_s") is None else f"{e['paused_s']:.2f}"
        rows.append((
            time.strftime("%H:%M:%S", time.localtime(e["at"])), e["trigger"], e["decision"],
            f"{_tps(e.get('current'), 'inter_node_tps')} -> {_tps(e.get('proposed'), 'inter_node_tps')}",
            str(len(e.get("moved") or [])), paused, "; ".join([e["reason"], *(e.get("notes") or [])]),
        ))
    print(table(["time", "trigger", "decision", "inter-node tuples/s", "moved", "paused s", "reason"], rows))
    return 0


def run_stats(args: argparse.Namespace) -> int:
    code, stats = _call(args, lambda c: c.stats(args.name))
    if code:
        return code
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} ms"

    print(f"topology {stats['topology']!r} over the last {stats['window_s']:g} s")
    print(f"  inter-node traffic    {stats['inter_node_tps']:.1f} tuples/s")
    print(f"  inter-worker traffic  {stats['inter_worker_tps']:.1f} tuples/s")
    print(f"  complete latency      avg {ms(stats['latency_avg_ms'])}, p99 {ms(stats['latency_p99_ms'])}")
    print(f"  spouts                emitted {stats['emitted']}, acked {stats['acked']}, failed {stats['failed']}")
    print(f"  placement             {stats['workers']} workers on {stats['nodes_used']} nodes")
    return 0
