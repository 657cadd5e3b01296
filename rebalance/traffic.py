"""Traffic rows as arrays, and the undirected adjacency both phases of ``online`` walk.

Pure: numpy over the workload's rows. Sums are taken so that every float is the one the
row-by-row loops they replace computed (see each function).
"""

from __future__ import annotations

import numpy as np

from squall.rebalance.model import Workload


def traffic_arrays(wl: Workload) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source position, destination position, rate) of every traffic row, in row order."""
    if not wl.traffic:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    sources, destinations, rates = zip(*wl.traffic)
    ids = np.fromiter((e.id for e in wl.executors), dtype=np.int64, count=len(wl.executors))
    by_id = np.argsort(ids, kind="stable")
    sorted_ids = ids[by_id]
    # Every id in a row is an executor's (the workload checked), so each lookup finds it.
    src = by_id[np.searchsorted(sorted_ids, np.array(sources, dtype=np.int64))]
    dst = by_id[np.searchsorted(sorted_ids, np.array(destinations, dtype=np.int64))]
    return src, dst, np.array(rates, dtype=float)


def undirected(n: int, src: np.ndarray, dst: np.ndarray, rate: np.ndarray) -> list[dict[int, float]]:
    """adj[a][b] = the rates of a -> b and b -> a summed, for rows unique per (src, dst):
    at most two rows add to an entry, so the sum is the same float in any order. (A loop
    over the rows: building the dicts from sorted arrays was slower.)"""
    adj: list[dict[int, float]] = [{} for _ in range(n)]
    for i, j, r in zip(src.tolist(), dst.tolist(), rate.tolist()):
        adj[i][j] = adj[i].get(j, 0.0) + r
        adj[j][i] = adj[j].get(i, 0.0) + r
    return adj
