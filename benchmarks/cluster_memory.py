"""Resident memory of the daemons of a running local cluster: Nimbus, supervisors, workers.

    python benchmarks/cluster_memory.py [--seconds 15]

Starts a LocalCluster (2 supervisors, 2 slots), submits the reference chain over 2 workers,
lets it run, then prints the RSS of every process it started (targets: a worker at most
60 MB, a supervisor at most 40 MB).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import psutil

from squall.localcluster import LocalCluster

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    with LocalCluster(supervisors=2, slots=2, log_level="WARNING") as cluster:
        name = cluster.submit(
            str(REPO / "examples" / "reference_chain.py"), name="mem", workers=2, conf={"chain.rate": 1000}
        )
        time.sleep(args.seconds)
        rows = []
        nimbus = psutil.Process(cluster.nimbus_proc.pid)
        rows.append(("nimbus", nimbus.pid, nimbus.memory_info().rss))
        for node, proc in cluster.supervisor_procs.items():
            p = psutil.Process(proc.pid)
            rows.append((f"supervisor {node}", p.pid, p.memory_info().rss))
            for child in p.children():
                rows.append((f"  worker on {node}", child.pid, child.memory_info().rss))
        with cluster.client() as c:
            executors = len(c.assignment(name)["executors"])
    print(f"reference chain, 2 workers, {executors} executors, after {args.seconds:g} s\n")
    print(f"{'process':<24}{'pid':>8}{'RSS MB':>10}")
    for label, pid, rss in rows:
        print(f"{label:<24}{pid:>8}{rss / 2**20:>10.1f}")


if __name__ == "__main__":
    main()
