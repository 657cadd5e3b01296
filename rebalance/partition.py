"""partition: a reference, not a baseline — k-way graph partitioning with METIS.

Per topology, the traffic graph (undirected, edge weight T[i,j] + T[j,i], vertex weight
the executor's load) is cut into W' parts by METIS (through pymetis, imported here only,
lazily) with a fixed seed, so the same input gives the same parts. Weights are scaled to
integers: edges to 1..10^6 of the heaviest edge, vertices to 1..10^4 of the heaviest
executor (all 1 when nothing is measured, which balances by count). A part METIS leaves
empty takes the cheapest single executor move, as in the online scheduler.

Workers -> nodes reuses the online scheduler's phase 2 (:mod:`squall.rebalance.phase2`),
so the comparison with online isolates phase 1, and slots, capacity, delta and beta are
honoured the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from squall.rebalance.assignment import Assignment
from squall.rebalance.errors import InvalidInputError
from squall.rebalance.greedy import Level, PairGreedy
from squall.rebalance.model import Workload
from squall.rebalance.online import adjacency_of, fill_empty_workers, initial_labels, relabel
from squall.rebalance.params import SchedulerParams
from squall.rebalance.two_phase import two_phase

METIS_SEED = 0
EDGE_SCALE = 10**6
VERTEX_SCALE = 10**4


def metis_parts(adjacency: list[dict[int, float]], loads: np.ndarray, n_parts: int) -> list[int]:
    """Part of each vertex; plain METIS k-way with a fixed seed."""
    if n_parts == 1 or not any(adjacency):
        # Nothing to cut (METIS needs edges to be useful): the caller's greedy balances.
        return [-1] * len(adjacency)
    try:
        import pymetis  # lazy: importing squall.rebalance must not load the C extension
    except ImportError:
        raise InvalidInputError("the partition scheduler needs pymetis: pip install 'squall[partition]'") from None

    heaviest_edge = max(w for row in adjacency for w in row.values())
    heaviest_vertex = float(loads.max()) if loads.size else 0.0
    xadj = [0]
    adjncy: list[int] = []
    eweights: list[int] = []
    for row in adjacency:
        for j in sorted(row):
            adjncy.append(j)
            eweights.append(max(1, round(row[j] / heaviest_edge * EDGE_SCALE)))
        xadj.append(len(adjncy))
    if heaviest_vertex > 0:
        vweights = [max(1, round(v / heaviest_vertex * VERTEX_SCALE)) for v in loads]
    else:
        vweights = [1] * len(adjacency)
    options = pymetis.Options()
    options.seed = METIS_SEED
    graph: dict[str, Any]
    if hasattr(pymetis, "CSRAdjacency"):
        graph = {"adjacency": pymetis.CSRAdjacency(adj_starts=xadj, adjacent=adjncy)}
    else:  # older pymetis
        graph = {"xadj": xadj, "adjncy": adjncy}
    result = pymetis.part_graph(n_parts, **graph, vweights=vweights, eweights=eweights, options=options)
    return [int(p) for p in result[1]]


def partition_executors(wl: Workload, n_workers: int, params: SchedulerParams, hint: Assignment) -> dict[int, int]:
    """{executor id: worker id} from METIS parts."""
    loads = np.array(wl.load_hz, dtype=float)
    adjacency = adjacency_of(wl)
    parts = metis_parts(adjacency, loads, n_workers)
    everywhere = np.ones(n_workers, dtype=bool)
    # The greedy state only carries the parts into fill_empty_workers; its limits are
    # loose on purpose (the partition is METIS's, not the online rules').
    greedy = PairGreedy(
        loads=loads,
        groups=np.zeros(len(loads), dtype=np.int64),
        adjacency=adjacency,
        item_limit=np.full(n_workers, len(loads), dtype=np.int64),
        load_limit=np.full(n_workers, np.inf),
        group_limit=np.zeros(0, dtype=np.int64),
        scale=np.ones(n_workers),
        levels=[Level("any", everywhere, load_limit=False, group_limit=False)],
        hint=np.full(len(loads), -1, dtype=np.int64),
    )
    for k, part in enumerate(parts):
        if part >= 0:
            greedy.put(k, part)
    for k in sorted((k for k, p in enumerate(parts) if p < 0), key=lambda k: (-loads[k], k)):
        greedy.place_single(k)
    fill_empty_workers(greedy, wl, np.inf, greedy.hint)
    return relabel(wl, [int(w) for w in greedy.where], initial_labels(wl.topology, n_workers, hint), hint)


schedule = two_phase(partition_executors, doc="METIS executors -> workers, then the online phase 2 (see module doc).")
