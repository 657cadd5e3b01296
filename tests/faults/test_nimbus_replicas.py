"""Nimbus as 3 Raft replicas under a running cluster, with real processes (``squall nimbus --peers``):

* the leader killed -9 under the ledger chain: another replica leads (a higher term), every
  board re-attaches to it, no executor moves (same worker pids, same placement), no tuple is
  lost, ``squall list`` answers and names the new leader; the killed replica, restarted on its
  data dir, rejoins as a follower and reports its pid;
* a follower refuses a write, naming the leader (``NotLeader``), a board's registration with
  the leader's address, and its web page redirects to the leader's (307);
* single-replica mode loads no Raft library (the rest of the suite runs it as before).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import zmq

from squall import messages as M
from squall.localcluster import LocalCluster
from squall.wire import decode, encode
from tests.faults.fault_helpers import assert_nothing_lost, drain, eventually, running, start_chain

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def squall(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "squall", *args], capture_output=True, text=True, timeout=60, env=env)


def status(cluster: LocalCluster) -> dict:
    with cluster.client(timeout_s=2) as c:
        return c.nimbus_status()


def alive_boards(cluster: LocalCluster) -> set[str]:
    with cluster.client(timeout_s=2) as c:
        return {s["id"] for s in c.cluster()["supervisors"] if s["alive"]}


def ask(address: str, msg: object, timeout_s: float = 5.0) -> object:
    """One message to one Nimbus address, its answer decoded (no redirect followed)."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(f"tcp://{address}")
        sock.send(encode(msg))
        assert sock.poll(int(timeout_s * 1000)), f"{address} did not answer {type(msg).__name__}"
        return decode(sock.recv())
    finally:
        sock.close(0)


@pytest.fixture
def replicated(tmp_path):
    with LocalCluster(
        supervisors=3,
        slots=2,
        nimbus_replicas=3,
        data_dir=tmp_path / "cluster",
        startup_timeout_s=120,
        supervisor_args=["--set", "supervisor.nimbus.timeout.secs=2"],
    ) as cluster:
        yield cluster


def test_leader_killed_under_a_running_topology_moves_nothing_and_loses_nothing(replicated, tmp_path):
    cluster = replicated
    folder = tmp_path / "ledger"
    placed = start_chain(cluster, "books", folder, workers=3)
    pids = cluster.worker_pids()
    before = status(cluster)
    leader = cluster.replica_addresses.index(before["leader"])
    assert [r["role"] for r in before["replicas"]].count("leader") == 1
    assert {r["pid"] for r in before["replicas"]} == set(cluster.replica_pids()), "pids as the replicas report them"
    with cluster.client() as c:
        events = c.events("books")

    killed_pid = cluster.kill_replica(leader)
    new = eventually(
        lambda: (s := status(cluster))["leader"] not in ("", before["leader"]) and s,
        timeout_s=30,
        what="another replica leading",
    )
    assert new["term"] > before["term"], "the new leader's term is not above the old one's"
    roles = {r["address"]: r["role"] for r in new["replicas"]}
    assert roles[before["leader"]] == "down" and roles[new["leader"]] == "leader", roles
    env = {**os.environ, "SQUALL_NIMBUS": ",".join(cluster.replica_addresses)}
    listed = squall("list", "--timeout", "2", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0] == f"leader {new['leader']} (term {new['term']})", listed.stdout
    assert "books" in listed.stdout

    eventually(lambda: alive_boards(cluster) == set(cluster.node_ids), timeout_s=30, what="boards re-attached")
    # Positive signals that nothing moved: the new leader's view of every worker (pid and
    # executors, as the boards report them) equals the old one's, and the processes are the same.
    assert eventually(lambda: running(cluster, "books"), timeout_s=30) == placed, "placement or pids changed"
    assert cluster.worker_pids() == pids, "a worker was restarted"
    with cluster.client() as c:
        assert c.events("books") == events, "the new leader rebalanced"
    refused = [line for n in cluster.node_ids for line in cluster.log(n).splitlines() if "refused assignment" in line]
    assert not refused, f"a board refused an assignment: {refused[:2]}"

    cluster.start_replica(leader)  # same data dir: its journal and store, then what it missed
    restarted_pid = cluster.replica_pids()[leader]
    assert restarted_pid not in (None, killed_pid)
    rejoined = eventually(
        lambda: (
            (s := status(cluster))["replicas"][leader]
            == {
                "address": before["leader"],
                "role": "follower",
                "pid": restarted_pid,
            }
            and s
        ),
        timeout_s=60,
        what="the killed replica back as a follower, reporting its new pid",
    )
    assert rejoined["leader"] == new["leader"], "the restarted replica disturbed the leader"
    assert_nothing_lost(drain(cluster, "books", folder))


