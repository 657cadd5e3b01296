"""The array forms of the traffic rows (rebalance/traffic.py) give the floats the row-by-row
loops they replaced gave, bit for bit: positions by executor id, each worker's load, the
traffic between two workers, and the undirected adjacency the pair greedy walks. Executor ids
are scattered (not positions) and rows repeat worker pairs, so sums of several rows and ids
out of order are both exercised."""

from __future__ import annotations

import numpy as np
import pytest

from squall.rebalance import Executor, Workload
from squall.rebalance.traffic import pair_weights, traffic_arrays, undirected, worker_traffic


def _scattered(seed: int, name: str, executors: int) -> Workload:
    """Random traffic among executors whose ids are a shuffled, gapped range."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(np.arange(0, 3 * executors, 3))[:executors].tolist()
    execs = tuple(Executor(int(e), f"c{k % 4}", (k + 1, k + 1)) for k, e in enumerate(ids))
    pairs = {(int(rng.choice(ids)), int(rng.choice(ids))) for _ in range(4 * executors)}
    traffic = tuple((s, d, float(rng.gamma(2.0, 200.0))) for s, d in sorted(pairs) if s != d)
    loads = tuple(float(x) for x in rng.uniform(1e7, 1e8, executors))
    return Workload(name, max(1, executors // 5), execs, traffic, loads)


def _plain_rows(wl: Workload) -> tuple[list[int], list[int], list[float]]:
    return (
        [wl.index_of(s) for s, _, _ in wl.traffic],
        [wl.index_of(d) for _, d, _ in wl.traffic],
        [r for _, _, r in wl.traffic],
    )


def _plain_worker_traffic(workloads, placed, index):
    """The loop phase 2 ran before: loads per worker, traffic per ordered worker pair."""
    loads = np.zeros(len(index))
    traffic: dict[tuple[int, int], float] = {}
    for wl in workloads:
        worker = placed[wl.topology]
        for ex, load in zip(wl.executors, wl.load_hz):
            loads[index[(wl.topology, worker[ex.id])]] += load
        for s, d, rate in wl.traffic:
            a, b = index[(wl.topology, worker[s])], index[(wl.topology, worker[d])]
            if a != b:
                traffic[(a, b)] = traffic.get((a, b), 0.0) + rate
    return loads, traffic


@pytest.mark.parametrize("seed", range(6))
def test_rows_are_positions_found_by_id(seed):
    wl = _scattered(seed, "t", 60 + 20 * seed)
    src, dst, rate = traffic_arrays(wl)
    assert (src.tolist(), dst.tolist(), rate.tolist()) == _plain_rows(wl)


def test_a_workload_without_traffic_has_no_rows():
    wl = Workload("quiet", 1, (Executor(5, "a", (1, 1)),), (), (1.0,))
    assert [len(x) for x in traffic_arrays(wl)] == [0, 0, 0]


@pytest.mark.parametrize("seed", range(6))
def test_adjacency_sums_both_directions(seed):
    wl = _scattered(seed, "t", 50)
    src, dst, rate = traffic_arrays(wl)
    plain: list[dict[int, float]] = [{} for _ in wl.executors]
    for i, j, r in zip(*_plain_rows(wl)):
        plain[i][j] = plain[i].get(j, 0.0) + r
        plain[j][i] = plain[j].get(i, 0.0) + r
    assert undirected(len(wl.executors), src, dst, rate) == plain


@pytest.mark.parametrize("seed", range(6))
def test_pair_weights_are_the_adjacency_entries(seed):
    """Each row's weight is the float the adjacency holds for its pair, both ways round
    (rows in both directions exist: the random pairs include reverses)."""
    wl = _scattered(seed, "t", 50)
    src, dst, rate = traffic_arrays(wl)
    adj = undirected(len(wl.executors), src, dst, rate)
    weights = pair_weights(len(wl.executors), src, dst, rate).tolist()
    assert weights == [adj[i][j] for i, j in zip(src.tolist(), dst.tolist())]
    assert weights == [adj[j][i] for i, j in zip(src.tolist(), dst.tolist())]
    both_ways = {(i, j) for i, j in zip(src.tolist(), dst.tolist())}
    assert any((j, i) in both_ways for i, j in both_ways)


def test_pair_weights_of_no_rows():
    empty = np.zeros(0, dtype=np.int64)
    assert pair_weights(3, empty, empty, np.zeros(0)).tolist() == []


@pytest.mark.parametrize("seed", range(6))
def test_worker_loads_and_traffic_are_the_plain_sums(seed):
    rng = np.random.default_rng(100 + seed)
    workloads = [_scattered(seed * 7 + k, f"t{k}", int(rng.integers(10, 80))) for k in range(int(rng.integers(1, 4)))]
    # Few workers per topology, so many rows add into one worker pair.
    placed = {wl.topology: {e.id: int(rng.integers(0, 4)) for e in wl.executors} for wl in workloads}
    items = sorted({(t, w) for t, ex in placed.items() for w in ex.values()})
    index = {key: k for k, key in enumerate(items)}
    loads, pair_a, pair_b, pair_rate = worker_traffic(workloads, placed, index)
    plain_loads, plain_traffic = _plain_worker_traffic(workloads, placed, index)
    assert loads.tolist() == plain_loads.tolist()
    got = dict(zip(zip(pair_a.tolist(), pair_b.tolist()), pair_rate.tolist()))
    assert got == plain_traffic
    assert len(got) == len(pair_a)  # each worker pair once
    assert any(a > b for a, b in got)  # both directions of a pair are kept apart
