"""Boards lost and back, on a real local cluster with the ledger chain:

* a board killed (supervisor and workers, kill -9) is declared dead after
  ``nimbus.supervisor.timeout.secs`` (5 s) and its workers are recreated on a standby board
  (one running none of the topology's workers), the others keep their process;
* the board coming back is used by the next ``rebalance`` (Storm would leave it idle);
* a board whose link is cut (its processes stopped with SIGSTOP) is replaced the same way,
  and when it thaws its stale workers are stopped;
* through all of it, every emitted id is acked at least once (duplicates reported).
"""

from __future__ import annotations

import time

import pytest

from squall.localcluster import LocalCluster
from tests.faults.fault_helpers import assert_nothing_lost, drain, running, start_chain
from tests.helpers import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


@pytest.fixture
def cluster(tmp_path):
    with LocalCluster(supervisors=4, slots=2, data_dir=tmp_path / "cluster") as c:
        yield c


def nodes_of(placed) -> set[str]:
    return {node for node, _ in placed}


def without(node: str, cluster: LocalCluster):
    """The topology's workers once all run and none is on ``node``."""

    def check():
        placed = running(cluster, "boards")
        return placed if placed and node not in nodes_of(placed) else None

    return check


def test_board_lost_goes_to_standby_then_returns_and_a_cut_link_heals(cluster, tmp_path):
    folder = tmp_path / "ledger"
    before = start_chain(cluster, "boards", folder, workers=2)
    used = sorted(nodes_of(before))
    standby = set(cluster.node_ids) - set(used)
    assert len(used) == 2 and standby

    lost = used[0]
    cluster.kill_board(lost)
    killed_at = time.monotonic()
    after = eventually(without(lost, cluster), timeout_s=30, interval_s=0.1, what="repaired")
    recovered_s = time.monotonic() - killed_at
    assert 4.0 < recovered_s < 15.0, f"running again {recovered_s:.1f} s after the board loss"
    assert nodes_of(after) - {used[1]} <= standby, f"not on a standby board: {after}"
    survivor = {k: v for k, v in before.items() if k[0] == used[1]}
    assert all(after.get(k) == v for k, v in survivor.items()), "the surviving worker was restarted"
    with cluster.client() as c:
        lost_events = [e for e in c.events("boards") if e["trigger"] == "node-lost"]
    assert lost_events and lost in lost_events[0]["reason"]

    cluster.start_supervisor(lost)  # the board comes back (fresh ports)
    eventually(
        lambda: any(s["id"] == lost and s["alive"] for s in cluster.client().cluster()["supervisors"]),
        what="board back",
    )
    assert lost not in nodes_of(running(cluster, "boards"))  # idle until a rebalance
    with cluster.client() as c:
        c.rebalance("boards")
    back = eventually(
        lambda: (lambda p: p if p and lost in nodes_of(p) else None)(running(cluster, "boards")),
        timeout_s=40,
        what="the returned board hosts workers after the rebalance",
    )

    cut = sorted(nodes_of(back) - {lost})[0]
    cluster.freeze_board(cut)
    eventually(without(cut, cluster), timeout_s=30, what="repaired after a cut link")
    cluster.thaw_board(cut)
    eventually(
        lambda: not any(k[0] == cut for k in cluster.worker_pids(cut)) or None,
        timeout_s=20,
        what="stale workers of the thawed board stopped",
    )

    books = drain(cluster, "boards", folder, timeout_s=60)
    assert_nothing_lost(books)
    print(f"\nboard loss -> running again in {recovered_s:.1f} s; books {books.summary()}")
