"""Worker ids that move the fewest executors: the renaming is optimal (checked against every
renaming on small cases), never moves more than the proposal's own ids, and changes nothing
but ids."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from squall.rebalance import SCHEDULERS, Assignment, SchedulerParams
from squall.rebalance.reference import chain_workload, pi_cluster, random_workload
from squall.rebalance.relabel import keep_worker_ids


def shape(a: Assignment) -> set[tuple[str, str, frozenset[int]]]:
    """What a renaming of workers must not change: who shares a worker, and on which node."""
    return {(t, a.node_of_worker(t, w), frozenset(a.executors_on(t, w))) for t, w, _ in a.workers}


def test_the_matching_keeps_more_than_pairing_the_largest_overlap_first():
    # Proposed worker 0 shares 3 executors with current worker 7 and 2 with current 8;
    # proposed 1 shares 2 with current 7. Largest first pairs 0-7 and keeps 3; the best
    # pairing is 0-8 and 1-7, which keeps 4.
    current = Assignment.of(
        {("t", e): 7 for e in (0, 1, 2, 5, 6)} | {("t", 3): 8, ("t", 4): 8}, {("t", 7): "n", ("t", 8): "n"}
    )
    proposal = Assignment.of(
        {("t", e): 0 for e in range(5)} | {("t", 5): 1, ("t", 6): 1}, {("t", 0): "n", ("t", 1): "n"}
    )
    result = keep_worker_ids(current, proposal)
    assert len(current.moved(result)) == 3
    assert result.worker_of("t", 0) == 8 and result.worker_of("t", 5) == 7
    assert shape(result) == shape(proposal)


def test_a_worker_on_another_node_keeps_nothing():
    current = Assignment.of({("t", 0): 4, ("t", 1): 4}, {("t", 4): "a"})
    proposal = Assignment.of({("t", 0): 0, ("t", 1): 0}, {("t", 0): "b"})
    assert keep_worker_ids(current, proposal) == proposal  # nothing to keep: ids unchanged


def test_topologies_not_in_current_are_returned_as_they_are():
    proposal = Assignment.of({("t", 0): 3, ("u", 0): 1}, {("t", 3): "a", ("u", 1): "a"})
    assert keep_worker_ids(Assignment.empty(), proposal) == proposal


@st.composite
def pairs(draw):
    """A current assignment and a proposal of one topology, up to 4 workers each on 2 nodes."""
    n = draw(st.integers(1, 8))
    rows = []
    for _ in range(2):
        workers = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
        nodes = draw(st.lists(st.sampled_from("ab"), min_size=4, max_size=4))
        rows.append(
            Assignment.of({("t", e): w for e, w in enumerate(workers)}, {("t", w): nodes[w] for w in set(workers)})
        )
    return rows[0], rows[1]


@settings(max_examples=300, deadline=None)
@given(pairs())
def test_the_renaming_is_the_best_of_all_renamings(pair):
    current, proposal = pair
    result = keep_worker_ids(current, proposal)
    assert shape(result) == shape(proposal)
    assert len(current.moved(result)) <= len(current.moved(proposal))
    mine = proposal.workers_of("t")
    best = min(
        len(
            current.moved(
                Assignment.of(
                    {("t", e): ids[mine.index(w)] for _, e, w in proposal.executors},
                    {("t", ids[mine.index(w)]): n for _, w, n in proposal.workers},
                )
            )
        )
        for ids in itertools.permutations(range(len(mine) + 4), len(mine))
    )
    assert len(current.moved(result)) == best


def test_the_schedulers_already_give_the_best_worker_ids():
    # Rescheduling from online's answer for other traffic: renaming the result again keeps
    # no more executors (without the renaming step in the schedulers it would keep more on
    # these cases: benchmarks/schedule_digest.py shows by how much).
    cases = [
        ([chain_workload(5, 4, 6, skew=0.5)], [chain_workload(5, 4, 6, skew=2.0, rate=700.0)], pi_cluster(4)),
        ([random_workload(30, 5, seed=3)], [random_workload(30, 5, seed=103)], pi_cluster(5, True)),
    ]
    for now, before, cluster in cases:
        current = SCHEDULERS["online"].schedule(before, cluster, SchedulerParams(), None)
        for name in ("offline", "online", "partition", "latency"):
            result = SCHEDULERS[name].schedule(now, cluster, SchedulerParams(), current)
            assert len(current.moved(keep_worker_ids(current, result))) == len(current.moved(result)), name
