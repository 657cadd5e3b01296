"""Nimbus moving or losing its state under a running cluster, with real processes:

* a Nimbus restarted on an empty data dir starts a newer term than the boards followed, so
  its topologies get placed and run, and no board refuses it (before terms, boards accepted
  its lower versions only because every successful registration reset their version check,
  which let any Nimbus they registered with reset it, a stale one included);
* a supervisor given two addresses, the first dead, registers with the live Nimbus;
* Nimbus killed -9 and restarted on another port (the second address the boards hold): every
  board re-attaches on its own, and the workers run through it — same pids, same executors,
  nothing lost (the ledger chain's books).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from squall import ledger_topology as lt
from squall.localcluster import LocalCluster
from squall.ports import free_port
from tests.faults.fault_helpers import assert_nothing_lost, drain, eventually, running, start_chain

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def squall(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "squall", *args], capture_output=True, text=True, timeout=60, env=env)


def alive_boards(cluster: LocalCluster) -> set[str]:
    with cluster.client(timeout_s=2) as c:
        return {s["id"] for s in c.cluster()["supervisors"] if s["alive"]}


def status(cluster: LocalCluster) -> dict:
    with cluster.client() as c:
        return c.nimbus_status()


def test_a_nimbus_on_an_empty_data_dir_gets_its_topologies_placed(tmp_path):
    with LocalCluster(supervisors=2, slots=2, data_dir=tmp_path / "cluster") as cluster:
        start_chain(cluster, "before", tmp_path / "before", workers=2)
        old_term = status(cluster)["term"]
        old_pids = set(cluster.worker_pids().values())
        cluster.kill_nimbus()
        cluster.restart_nimbus(data_dir=tmp_path / "empty-nimbus")
        eventually(lambda: alive_boards(cluster) == set(cluster.node_ids), timeout_s=20, what="boards registered")
        new = status(cluster)
        assert new["term"] > old_term, "the new Nimbus did not start a newer term than the boards followed"
        with cluster.client() as c:
            assert c.list() == []  # it knows nothing of "before"...
        # ...so the boards follow it and stop that topology's workers
        eventually(lambda: not old_pids & set(cluster.worker_pids().values()), what="old workers stopped")

        folder = tmp_path / "after"
        placed = start_chain(cluster, "after", folder, workers=2)  # waits for workers with pids and acks
        assert placed and all(pid for pid, _ in placed.values())
        assert {pid for pid, _ in placed.values()} <= set(cluster.worker_pids().values())
        sunk = len(lt.read_books(folder).sink_times)
        eventually(lambda: len(lt.read_books(folder).sink_times) > sunk + 50, what="tuples reaching the sinks")
        refused = [
            line for node in cluster.node_ids for line in cluster.log(node).splitlines() if "refused assignment" in line
        ]
        assert not refused, f"a board refused the new Nimbus: {refused[:2]}"


def test_a_supervisor_whose_first_address_is_dead_finds_the_live_nimbus(tmp_path):
    port = free_port()
    dead = f"127.0.0.1:{free_port()}"
    with LocalCluster(
        supervisors=1,
        slots=1,
        port=port,
        data_dir=tmp_path / "cluster",
        supervisor_nimbus=[dead, f"127.0.0.1:{port}"],
        supervisor_args=["--set", "supervisor.nimbus.timeout.secs=1"],
    ) as cluster:
        # __enter__ returned: the board registered, and only the second address answers.
        assert alive_boards(cluster) == {"node-1"}
        assert f"no word from Nimbus at {dead}" in cluster.log("node-1")
        # Clients too: every verb takes the list, from --nimbus or SQUALL_NIMBUS.
        live = f"127.0.0.1:{port}"
        env = {**os.environ, "SQUALL_NIMBUS": f"{dead},{live}"}
        shown = squall("nimbus-status", "--json", "--timeout", "1", env=env)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout) == {
            "leader": live,
            "term": 1,
            "replicas": [{"address": live, "role": "leader", "pid": cluster.nimbus_proc.pid}],
        }
        listed = squall("list", "--nimbus", f"{dead},{live}", "--timeout", "1")
        assert listed.returncode == 0 and listed.stdout.splitlines()[0] == f"leader {live} (term 1)", listed


def test_nimbus_restarted_on_the_boards_second_address_re_adopts_running_workers(tmp_path):
    first, second = free_port(), free_port()
    addresses = [f"127.0.0.1:{first}", f"127.0.0.1:{second}"]
    with LocalCluster(
        supervisors=3, slots=2, port=first, data_dir=tmp_path / "cluster", supervisor_nimbus=addresses
    ) as cluster:
        folder = tmp_path / "ledger"
        placed = start_chain(cluster, "moving", folder, workers=3)
        pids = cluster.worker_pids()
        term = status(cluster)["term"]
        with cluster.client() as c:
            events = c.events("moving")
        cluster.kill_nimbus()
        killed_at = time.monotonic()
        cluster.restart_nimbus(port=second)  # same data dir, the address the boards hold second
        answered_s = time.monotonic() - killed_at
        eventually(
            lambda: alive_boards(cluster) == set(cluster.node_ids),
            timeout_s=20,
            what="every board re-attached at the second address",
        )
        attached_s = time.monotonic() - killed_at
        assert status(cluster)["term"] > term
        assert status(cluster)["leader"] == addresses[1]
        # Positive signals that nothing moved: the new Nimbus's view of every worker (pid and
        # executors, reported by the boards) equals the old one, and the processes are the same.
        assert eventually(lambda: running(cluster, "moving")) == placed, "placement or pids changed"
        assert cluster.worker_pids() == pids, "a worker was restarted"
        with cluster.client() as c:
            assert c.events("moving") == events, "the new Nimbus rebalanced"
        for node in cluster.node_ids:
            assert f"trying {addresses[1]}" in cluster.log(node), f"{node} never moved to the second address"
        books = drain(cluster, "moving", folder)
        assert_nothing_lost(books)
        print(
            f"\nNimbus answered at the second address {answered_s:.2f} s after the kill, every board "
            f"re-attached {attached_s:.2f} s after the kill (poll 0.1 s; a shared machine); books {books.summary()}"
        )