def test_a_follower_refuses_writes_and_registrations_naming_the_leader(replicated):
    cluster = replicated
    leader = status(cluster)["leader"]
    follower = next(a for a in cluster.replica_addresses if a != leader)

    answer = ask(follower, M.KillTopology(rid=7, name="anything"))
    assert isinstance(answer, M.NotLeader) and answer.rid == 7 and answer.leader == leader, answer
    answer = ask(
        follower,
        M.RegisterSupervisor("stray", "127.0.0.1", [1], 1e9, 1e9, 1, 512, pid=os.getpid(), term=0),
    )
    assert isinstance(answer, M.RegisterReply) and not answer.ok and answer.leader == leader, answer
    with cluster.client() as c:
        assert "stray" not in {s["id"] for s in c.cluster()["supervisors"]}, "a follower took a registration"

    # Its page sends the browser (and REST clients) to the leader's, path and method kept.
    i, j = cluster.replica_addresses.index(follower), cluster.replica_addresses.index(leader)
    opener = urllib.request.build_opener(NoRedirect)
    for method in ("GET", "POST"):
        req = urllib.request.Request(
            f"http://127.0.0.1:{cluster.replica_http_ports[i]}/api/v1/cluster/summary",
            data=b"" if method == "POST" else None,
            method=method,
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            opener.open(req, timeout=10)
        assert err.value.code == 307, err.value.read()
        assert (
            err.value.headers["Location"] == f"http://127.0.0.1:{cluster.replica_http_ports[j]}/api/v1/cluster/summary"
        )
    with urllib.request.urlopen(f"http://127.0.0.1:{cluster.replica_http_ports[j]}/api/v1/cluster/summary") as r:
        assert r.status == 200 and "supervisors" in json.loads(r.read())


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def test_single_mode_imports_no_raft_library():
    """A single Nimbus (no --peers) never imports pysyncobj, so it starts no Raft thread."""
    code = (
        "import sys, threading\n"
        "from squall.localcluster import free_port\n"
        "from squall.nimbus.server import NimbusServer\n"
        "from squall.nimbus.state import NimbusState\n"
        "from squall.nimbus.store import Store\n"
        "import squall.cli.nimbus\n"
        "server = NimbusServer(NimbusState(Store(':memory:')), port=free_port(), http_port=0)\n"
        "print('pysyncobj' in sys.modules, threading.active_count())\n"
        "server.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    imported, threads = out.stdout.split()
    assert imported == "False"
    assert int(threads) == 1, "a Python thread besides the main one (a replica runs pysyncobj's)"


def test_peers_are_checked_before_anything_starts(tmp_path):
    bad = squall(
        "nimbus", "--port", "7001", "--data-dir", str(tmp_path / "d"), "--peers", "127.0.0.1:7001,127.0.0.1:7003"
    )
    assert bad.returncode == 2 and "odd number of at least 3" in bad.stderr, bad.stderr
    bad = squall(
        "nimbus",
        "--port",
        "7001",
        "--data-dir",
        str(tmp_path / "d"),
        "--peers",
        "127.0.0.1:7005,127.0.0.1:7003,127.0.0.1:7007",
    )
    assert bad.returncode == 2 and "this replica's own address 127.0.0.1:7001" in bad.stderr, bad.stderr
