"""Workers -> nodes, for all topologies together (phase 2 of online, reused by partition).

The pair greedy of :mod:`squall.rebalance.greedy` on worker pairs by inter-worker traffic,
minimising inter-node traffic. A node takes a worker if it has a free slot, its
*accumulated* load plus the worker's stays within its capacity, and the topology's workers
on it stay within the delta cap. beta picks how many nodes to use.

When nothing fits, limits are relaxed in this order, each step only if the previous found
no node: (1) the delta cap, (2) the chosen node set, (3) capacity — the worker is placed
on the least-utilised node with a free slot and reported as overloaded by
:func:`squall.rebalance.evaluate`; with ``strict`` step (3) raises instead. Slots are never
relaxed: :func:`squall.rebalance.prepare.worker_budget` already made the workers fit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from squall.rebalance.assignment import Assignment, ExecutorKey, WorkerKey
from squall.rebalance.errors import InfeasibleError
from squall.rebalance.greedy import Level, PairGreedy
from squall.rebalance.params import SchedulerParams
from squall.rebalance.prepare import Request, delta_cap
from squall.rebalance.traffic import pair_weights, undirected, worker_traffic

OVER_CAPACITY = "over capacity"


def nodes_in_use(
    free: np.ndarray, capacity: np.ndarray, order: list[int], workers: int, load: float, beta: float
) -> int:
    """How many nodes phase 2 uses: n_min + round(beta x (n_max - n_min)).

    n_max = min(nodes with a free slot, workers). n_min = the fewest nodes, taken in
    ``order`` (largest capacity first), whose free slots hold every worker and whose
    capacity covers the total load; n_max if even all of them cannot carry the load.
    """
    usable = [k for k in order if free[k] > 0]
    n_max = max(1, min(len(usable), workers))
    n_min = n_max
    slots = 0
    cap = 0.0
    for count, k in enumerate(usable, start=1):
        slots += int(free[k])
        cap += float(capacity[k])
        if slots >= workers and cap >= load:
            n_min = min(count, n_max)
            break
    return n_min + math.floor(beta * (n_max - n_min) + 0.5)


def place_workers(
    request: Request, params: SchedulerParams, placed: Mapping[str, Mapping[int, int]]
) -> dict[WorkerKey, str]:
    """Node of every worker in ``placed`` ({topology: {executor id: worker}})."""
    items: list[WorkerKey] = sorted({(t, w) for t, ex in placed.items() for w in ex.values()})
    index = {key: k for k, key in enumerate(items)}
    topo_names = sorted(placed)
    topo_index = {t: k for k, t in enumerate(topo_names)}
    loads, pair_a, pair_b, pair_rate = worker_traffic(request.workloads, placed, index)
    adjacency = undirected(len(items), pair_a, pair_b, pair_rate)

    nodes = request.nodes
    node_ids = [n.id for n in nodes]
    capacity = np.array([n.capacity_hz for n in nodes])
    free = np.array([request.free[n.id] for n in nodes], dtype=np.int64)
    node_index = {n: k for k, n in enumerate(node_ids)}
    was_on = {(t, w): node_index[n] for t, w, n in request.hint.workers}
    hint = np.array([was_on.get(key, -1) for key in items], dtype=np.int64)
    hinted = set(int(h) for h in hint if h >= 0)
    # Largest boards first; among equals, ones already running these workers.
    order = sorted(range(len(nodes)), key=lambda k: (-capacity[k], -free[k], k not in hinted, node_ids[k]))
    n_use = nodes_in_use(free, capacity, order, len(items), float(loads.sum()), params.beta)
    chosen = np.zeros(len(nodes), dtype=bool)
    chosen[[k for k in order if free[k] > 0][:n_use]] = True
    per_topology = [sum(1 for t, _ in items if t == name) for name in topo_names]
    group_limit = np.array([delta_cap(w, n_use, params.delta) for w in per_topology], dtype=np.int64)
    everywhere = np.ones(len(nodes), dtype=bool)
    levels = [
        Level("within limits", chosen, load_limit=True, group_limit=True),
        Level("delta relaxed", chosen, load_limit=True, group_limit=False),
        Level("outside chosen nodes", everywhere, load_limit=True, group_limit=False),
        Level(OVER_CAPACITY, everywhere, load_limit=False, group_limit=False),
    ]
    greedy = PairGreedy(
        loads=loads,
        groups=np.array([topo_index[t] for t, _ in items], dtype=np.int64),
        adjacency=adjacency,
        item_limit=free,
        load_limit=capacity,
        group_limit=group_limit,
        scale=capacity,
        levels=levels,
        hint=hint,
    )
    # Pairs by traffic, descending, then by (a, b).
    by_traffic = np.lexsort((pair_b, pair_a, -pair_rate))
    weights = pair_weights(len(items), pair_a, pair_b, pair_rate)[by_traffic]
    greedy.place_pairs(pair_a[by_traffic].tolist(), pair_b[by_traffic].tolist(), weights.tolist())
    # Workers with no inter-worker traffic are still placed (the original skipped them):
    # heaviest first, so the big ones find room before the small ones fragment it.
    for k in sorted(np.flatnonzero(greedy.where < 0), key=lambda k: (-loads[k], k)):
        greedy.place_single(int(k))
    unplaced = np.flatnonzero(greedy.where < 0)
    if unplaced.size:  # cannot happen: slots were checked; guard against a silent -1 index
        raise AssertionError(f"workers left unplaced: {[items[k] for k in unplaced]}")
    over = [items[k] for k, level in greedy.relaxed if level == OVER_CAPACITY]
    if params.strict and over:
        t, w = over[0]
        at = index[(t, w)]
        raise InfeasibleError(
            f"topology {t!r}: worker {w} needs {loads[at]:.4g} Hz and no node with a free slot has that "
            f"much capacity left (largest node capacity {capacity.max():.4g} Hz)"
        )
    return {items[k]: node_ids[int(b)] for k, b in enumerate(greedy.where)}


def assemble(placed: Mapping[str, Mapping[int, int]], worker_node: Mapping[WorkerKey, str]) -> Assignment:
    """The scheduled topologies' rows: both phases' results in one assignment."""
    executor_worker: dict[ExecutorKey, int] = {(t, e): w for t, ex in placed.items() for e, w in ex.items()}
    return Assignment.of(executor_worker, worker_node)
