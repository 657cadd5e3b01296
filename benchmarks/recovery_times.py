"""Recovery times on a local cluster (real processes on loopback), printed as a table.

    python benchmarks/recovery_times.py [--repeat 3]

* worker restart: kill -9 of a worker -> its supervisor has a new process on the same port,
  and -> Nimbus's assignment shows the new pid (the worker heartbeats as running);
* board loss: kill -9 of a supervisor and its workers -> every executor of the topology runs
  again on the other boards (Nimbus's timeout, 5 s by default, is most of it);
* Nimbus restart: kill -9 of Nimbus, start again on the same data dir -> every supervisor
  re-registered and every executor shown with its (unchanged) pid: re-adopted.

The topology is the ledger chain (squall.ledger_topology) at 100 tuples/s per spout task.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from squall import ledger_topology as lt
from squall.client import NimbusError, NimbusUnreachable
from squall.localcluster import LocalCluster

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also through benchmarks/against.py
from polling import wait as _wait  # noqa: E402


def wait(check: Callable[[], Any]) -> Any:
    return _wait(check, timeout_s=60.0, interval_s=0.02)  # 20 ms: the recovery times' resolution


def placed(cluster: LocalCluster, name: str) -> dict[tuple[str, int], int] | None:
    """(node, port) -> pid of every worker once each executor shows a pid."""
    try:
        with cluster.client(timeout_s=1.0) as c:
            execs = c.assignment(name)["executors"]
    except (NimbusError, NimbusUnreachable):  # Nimbus restarting: not yet
        return None
    if not execs or any(not e["pid"] for e in execs):
        return None
    return {(e["node"], e["port"]): e["pid"] for e in execs}


def measure(repeat: int, workdir: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {
        "worker restart (process up)": [],
        "worker restart (running)": [],
        "board loss -> running again": [],
        "Nimbus restart -> re-adopted": [],
    }
    with LocalCluster(supervisors=3 + repeat, slots=2, data_dir=workdir / "cluster", log_level="WARNING") as cluster:
        with cluster.client(timeout_s=15) as c:
            lt.submit(c, "rt", workdir / "ledger", workers=3, conf={"topology.message.timeout.secs": 5})
        wait(lambda: placed(cluster, "rt"))
        for i in range(repeat):
            before = wait(lambda: placed(cluster, "rt"))
            # A different worker each time: one killed again young is restarted with backoff.
            (node, port), pid = sorted(before.items())[i % len(before)]
            t0 = time.monotonic()
            cluster.kill_worker(node, port)
            wait(
                lambda node=node, port=port, pid=pid: cluster.worker_pids(node).get((node, port), pid) != pid,
                interval_s=0.005,
            )
            out["worker restart (process up)"].append(time.monotonic() - t0)
            wait(lambda node=node, port=port, pid=pid: (p := placed(cluster, "rt")) and p.get((node, port), pid) != pid)
            out["worker restart (running)"].append(time.monotonic() - t0)
        for _ in range(repeat):
            before = wait(lambda: placed(cluster, "rt"))
            node = sorted({n for n, _ in before})[0]
            t0 = time.monotonic()
            cluster.kill_board(node)
            wait(lambda node=node: (p := placed(cluster, "rt")) and node not in {n for n, _ in p})
            out["board loss -> running again"].append(time.monotonic() - t0)
        for _ in range(repeat):
            before = wait(lambda: placed(cluster, "rt"))
            cluster.kill_nimbus()
            time.sleep(1.0)
            t0 = time.monotonic()
            cluster.restart_nimbus()

            wait(lambda before=before: placed(cluster, "rt") == before)  # every worker reported again, same pids
            out["Nimbus restart -> re-adopted"].append(time.monotonic() - t0)
    return out


def run_and_print(
    argv: list[str] | None,
    doc: str,
    measure: Callable[[int, Path], dict[str, list[float]]],
    *,
    repeat: int,
    tmp_prefix: str,
    heading: str,
    width: int,
) -> int:
    """The command line shared by the recovery benchmarks: ``--repeat N`` (default
    ``repeat``), ``measure(N, a fresh temporary directory)``, then one table row per figure
    (median, min, max in seconds) under ``heading``; ``width`` is the first column's."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=repeat)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix=tmp_prefix) as tmp:
        results = measure(args.repeat, Path(tmp))
    print(f"{heading:{width}} {'median s':>9} {'min s':>7} {'max s':>7}   (n={args.repeat})")
    for what, times in results.items():
        print(f"{what:{width}} {statistics.median(times):9.2f} {min(times):7.2f} {max(times):7.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_and_print(argv, __doc__, measure, repeat=3, tmp_prefix="squall-recovery-", heading="recovery", width=34)


if __name__ == "__main__":
    sys.exit(main())
