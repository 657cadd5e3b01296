"""Values, JSON shapes, purity, and what raises."""

from __future__ import annotations

import pytest

from squall.rebalance import (
    Assignment,
    Executor,
    InfeasibleError,
    InvalidInputError,
    Node,
    SchedulerParams,
    Workload,
    evaluate,
    get_scheduler,
    nodes_from_list,
    workloads_from_json,
)
from squall.rebalance.reference import chain_workload
from tests.helpers import modules_loaded
from tests.rebalance.rebalance_helpers import nodes, wl


def test_importing_rebalance_loads_no_zmq_and_no_pymetis():
    assert modules_loaded("import squall.rebalance", ["zmq", "pymetis"]) == []


def test_workload_round_trips_through_json_and_is_canonical():
    w = chain_workload(3, 2, workers=2)
    assert Workload.from_dict(w.to_dict()) == w
    reordered = Workload(w.topology, 2, w.executors[::-1], w.traffic[::-1] + ((0, 2, 0.0),), w.load_hz[::-1], w.edges)
    assert reordered == w and hash(reordered) == hash(w)


def test_duplicate_traffic_rows_are_summed_and_self_rows_dropped():
    w = wl("t", 1, ["a", "b"], [(0, 1, 1.5), (0, 1, 2.5), (1, 1, 9.0)])
    assert w.traffic == ((0, 1, 4.0),)


def test_assignment_is_a_value_with_lookups():
    a = Assignment.of({("t", 0): 1, ("t", 1): 1, ("t", 2): 0}, {("t", 1): "a", ("t", 0): "b"})
    b = Assignment.from_dict(a.to_dict())
    assert a == b and hash(a) == hash(b) and {a: 1}[b] == 1
    assert a.executors_on("t", 1) == (0, 1) and a.node_of("t", 2) == "b" and a.workers_on("a") == (("t", 1),)
    moved = Assignment.of({("t", 0): 1, ("t", 1): 0, ("t", 2): 0}, {("t", 1): "a", ("t", 0): "b"})
    assert a.moved(moved) == (("t", 1),)


def test_restricting_or_merging_to_the_same_rows_returns_the_assignment_itself():
    """An assignment is immutable, so restricting it to all its topologies or merging it
    with an empty one returns it as it is (no copy of every row); anything else copies."""
    a = Assignment.of({("t", 0): 1, ("t", 1): 0}, {("t", 1): "a", ("t", 0): "b"})
    u = Assignment.of({("u", 0): 0}, {("u", 0): "a"})
    both = a.merge(u)
    assert a.restrict(["t"]) is a and a.restrict(["t", "v"]) is a
    assert a.merge(Assignment.empty()) is a and Assignment.empty().merge(a) is a
    assert both.restrict(["t"]) == a and both.restrict(["t"]) is not both
    assert both.restrict(["u"]) == u and both.restrict([]) == Assignment.empty()
    assert both.rows() == (("t", 0, 1, "a"), ("t", 1, 0, "b"), ("u", 0, 0, "a"))


def workload_data(**fields: object) -> dict[str, object]:
    """A valid one-executor workload as JSON data, with ``fields`` replaced (the fault under test)."""
    return {
        "topology": "t",
        "workers": 1,
        "executors": [{"id": 0, "component": "a"}],
        "traffic": [],
        "load_hz": [1.0],
        **fields,
    }


def test_the_base_of_the_malformed_cases_is_well_formed():
    (w,) = workloads_from_json(workload_data())
    assert (w.topology, w.workers, len(w.executors)) == ("t", 1, 1)


@pytest.mark.parametrize(
    "data, message",
    [
        pytest.param(
            {k: v for k, v in workload_data().items() if k != "topology"},
            r"topology: missing field",
            id="missing field",
        ),
        pytest.param(workload_data(workers="2"), r"workers: expected an integer", id="wrong type"),
        pytest.param(
            workload_data(traffic=[[0, 5, 1.0]]),
            r"traffic\[0\]\[1\]: unknown executor id 5",
            id="traffic names an unknown executor",
        ),
        pytest.param(workload_data(traffic=[[0, 0, -1.0]]), r"traffic\[0\]\[2\]: must be >= 0", id="negative rate"),
        pytest.param(
            workload_data(load_hz=[1.0, 2.0]), r"load_hz: has 2 values for 1 executors", id="load_hz length mismatch"
        ),
        pytest.param(
            workload_data(executors=[{"id": 0, "component": "a"}, {"id": 0, "component": "b"}], load_hz=[1.0, 2.0]),
            r"duplicate executor ids \[0\]",
            id="duplicate executor ids",
        ),
    ],
)
def test_malformed_workloads_name_the_field(data, message):
    with pytest.raises(InvalidInputError, match=message):
        workloads_from_json(data)


