"""Shared by the fault tests: a cluster running the ledger chain, waits, and the books.

Every fault test reads exact counts from the chain's ledger folder
(:mod:`squall.ledger_topology`): ids emitted, acked (and how often), delivered to the sinks.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from squall import ledger_topology as lt
from squall.localcluster import LocalCluster
from tests.helpers import eventually, running_workers

# Fast replays: a tree lost with a worker fails after this many seconds, not Storm's 30.
FAULT_CONF = {"topology.message.timeout.secs": 4, "ledger.rate": 100}


running = running_workers  # the fault tests' name for it


def mutate(frame: bytes, data: st.DataObject) -> bytes:
    """``frame`` with 1 to 4 random edits drawn from ``data``: a byte flipped, the tail cut,
    or 1 to 8 random bytes inserted."""
    out = bytearray(frame)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(0, len(out) - 1)))
        if kind == "flip" and out:
            out[pos] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del out[pos:]
        else:
            out[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    return bytes(out)


def start_chain(cluster: LocalCluster, name: str, folder: Path, workers: int, **conf: Any) -> dict:
    """Submit the ledger chain, wait until every worker runs and tuples reach the sinks."""
    folder.mkdir(parents=True, exist_ok=True)
    with cluster.client(timeout_s=15) as c:
        lt.submit(c, name, folder, workers, conf={**FAULT_CONF, **conf})
    placed = eventually(lambda: running(cluster, name), what=f"{name} running")
    eventually(lambda: len(lt.read_books(folder).acked) > 100, what="tuples acked")
    return placed


def drain(cluster: LocalCluster, name: str, folder: Path, timeout_s: float = 40.0) -> lt.Books:
    """Deactivate ``name`` and wait until every emitted id was acked; the final books."""
    with cluster.client() as c:
        c.set_active(name, False)

    def settled() -> lt.Books | None:
        books = lt.read_books(folder)
        return books if books.emitted and not books.missing else None

    eventually(settled, timeout_s=timeout_s, interval_s=0.25, what="every emitted id acked")
    time.sleep(0.5)  # late duplicates, if any, are counted too
    return lt.read_books(folder)


def heard_from_every_supervisor_for(cluster: LocalCluster, seconds: float, timeout_s: float = 60.0) -> None:
    """Wait until Nimbus has had heartbeats from every supervisor spanning ``seconds`` more of
    its own clock: the positive signal that Nimbus and the boards ran their loops (where a
    restart, a reassignment or a storm would happen) for that long, however slow the machine."""

    def last_seen() -> dict[str, float] | None:
        """Supervisor id -> its latest heartbeat on Nimbus's clock, once every one has sent one."""
        with cluster.client() as c:
            seen = {s["id"]: s["last_seen"] for s in c.cluster()["supervisors"]}
        return seen if seen and None not in seen.values() else None

    start = eventually(last_seen, timeout_s=timeout_s, what="a heartbeat from every supervisor")

    def spanned() -> bool:
        now = last_seen() or {}
        assert all(now.get(sid, seen) - seen >= seconds for sid, seen in start.items()), (start, now)
        return True

    eventually(spanned, timeout_s=timeout_s, interval_s=0.25, what=f"heartbeats spanning {seconds:g} s")


def assert_nothing_lost(books: lt.Books) -> None:
    assert books.emitted, "nothing was emitted"
    assert not books.missing, f"{len(books.missing)} emitted ids never acked: {sorted(books.missing)[:10]}"
    assert not books.sink_missing, f"{len(books.sink_missing)} acked ids never reached a sink"
