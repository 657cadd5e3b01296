"""Nimbus as 3 Raft replicas under a running cluster, with real processes (``squall nimbus --peers``):

* the leader killed -9 under the ledger chain: another replica leads (a higher term), every
  board re-attaches to it, no executor moves (same worker pids, same placement), no tuple is
  lost, ``squall list`` answers and names the new leader; the killed replica, restarted on its
  data dir, rejoins as a follower and reports its pid;
* the leader cut off from the other replicas (iptables DROP on its Raft port; skipped without
  root): it stops deciding within the fallback timeout, a write sent to it is never
  acknowledged, the majority elects a leader with a higher term, nothing moves or is lost, and
  after healing it follows; boards only ever refuse older terms;
* the leader killed in the middle of a live migration: the new leader finishes it, nothing lost;
* a follower refuses a write, naming the leader (``NotLeader``), a board's registration with
  the leader's address, and its web page redirects to the leader's (307);
* single-replica mode loads no Raft library (the rest of the suite runs it as before).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import zmq

from squall import messages as M
from squall.client import NimbusClient, NimbusUnreachable
from squall.localcluster import LocalCluster
from squall.wire import decode, encode
from tests.faults.fault_helpers import assert_nothing_lost, drain, eventually, running, start_chain

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def squall(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "squall", *args], capture_output=True, text=True, timeout=60, env=env)


def status(cluster: LocalCluster, addresses: list[str] | None = None) -> dict:
    """What the leader says (``addresses``: ask only these replicas, and their leader). No
    replica answering (an election under way) is an AssertionError: "not yet" to
    ``eventually``, a failure anywhere else."""
    try:
        if addresses is None:
            with cluster.client(timeout_s=2) as c:
                return c.nimbus_status()
        with NimbusClient(addresses, timeout_s=2) as c:
            return c.nimbus_status()
    except NimbusUnreachable as exc:
        raise AssertionError(f"no replica answered: {exc}") from None


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
    # Raft without pre-vote: a returning replica may call one election before it hears the
    # leader; it cannot win it (its log lacks what was committed without it).
    assert rejoined["leader"] != before["leader"], rejoined
    eventually(lambda: alive_boards(cluster) == set(cluster.node_ids), timeout_s=30, what="boards attached")
    assert eventually(lambda: running(cluster, "books"), timeout_s=30) == placed, "placement or pids changed"
    assert cluster.worker_pids() == pids, "a worker was restarted"
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


def test_the_leader_killed_mid_migration_the_new_leader_finishes_it(replicated, tmp_path):
    cluster = replicated
    folder = tmp_path / "ledger"
    start_chain(cluster, "moving", folder, workers=3)
    with cluster.client() as c:
        c.rebalance("moving", workers=2)  # live: executors of the dropped worker move
        (event,) = c.events("moving")
    assert event["decision"] == "applied" and event["moved"] and event["paused_s"] is None, "already finished"
    leader = cluster.replica_addresses.index(status(cluster)["leader"])
    cluster.kill_replica(leader)  # the migration's phase so far is committed on the others' stores

    def finished() -> dict | None:
        try:
            with cluster.client(timeout_s=2) as c:
                (e,) = c.events("moving")
        except NimbusUnreachable:
            return None  # still electing (on a loaded machine, longer than 3 x 2 s): not yet
        return e if e["paused_s"] is not None else None

    done = eventually(finished, timeout_s=60, what="the new leader finishing the migration")
    assert status(cluster)["leader"] != cluster.replica_addresses[leader]
    placed = eventually(lambda: running(cluster, "moving"), timeout_s=30, what="running after the migration")
    assert len(placed) == 2
    books = drain(cluster, "moving", folder)
    assert_nothing_lost(books)
    print(f"\nmigration finished by the new leader, paused {done['paused_s']:.1f} s; books {books.summary()}")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def test_single_mode_imports_no_raft_library():
    """A single Nimbus (no --peers) never imports pysyncobj, so it starts no Raft thread."""
    code = (
        "import sys, threading\n"
        "from squall.ports import free_port\n"
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


# -- a leader cut off from the other replicas (iptables, needs root) ----------------------------


def iptables(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["iptables", "-w", "5", *args], capture_output=True, text=True, timeout=30)


@pytest.fixture
def firewall():
    """A chain of this run's own, jumped to from INPUT and OUTPUT; removed whatever happens.
    Yields a function that drops every TCP packet from or to a port (both directions, on lo)."""
    if os.geteuid() != 0:
        pytest.skip("cutting a replica off needs root (iptables)")
    if shutil.which("iptables") is None:
        pytest.skip("cutting a replica off needs iptables, which is not installed (CI installs it)")
    chain = f"SQHA{os.getpid()}"
    if iptables("-N", chain).returncode != 0:
        pytest.skip(f"iptables unusable here: {iptables('-L', '-n').stderr.strip()[:200]}")
    for hook in ("INPUT", "OUTPUT"):
        iptables("-I", hook, "-j", chain)

    def cut(port: int) -> None:
        for match in ("--sport", "--dport"):
            done = iptables("-A", chain, "-p", "tcp", match, str(port), "-j", "DROP")
            assert done.returncode == 0, done.stderr

    try:
        yield cut
    finally:
        for hook in ("INPUT", "OUTPUT"):
            iptables("-D", hook, "-j", chain)
        iptables("-F", chain)
        iptables("-X", chain)


def lead_with(cluster: LocalCluster, index: int) -> dict:
    """Make replica ``index`` the leader: freeze (SIGSTOP) whichever other replica leads, so the
    remaining two elect, and thaw it (it follows the higher term). Each election is a coin flip."""
    for _ in range(16):
        now = eventually(lambda: (s := status(cluster))["leader"] and s, timeout_s=30, what="a leader")
        current = cluster.replica_addresses.index(now["leader"])
        if current == index:
            return now
        pid = cluster.replica_pids()[current]
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            eventually(
                lambda now=now: status(cluster)["leader"] not in ("", now["leader"]),
                timeout_s=30,
                what="another leader",
            )
        finally:
            os.kill(pid, signal.SIGCONT)
        eventually(
            lambda current=current: status(cluster)["replicas"][current]["role"] == "follower",
            timeout_s=30,
            what="thawed one following",
        )
    raise AssertionError(f"replica {index} never won an election")


def test_a_leader_cut_off_stops_deciding_and_follows_after_healing(replicated, tmp_path, firewall):
    from squall.nimbus.replication import LEADER_FALLBACK_S, RAFT_PORT_OFFSET

    cluster = replicated
    folder = tmp_path / "ledger"
    placed = start_chain(cluster, "cut", folder, workers=3)
    pids = cluster.worker_pids()
    # pysyncobj connects each pair from the larger address to the smaller one, so the replica
    # with the smallest address is the server of every link it has: dropping its Raft port
    # (both directions) cuts it off from the others completely. Make that one lead.
    victim = min(range(3), key=lambda i: f"127.0.0.1:{cluster.replica_ports[i] + RAFT_PORT_OFFSET}")
    old = lead_with(cluster, victim)
    old_address = old["leader"]

    writer = zmq.Context.instance().socket(zmq.DEALER)
    writer.setsockopt(zmq.LINGER, 0)
    writer.connect(f"tcp://{old_address}")

    firewall(cluster.replica_ports[victim] + RAFT_PORT_OFFSET)
    cut_at = time.monotonic()
    # A write sent to it now is decided by a leader that can no longer commit: never acknowledged.
    writer.send(encode(M.SetActive(rid=11, name="cut", active=False)))

    def stepped_down() -> bool:
        own = ask(old_address, M.GetNimbusStatus(rid=12), timeout_s=0.3)  # a reply held behind the write is dropped
        if isinstance(own, M.NotLeader):  # it already knows of another leader
            return True
        assert isinstance(own, M.Reply)
        return {r["address"]: r["role"] for r in own.data["replicas"]}[old_address] != "leader"

    eventually(stepped_down, timeout_s=15, interval_s=0.05, what="the cut-off leader stepping down")
    stepped_s = time.monotonic() - cut_at
    answer = decode(writer.recv()) if writer.poll(500) else None
    writer.close(0)
    assert not (isinstance(answer, M.Reply) and answer.ok), f"a cut-off leader acknowledged a write: {answer}"
    assert "stops deciding" in cluster.log(f"nimbus-{victim + 1}")
    others = [a for a in cluster.replica_addresses if a != old_address]
    new = eventually(  # asked of the majority: the cut-off one answers with its own view (no leader)
        lambda: (s := status(cluster, others))["leader"] in others and s,
        timeout_s=30,
        what="the majority electing a leader",
    )
    assert new["term"] > old["term"]

    def boards_at_new_leader() -> bool:
        with NimbusClient(others, timeout_s=2) as c:
            return {s["id"] for s in c.cluster()["supervisors"] if s["alive"]} == set(cluster.node_ids)

    eventually(boards_at_new_leader, timeout_s=30, what="boards at the new leader")
    with NimbusClient(others, timeout_s=2) as c:
        assert next(t for t in c.list() if t["name"] == "cut")["status"] == "ACTIVE", "the cut-off write took effect"

    iptables("-F", f"SQHA{os.getpid()}")  # heal
    # Healed, it follows. (Its candidacies while cut off raised its term, so on return it may
    # depose the leader once, as Raft without pre-vote does; its log lacks what the majority
    # committed meanwhile, so it cannot win that election.)
    healed = eventually(
        lambda: (s := status(cluster, others))["replicas"][victim]["role"] == "follower" and s,
        timeout_s=60,
        what="the old leader following after healing",
    )
    assert healed["leader"] in others and healed["term"] >= new["term"], healed
    # Boards never acted on two leaders: each board's terms only went up, and every assignment
    # a board refused was of an older term than the one it followed.
    refused = 0
    for node in cluster.node_ids:
        for line in cluster.log(node).splitlines():
            if "refused assignment" in line:
                refused += 1
                offered, followed = (int(x) for x in re.findall(r"term (\d+)", line)[:2])
                assert offered < followed, line
    eventually(lambda: alive_boards(cluster) == set(cluster.node_ids), timeout_s=30, what="boards at the leader")
    assert eventually(lambda: running(cluster, "cut"), timeout_s=30) == placed, "placement or pids changed"
    assert cluster.worker_pids() == pids, "a worker was restarted"
    assert_nothing_lost(drain(cluster, "cut", folder))
    print(
        f"\nthe cut-off leader stepped down {stepped_s:.2f} s after the cut (fallback {LEADER_FALLBACK_S} s, "
        f"poll 0.05 s, shared machine); terms {old['term']} -> {new['term']}; {refused} stale assignment(s) refused"
    )
