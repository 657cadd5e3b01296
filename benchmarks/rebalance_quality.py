"""Inter-node traffic of the four schedulers on Aniello's reference chain.

    python benchmarks/rebalance_quality.py            # the full table, markdown
    python benchmarks/rebalance_quality.py --summary  # only the per-cluster averages

Workload: :func:`squall.rebalance.reference.chain_workload` (stages 2..6, replication 2
and 4, shuffle and fields groupings alternating, 1000 tuples/s per spout executor, fields
skew as given). Clusters: 4..8 Pi 4 boards (homogeneous) or a Pi 4 / Pi 3 / Zero 2 / Pi 3
mix (heterogeneous). Workers: one per node (topology.workers = nodes). Default parameters.
"""

from __future__ import annotations

import argparse
import math
from statistics import geometric_mean

from squall.rebalance import SchedulerParams, evaluate, get_scheduler
from squall.rebalance.reference import chain_workload, pi_cluster

SCHEDULERS = ("round_robin", "offline", "online", "partition")


def ratio(a: float, b: float) -> float:
    if b == 0:
        return 1.0 if a == 0 else math.inf
    return a / b


def rows(skew: float, params: SchedulerParams) -> list[dict]:
    out = []
    for hetero in (False, True):
        for n in range(4, 9):
            cluster = pi_cluster(n, heterogeneous=hetero)
            for replication in (2, 4):
                for stages in range(2, 7):
                    w = chain_workload(stages, replication, workers=n, skew=skew)
                    row = {"cluster": "mixed" if hetero else "pi4", "nodes": n, "repl": replication, "stages": stages}
                    for name in SCHEDULERS:
                        a = get_scheduler(name).schedule([w], cluster, params, None)
                        cost = evaluate(a, [w], cluster)
                        row[name] = cost.inter_node_tps
                        row[f"{name}_over"] = bool(cost.overloaded)
                    out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skew", type=float, default=1.0, help="fields-grouping key skew (0 = uniform)")
    parser.add_argument("--summary", action="store_true", help="print only the per-cluster geometric means")
    args = parser.parse_args()
    table = rows(args.skew, SchedulerParams())
    if not args.summary:
        print(
            "| cluster | nodes | repl | stages | round_robin | offline | online | partition "
            "| online/round_robin | online/partition |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in table:
            cells = [f"{r[s]:.0f}{'*' if r[f'{s}_over'] else ''}" for s in SCHEDULERS]
            print(
                f"| {r['cluster']} | {r['nodes']} | {r['repl']} | {r['stages']} | "
                + " | ".join(cells)
                + f" | {ratio(r['online'], r['round_robin']):.2f} | {ratio(r['online'], r['partition']):.2f} |"
            )
        print("\n(inter-node tuples/s; * = the assignment overloads a node)\n")
    print("| cluster | repl | online/round_robin (geo. mean) | online/partition (geo. mean) | offline/round_robin |")
    print("|---|---:|---:|---:|---:|")
    for cluster in ("pi4", "mixed"):
        for repl in (2, 4):
            sel = [r for r in table if r["cluster"] == cluster and r["repl"] == repl and r["round_robin"] > 0]
            on_rr = geometric_mean([max(ratio(r["online"], r["round_robin"]), 1e-9) for r in sel])
            sel_p = [r for r in sel if r["partition"] > 0]
            on_p = geometric_mean([ratio(r["online"], r["partition"]) for r in sel_p]) if sel_p else float("nan")
            off_rr = geometric_mean([max(ratio(r["offline"], r["round_robin"]), 1e-9) for r in sel])
            print(f"| {cluster} | {repl} | {on_rr:.2f} | {on_p:.2f} | {off_rr:.2f} |")


if __name__ == "__main__":
    main()
