"""A fixed scenario of events through the pure decisions (``on_message`` / ``on_tick``):
boards register, topologies are submitted, heartbeats carry metrics, the online loop
rebalances, a board falls silent and is repaired, a topology is rebalanced and another
killed. Run as a module it prints a digest of every command decided, so a test can compare
runs under different hash seeds (replicas must decide alike from the same log)."""

from __future__ import annotations

import hashlib
from typing import Any

from squall import messages as M
from squall.nimbus.state import NimbusState
from squall.nimbus.store import Store
from tests.nimbus.live_helpers import CROSSING, FAST, worker_metrics
from tests.nimbus.nimbus_helpers import CLI, chain_spec, peer_of


def heartbeats(st: NimbusState, now: float, silent: set[str]) -> list[tuple[bytes, Any]]:
    """Every live board reports the workers last declared to it, with metrics."""
    out = []
    for node in sorted(st.supervisors):
        sup = st.supervisors[node]
        if node in silent or sup.peer is None or sup.dead:
            continue
        reports = [
            M.WorkerReport(
                wa.topology,
                wa.port,
                1000 + wa.port,
                "running",
                wa.assignment_version,
                metrics=worker_metrics(wa.executors, now, CROSSING, {}, 0, 100, 100, [(0.0, 5.0)]),
                paused=wa.paused,
            )
            for wa in st.declared(node)
        ]
        out.append((peer_of(node), M.Heartbeat(node, 1, reports)))
    return out


def run_scenario() -> list[Any]:
    """Every command the scenario's events produced, in order (nothing carried out)."""
    st = NimbusState(Store(":memory:"), {})
    cmds: list[Any] = []

    def message(peer: bytes, msg: Any, now: float) -> None:
        cmds.extend(st.on_message(peer, msg, now))

    for node in ("n1", "n2", "n3"):
        message(peer_of(node), M.RegisterSupervisor(node, f"host-{node}", [6700, 6701], 1e9, 1e9, 4, 1024, 100), 0.0)
    message(CLI, M.SubmitTopology(1, "t", chain_spec(), b"code-t", "online", 2, dict(FAST)), 0.0)
    message(CLI, M.SubmitTopology(2, "r", chain_spec(2, 1), b"code-r", "round_robin", 2, {}), 0.0)
    silent: set[str] = set()
    for step in range(1, 61):
        now = float(step)
        if step == 35:
            silent.add("n3")  # declared dead 5 s later: its workers are repaired elsewhere
        if step == 45:
            message(CLI, M.RebalanceTopology(3, "t", workers=3), now)
        if step == 50:
            message(CLI, M.KillTopology(4, "r", 2.0), now)
        for peer, hb in heartbeats(st, now, silent):
            message(peer, hb, now)
        cmds.extend(st.on_tick(now))
    return cmds


def digest(cmds: list[Any]) -> str:
    return hashlib.sha256("\n".join(repr(c) for c in cmds).encode()).hexdigest()


if __name__ == "__main__":
    print(digest(run_scenario()))
