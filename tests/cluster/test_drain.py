"""The drain of a live change ends by quiescence, not by its timeout — also for the second
change of a topology, after the first one removed a worker (whose counts left with it).

On a real local cluster: the numbered stream of ``test_rebalance_live`` runs on 3 workers;
one live change takes it to 2 workers (a worker is stopped), a second back to 3 (a new
worker starts). Each change's event says how its drain ended (``drain``), so the test reads
a positive signal: "quiescent" (every worker paused, nothing queued, every data link's last
frame received) rather than the absence of a note.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.cluster.test_rebalance_live import lines, snapshots_sent_once, write_topology
from tests.helpers import eventually, running_workers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

DRAIN_S = 20.0  # far above a quiescent drain (about 2 s): a timed-out one is unmistakable


@pytest.fixture(scope="module")
def drain_cluster(tmp_path_factory):
    from squall.localcluster import LocalCluster

    with LocalCluster(supervisors=3, slots=2, data_dir=tmp_path_factory.mktemp("drain")) as c:
        yield c


def finished(c, name: str, event_id: int) -> dict | None:
    (e,) = [e for e in c.events(name) if e["id"] == event_id]
    return e if e.get("paused_s") is not None else None


def change(c, name: str, workers: int) -> dict:
    """Request a live change to ``workers`` workers; its event once the migration is done."""
    known = {e["id"] for e in c.events(name)}
    c.rebalance(name, workers=workers)
    (event,) = [e for e in c.events(name) if e["id"] not in known]
    assert event["decision"] == "applied" and event["moved"], event
    return eventually(lambda: finished(c, name, event["id"]), timeout_s=90, what=f"change to {workers} workers done")


def streaming(tmp_path: Path) -> tuple[Path, dict]:
    """The folder the numbered stream writes its acks to, and its conf (drain timeout DRAIN_S)."""
    out = tmp_path / "out"
    out.mkdir()
    conf = {"live.total": 10**6, "live.rate": 200.0, "live.out": str(out), "topology.migration.drain.secs": DRAIN_S}
    return out, conf


def acked(out: Path) -> int:
    """Trees the two spout tasks have seen acked so far."""
    return sum(len(lines(out / f"spout-{t}.acked")) for t in (1, 2))


def test_every_change_drains_by_quiescence_after_a_worker_left_and_one_came(drain_cluster, tmp_path):
    out, conf = streaming(tmp_path)
    name = drain_cluster.submit(write_topology(tmp_path), name="drains", workers=3, conf=conf)
    three = eventually(lambda: running_workers(drain_cluster, name), what="3 workers running")
    assert len(three) == 3
    eventually(lambda: acked(out) > 300, what="stream under way")

    with drain_cluster.client() as c:
        first = change(c, name, workers=2)
        two = eventually(lambda: (lambda w: w if w and len(w) == 2 else None)(running_workers(drain_cluster, name)))
        # Traffic over the new placement before the next change, so its links carry frames.
        so_far = acked(out)
        eventually(lambda: acked(out) > so_far + 300, what="flowing")
        second = change(c, name, workers=3)
        c.kill(name, 0)

    assert set(three) - set(two), "the first change stopped no worker: nothing to reproduce"
    for e in (first, second):
        assert e["drain"] == "quiescent", e
        assert not [n for n in e["notes"] if "drain timed out" in n], e["notes"]
        # The first change's emptied worker stayed through ACQUIRE and reported nothing
        # queued (otherwise ACQUIRE names it at its timeout).
        assert not [n for n in e["notes"] if "emptied" in n or "not running" in n], e["notes"]
        assert e["drain_s"] < DRAIN_S / 2, e
        # Each moved executor's snapshot went down once, to running and to new workers alike.
        assert snapshots_sent_once(e), e


def test_a_change_after_a_worker_restarted_drains_by_quiescence(drain_cluster, tmp_path):
    """A worker killed and restarted by its supervisor starts its counts afresh; the links
    it sends on are new and the ones it receives on continue, so the drain still ends exactly."""
    out, conf = streaming(tmp_path)
    name = drain_cluster.submit(write_topology(tmp_path), name="restarts", workers=3, conf=conf)
    before = eventually(lambda: running_workers(drain_cluster, name), what="3 workers running")
    eventually(lambda: acked(out) > 300, what="stream under way")
    key, (pid, _) = sorted(before.items())[-1]
    os.kill(pid, signal.SIGKILL)

    def restarted() -> bool:
        now = running_workers(drain_cluster, name)
        return bool(now and key in now and now[key][0] != pid)

    eventually(restarted, timeout_s=30, what=f"worker {key} restarted")
    so_far = acked(out)
    eventually(lambda: acked(out) > so_far + 300, what="flowing again")
    with drain_cluster.client() as c:
        done = change(c, name, workers=2)
        c.kill(name, 0)
    assert done["drain"] == "quiescent", done
    assert done["drain_s"] < DRAIN_S / 2, done
