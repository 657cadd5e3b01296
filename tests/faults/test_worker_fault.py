"""A worker killed with SIGKILL: its supervisor starts it again within 2 s, the spout replays
the trees that died with it, and every emitted id is acked at least once (exact counts from
the ledger chain's books; duplicates are counted and reported, not forbidden)."""

from __future__ import annotations

import time

import pytest

from squall.localcluster import LocalCluster
from squall.topology.spec import ACKER_COMPONENT
from tests.faults.fault_helpers import assert_nothing_lost, drain, running, start_chain
from tests.helpers import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def cluster(tmp_path):
    with LocalCluster(supervisors=2, slots=2, data_dir=tmp_path / "cluster") as c:
        yield c


def test_a_killed_worker_is_back_within_2_s_and_nothing_is_lost(cluster, tmp_path):
    folder = tmp_path / "ledger"
    before = start_chain(cluster, "crash", folder, workers=3)
    with cluster.client() as c:
        components = {e["id"]: e["component"] for e in c.assignment("crash")["executors"]}
    # The worker holding a spout executor: its in-flight trees must come back by replay.
    (node, port), (pid, _) = next(
        (k, v) for k, v in sorted(before.items()) if any(components[x] == "spout" for x in v[1])
    )
    killed_at = time.monotonic()
    assert cluster.kill_worker(node, port) == pid
    new_pid = eventually(
        lambda: (lambda p: p if p and p != pid else None)(cluster.worker_pids(node).get((node, port))),
        timeout_s=5,
        interval_s=0.02,
        what="worker restarted",
    )
    restart_s = time.monotonic() - killed_at
    assert restart_s < 2.0, f"worker restarted after {restart_s:.2f} s"
    after = eventually(
        lambda: (lambda r: r if r and r[(node, port)][0] == new_pid else None)(running(cluster, "crash")),
        what="the restarted worker reports",
    )
    assert {k: v[1] for k, v in after.items()} == {k: v[1] for k, v in before.items()}, "executors moved"
    assert {k: v[0] for k, v in after.items() if k != (node, port)} == {
        k: v[0] for k, v in before.items() if k != (node, port)
    }, "other workers restarted"
    # A second kill, of a worker without spouts (bolts and or ackers): trees time out and replay.
    others = [
        k for k, v in sorted(after.items()) if k != (node, port) and not any(components[x] == "spout" for x in v[1])
    ]
    if others:
        victim, (victim_pid, _) = others[0], after[others[0]]
        assert cluster.kill_worker(*victim) == victim_pid
        # Its supervisor saw it die and started another: the kill took effect before the drain.
        eventually(
            lambda: (lambda r: r is not None and r[victim][0] != victim_pid)(running(cluster, "crash")),
            what="the second killed worker restarted",
        )
    books = drain(cluster, "crash", folder)
    assert_nothing_lost(books)
    print(
        f"\nworker restart {restart_s:.2f} s; books {books.summary()}; "
        f"acker executors present: {ACKER_COMPONENT in components.values()}"
    )
