"""The placement value: immutable, compared by content, one definition of what moves and of
the traffic that crosses workers and boards (the pages show what the cost model prices)."""

from __future__ import annotations

import pytest

from squall.nimbus.metrics import Rates
from squall.nimbus.records import Placement, Slot
from squall.nimbus.views import traffic_split
from squall.rebalance import Node, Workload, evaluate
from squall.rebalance.model import Executor
from tests.nimbus.nimbus_helpers import new_state, register, submit

A, B, C = Slot(0, "n1", 6700), Slot(1, "n1", 6701), Slot(2, "n2", 6700)


def test_a_placement_is_a_value():
    p = Placement({2: C, 0: A, 1: B})
    assert list(p) == [0, 1, 2] and p == {0: A, 1: B, 2: C} and p == Placement({0: A, 1: B, 2: C})
    assert hash(p) == hash(Placement(dict(p))) and len({p, Placement(p)}) == 1
    assert p != Placement({0: A, 1: B, 2: B})
    with pytest.raises(TypeError):
        p[0] = B  # type: ignore[index]


def test_what_moves_is_what_changes_node_or_port():
    old = Placement({0: A, 1: B, 2: C})
    # Executor 1 keeps its port under another worker label: it does not move; 2 changes port; 3 is new.
    new = {0: A, 1: Slot(7, "n1", 6701), 2: Slot(2, "n2", 6701), 3: C}
    assert old.moved_to(new) == (2, 3) and old.moved_to(old) == ()


def test_workers_group_executors_by_node_and_port():
    assert Placement({0: A, 3: A, 1: C}).workers() == {("n1", 6700): [0, 3], ("n2", 6700): [1]}


def test_a_record_holds_a_placement_whatever_it_is_given():
    st = new_state()
    register(st, "n1", [6700, 6701], 0.0)
    submit(st, "t", 0.0)
    rec = st.topologies["t"]
    assert isinstance(rec.placement, Placement)
    rec.placement = {0: A}
    assert isinstance(rec.placement, Placement) and rec.placement == {0: A}


def test_the_pages_count_crossing_traffic_as_the_cost_model_does():
    placement = Placement({0: A, 1: B, 2: C, 3: A})
    traffic = {(0, 1): 10.0, (1, 2): 5.0, (0, 3): 7.0, (3, 2): 2.5}
    rates = Rates(traffic=traffic)
    st = new_state()
    register(st, "n1", [6700, 6701], 0.0)
    submit(st, "t", 0.0, workers=2)
    rec = st.topologies["t"]
    rec.placement = {**{e.id: A for e in rec.executors()}, **placement}
    iw, inn = traffic_split(rec, rates)
    workload = Workload(
        "t",
        2,
        tuple(Executor(e.id, e.component) for e in rec.executors()),
        tuple((s, d, r) for (s, d), r in traffic.items()),
        tuple(0.0 for _ in rec.executors()),
    )
    cost = evaluate(rec.placement.assignment("t"), [workload], [Node("n1", 2, 1e9), Node("n2", 2, 1e9)])
    assert (iw, inn) == (cost.inter_worker_tps, cost.inter_node_tps) == (17.5, 7.5)