def test_duplicate_nodes_are_rejected():
    with pytest.raises(InvalidInputError, match="duplicate node id 'a'"):
        nodes_from_list([{"id": "a", "slots": 1, "capacity_hz": 1.0}] * 2)


def test_params_are_validated():
    with pytest.raises(InvalidInputError, match="alpha"):
        SchedulerParams(alpha=1.5)
    with pytest.raises(InvalidInputError, match="gamma"):
        SchedulerParams(gamma=0.5)


def test_unknown_scheduler_names_the_known_ones():
    with pytest.raises(KeyError, match="known: latency, offline, online, partition, round_robin"):
        get_scheduler("fastest")


# --- raise or place-and-report ------------------------------------------------------------

ALL = ["round_robin", "offline", "online", "partition"]


@pytest.mark.parametrize("name", ALL)
def test_strict_raises_when_workers_exceed_slots(name):
    w = wl("t", 4, ["x"] * 4)
    with pytest.raises(InfeasibleError, match=r"4 .*slots"):
        get_scheduler(name).schedule([w], nodes(("a", 3, 1e9)), SchedulerParams(strict=True), None)
    shrunk = get_scheduler(name).schedule([w], nodes(("a", 3, 1e9)), SchedulerParams(), None)
    assert len(shrunk.workers_of("t")) == 3


@pytest.mark.parametrize("name", ALL)
def test_fewer_slots_than_topologies_always_raises(name):
    with pytest.raises(InfeasibleError, match="slot"):
        get_scheduler(name).schedule(
            [wl("a", 1, ["x"]), wl("b", 1, ["x"])], nodes(("n", 1, 1e9)), SchedulerParams(), None
        )


@pytest.mark.parametrize("name", ALL)
def test_executor_heavier_than_every_node(name):
    w = wl("t", 2, ["big", "small"], [(0, 1, 1.0)], [2.5e9, 1e8])
    cluster = nodes(("a", 2, 1e9), ("b", 2, 2e9))
    with pytest.raises(InfeasibleError, match=r"executor 0 \(big\) needs 2.5e\+09 Hz.*'b'"):
        get_scheduler(name).schedule([w], cluster, SchedulerParams(strict=True), None)
    placed = get_scheduler(name).schedule([w], cluster, SchedulerParams(), None)
    assert evaluate(placed, [w], cluster).overloaded  # placed and reported, never dropped


@pytest.mark.parametrize("name", ALL)
def test_total_load_beyond_all_capacity(name):
    w = wl("t", 2, ["x"] * 4, [], [8e8] * 4)
    cluster = nodes(("a", 2, 1e9), ("b", 2, 1e9))
    with pytest.raises(InfeasibleError, match=r"total load 3\.2e\+09 Hz exceeds total capacity 2e\+09"):
        get_scheduler(name).schedule([w], cluster, SchedulerParams(strict=True), None)
    placed = get_scheduler(name).schedule([w], cluster, SchedulerParams(), None)
    assert sorted(e for _, e, _ in placed.executors) == [0, 1, 2, 3]


@pytest.mark.parametrize("name", ALL)
def test_unknown_node_in_current_raises(name):
    current = Assignment.of({("t", 0): 0}, {("t", 0): "ghost"})
    with pytest.raises(InfeasibleError, match="unknown node.*'ghost'"):
        get_scheduler(name).schedule([wl("t", 1, ["x"])], nodes(("a", 1, 1e9)), SchedulerParams(), current)


def test_online_strict_raises_when_greedy_must_overload():
    # Three 0.6 GHz executors talk to each other; two 1 GHz nodes cannot hold three
    # workers within capacity (one node would carry 1.2 GHz).
    w = wl("t", 3, ["x"] * 3, [(0, 1, 1.0), (1, 2, 1.0)], [6e8] * 3)
    with pytest.raises(InfeasibleError, match="worker"):
        get_scheduler("online").schedule([w], nodes(("a", 2, 1e9), ("b", 2, 1e9)), SchedulerParams(strict=True), None)


def test_values_validate_directly_built_input():
    with pytest.raises(InvalidInputError, match="capacity_hz"):
        Node("a", 1, 0.0)
    with pytest.raises(InvalidInputError, match="overlap"):
        Workload("t", 1, (Executor(0, "a", (1, 2)), Executor(1, "a", (2, 3))), (), (0.0, 0.0))
