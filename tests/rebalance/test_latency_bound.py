"""The bound the ``latency`` search skips trial moves by (``squall.rebalance.latency_bound``).

It must never skip a move the search would have taken: the bound is checked against the
exact price of every trial move it bounds, on random workloads with every term of the model
switched on (quotas, links, wake-up waits, ackers, two topologies), and the search with
skipping is compared with the search without it, move for move.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from squall.rebalance import Node, SchedulerParams, Workload, get_scheduler
from squall.rebalance.latency_bound import GainBound, Removal
from squall.rebalance.latency_moves import NEIGHBOUR_WORKERS, executor_candidates, least_busy_workers
from squall.rebalance.latency_network import Network
from squall.rebalance.latency_search import IMPROVEMENT, _better, _improve
from squall.rebalance.profile import BoardProfile, ExecutorProfile, WorkloadProfile
from squall.rebalance.reference import random_workload

CLOCK = 1.2e9


def workload(executors: int, workers: int, seed: int, name: str = "random", ackers: int = 2) -> Workload:
    """A random workload with a measured-looking profile: rates from the traffic into each
    executor, random service times, the last ``ackers`` executors ackers."""
    rng = np.random.default_rng(seed)
    base = random_workload(executors, workers, pairs_per_executor=4, seed=seed, name=name)
    inflow: dict[int, float] = {}
    for _s, d, r in base.traffic:
        inflow[d] = inflow.get(d, 0.0) + r
    rows, sources = [], []
    for e in base.executors:
        rate = inflow.get(e.id, 0.0)
        if rate == 0.0:
            sources.append(e.id)
            rate = 50.0
        rows.append(ExecutorProfile(e.id, rate, float(rng.uniform(2e3, 6e4))))
    profile = WorkloadProfile(
        tuple(rows),
        source_rate=50.0 * max(1, len(sources)),
        sources=tuple(sources),
        ackers=tuple(e.id for e in base.executors[-ackers:]) if ackers else (),
        worker_overhead_hz=0.02 * CLOCK,
        transfer_cycles_per_item=float(rng.uniform(1e4, 5e4)),
        item_bytes=float(rng.uniform(40.0, 400.0)),
        worker_memory_mb=30.0,
        flush_s=0.0005,
    )
    loads = tuple(r.rate * r.service_cycles for r in rows)
    return Workload(base.topology, workers, base.executors, base.traffic, loads, base.edges, profile)


def cluster(boards: int, slots: int, seed: int, clocks: bool = False) -> tuple[Node, ...]:
    """Random boards; with ``clocks``, of different clock rates too."""
    rng = np.random.default_rng(seed + 1000)
    out = []
    for k in range(boards):
        quota = bool(rng.integers(0, 2))
        clock = CLOCK * (1.0 + 0.5 * k) if clocks else CLOCK
        profile = BoardProfile(
            cores=float(rng.choice([2.0, 4.0])),
            clock_hz=clock,
            memory_mb=1024.0,
            link_mbit=float(rng.choice([10.0, 100.0])),
            link_delay_ms=float(rng.uniform(0.1, 2.0)),
            cpu_period_s=0.1 if quota else 0.0,
            measured_utilisation=float(rng.uniform(0.2, 0.7)) if quota else 0.0,
            throttled_share=float(rng.uniform(0.0, 0.1)) if quota else 0.0,
            cpu_wait_ms=float(rng.uniform(0.0, 0.3)),
            background_cores=float(rng.uniform(0.0, 0.3)),
        )
        out.append(Node(f"n{k:02d}", slots, profile.cores * clock, profile))
    return tuple(out)


def case(seed: int, executors: int = 60, workers: int = 8, boards: int = 4, two: bool = False, clocks: bool = False):
    loads = [workload(executors, workers, seed)]
    if two:
        loads.append(workload(executors // 2, workers // 2, seed + 50, name="other", ackers=1))
    nodes = cluster(boards, -(-sum(w.workers for w in loads) // boards), seed, clocks)
    net = Network(loads, nodes)
    start = get_scheduler("round_robin").schedule(loads, nodes, SchedulerParams(), None)
    return net, start


@pytest.mark.parametrize("seed", range(3))
def test_the_neighbour_candidates_are_the_busiest_workers_ties_by_index(seed):
    # Few distinct rates over 8 workers, inserted in a random order: most lists have ties,
    # which must go to the lower index whatever order the rates were summed in.
    net, start = case(seed)
    state = net.state_of(start)
    rng = np.random.default_rng(seed)
    n_workers = len(state.worker_ids)
    tied = 0
    for g in range(len(net.ex_key)):
        mine = state.exec_worker[g]
        order = rng.permutation(n_workers)[: int(rng.integers(0, n_workers + 1))]
        rate_to = {int(w): float(rng.integers(0, 3)) for w in order}
        rate_to.setdefault(mine, 5.0)
        others = sorted((-r, w) for w, r in rate_to.items() if w != mine)
        want = [w for _r, w in others[:NEIGHBOUR_WORKERS]]
        assert executor_candidates(state, g, {}, {}, rate_to) == want, (g, rate_to)
        tied += len({r for r, _w in others}) < len(others)
    assert tied > len(net.ex_key) // 2


@pytest.mark.parametrize("seed", range(6))
def test_the_bound_is_at_least_every_bounded_move_s_exact_gain(seed):
    net, start = case(seed, two=seed % 2 == 1)
    state = net.state_of(start)
    bound = GainBound(state)
    least_busy = least_busy_workers(state)
    total = state.objective()[1]
    bounded = tight = within_limits = 0
    for g in range(len(net.ex_key)):
        mine = state.worker_node[state.exec_worker[g]]
        elsewhere = [
            w
            for w in range(len(state.worker_ids))
            if state.w_count[w] and state.worker_ids[w][0] == net.ex_topo[g] and state.worker_node[w] not in (-1, mine)
        ]
        if not elsewhere:
            continue
        # The gain on g's own board of moving it off is the same whichever board it goes to.
        removals = set()
        excesses = set()
        for w in elsewhere:
            _value, (after, excess) = state.price_executor_move_at(g, w, -1, mine)
            removals.add(state.node_lat[mine] - after)
            excesses.add(excess)
        assert len(removals) == 1, (g, removals)
        removal = removals.pop()
        edges = bound.edges_of(g)
        assert bound.removal(g, edges) >= removal - 1e-12 * total, g  # the bound on it, unpriced
        # Above the limits the search takes the board's excess before and after as 0 from it.
        within = bound.removal_within_limits(g, edges)
        if within is not None:
            assert state.node_exc[mine] == 0.0 and excesses == {0.0}, (g, excesses)
            within_limits += 1
        # Every worker elsewhere, not only the search's candidates: the proof is for any.
        for w in sorted(set(elsewhere) | set(executor_candidates(state, g, least_busy, {}))):
            if state.worker_node[w] in (-1, mine):
                continue
            found = bound.gain(g, w, removal, edges)
            if found is None:
                continue
            most = found[0]
            exact = total - state.price_executor_move(g, w)[1]
            assert exact <= most + 1e-12 * total, (g, w, exact, most)
            # Its first, cheaper form (what the search reads when that is enough) too.
            loose = bound.gain(g, w, removal, edges, enough=math.inf)
            assert loose is not None and loose[0] >= most - 1e-12 * total, (g, w, loose, most)
            bounded += 1
            tight += most < 1e-3 * total  # the search would skip it
    assert bounded > 100  # the premises hold for most moves, so the check means something
    assert tight > 0, (tight, bounded)  # ... and the bound is close enough to skip some
    assert within_limits > 0 or min(state.node_exc) > 0  # (seed 5: every board above them)


@pytest.mark.parametrize("seed", range(6))
def test_the_cheap_gain_is_never_below_the_loose_bound_nor_the_exact_gain(seed):
    """GainBound.cheap_gain answers whether a bound made without pricing the target worker
    after the move is at most ``enough``: it must never say so for an ``enough`` below
    GainBound.gain's loose form or below the move's exact gain (every move to a placed
    worker on another board, random workloads with ackers, quotas, links and wake-up
    waits), and must say so for a large one often (its premises hold)."""
    net, start = case(seed, two=seed % 2 == 1)
    state = net.state_of(start)
    bound = GainBound(state)
    total = state.objective()[1]
    checked = answered = 0
    for g in range(len(net.ex_key)):
        mine = state.worker_node[state.exec_worker[g]]
        elsewhere = [
            w
            for w in range(len(state.worker_ids))
            if state.w_count[w] and state.worker_ids[w][0] == net.ex_topo[g] and state.worker_node[w] not in (-1, mine)
        ]
        if not elsewhere:
            continue
        _value, (after, _excess) = state.price_executor_move_at(g, elsewhere[0], -1, mine)
        removal = state.node_lat[mine] - after
        edges = bound.edges_of(g)
        for w in elsewhere:
            found = bound.gain(g, w, removal, edges, enough=math.inf)
            exact = total - state.price_executor_move(g, w)[1]
            below = exact - 1e-12 * total
            if found is not None:
                below = max(below, found[0] - 1e-12 * total)
            assert not bound.cheap_gain(g, w, removal, edges, below), (g, w, exact, found)
            checked += 1
            answered += bound.cheap_gain(g, w, removal, edges, math.inf)
    assert checked > 100 and answered > checked // 4, (checked, answered)


@pytest.mark.parametrize("seed", range(6))
def test_the_quick_removal_is_at_least_the_full_one_before_and_after_moves(seed):
    """GainBound.removal(quick=True) prices only the executor's own worker and reads the
    board's other workers from terms kept per board: it must be at least the full bound
    (so a skip with it is a skip with that one) and at least the gain an exact trial reads,
    with the kept terms dropped for the boards a move re-prices (GainBound.forget)."""
    net, start = case(seed, two=seed % 2 == 1)
    state = net.state_of(start)
    bound = GainBound(state)
    total = state.objective()[1]
    checked = looser = useful = moves = 0
    for round_ in range(4):
        for g in range(len(net.ex_key)):
            mine = state.worker_node[state.exec_worker[g]]
            elsewhere = [
                w
                for w in range(len(state.worker_ids))
                if state.w_count[w]
                and state.worker_ids[w][0] == net.ex_topo[g]
                and state.worker_node[w] not in (-1, mine)
            ]
            if not elsewhere:
                continue
            _value, (after, _excess) = state.price_executor_move_at(g, elsewhere[0], -1, mine)
            exact = state.node_lat[mine] - after
            edges = bound.edges_of(g)
            full = bound.removal(g, edges)
            quick = bound.removal(g, edges, quick=True)
            assert quick >= full - 1e-12 * total, (round_, g, quick, full)
            assert quick >= exact - 1e-12 * total, (round_, g, quick, exact)
            checked += 1
            looser += quick > full + 1e-9 * total
            useful += quick < 1e-3 * total
        # Move a few executors (one emptying its worker when it can) and forget what the
        # moves re-priced, as the search does; the next round reads the kept terms again.
        for g in range(round_, len(net.ex_key), 7):
            mine = state.exec_worker[g]
            target = next(
                (
                    w
                    for w in range(len(state.worker_ids))
                    if w != mine and state.w_count[w] and state.worker_ids[w][0] == net.ex_topo[g]
                ),
                None,
            )
            if target is None:
                continue
            state.refreshed.clear()
            state.move_executor(g, target)
            bound.forget(state.refreshed)
            moves += 1
    assert checked > 200 and moves > 20, (checked, moves)
    assert looser > 0 and useful > 0, (looser, useful, checked)  # looser, yet often enough to skip


@pytest.mark.parametrize("seed", range(4))
def test_an_executor_s_edges_are_the_same_floats_as_a_pass_over_its_adjacency(seed):
    """GainBound.edges_of sums what removal's link terms read for the executor's own board
    in its one pass and makes the per-hop tuples only when read: every field must be the
    float a plain pass over the adjacency makes, ``own`` the sums _with_board makes for
    the executor's board, and Network.edge_rates the items/s on its edges."""
    net, start = case(seed, two=seed % 2 == 1, clocks=True)
    state = net.state_of(start)
    bound = GainBound(state)
    for g in range(len(net.ex_key)):
        edges = bound.edges_of(g)
        rate_to: dict[int, float] = {}
        out_to: dict[int, float] = {}
        in_from: dict[int, float] = {}
        hops = []
        delays = rate = out = into = bytes_out = bytes_in = 0.0
        for k in net.adjacent[g]:
            delays += state.edge_lat[k]
            s, d, r, rk, item_bytes, _t = net.edge_terms[k]
            if s == d:
                continue
            rate += r
            other = state.exec_worker[d if s == g else s]
            if s == g:
                out_to[other] = out_to.get(other, 0.0) + rk
                out += rk
                bytes_out += item_bytes
            else:
                in_from[other] = in_from.get(other, 0.0) + rk
                into += rk
                bytes_in += item_bytes
            rate_to[other] = rate_to.get(other, 0.0) + r
            hops.append((k, other, s == g, rk, item_bytes))
        assert edges.rate_to == rate_to and edges.out_to == out_to and edges.in_from == in_from, g
        assert edges.hops == hops, g
        assert (edges.rate, edges.out, edges.into, edges.bytes_out, edges.bytes_in, edges.delays) == (
            rate,
            out,
            into,
            bytes_out,
            bytes_in,
            delays,
        ), g
        assert edges.own == bound._with_board(state.worker_node[state.exec_worker[g]], edges), g
        assert net.edge_rates()[g] == rate, g


