"""Traffic rows as arrays, and the undirected adjacency both phases of ``online`` walk.

Pure: numpy over the workload's rows. Sums are taken so that every float is the one the
row-by-row loops they replace computed (see each function).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from squall.rebalance.assignment import WorkerKey
from squall.rebalance.model import Workload

_ROW = np.dtype([("src", np.int64), ("dst", np.int64), ("rate", np.float64)])


def traffic_arrays(wl: Workload) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source position, destination position, rate) of every traffic row, in row order."""
    if not wl.traffic:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    # One pass over the rows (canonical (int, int, float) tuples) into a record array:
    # half the time of zip(*rows), which also makes an iterator object per row and so
    # sets off the cyclic garbage collector over the whole heap.
    rows = np.fromiter(wl.traffic, dtype=_ROW, count=len(wl.traffic))
    ids = np.fromiter((e.id for e in wl.executors), dtype=np.int64, count=len(wl.executors))
    by_id = np.argsort(ids, kind="stable")
    sorted_ids = ids[by_id]
    # Every id in a row is an executor's (the workload checked), so each lookup finds it.
    src = by_id[np.searchsorted(sorted_ids, rows["src"])]
    dst = by_id[np.searchsorted(sorted_ids, rows["dst"])]
    return src, dst, np.ascontiguousarray(rows["rate"])


def undirected(n: int, src: np.ndarray, dst: np.ndarray, rate: np.ndarray) -> list[dict[int, float]]:
    """adj[a][b] = the rates of a -> b and b -> a summed, for rows unique per (src, dst):
    at most two rows add to an entry, so the sum is the same float in any order. (A loop
    over the rows: building the dicts from sorted arrays was slower.)"""
    adj: list[dict[int, float]] = [{} for _ in range(n)]
    for i, j, r in zip(src.tolist(), dst.tolist(), rate.tolist()):
        adj[i][j] = adj[i].get(j, 0.0) + r
        adj[j][i] = adj[j].get(i, 0.0) + r
    return adj


def pair_weights(n: int, src: np.ndarray, dst: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Per row, ``undirected(n, src, dst, rate)[src][dst]`` without the dictionaries: the
    row's rate plus the reverse row's, if there is one (rows unique per (src, dst), no row
    from a position to itself, rates > 0). The same float: the two rates added in either
    order, ``0.0 + r`` being r."""
    if not len(src):
        return rate.astype(float)
    keys = src * n + dst
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    reverse = dst * n + src
    at = np.minimum(np.searchsorted(sorted_keys, reverse), len(keys) - 1)
    back = np.where(sorted_keys[at] == reverse, rate[order[at]], 0.0)
    return rate + back


def worker_traffic(
    workloads: Sequence[Workload], placed: Mapping[str, Mapping[int, int]], index: Mapping[WorkerKey, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(load per worker, worker a, worker b, traffic a -> b) with executors on workers as in
    ``placed`` ({topology: {executor id: worker id}}) and workers numbered by ``index``:
    each worker pair (a != b) once, ascending by (a, b). Every sum is the float of the loop
    it replaces — loads in executor order, a pair's traffic in row order, workloads in the
    order given — because ``np.bincount`` adds its weights one by one in input order."""
    item_of_exec: list[np.ndarray] = []
    load_rows: list[np.ndarray] = []
    a_rows: list[np.ndarray] = []
    b_rows: list[np.ndarray] = []
    rate_rows: list[np.ndarray] = []
    for wl in workloads:
        t = wl.topology
        worker = placed[t]
        item_of = np.array([index[(t, worker[ex.id])] for ex in wl.executors], dtype=np.int64)
        item_of_exec.append(item_of)
        load_rows.append(np.array(wl.load_hz, dtype=float))
        src, dst, rate = traffic_arrays(wl)
        a_rows.append(item_of[src])
        b_rows.append(item_of[dst])
        rate_rows.append(rate)
    n = len(index)
    loads = np.bincount(np.concatenate(item_of_exec), np.concatenate(load_rows), n).astype(float)
    a_all, b_all, rate_all = np.concatenate(a_rows), np.concatenate(b_rows), np.concatenate(rate_rows)
    apart = a_all != b_all
    keys, inverse = np.unique(a_all[apart] * n + b_all[apart], return_inverse=True)
    pair_rate = np.bincount(inverse, rate_all[apart], len(keys)).astype(float)
    return loads, keys // n, keys % n, pair_rate
