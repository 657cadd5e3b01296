"""The cluster end to end: submit, assignment with measured traffic and load, worker
restart, rebalance, kill — real processes started as users start them."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import psutil
import pytest

from squall.client import NimbusError
from squall.daemon_start import supervisor_argv
from squall.experiments.reference import chain_topology
from tests.helpers import REPO, WORDCOUNT, daemon, eventually, run_squall

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def squall(*args: str, timeout: float = 30.0, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_squall(*args, timeout_s=timeout, env={**os.environ, **(env or {})})


def running_assignment(cluster, name: str, nodes: int):
    """The assignment once every executor has a live pid and executors span ``nodes`` nodes."""
    with cluster.client() as c:
        a = c.assignment(name)
    execs = a["executors"]
    if not execs or any(not e["pid"] for e in execs):
        return None
    if len({e["node"] for e in execs}) < nodes:
        return None
    return a


def test_submit_runs_across_three_nodes_with_live_traffic_and_load(cluster):
    result = squall("submit", WORDCOUNT, "--name", "wc", "--workers", "3", "--nimbus", cluster.nimbus_address)
    assert result.returncode == 0, result.stdout + result.stderr
    a = eventually(lambda: running_assignment(cluster, "wc", 3), what="wc running on 3 nodes")
    assert {e["component"] for e in a["executors"]} >= {"sentences", "split", "count"}
    measured = eventually(
        lambda: (lambda x: x if x["traffic"] and any(e["load_hz"] > 0 for e in x["executors"]) else None)(
            cluster.client().assignment("wc")
        ),
        what="measured traffic and load",
    )
    by_id = {e["id"]: e for e in measured["executors"]}
    assert all(src in by_id and dst in by_id and tps > 0 for src, dst, tps in measured["traffic"])
    listed = squall("list", "--json", "--nimbus", cluster.nimbus_address)
    assert listed.returncode == 0
    (row,) = [r for r in json.loads(listed.stdout) if r["name"] == "wc"]
    assert row["status"] == "ACTIVE" and row["workers"] == 3 and row["scheduler"] == "round_robin"
    text = squall("assignment", "wc", "--nimbus", cluster.nimbus_address)
    assert text.returncode == 0 and "sentences" in text.stdout and "node-" in text.stdout

    # A worker killed with SIGKILL is restarted by its supervisor.
    victim = next(e for e in measured["executors"] if e["component"] == "split")
    os.kill(victim["pid"], signal.SIGKILL)

    def restarted():
        a = cluster.client().assignment("wc")
        e = next(x for x in a["executors"] if x["id"] == victim["id"])
        return e["pid"] and e["pid"] != victim["pid"]

    eventually(restarted, timeout_s=15, what="worker restart")

    # Kill removes the topology and stops its workers.
    pids = {e["pid"] for e in cluster.client().assignment("wc")["executors"]}
    killed = squall("kill", "wc", "-w", "0", "--nimbus", cluster.nimbus_address)
    assert killed.returncode == 0, killed.stderr
    eventually(lambda: all(r["name"] != "wc" for r in cluster.client().list()), what="wc gone from list")
    eventually(
        lambda: not any(running(p) for p in pids),
        what="wc workers stopped",
    )


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, or one that exits while we look, is not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_rebalance_changes_workers_and_parallelism(cluster):
    name = cluster.submit(str(REPO / "examples" / "reference_chain.py"), name="chain", workers=2)
    eventually(lambda: running_assignment(cluster, name, 2), what="chain running")
    result = squall("rebalance", name, "-w", "0", "-n", "3", "-e", "stage1=1", "--nimbus", cluster.nimbus_address)
    assert result.returncode == 0, result.stderr

    def rebalanced():
        a = running_assignment(cluster, name, 3)
        if a is None:
            return None
        stage1 = [e for e in a["executors"] if e["component"] == "stage1"]
        ports = {(e["node"], e["port"]) for e in a["executors"]}
        return a if len(stage1) == 1 and len(ports) == 3 else None

    eventually(rebalanced, timeout_s=30, what="3 workers and stage1 at parallelism 1")
    bad = squall("rebalance", name, "-e", "stage1=5", "--nimbus", cluster.nimbus_address)
    assert bad.returncode == 1 and "stage1" in bad.stderr
    cluster.client().kill(name, 0)


def test_invalid_and_duplicate_submissions_are_refused(cluster):
    spec = chain_topology(3, 1).spec.to_dict()
    spec["components"][1]["inputs"][0]["component"] = "nowhere"
    with cluster.client() as c:
        with pytest.raises(NimbusError, match="nowhere"):
            c.submit("broken", spec, b"", "round_robin", 1, {})
        assert all(r["name"] != "broken" for r in c.list())
    cluster.submit(WORDCOUNT, name="dup", workers=1)
    again = squall("submit", WORDCOUNT, "--name", "dup", "--nimbus", cluster.nimbus_address)
    assert again.returncode == 1 and "dup" in again.stdout
    cluster.client().kill("dup", 0)


LOOP = """
from squall import Bolt, Spout, Topology


class Quiet(Spout):
    outputs = ["x"]

    def next_tuple(self):
        pass  # emits nothing: the cycle below carries no tuple


class Pass(Bolt):
    outputs = ["x"]

    def process(self, tup):
        self.emit(tup.values)


class Loop(Topology):
    src = Quiet.spec()
    a = Pass.spec(inputs=[src])
    b = Pass.spec(inputs=[a])
    a.inputs = [src, b]  # b feeds a back: a cycle, which Storm allows
"""


def test_a_topology_with_a_cycle_is_submitted_with_a_warning(cluster, tmp_path):
    (tmp_path / "loop.py").write_text(LOOP)
    result = squall("submit", str(tmp_path / "loop.py"), "--name", "loop", "--nimbus", cluster.nimbus_address)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("submitted 'loop'")
    assert lines[1:] == [
        "warning: topology 'loop' has a cycle a -> b -> a: Storm allows it, but a tuple can "
        "circulate on it without end, and a tree anchored around it never completes"
    ]
    cluster.client().kill("loop", 0)


def test_unreachable_nimbus_is_reported_quickly():
    from squall.ports import free_port

    result = squall("list", "--nimbus", f"127.0.0.1:{free_port()}", "--timeout", "1", timeout=15)
    assert result.returncode == 1
    assert "did not answer" in result.stderr


def test_a_second_supervisor_with_a_live_id_is_refused(cluster):
    from squall.ports import free_port_range

    ports = free_port_range(1)
    log = cluster.data_dir / "dup-node.log"
    with daemon(supervisor_argv(cluster.nimbus_address, "node-1", 1, cluster.data_dir / "dup-node", ports), log):
        # However long the start-up takes on a loaded machine: wait for the refusal itself.
        eventually(
            lambda: "refused registration" in log.read_text(), timeout_s=60, what="Nimbus refusing the second node-1"
        )
    refusals = [line for line in log.read_text().splitlines() if "refused registration" in line]
    assert refusals and all("'node-1' is already registered" in line for line in refusals), refusals


def test_free_ports_are_never_ephemeral_and_never_handed_out_twice():
    """A daemon's port must not be one the kernel may give an outgoing connection before the
    daemon binds it (that race failed a CI run with "Address already in use")."""
    from squall.ports import ephemeral_range, free_port, free_port_range

    low, high = ephemeral_range()
    picked = [free_port() for _ in range(200)] + free_port_range(4)
    assert not [p for p in picked if low <= p <= high]
    assert len(set(picked)) == len(picked)
