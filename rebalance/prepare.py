"""Checks and bookkeeping every scheduler does before placing anything, and the frame around
each scheduler's placement (:func:`scheduler`).

Guarantees of :func:`prepare`: workloads sorted by topology name (so input order never
matters), nodes sorted by id, duplicate names rejected, every node named in ``current``
known (else :class:`InfeasibleError`), and ``current`` split into the rows of topologies
being scheduled (hints) and the rows of the others (kept as they are, holding their slots).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from squall.rebalance.assignment import Assignment
from squall.rebalance.errors import InfeasibleError, InvalidInputError
from squall.rebalance.model import Node, Workload, check_unique_nodes, check_unique_topologies
from squall.rebalance.params import SchedulerParams

# The public form of every scheduler: schedule(workloads, nodes, params, current) -> Assignment.
Schedule = Callable[[Sequence[Workload], Sequence[Node], SchedulerParams, Assignment | None], Assignment]


@dataclass(frozen=True)
class Request:
    workloads: tuple[Workload, ...]
    nodes: tuple[Node, ...]
    hint: Assignment  # current rows of the topologies being scheduled, stale rows dropped
    kept: Assignment  # current rows of every other topology, returned unchanged
    free: dict[str, int]  # slots per node not held by kept topologies


def prepare(workloads: Sequence[Workload], nodes: Sequence[Node], current: Assignment | None) -> Request:
    if not workloads:
        raise InvalidInputError("no workload to schedule")
    if not nodes:
        raise InfeasibleError("no nodes: nothing to place workers on")
    check_unique_topologies(workloads)
    check_unique_nodes(nodes)
    ordered = tuple(sorted(workloads, key=lambda w: w.topology))
    node_list = tuple(sorted(nodes, key=lambda n: n.id))
    current = current if current is not None else Assignment.empty()
    known = {n.id for n in node_list}
    unknown = [n for n in current.nodes_used() if n not in known]
    if unknown:
        raise InfeasibleError(f"current assignment uses unknown node(s) {unknown}; known nodes are {sorted(known)}")
    names = {w.topology for w in ordered}
    kept = current.without(names)
    hint = _fresh_rows(current.restrict(names), ordered)
    free = {n.id: n.slots for n in node_list}
    for _, _, node in kept.workers:
        # A kept topology may hold more workers than a shrunken node now offers; it keeps
        # them, and the node simply has no free slot.
        free[node] = max(0, free[node] - 1)
    return Request(ordered, node_list, hint, kept, free)


# (request, params, current) -> the scheduled topologies' rows only (no kept topology)
Place = Callable[["Request", SchedulerParams, Assignment | None], Assignment]


def scheduler(place: Place, *, load_check: bool = True) -> Schedule:
    """The scheduler ``schedule(workloads, nodes, params=SchedulerParams(), current=None)``
    around ``place``, with ``place``'s docstring: :func:`prepare`, then :func:`check_load`
    (unless ``load_check`` is False), then ``place``; the kept topologies' rows are added
    back to its result unchanged. Pure and deterministic whenever ``place`` is."""

    def schedule(
        workloads: Sequence[Workload],
        nodes: Sequence[Node],
        params: SchedulerParams = SchedulerParams(),
        current: Assignment | None = None,
    ) -> Assignment:
        req = prepare(workloads, nodes, current)
        if load_check:
            check_load(req, params)
        return place(req, params, current).merge(req.kept)

    schedule.__doc__ = place.__doc__
    schedule.__module__ = place.__module__
    return schedule


def _fresh_rows(current: Assignment, workloads: Sequence[Workload]) -> Assignment:
    """Drop rows naming executors the workload no longer has (a stale hint is no error)."""
    by_name = {w.topology: w for w in workloads}
    execs = tuple(r for r in current.executors if by_name[r[0]].has_executor(r[1]))
    used = {(t, w) for t, _, w in execs}
    return Assignment(execs, tuple(r for r in current.workers if (r[0], r[1]) in used))


def worker_budget(request: Request, params: SchedulerParams) -> dict[str, int]:
    """Workers per topology: min(workers, executors), shrunk to the free slots.

    When the topologies together ask for more workers than there are free slots, strict
    mode raises; otherwise the largest request gives up one worker at a time (ties by
    name) until they fit, as Storm runs a topology on fewer workers when slots are short.
    Fewer free slots than topologies always raises: every topology needs one worker.
    """
    want = {w.topology: min(w.workers, len(w.executors)) for w in request.workloads}
    free = sum(request.free.values())
    asked = sum(want.values())
    if asked <= free:
        return want
    if params.strict:
        detail = ", ".join(f"{t}: {n}" for t, n in want.items())
        raise InfeasibleError(f"{asked} workers asked ({detail}) but only {free} free slots")
    if free < len(want):
        raise InfeasibleError(f"{len(want)} topologies need one worker each but only {free} free slots")
    budget = dict(want)
    while sum(budget.values()) > free:
        largest = min(budget, key=lambda t: (-budget[t], t))
        budget[largest] -= 1
    return budget


def check_load(request: Request, params: SchedulerParams) -> None:
    """In strict mode, reject loads no placement can carry: more total load than total
    capacity, or one executor heavier than the largest node."""
    if not params.strict:
        return
    total = math.fsum(w.total_load_hz for w in request.workloads)
    capacity = math.fsum(n.capacity_hz for n in request.nodes)
    if total > capacity:
        raise InfeasibleError(f"total load {total:.4g} Hz exceeds total capacity {capacity:.4g} Hz of all nodes")
    biggest = max(request.nodes, key=lambda n: (n.capacity_hz, n.id))
    for w in request.workloads:
        for ex, load in zip(w.executors, w.load_hz):
            if load > biggest.capacity_hz:
                raise InfeasibleError(
                    f"topology {w.topology!r}: executor {ex.id} ({ex.component}) needs {load:.4g} Hz, "
                    f"more than the largest node {biggest.id!r} offers ({biggest.capacity_hz:.4g} Hz)"
                )


def m_cap(executors: int, workers: int, alpha: float) -> int:
    """Most executors per worker: ceil(E/W) + ceil(alpha x (E - W + 1 - ceil(E/W)))."""
    base = math.ceil(executors / workers)
    return base + math.ceil(alpha * max(0, executors - workers + 1 - base))


def delta_cap(workers: int, nodes: int, delta: float) -> int:
    """Most workers of one topology per node: ceil(W/n) + ceil(delta x (W - n + 1 - ceil(W/n))).
    The second term is clamped at 0: with fewer workers than nodes it would go negative."""
    base = math.ceil(workers / nodes)
    return base + math.ceil(delta * max(0, workers - nodes + 1 - base))
