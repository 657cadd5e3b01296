"""round_robin, offline and partition: table tests."""

from __future__ import annotations

import pytest

from squall.rebalance import Assignment, SchedulerParams, evaluate, offline, partition, round_robin
from squall.rebalance.reference import chain_workload, pi_cluster
from squall.rebalance.round_robin import storm_slot_order
from tests.rebalance.rebalance_helpers import nodes, wl


@pytest.mark.parametrize(
    "free, order",
    [
        pytest.param(
            {"s1": 2, "s2": 3, "s3": 4},
            ["s3", "s2", "s1", "s3", "s2", "s1", "s3", "s2", "s3"],
            id="round robin interleaves nodes as Storm does",
        ),
        pytest.param({"b": 2, "a": 2, "c": 1}, ["a", "b", "c", "a", "b"], id="equal counts keep node id order"),
        pytest.param({"a": 0, "b": 1}, ["b"], id="a full node offers no slot"),
    ],
)
def test_storm_slot_order(free, order):
    assert storm_slot_order(free) == order


def test_round_robin_deals_executors_by_start_task_over_the_first_w_slots():
    w = wl("t", 3, ["x"] * 7)
    a = round_robin.schedule([w], nodes(("a", 2, 1e9), ("b", 3, 1e9)))
    # slots: b, a, b (first 3 of b a b a b); executor i -> slot i mod 3
    assert [a.worker_of("t", e) for e in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    assert [a.node_of_worker("t", k) for k in range(3)] == ["b", "a", "b"]


def test_round_robin_skips_slots_held_by_other_topologies():
    other = Assignment.of({("old", 0): 0, ("old", 1): 1}, {("old", 0): "b", ("old", 1): "b"})
    w = wl("t", 2, ["x"] * 2)
    a = round_robin.schedule([w], nodes(("a", 2, 1e9), ("b", 3, 1e9)), SchedulerParams(), other)
    # free: a 2, b 1 -> a, b
    assert [a.node_of("t", 0), a.node_of("t", 1)] == ["a", "b"]
    assert a.restrict(["old"]) == other


def test_round_robin_keeps_live_executors_and_places_only_new_ones():
    current = Assignment.of({("t", 0): 4, ("t", 1): 4}, {("t", 4): "a"})
    w = wl("t", 2, ["x"] * 3)
    a = round_robin.schedule([w], nodes(("a", 2, 1e9), ("b", 2, 1e9)), SchedulerParams(), current)
    assert a.worker_of("t", 0) == a.worker_of("t", 1) == 4 and a.node_of("t", 0) == "a"
    assert a.worker_of("t", 2) == 5 and a.node_of("t", 2) == "b"


def test_offline_follows_inputs_before_epsilon():
    # 3 components x 2 on 2 slots, epsilon=1 (never prefer empty): each bolt executor
    # goes where its input already runs, so the chain stays inside the two workers.
    w = chain_workload(3, 2, workers=2)
    a = offline.schedule([w], nodes(("a", 1, 1e10), ("b", 1, 1e10)), SchedulerParams(epsilon=1.0))
    for k in range(2):
        assert a.executors_on("chain", k) != ()
    assert {a.worker_of("chain", 0), a.worker_of("chain", 1)} == {0, 1}
    assert evaluate(a, [w], nodes(("a", 1, 1e10), ("b", 1, 1e10))).inter_worker_tps < sum(r for _, _, r in w.traffic)


def test_offline_prefers_empty_slots_from_epsilon_on():
    # 4 components x 1 on 2 slots, M = 3 with alpha=1.
    w = wl("t", 2, ["s", "b", "c", "d"], edges=[("s", "b"), ("b", "c"), ("c", "d")])
    cluster = nodes(("a", 4, 1e10))
    packed = offline.schedule([w], cluster, SchedulerParams(alpha=1.0, epsilon=1.0))
    spread = offline.schedule([w], cluster, SchedulerParams(alpha=1.0, epsilon=0.0))
    # epsilon=1: every bolt follows its input until the slot is full (3), then moves on.
    assert [packed.executors_on("t", k) for k in (0, 1)] == [(0, 1, 2), (3,)]
    # epsilon=0: the empty slot is taken first, then the chain follows its input there.
    assert [spread.executors_on("t", k) for k in (0, 1)] == [(0,), (1, 2, 3)]


def test_offline_derives_component_edges_from_traffic_when_absent():
    w = wl("t", 2, ["s", "s", "b", "b"], [(0, 2, 1.0), (1, 3, 1.0)])
    assert w.component_edges() == (("s", "b"),)


def test_partition_is_deterministic_and_cuts_no_more_than_round_robin():
    w = chain_workload(6, 4, workers=8, skew=1.0)
    cluster = pi_cluster(8, heterogeneous=True)
    first = partition.schedule([w], cluster)
    assert first == partition.schedule([w], cluster)
    rr = evaluate(round_robin.schedule([w], cluster), [w], cluster)
    assert evaluate(first, [w], cluster).inter_node_tps <= rr.inter_node_tps


def test_partition_without_traffic_balances_load():
    w = wl("t", 2, ["x"] * 4, loads=[4e8, 1e8, 1e8, 2e8])
    a = partition.schedule([w], nodes(("a", 2, 1e10)))
    loads = sorted(sum(w.load_of(e) for e in a.executors_on("t", k)) for k in a.workers_of("t"))
    assert loads == [4e8, 4e8]