@pytest.mark.parametrize("seed", range(6))
def test_above_the_limits_every_skipped_move_is_one_the_search_could_not_take(seed):
    """Above the hard limits a move to another board is skipped when the excess of its two
    boards together provably rises (g's board's read from one exact trial, as the search
    reads it; the other's from its utilisation after), and a move within g's board when
    that board stays within the limits and the latency bound holds: the exact objective
    with any skipped move must not be better than the current one."""
    net, start = case(seed, executors=100, workers=12, boards=5, two=seed % 2 == 1)
    state = net.state_of(start)
    current = state.objective()
    assert current[0] > 0  # round robin on these boards breaks the limits: the case under test
    bound = GainBound(state)
    by_excess = same_board = 0
    for g in range(len(net.ex_key)):
        mine = state.worker_node[state.exec_worker[g]]
        others = [
            w
            for w in range(len(state.worker_ids))
            if state.w_count[w] and state.worker_ids[w][0] == net.ex_topo[g] and w != state.exec_worker[g]
        ]
        elsewhere = [w for w in others if state.worker_node[w] != mine]
        if not elsewhere:
            continue
        _value, (after, excess_after) = state.price_executor_move_at(g, elsewhere[0], -1, mine)
        removal = Removal(state.node_lat[mine] - after, state.node_exc[mine], excess_after)
        edges = bound.edges_of(g)
        for w in others:
            before = bound.excess_skips
            if not bound.skips(g, w, removal, edges, current, IMPROVEMENT):
                continue
            exact = state.price_executor_move(g, w)
            assert not _better(exact, current), (g, w, exact, current)
            if bound.excess_skips > before:
                assert exact[0] > current[0] + 1e-12, (g, w, exact, current)
                by_excess += 1
            same_board += state.worker_node[w] == mine
    assert by_excess > 20 and same_board > 0, (by_excess, same_board)


