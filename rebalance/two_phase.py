"""The frame of the two-phase schedulers (offline, online, partition): each states only its
phase 1 (executors -> workers, per topology) and, when it differs from online's, its
phase 2 (workers -> nodes, all topologies together).

The frame, in order: :func:`~squall.rebalance.prepare.prepare` (inputs sorted and checked,
``current`` split into hints and kept rows), :func:`~squall.rebalance.prepare.check_load`
(strict mode), :func:`~squall.rebalance.prepare.worker_budget` (workers per topology,
shrunk to the free slots), phase 1 for each topology in name order, phase 2,
:func:`~squall.rebalance.phase2.assemble` (the kept topologies added back unchanged), then
:func:`~squall.rebalance.relabel.keep_worker_ids` (worker ids that move the fewest
executors from ``current``; a renaming, so no cost changes).
Pure and deterministic whenever both phases are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from squall.rebalance.assignment import Assignment, WorkerKey
from squall.rebalance.model import Node, Workload
from squall.rebalance.params import SchedulerParams
from squall.rebalance.phase2 import assemble, place_workers
from squall.rebalance.prepare import Request, check_load, prepare, worker_budget
from squall.rebalance.relabel import keep_worker_ids

# (workload, workers it may use, params, hint: its current rows) -> {executor id: worker id}
Phase1 = Callable[[Workload, int, SchedulerParams, Assignment], dict[int, int]]
# (request, params, {topology: {executor id: worker id}}) -> {(topology, worker id): node id}
Phase2 = Callable[[Request, SchedulerParams, Mapping[str, Mapping[int, int]]], dict[WorkerKey, str]]
Schedule = Callable[[Sequence[Workload], Sequence[Node], SchedulerParams, Assignment | None], Assignment]


def two_phase(phase1: Phase1, phase2: Phase2 = place_workers, doc: str = "") -> Schedule:
    """A scheduler ``schedule(workloads, nodes, params=SchedulerParams(), current=None)``
    running the module's frame around ``phase1`` and ``phase2``; ``doc`` is its docstring."""

    def schedule(
        workloads: Sequence[Workload],
        nodes: Sequence[Node],
        params: SchedulerParams = SchedulerParams(),
        current: Assignment | None = None,
    ) -> Assignment:
        req = prepare(workloads, nodes, current)
        check_load(req, params)
        budget = worker_budget(req, params)
        placed = {wl.topology: phase1(wl, budget[wl.topology], params, req.hint) for wl in req.workloads}
        return keep_worker_ids(req.hint, assemble(req, placed, phase2(req, params, placed)))

    schedule.__doc__ = doc
    return schedule
