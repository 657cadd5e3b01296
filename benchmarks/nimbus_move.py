"""Nimbus moving between addresses under a running topology (real processes on loopback).

    python benchmarks/nimbus_move.py [--repeat 5]

Supervisors are started with ``--nimbus A,B``. Each round kills Nimbus -9 and starts it at once
on the other address (same data dir), then times, from the kill:

* Nimbus answering at its new address (mostly Python start-up);
* every board re-attached and every worker re-adopted: the new Nimbus's assignment shows
  every executor with the pid it had before (nothing restarted, nothing moved).

The boards notice the silence after ``supervisor.nimbus.timeout.secs`` (3 s by default), so
that is most of the second figure. Each round also checks that the worker pids are unchanged.
The topology is the ledger chain (squall.ledger_topology) at 100 tuples/s per spout task.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from squall import ledger_topology as lt
from squall.localcluster import LocalCluster
from squall.ports import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recovery_times import placed, run_and_print, wait  # noqa: E402  (the same waits, reads and table)


def measure(repeat: int, workdir: Path) -> dict[str, list[float]]:
    ports = [free_port(), free_port()]
    out: dict[str, list[float]] = {"Nimbus answering at the new address": [], "every worker re-adopted": []}
    with LocalCluster(
        supervisors=3,
        slots=2,
        port=ports[0],
        data_dir=workdir / "cluster",
        log_level="WARNING",
        supervisor_nimbus=[f"127.0.0.1:{p}" for p in ports],
    ) as cluster:
        with cluster.client(timeout_s=15) as c:
            lt.submit(c, "mv", workdir / "ledger", workers=3, conf={"topology.message.timeout.secs": 5})
        for i in range(repeat):
            before = wait(lambda: placed(cluster, "mv"))
            pids = cluster.worker_pids()
            t0 = time.monotonic()
            cluster.kill_nimbus()
            cluster.restart_nimbus(port=ports[(i + 1) % 2])
            out["Nimbus answering at the new address"].append(time.monotonic() - t0)
            wait(lambda before=before: placed(cluster, "mv") == before)  # every worker reported again, same pids
            out["every worker re-adopted"].append(time.monotonic() - t0)
            if cluster.worker_pids() != pids:
                raise AssertionError(f"round {i + 1}: a worker was restarted")
    return out


def main(argv: list[str] | None = None) -> int:
    return run_and_print(
        argv, __doc__, measure, repeat=5, tmp_prefix="squall-nimbus-move-", heading="from kill -9 to", width=38
    )


if __name__ == "__main__":
    sys.exit(main())