@pytest.mark.parametrize("seed", range(6))
def test_the_bound_within_a_board_is_at_least_every_such_move_s_exact_gain(seed):
    """Moves to another worker on the executor's own board (GainBound.within_board)."""
    net, start = case(seed, two=seed % 2 == 1)
    state = net.state_of(start)
    # One worker left with one executor, so that moving it empties a worker (the links after).
    alone, other = next(
        (x, y)
        for x in range(len(state.worker_ids))
        for y in sorted(state.on_node[state.worker_node[x]])
        if state.w_count[x] and y != x and state.worker_ids[y][0] == state.worker_ids[x][0]
    )
    for g in sorted(state.members[alone])[1:]:
        state.move_executor(g, other)
    bound = GainBound(state)
    total = state.objective()[1]
    bounded = tight = emptied = 0
    for g in range(len(net.ex_key)):
        mine = state.exec_worker[g]
        here = [
            w
            for w in state.on_node[state.worker_node[mine]]
            if w != mine and state.worker_ids[w][0] == net.ex_topo[g] and state.w_count[w]
        ]
        edges = bound.edges_of(g)
        for w in sorted(here):
            most = bound.within_board(g, w, edges)
            assert most is not None, (g, w)
            exact = total - state.price_executor_move(g, w)[1]
            assert exact <= most + 1e-12 * total, (g, w, exact, most)
            loose = bound.within_board(g, w, edges, enough=math.inf)
            assert loose is not None and loose >= most - 1e-12 * total, (g, w, loose, most)
            bounded += 1
            tight += most < 1e-3 * total
            emptied += state.w_count[mine] == 1
        # Not a placed worker of g's topology on g's board: no bound.
        for w in range(len(state.worker_ids)):
            if (
                w == mine
                or state.worker_node[w] != state.worker_node[mine]
                or not state.w_count[w]
                or state.worker_ids[w][0] != net.ex_topo[g]
            ):
                assert bound.within_board(g, w, edges) is None
    assert bounded > 50, bounded
    assert tight > 0, (tight, bounded)
    assert emptied > 0, emptied


