"""Nimbus replicas failing over under a running topology (real processes on loopback).

    python benchmarks/nimbus_failover.py [--kills 10]

A ``LocalCluster(nimbus_replicas=3)`` with 3 supervisors runs the ledger chain
(squall.ledger_topology, 100 tuples/s per spout task). Each round kills the leading replica
-9, then times, from the kill:

* a new leader answering: another replica states a leader other than the killed one (Raft's
  election, then the new leader loading its state from its store);
* ``squall list`` answering: a client given every replica's address, in the order a user
  would export them (the killed one may come first: it waits its 1 s timeout there), gets the
  topology list (the CLI's own Python start-up is not counted);
* every worker re-adopted: the boards noticed the silence (``supervisor.nimbus.timeout.secs``,
  2 s here), found the leader, and its assignment shows every executor on the same worker
  with the same pid.

Then it restarts the killed replica on its data dir and waits until it follows again. At the
end it counts executors moved (over all rounds: an executor on another worker or pid than
before the kill) and tuples lost (ids emitted and never acked, after draining), and prints
the load average, as the figures are timing on a shared machine.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from squall import ledger_topology as lt
from squall.client import NimbusClient, NimbusError, NimbusUnreachable
from squall.localcluster import LocalCluster

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recovery_times import wait as wait_for  # noqa: E402  (the same poll-until-true)

wait = functools.partial(wait_for, timeout_s=90.0)  # a failover and re-adoption, loaded machine

TARGET_S = 5.0


def executors(cluster: LocalCluster, name: str) -> dict[int, tuple[str, int, int]] | None:
    """executor id -> (node, port, pid) once every executor shows a pid."""
    try:
        with cluster.client(timeout_s=1.0) as c:
            execs = c.assignment(name)["executors"]
    except (NimbusError, NimbusUnreachable):
        return None
    if not execs or any(not e["pid"] for e in execs):
        return None
    return {e["id"]: (e["node"], e["port"], e["pid"]) for e in execs}


def status(cluster: LocalCluster) -> dict[str, Any] | None:
    try:
        with cluster.client(timeout_s=0.5) as c:
            return c.nimbus_status()
    except (NimbusError, NimbusUnreachable):
        return None


def measure(kills: int, workdir: Path) -> dict[str, Any]:
    times: dict[str, list[float]] = {
        "a new leader answering": [],
        "squall list answering": [],
        "every worker re-adopted": [],
    }
    moved = 0
    with LocalCluster(
        supervisors=3,
        slots=2,
        nimbus_replicas=3,
        data_dir=workdir / "cluster",
        log_level="WARNING",
        startup_timeout_s=120,
        supervisor_args=["--set", "supervisor.nimbus.timeout.secs=2"],
    ) as cluster:
        with cluster.client(timeout_s=15) as c:
            lt.submit(c, "fo", workdir / "ledger", workers=3, conf={"topology.message.timeout.secs": 5})
        wait(lambda: len(lt.read_books(workdir / "ledger").acked) > 100)
        for i in range(kills):
            before = wait(lambda: executors(cluster, "fo"))
            old = wait(lambda: (s := status(cluster)) and s["leader"] and s)
            leader = cluster.replica_addresses.index(old["leader"])
            t0 = time.monotonic()
            cluster.kill_replica(leader)
            wait(lambda old=old: (s := status(cluster)) and s["leader"] not in ("", old["leader"]))
            times["a new leader answering"].append(time.monotonic() - t0)

            def listed() -> bool:
                try:
                    with NimbusClient(cluster.replica_addresses, timeout_s=1.0) as c:
                        return any(t["name"] == "fo" for t in c.list())
                except (NimbusError, NimbusUnreachable):
                    return False

            wait(listed)
            times["squall list answering"].append(time.monotonic() - t0)
            after = wait(lambda before=before: (e := executors(cluster, "fo")) == before and e, timeout_s=60)
            times["every worker re-adopted"].append(time.monotonic() - t0)
            moved += sum(1 for k, v in before.items() if after.get(k) != v)
            cluster.start_replica(leader)
            wait(lambda leader=leader: (s := status(cluster)) and s["replicas"][leader]["role"] == "follower")
            print(f"kill {i + 1}/{kills}: {', '.join(f'{k} {v[-1]:.2f} s' for k, v in times.items())}", flush=True)
        with cluster.client() as c:
            c.set_active("fo", False)
        try:
            wait(lambda: (b := lt.read_books(workdir / "ledger")).emitted and not b.missing, timeout_s=60)
        except TimeoutError:
            pass  # some never acked: counted below as lost
        books = lt.read_books(workdir / "ledger")
    return {"times": times, "moved": moved, "lost": len(books.missing), "emitted": len(books.emitted)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="squall-nimbus-failover-") as tmp:
        result = measure(args.kills, Path(tmp))
    print(f"\n{'from kill -9 of the leader to':32} {'median s':>9} {'worst s':>8}   (n={args.kills})")
    for what, values in result["times"].items():
        print(f"{what:32} {statistics.median(values):9.2f} {max(values):8.2f}")
    print(f"executors moved: {result['moved']}; tuples lost: {result['lost']} of {result['emitted']} emitted")
    worst = max(result["times"]["a new leader answering"])
    print(
        f"target: a new leader within {TARGET_S:g} s: {'met' if worst <= TARGET_S else 'MISSED'} (worst {worst:.2f} s)"
    )
    print("load average (1, 5, 15 min): {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
