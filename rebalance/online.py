"""online: the traffic-based two-phase greedy (ETW/WTN) of Aniello, Baldoni and Querzoni.

Phase 1 (this module), per topology, places executors on W' = min(W, E) workers (fewer if
slots are short, see :func:`squall.rebalance.prepare.worker_budget`): at most M executors
and (softly) at most gamma x total_load / W' load per worker; executor pairs by traffic
descending go through the pair rules of :class:`squall.rebalance.greedy.PairGreedy`;
executors with no traffic go, heaviest first, to the least-loaded worker; finally each
empty worker takes the single executor move that costs least inter-worker traffic.
Phase 2 is :mod:`squall.rebalance.phase2`.

The gamma cap is soft: when no worker can take an executor within it, the least-loaded
worker with room under M takes it (M is hard, and W' x M >= E always leaves room).

Rescheduling: with ``current``, the same greedy runs, but every tie goes to the place an
executor (or worker) already has, and new workers are labelled after the current worker
they share most executors with, so unchanged groups keep their worker ids.
"""

from __future__ import annotations

import numpy as np

from squall.rebalance.assignment import Assignment
from squall.rebalance.greedy import COST_DECIMALS, TOLERANCE, Level, PairGreedy
from squall.rebalance.model import Workload
from squall.rebalance.params import SchedulerParams
from squall.rebalance.prepare import m_cap
from squall.rebalance.scorers import Scorer, best_id
from squall.rebalance.traffic import pair_weights, traffic_arrays, undirected
from squall.rebalance.two_phase import two_phase