@pytest.mark.parametrize("seed", range(4))
def test_the_hops_after_a_move_are_the_same_floats_as_pricing_each_hop(seed):
    """GainBound.hops_after writes State.hop_delay out in one pass with the board sums:
    bit for bit the values of one hop_delay call per hop and of _with_board."""
    net, start = case(seed, two=seed % 2 == 1, clocks=True)
    state = net.state_of(start)
    bound = GainBound(state)
    compared = 0
    for g in range(len(net.ex_key)):
        edges = bound.edges_of(g)
        for w in range(len(state.worker_ids)):
            b = state.worker_node[w]
            if b < 0 or state.worker_ids[w][0] != net.ex_topo[g]:
                continue
            with_b, delays = bound.hops_after(g, w, edges)
            expected = 0.0
            for k, other, out, *_rest in edges.hops:
                if other != w:
                    there = state.worker_node[other]
                    expected += state.hop_delay(k, b, there) if out else state.hop_delay(k, there, b)
            assert delays == expected, (g, w)
            assert with_b == bound._with_board(b, edges), (g, w)
            compared += expected > 0
    assert compared > 100


@pytest.mark.parametrize("seed", range(8))
def test_skipping_moves_takes_the_same_moves_as_pricing_them_all(seed):
    net, start = case(seed, executors=80, workers=10, boards=5, two=seed % 2 == 1)
    free = {n.id: n.slots for n in net.nodes}
    plain = net.state_of(start)
    skipping = net.state_of(start)
    _improve(plain, free, skip=False)
    bound = _improve(skipping, free, skip=True)
    assert skipping.exec_worker == plain.exec_worker
    assert skipping.worker_node == plain.worker_node
    assert skipping.objective() == plain.objective()
    # Moves were skipped, so the comparison tests the bound (it skips only within the
    # hard limits: one seed's boards cannot all get there).
    assert bound.skipped > 0 or plain.objective()[0] > 0


