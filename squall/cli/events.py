"""Rebalancing verbs against a running Nimbus:

``squall events NAME [--json]`` lists the topology's rebalance events (applied and declined,
oldest first); ``squall stats NAME [--json]`` prints its measured figures over the metrics
window (traffic crossing workers and nodes, complete latency, spout counts).

Exit codes as the other management verbs: 0 success, 1 refused or unreachable, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from squall.cli.manage import _show, add_topology_verb
from squall.cli.report import table


def add_parser(sub: argparse._SubParsersAction) -> None:
    add_topology_verb(
        sub, "events", "rebalance events of a topology (applied and declined)", run_events, json_option=True
    )
    add_topology_verb(sub, "stats", "measured traffic, latency and counts of a topology", run_stats, json_option=True)


def _tps(cost: dict[str, Any] | None, key: str) -> str:
    return "-" if not cost else f"{cost[key]:.1f}"


def run_events(args: argparse.Namespace) -> int:
    return _show(args, lambda c: c.events(args.name), lambda events: _print_events(args.name, events))


def _print_events(name: str, events: list[dict[str, Any]]) -> None:
    if not events:
        print(f"no rebalance events for {name!r} yet")
        return
    rows = []
    for e in events:
        paused = "-" if e.get("paused_s") is None else f"{e['paused_s']:.2f}"
        rows.append(
            (
                time.strftime("%H:%M:%S", time.localtime(e["at"])),
                e["trigger"],
                e["decision"],
                f"{_tps(e.get('current'), 'inter_node_tps')} -> {_tps(e.get('proposed'), 'inter_node_tps')}",
                str(len(e.get("moved") or [])),
                paused,
                "; ".join([e["reason"], *(e.get("notes") or [])]),
            )
        )
    print(table(["time", "trigger", "decision", "inter-node tuples/s", "moved", "paused s", "reason"], rows))


def run_stats(args: argparse.Namespace) -> int:
    return _show(args, lambda c: c.stats(args.name), _print_stats)


def _print_stats(stats: dict[str, Any]) -> None:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} ms"

    print(f"topology {stats['topology']!r} over the last {stats['window_s']:g} s")
    print(f"  inter-node traffic    {stats['inter_node_tps']:.1f} tuples/s")
    print(f"  inter-worker traffic  {stats['inter_worker_tps']:.1f} tuples/s")
    print(f"  complete latency      avg {ms(stats['latency_avg_ms'])}, p99 {ms(stats['latency_p99_ms'])}")
    print(f"  spouts                emitted {stats['emitted']}, acked {stats['acked']}, failed {stats['failed']}")
    print(f"  placement             {stats['workers']} workers on {stats['nodes_used']} nodes")
