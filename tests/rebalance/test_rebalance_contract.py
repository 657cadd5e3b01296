"""The contract every scheduler keeps, run against all of them."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from squall.rebalance import SCHEDULERS, Node, SchedulerParams, Workload, evaluate, get_scheduler
from squall.rebalance.reference import chain_workload, pi_cluster, random_workload
from tests.rebalance.rebalance_helpers import assert_valid, expected_workers, nodes, wl

NAMES = sorted(SCHEDULERS)


def _cases() -> dict[str, tuple[tuple[Workload, ...], tuple[Node, ...]]]:
    return {
        "chain 4x2 on 4 boards": ((chain_workload(4, 2, workers=4),), pi_cluster(4)),
        "chain 5x4 on 5 mixed boards": ((chain_workload(5, 4, workers=5, skew=1.0),), pi_cluster(5, True)),
        "two topologies share the boards": (
            (chain_workload(3, 3, workers=3, name="a"), random_workload(30, 4, seed=3, name="b")),
            pi_cluster(6, True),
        ),
        "no traffic at all": ((wl("quiet", 3, ["x"] * 7, loads=[1e8] * 7),), pi_cluster(3)),
        "more workers than executors": ((chain_workload(2, 2, workers=9),), pi_cluster(4)),
        "more workers than slots": ((chain_workload(6, 4, workers=12),), pi_cluster(3, True)),
    }


CASES = _cases()


@pytest.fixture(params=NAMES)
def scheduler(request):
    return get_scheduler(request.param)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_executor_placed_once_within_slots(scheduler, case):
    workloads, cluster = CASES[case]
    a = scheduler.schedule(workloads, cluster, SchedulerParams(), None)
    assert_valid(a, workloads, cluster)


@pytest.mark.parametrize("case", sorted(CASES))
def test_worker_count_is_as_asked_or_as_many_as_fit(scheduler, case):
    workloads, cluster = CASES[case]
    a = scheduler.schedule(workloads, cluster, SchedulerParams(), None)
    want = expected_workers(workloads, cluster)
    if not scheduler.fills_workers:  # workers is an upper bound (latency merges workers)
        assert all(1 <= len(a.workers_of(t)) <= (want or {}).get(t, len(a.workers)) for t in a.topologies())
    elif want is not None:
        assert {t: len(a.workers_of(t)) for t in want} == want
    else:
        assert len(a.workers) == sum(n.slots for n in cluster)


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_input_same_assignment(scheduler, case):
    workloads, cluster = CASES[case]
    first = scheduler.schedule(workloads, cluster, SchedulerParams(), None)
    second = scheduler.schedule(workloads, cluster, SchedulerParams(), None)
    assert first == second and hash(first) == hash(second)


@pytest.mark.parametrize("case", sorted(CASES))
def test_input_order_does_not_change_the_result(scheduler, case):
    workloads, cluster = CASES[case]
    rng = random.Random(7)
    shuffled = []
    for w in workloads:
        rows, execs = list(w.traffic), list(zip(w.executors, w.load_hz))
        rng.shuffle(rows)
        rng.shuffle(execs)
        shuffled.append(
            Workload(
                w.topology, w.workers, tuple(e for e, _ in execs), tuple(rows), tuple(x for _, x in execs), w.edges
            )
        )
    assert tuple(shuffled) == workloads  # canonical form hides the order...
    nodes_shuffled = list(cluster)
    rng.shuffle(nodes_shuffled)
    # ...and so must the schedulers, for nodes and workloads too.
    expected = scheduler.schedule(workloads, cluster, SchedulerParams(), None)
    assert scheduler.schedule(shuffled[::-1], nodes_shuffled, SchedulerParams(), None) == expected


def test_capacity_respected_when_a_placement_exists(scheduler):
    # Round robin would put two 1.5 GHz executors on the 2 GHz board; a 4 GHz board can
    # take the pair, so a placement within capacity exists.
    w = wl("t", 2, ["a", "a", "b", "b"], [(0, 2, 10.0), (1, 3, 10.0)], [1.5e9, 1.5e9, 1e8, 1e8])
    cluster = nodes(("big", 2, 4.0e9), ("small", 2, 2.0e9))
    placed = scheduler.schedule([w], cluster, SchedulerParams(), None)
    cost = evaluate(placed, [w], cluster)
    load_on = dict.fromkeys((n.id for n in cluster), 0.0)
    for ex, load in zip(w.executors, w.load_hz):
        load_on[placed.node_of("t", ex.id)] += load
    excess = {n.id: load_on[n.id] - n.capacity_hz for n in cluster if load_on[n.id] > n.capacity_hz}
    if scheduler.uses_load:
        assert excess == {} and cost.overloaded == ()
    else:  # capacity-blind by design: the overload is reported, exactly, not avoided
        assert cost.overloaded == tuple(sorted(excess))
        assert cost.overload_hz == pytest.approx(sum(excess.values()))


@st.composite
def dag_and_cluster(draw):
    n_comp = draw(st.integers(2, 6))
    reps = [draw(st.integers(1, 4)) for _ in range(n_comp)]
    comps = [c for k, r in enumerate(reps) for c in [f"c{k}"] * r]
    first = {k: sum(reps[:k]) for k in range(n_comp)}
    traffic, edges = [], []
    for k in range(1, n_comp):
        for p in sorted(set(draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=2)))):
            edges.append((f"c{p}", f"c{k}"))
            for i in range(first[p], first[p] + reps[p]):
                for j in range(first[k], first[k] + reps[k]):
                    traffic.append((i, j, float(draw(st.integers(0, 500)))))
    loads = [float(draw(st.integers(0, 10))) * 1e7 for _ in comps]
    work = wl("t", draw(st.integers(1, 8)), comps, traffic, loads, edges)
    total = max(1.0, sum(loads))
    cluster = tuple(
        Node(f"n{k}", draw(st.integers(1, 4)), total * draw(st.sampled_from([1.0, 1.5, 3.0])))
        for k in range(draw(st.integers(1, 6)))
    )
    return work, cluster


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=dag_and_cluster(), alpha=st.sampled_from([0.0, 0.5, 1.0]), beta=st.sampled_from([0.0, 0.5, 1.0]))
def test_random_dags_keep_the_contract(name, case, alpha, beta):
    work, cluster = case
    params = SchedulerParams(alpha=alpha, beta=beta)
    s = get_scheduler(name)
    a = s.schedule([work], cluster, params, None)
    assert_valid(a, [work], cluster)
    assert s.schedule([work], cluster, params, None) == a
    want = expected_workers([work], cluster)
    if want is not None:
        if s.fills_workers:
            assert len(a.workers_of("t")) == want["t"]
        else:
            assert 1 <= len(a.workers_of("t")) <= want["t"]
    if s.uses_load:  # every node here can carry the whole load alone
        assert evaluate(a, [work], cluster).overloaded == ()