@pytest.mark.parametrize("seed", range(6))
def test_above_the_limits_skipping_takes_the_same_moves_as_pricing_them_all(seed):
    """From a placement above the hard limits (round robin on three boards), where moves
    are skipped because a board's excess would rise."""
    net, start = case(seed, executors=80, workers=10, boards=3, two=seed % 2 == 1)
    free = {n.id: n.slots for n in net.nodes}
    plain = net.state_of(start)
    skipping = net.state_of(start)
    assert plain.objective()[0] > 0
    _improve(plain, free, skip=False)
    bound = _improve(skipping, free, skip=True)
    assert skipping.exec_worker == plain.exec_worker
    assert skipping.worker_node == plain.worker_node
    assert skipping.objective() == plain.objective()
    assert bound.excess_skips > 0


@pytest.mark.parametrize("seed", range(4))
def test_the_scheduler_places_the_same_with_and_without_skipping(seed, monkeypatch):
    """Through the public scheduler: every seed improved, workers to spare (boards with free
    slots, so the "new worker" move is tried too)."""
    from squall.rebalance import latency_search

    loads = [workload(120, 12, seed)] + ([workload(40, 6, seed + 7, name="other", ackers=1)] if seed % 2 else [])
    nodes = cluster(6, 6, seed)
    improve = latency_search._improve
    skipped = []

    def counted(state, free, skip=True):
        bound = improve(state, free, skip)
        skipped.append(bound.skipped)
        return bound

    monkeypatch.setattr(latency_search, "_improve", counted)
    skipping = latency_search.schedule(loads, nodes, SchedulerParams())
    monkeypatch.setattr(latency_search, "_improve", lambda state, free, skip=True: improve(state, free, False))
    plain = latency_search.schedule(loads, nodes, SchedulerParams())
    assert skipping.to_dict() == plain.to_dict()
    assert sum(skipped) > 0  # the bound skipped moves on the way
