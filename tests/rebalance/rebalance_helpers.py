"""Invariant checks and small builders shared by the rebalance tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

from squall.rebalance import Assignment, Executor, Node, Workload


def wl(
    name: str,
    workers: int,
    components: Sequence[str],
    traffic: Sequence[tuple[int, int, float]] = (),
    loads: Sequence[float] | None = None,
    edges: Sequence[tuple[str, str]] | None = None,
) -> Workload:
    """A workload with executor k of component components[k], task k+1."""
    execs = tuple(Executor(k, c, (k + 1, k + 1)) for k, c in enumerate(components))
    loads = tuple(loads) if loads is not None else (0.0,) * len(execs)
    return Workload(name, workers, execs, tuple(traffic), loads, None if edges is None else tuple(edges))


def nodes(*spec: tuple[str, int, float]) -> tuple[Node, ...]:
    return tuple(Node(i, s, c) for i, s, c in spec)


def assert_valid(a: Assignment, workloads: Sequence[Workload], cluster: Sequence[Node]) -> None:
    """Every executor placed exactly once, on a known node, within the slots."""
    known = {n.id: n for n in cluster}
    for w in workloads:
        placed = [e for t, e, _ in a.executors if t == w.topology]
        assert sorted(placed) == sorted(w.executor_ids), f"{w.topology}: executors placed {placed}"
        assert 1 <= len(a.workers_of(w.topology)) <= min(w.workers, len(w.executors))
    for n in a.nodes_used():
        assert n in known, f"unknown node {n}"
        assert len(a.workers_on(n)) <= known[n].slots, f"{n}: {len(a.workers_on(n))} > {known[n].slots} slots"


def expected_workers(workloads: Sequence[Workload], cluster: Sequence[Node]) -> dict[str, int] | None:
    """Workers per topology when every request fits the slots, else None."""
    want = {w.topology: min(w.workers, len(w.executors)) for w in workloads}
    return want if sum(want.values()) <= sum(n.slots for n in cluster) else None


def node_loads(a: Assignment, workloads: Sequence[Workload]) -> dict[str, float]:
    out: dict[str, list[float]] = {}
    for w in workloads:
        for e, load in zip(w.executors, w.load_hz):
            out.setdefault(a.node_of(w.topology, e.id), []).append(load)
    return {n: math.fsum(v) for n, v in out.items()}
