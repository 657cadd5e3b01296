"""The fast pair greedy (rebalance/greedy.py) places exactly as the plain one did
(tests/rebalance/legacy_pair_greedy.py): ``online`` run with each, on random workloads of
many shapes (measured and unmeasured load, integer rates full of ties, tight and loose
capacity, several topologies, a current assignment to stay close to), returns equal
assignments. Also the partition scheduler's use of the greedy, when pymetis is installed."""

from __future__ import annotations

import numpy as np
import pytest

from squall.rebalance import Executor, InfeasibleError, Node, SchedulerParams, Workload, online, round_robin
from squall.rebalance.reference import random_workload
from tests.rebalance import legacy_pair_greedy


def _both(monkeypatch: pytest.MonkeyPatch, run):
    """(fast result, legacy result) of ``run()``; an exception counts as a result."""

    def outcome():
        try:
            return run()
        except InfeasibleError as exc:
            return ("infeasible", str(exc))

    fast = outcome()
    with monkeypatch.context() as m:
        m.setattr("squall.rebalance.online.PairGreedy", legacy_pair_greedy.PairGreedy)
        m.setattr("squall.rebalance.phase2.PairGreedy", legacy_pair_greedy.PairGreedy)
        legacy = outcome()
    return fast, legacy


def _workload(rng: np.random.Generator, name: str, executors: int, workers: int, shape: str) -> Workload:
    wl = random_workload(
        executors, workers, pairs_per_executor=int(rng.integers(1, 6)), seed=int(rng.integers(1 << 30)), name=name
    )
    if shape == "unmeasured":  # zero load everywhere: every least-loaded choice is a tie
        return Workload(name, workers, wl.executors, wl.traffic, (0.0,) * executors)
    if shape == "integer rates":  # equal costs everywhere: the tie-break chains decide
        traffic = tuple((s, d, float(int(r) % 4)) for s, d, r in wl.traffic)
        loads = tuple(float(int(x) % 3) * 1e7 for x in wl.load_hz)
        return Workload(name, workers, wl.executors, traffic, loads)
    return wl


SHAPES = ["measured", "unmeasured", "integer rates"]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("shape", SHAPES)
def test_online_places_as_the_plain_greedy(monkeypatch, seed, shape):
    rng = np.random.default_rng(seed * 31 + SHAPES.index(shape))
    workloads = []
    for t in range(int(rng.integers(1, 4))):
        executors = int(rng.integers(4, 160))
        workers = int(rng.integers(1, max(2, executors // 3)))
        workloads.append(_workload(rng, f"t{t}", executors, workers, shape))
    total_workers = sum(w.workers for w in workloads)
    n_nodes = int(rng.integers(1, total_workers + 2))
    tight = rng.random() < 0.5
    total_load = sum(sum(w.load_hz) for w in workloads)
    nodes = tuple(
        Node(
            f"n{k:03d}",
            int(rng.integers(1, 6)),
            float(rng.uniform(0.2, 1.0) * total_load / n_nodes) if tight and total_load else 1e12,
        )
        for k in range(n_nodes)
    )
    params = SchedulerParams(
        alpha=float(rng.choice([0.0, 0.1, 0.5, 1.0])),
        beta=float(rng.choice([0.0, 0.5, 1.0])),
        gamma=float(rng.choice([1.0, 1.5, 3.0])),
        delta=float(rng.choice([0.0, 0.5, 1.0])),
    )
    fast, legacy = _both(monkeypatch, lambda: online.schedule(workloads, nodes, params))
    assert fast == legacy
    if isinstance(fast, tuple):
        return
    # A rebalance from a current placement (round robin), on traffic that changed.
    try:
        current = round_robin.schedule(workloads, nodes, params)
    except InfeasibleError:  # round robin places differently; online's outcome was checked
        return
    changed = [
        Workload(
            w.topology,
            w.workers,
            w.executors,
            tuple((s, d, r * float(rng.uniform(0.5, 2.0))) for s, d, r in w.traffic),
            w.load_hz,
        )
        for w in workloads
    ]
    fast, legacy = _both(monkeypatch, lambda: online.schedule(changed, nodes, params, current=current))
    assert fast == legacy


def test_online_places_as_the_plain_greedy_at_1000_executors(monkeypatch):
    workload = random_workload(1_000, 100, pairs_per_executor=5, seed=7)
    nodes = tuple(Node(f"n{k:03d}", 4, 1e12) for k in range(25))
    fast, legacy = _both(monkeypatch, lambda: online.schedule([workload], nodes, SchedulerParams()))
    assert fast == legacy
    assert len(fast.executors) == 1_000


def test_no_traffic_at_all_places_as_the_plain_greedy(monkeypatch):
    execs = tuple(Executor(k, f"c{k // 3}", (k + 1, k + 1)) for k in range(30))
    workload = Workload("quiet", 7, execs, (), tuple(float(k % 4) for k in range(30)))
    nodes = tuple(Node(f"n{k}", 2, 1e12) for k in range(5))
    fast, legacy = _both(monkeypatch, lambda: online.schedule([workload], nodes, SchedulerParams()))
    assert fast == legacy


@pytest.mark.parametrize("shape", ["unmeasured", "integer rates"])
def test_ties_among_many_bins_place_as_the_plain_greedy(monkeypatch, shape):
    """More bins tied at the lowest load than the sorted walk looks at before asking numpy
    (``SCAN_LIMIT``): the walk's order (load, items, id) and the current-place check must
    pick what the plain greedy's full tie-break chain picks, fresh and from a current
    placement."""
    rng = np.random.default_rng(17)
    workload = _workload(rng, "wide", 600, 200, shape)
    nodes = tuple(Node(f"n{k:03d}", 4, 1e12) for k in range(60))
    params = SchedulerParams()
    fast, legacy = _both(monkeypatch, lambda: online.schedule([workload], nodes, params))
    assert fast == legacy
    current = round_robin.schedule([workload], nodes, params)
    fast, legacy = _both(monkeypatch, lambda: online.schedule([workload], nodes, params, current=current))
    assert fast == legacy
    assert len(fast.workers_of("wide")) == 200
