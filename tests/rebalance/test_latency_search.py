"""The ``latency`` search's choice of the seed to improve (rebalance/latency_search.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from squall.rebalance import Node, SchedulerParams, get_scheduler, latency_search
from squall.rebalance.latency_network import Network
from squall.rebalance.latency_search import excess_floor
from tests.rebalance.test_latency_bound import cluster, workload


def tight_memory(nodes: tuple[Node, ...], memory_mb: float) -> tuple[Node, ...]:
    return tuple(replace(n, board=replace(n.board, memory_mb=memory_mb)) for n in nodes)


@pytest.mark.parametrize("seed", range(6))
def test_the_excess_floor_is_the_state_s_excess(seed):
    """Every seed scheduler's placement, one and two topologies, boards above the CPU
    limit and (odd seeds) above their memory: the floor is the state's excess to the
    last bits of the float sums."""
    loads = [workload(90, 9, seed)] + ([workload(40, 5, seed + 7, name="other", ackers=1)] if seed % 2 else [])
    nodes = cluster(3, 5, seed)
    if seed % 2:
        nodes = tight_memory(nodes, 100.0)  # 30 MB workers: four on a board break it
    net = Network(loads, nodes)
    above = 0
    for name in ("round_robin", "online", "partition"):
        placed = get_scheduler(name).schedule(loads, nodes, SchedulerParams(beta=1.0, strict=False), None)
        exact = net.state_of(placed).excess()
        assert excess_floor(net, placed) == pytest.approx(exact, rel=1e-12, abs=1e-12), name
        above += exact > 0
    assert above > 0  # some placement breaks the limits, so the comparison means something


@pytest.mark.parametrize("seed", range(3))
def test_a_seed_left_unpriced_changes_nothing(seed, monkeypatch):
    """Above SEARCH_EVERY_SEED_UP_TO executors the search improves the best seed only, so
    one whose floor is above an earlier seed's excess is not priced: the placement is the
    one the search returns when every seed is priced, and a seed was left out."""
    loads = [workload(450, 45, seed)]
    nodes = cluster(12, 4, seed)
    priced = []
    state_of = Network.state_of

    def counted(self, assignment, labels=None):
        priced.append(assignment)
        return state_of(self, assignment, labels)

    monkeypatch.setattr(Network, "state_of", counted)
    skipping = latency_search.schedule(loads, nodes, SchedulerParams())
    seeds_priced = len(priced)
    monkeypatch.setattr(latency_search, "excess_floor", lambda net, assignment: float("-inf"))
    priced.clear()
    every = latency_search.schedule(loads, nodes, SchedulerParams())
    assert skipping.to_dict() == every.to_dict()
    assert seeds_priced < len(priced)  # round_robin's seed was left out
