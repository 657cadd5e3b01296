"""Standby first, on the state machine (no sockets): when a board dies, the workers it held
are recreated on the topology's standby boards — alive boards with free slots that run none
of its workers — before any board that already runs some; survivors keep their port."""

from __future__ import annotations

import pytest

from squall import messages as M
from squall.nimbus.placement import standby_caps
from squall.nimbus.state import NimbusState
from squall.nimbus.store import Store

CLI = b"cli"
PORTS = {"n1": [6700, 6701], "n2": [6700, 6701, 6702], "n3": [6700, 6701], "n4": [6700, 6701]}


def boot(nodes: list[str]) -> NimbusState:
    st = NimbusState(Store(":memory:"), {})
    for n in nodes:
        st.handle(n.encode(), M.RegisterSupervisor(n, f"host-{n}", PORTS[n], 1e9, 1e9, 4, 1024, 1), 0.0)
    return st


def submit(st: NimbusState, scheduler: str, workers: int) -> None:
    from squall.experiments.reference import chain_topology

    spec = chain_topology(3, 2).spec.to_dict()
    st.handle(CLI, M.SubmitTopology(1, "t", spec, b"code", scheduler, workers, {}), 0.0)


def workers(st: NimbusState) -> dict[tuple[str, int], frozenset[int]]:
    """(node, port) -> executors of the placement in force, or of the migration's target
    when survivors have to move too (then the repair migrates them live)."""
    mig = st.migrations.get("t")
    placement = mig.target if mig is not None else st.topologies["t"].placement
    out: dict[tuple[str, int], set[int]] = {}
    for ex, slot in placement.items():
        out.setdefault((slot.node, slot.port), set()).add(ex)
    return {k: frozenset(v) for k, v in out.items()}


def lose(st: NimbusState, dead: str, nodes: list[str]) -> None:
    """Every node but ``dead`` heartbeats; ``dead`` is declared dead at the next tick."""
    for n in nodes:
        if n != dead:
            st.handle(n.encode(), M.Heartbeat(n, 1, []), 5.0)
    st.tick(5.6)


def test_the_lost_worker_goes_to_the_standby_board_not_to_a_busy_one_with_a_free_slot():
    # Storm's order alone would pick n2 (3 slots, one used: as free as n3, and first by id).
    nodes = ["n1", "n2", "n3"]
    st = boot(nodes)
    submit(st, "round_robin", workers=2)
    before = workers(st)
    assert {n for n, _ in before} == {"n1", "n2"}
    lose(st, "n1", nodes)
    after = workers(st)
    assert {n for n, _ in after} == {"n2", "n3"}, after
    survivor = next(k for k in before if k[0] == "n2")
    assert after[survivor] == before[survivor]
    assert sorted(e for ex in after.values() for e in ex) == sorted(e for ex in before.values() for e in ex)
    (event,) = st.store.events("t")
    assert event["trigger"] == "node-lost" and "n1" in event["reason"]


@pytest.mark.parametrize("scheduler", ["round_robin", "offline", "online"])
def test_every_scheduler_repairs_onto_standby_boards_first(scheduler):
    nodes = ["n1", "n2", "n3", "n4"]
    st = boot(nodes)
    submit(st, scheduler, workers=2)
    before = workers(st)
    used = sorted({n for n, _ in before})
    standby = set(nodes) - set(used)
    assert standby, f"{scheduler} left no board unused"
    lose(st, used[0], nodes)
    after = workers(st)
    new_nodes = {n for n, _ in after} - {n for n, _ in before}
    assert new_nodes and new_nodes <= standby, (before, after)
    assert len(after) == len(before)


def test_without_room_on_standby_boards_the_scheduler_places_over_every_live_board():
    nodes = ["n1", "n3", "n4"]
    st = boot(nodes)
    submit(st, "round_robin", workers=4)  # n1 x2, n3 x1, n4 x1 or similar: n1 holds two
    before = workers(st)
    assert len(before) == 4
    dead = max(nodes, key=lambda n: sum(1 for k in before if k[0] == n))
    lose(st, dead, nodes)
    after = workers(st)
    assert len(after) == 4 and all(n != dead for n, _ in after)
    rec = st.topologies["t"]
    assert standby_caps(rec, st.supervisors, st.live_nodes(5.6), [], {}) is None  # nothing to recreate


def test_standby_caps_leave_survivor_boards_only_the_slots_they_use():
    nodes = ["n1", "n2", "n3"]
    st = boot(nodes)
    submit(st, "round_robin", workers=2)
    rec = st.topologies["t"]
    live = {"n2", "n3"}  # n1 gone
    assert standby_caps(rec, st.supervisors, live, [], {}) == {"n2": 1}
    # With n3's ports all held by a migration, there is no standby room: no caps.
    assert standby_caps(rec, st.supervisors, live, [], {"n3": {6700, 6701}}) is None


def test_a_requested_rebalance_uses_a_board_that_joined():
    st = boot(["n1", "n3"])
    submit(st, "round_robin", workers=2)
    assert {n for n, _ in workers(st)} == {"n1", "n3"}
    st.handle(b"n4", M.RegisterSupervisor("n4", "host-n4", PORTS["n4"], 1e9, 1e9, 4, 1024, 1), 1.0)
    st.tick(1.5)
    assert {n for n, _ in workers(st)} == {"n1", "n3"}  # joining alone changes nothing (as in Storm)
    reply = st.handle(CLI, M.RebalanceTopology(2, "t", None), 2.0)
    assert [c.msg.ok for c in reply if isinstance(c.msg, M.Reply)] == [True]
    assert "n4" in {n for n, _ in workers(st)}
    assert sorted(e for ex in workers(st).values() for e in ex) == list(range(8))
