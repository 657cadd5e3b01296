"""The ``latency`` search's choice of the seed to improve (rebalance/latency_search.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from squall.rebalance import Node, SchedulerParams, get_scheduler, latency_search
from squall.rebalance.latency import flush_wait, queue_wait
from squall.rebalance.latency_bound import GainBound
from squall.rebalance.latency_moves import vacate
from squall.rebalance.latency_network import Network
from squall.rebalance.latency_search import excess_floor
from squall.rebalance.latency_state import worker_time
from tests.rebalance.test_latency_bound import case, cluster, workload


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


def _worker_time_composed(topo, wall, wake_wait_s, u, rho, na, nav, ak, akv, outk, ink) -> float:
    """worker_time as it read before queue_wait and flush_wait were written into it."""
    visits = nav + akv
    if visits <= 0:
        return 0.0
    mean_s = (na + ak) * wall / visits
    busy = u if u > rho else rho
    wait = queue_wait(mean_s, busy)
    value = (na * wall + nav * wait) / topo.source_rate
    if topo.ack_rate > 0:
        value += (ak * wall + akv * wait) / topo.ack_rate
    if outk > 0:
        value += outk * flush_wait(topo.flush_s, mean_s, busy)
    if wake_wait_s > 0:
        value += ink * wake_wait_s
    return value


def test_the_worker_time_is_the_model_s_queue_and_batch_waits_bit_for_bit():
    """Utilisations below 0, at and past saturation, flush delays on and off, ackers or
    none: the written-out worker_time gives the same floats as the model's functions."""
    rng = np.random.default_rng(7)
    net = Network([workload(30, 4, 1)], cluster(2, 2, 1))
    base = net.topos[0]
    compared = 0
    for flush_s, ack_rate in ((0.0005, base.ack_rate), (0.0, base.ack_rate), (0.002, 0.0)):
        topo = replace(base, flush_s=flush_s, ack_rate=ack_rate)
        for _ in range(400):
            u, rho = (float(x) for x in rng.uniform(-0.2, 1.3, 2))
            na, nav, ak, akv = (float(x) for x in rng.uniform(0.0, 1e8, 4))
            outk, ink = float(rng.uniform(-0.5, 3.0)), float(rng.uniform(0.0, 3.0))
            args = (topo, 1.0 / 1.2e9, float(rng.choice([0.0, 1e-4])), u, rho, na, nav, ak, akv, outk, ink)
            assert worker_time(*args) == _worker_time_composed(*args), args
            compared += 1
        args = (topo, 1.0 / 1.2e9, 0.0, 0.999, 0.5, 1e8, 50.0, 0.0, 0.0, 1.0, 0.0)  # at saturation
        assert worker_time(*args) == _worker_time_composed(*args)
    assert compared == 1200


@pytest.mark.parametrize("seed", range(4))
def test_a_fresh_state_s_edge_delays_are_each_edge_s_delay_bit_for_bit(seed):
    """State's one pass over the edges gives every edge the float of State.edge_delay:
    inside a worker, between workers of a board and between boards of different clocks
    and link delays, one topology or two."""
    loads = [workload(60, 8, seed)] + ([workload(30, 4, seed + 50, name="other", ackers=1)] if seed % 2 else [])
    nodes = cluster(4, 3, seed, clocks=True)
    net = Network(loads, nodes)
    kinds = set()
    for name in ("round_robin", "online"):
        state = net.state_of(get_scheduler(name).schedule(loads, nodes, SchedulerParams(), None))
        assert state.edge_lat == [state.edge_delay(k) for k in range(len(net.edges))], name
        for s, d in net.edge_ends:
            ws, wd = state.exec_worker[s], state.exec_worker[d]
            kinds.add("inside" if ws == wd else "board" if state.worker_node[ws] == state.worker_node[wd] else "link")
    assert kinds == {"inside", "board", "link"}


def _slack_values(slack) -> list[float]:
    return [*slack.time.values(), *slack.cores.values(), slack.rho, slack.share, slack.link, slack.bits, slack.stays]


@pytest.mark.parametrize("seed", range(4))
def test_a_bound_keeps_the_terms_of_the_boards_a_move_did_not_re_price(seed):
    """After each move the search forgets the boards the state re-priced (State.refreshed);
    every board it keeps has the terms a fresh pricing gives, to float rounding, and it
    keeps some (so the check means something). Executor moves, to workers of other boards
    and of the same one, and worker moves, with links and quotas on."""
    net, start = case(seed, executors=80, workers=10, boards=5, two=seed % 2 == 1)
    state = net.state_of(start)
    bound = GainBound(state)
    rng = np.random.default_rng(seed)
    kept = 0
    for step in range(40):
        for n in range(len(net.nodes)):
            bound._board(n)  # every board's terms cached, as a pass over all executors would
        state.refreshed.clear()
        placed = [w for w in range(len(state.worker_ids)) if state.w_count[w]]
        if step % 5 == 4:
            w = placed[int(rng.integers(len(placed)))]
            n = int(rng.integers(len(net.nodes)))
            state.move_worker(w, n)
        else:
            g = int(rng.integers(len(net.ex_key)))
            same = [w for w in placed if state.worker_ids[w][0] == net.ex_topo[g]]
            vacate(state, g, same[int(rng.integers(len(same)))])
        bound.forget(state.refreshed)
        for n, slack in bound._boards.items():
            fresh = state.board_slack(n)
            assert sorted(slack.time) == sorted(fresh.time), (step, n)
            assert _slack_values(slack) == pytest.approx(_slack_values(fresh), rel=1e-12, abs=1e-15), (step, n)
            kept += 1
    assert kept > 40