def adjacency_of(wl: Workload, rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> list[dict[int, float]]:
    """Undirected traffic by executor position: adj[i][j] = T[i,j] + T[j,i]."""
    src, dst, rate = traffic_arrays(wl) if rows is None else rows
    return undirected(len(wl.executors), src, dst, rate)


def initial_labels(topology: str, n_workers: int, hint: Assignment) -> list[int]:
    """Label of internal worker k: the k-th current worker id, then fresh ids."""
    current = sorted(hint.workers_of(topology))[:n_workers]
    taken = set(current)  # once, not per candidate id
    fresh = (x for x in range(n_workers + len(current)) if x not in taken)
    return current + [next(fresh) for _ in range(n_workers - len(current))]


def executors_to_workers(wl: Workload, n_workers: int, params: SchedulerParams, hint: Assignment) -> dict[int, int]:
    """Phase 1 for one topology: {executor id: worker id}."""
    n = len(wl.executors)
    loads = np.array(wl.load_hz, dtype=float)
    labels = initial_labels(wl.topology, n_workers, hint)
    internal = {label: k for k, label in enumerate(labels)}
    hint_worker = np.array(
        [
            internal.get(hint.worker_of(wl.topology, e.id), -1) if hint.has_executor(wl.topology, e.id) else -1
            for e in wl.executors
        ],
        dtype=np.int64,
    )
    cap = params.gamma * float(loads.sum()) / n_workers
    everywhere = np.ones(n_workers, dtype=bool)
    rows = traffic_arrays(wl)
    greedy = PairGreedy(
        loads=loads,
        groups=np.zeros(n, dtype=np.int64),
        adjacency=adjacency_of(wl, rows),
        item_limit=np.full(n_workers, m_cap(n, n_workers, params.alpha), dtype=np.int64),
        load_limit=np.full(n_workers, cap),
        group_limit=np.zeros(0, dtype=np.int64),
        scale=np.ones(n_workers),
        levels=[
            Level("within gamma", everywhere, load_limit=True, group_limit=False),
            Level("gamma relaxed", everywhere, load_limit=False, group_limit=False),
        ],
        hint=hint_worker,
    )
    src, dst, rate = rows
    # Pairs by traffic, descending, then by positions (a pair appears once: rows are unique).
    by_traffic = np.lexsort((dst, src, -rate))
    weights = pair_weights(n, src, dst, rate)
    greedy.place_pairs(src[by_traffic].tolist(), dst[by_traffic].tolist(), weights[by_traffic].tolist())
    for k in sorted(np.flatnonzero(greedy.where < 0), key=lambda k: (-loads[k], k)):
        greedy.place_single(int(k))
    fill_empty_workers(greedy, wl, cap, hint_worker, rows)
    groups = [int(w) for w in greedy.where]
    return relabel(wl, groups, labels, hint)


def fill_empty_workers(
    greedy: PairGreedy,
    wl: Workload,
    cap: float,
    hint_worker: np.ndarray,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> None:
    """Each empty worker, in id order, takes the single executor move costing least
    inter-worker traffic (an executor's traffic with its current co-workers)."""
    n = len(wl.executors)
    src, dst, rate = traffic_arrays(wl) if rows is None else rows
    for empty in np.flatnonzero(greedy.bin_count == 0):
        where = greedy.where
        same = where[src] == where[dst]
        internal = np.bincount(src[same], rate[same], n) + np.bincount(dst[same], rate[same], n)
        movable = np.flatnonzero(greedy.bin_count[where] >= 2)
        within = movable[greedy.loads[movable] <= cap * (1 + TOLERANCE)]
        ids = within if within.size else movable
        greedy.put(best_id(ids, _move_chain(greedy, internal, where, hint_worker, int(empty))), int(empty))


def _move_chain(
    greedy: PairGreedy, internal: np.ndarray, where: np.ndarray, hint_worker: np.ndarray, empty: int
) -> tuple[Scorer[np.ndarray], ...]:
    """The tie-breakers choosing which executor moves into the empty worker ``empty``
    (``internal``: each executor's traffic with its co-workers; ``where``: its worker)."""
    return (
        Scorer(
            "cheapest move",
            "the rule: least inter-worker traffic added",
            lambda x: np.round(internal[x], COST_DECIMALS),
        ),
        Scorer(
            "current place",
            "a rebalance should move as little as possible",
            lambda x: (hint_worker[x] != empty).astype(np.int64),
        ),
        Scorer(
            "from the busiest", "a move should relieve the most loaded worker", lambda x: -greedy.bin_load[where[x]]
        ),
        Scorer("heaviest executor", "moving more load out balances more", lambda x: -greedy.loads[x]),
    )


def relabel(wl: Workload, groups: list[int], labels: list[int], hint: Assignment) -> dict[int, int]:
    """{executor id: worker id}: internal groups take the id of the current worker they
    share most executors with (greedy matching, ties by ids), the rest fresh ids."""
    members: dict[int, set[int]] = {}
    for e, g in zip(wl.executors, groups):
        members.setdefault(g, set()).add(e.id)
    old = hint.workers_of(wl.topology)
    # Each executor's current worker, so a group counts its overlaps from its own members
    # (not by intersecting every group with every current worker: a million pairs at
    # 1,000 workers). Sorted below, so the order they are found in does not matter.
    was_on = {x: w for w in old for x in hint.executors_on(wl.topology, w)}
    overlaps: list[tuple[int, int, int]] = []
    for g, ids in members.items():
        shared: dict[int, int] = {}
        for x in ids:
            w = was_on.get(x)
            if w is not None:
                shared[w] = shared.get(w, 0) + 1
        overlaps.extend((n, g, w) for w, n in shared.items())
    overlaps.sort(key=lambda x: (-x[0], x[1], x[2]))
    name: dict[int, int] = {}
    taken: set[int] = set()
    for _, g, w in overlaps:
        if g not in name and w not in taken:
            name[g] = w
            taken.add(w)
    spare = (x for x in range(len(labels) + len(old) + 1) if x not in taken)
    for g in sorted(members):
        if g not in name:
            name[g] = next(spare)
    return {e.id: name[g] for e, g in zip(wl.executors, groups)}


schedule = two_phase(
    executors_to_workers, doc="Place ``workloads`` on ``nodes`` minimising inter-node traffic (see module doc)."
)
