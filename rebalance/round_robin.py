"""round_robin: Storm's EvenScheduler, reproduced exactly.

Free slots are grouped by node (node ids ascending, slot indices ascending), the groups are
stable-sorted by free-slot count descending and interleaved (the first slot of each node,
then the second of each, ...). A topology takes the first min(W, free) of them and its
executors, sorted by start task, go to slot i mod len(slots).

Like Storm, it schedules only what needs it: executors that ``current`` already places on a
live node stay where they are, and only the others are spread over free slots; topologies
are taken in name order and each one's slots are gone for the next. It ignores load, so it
may overload a node; :func:`squall.rebalance.evaluate` reports that.
"""

from __future__ import annotations

from collections.abc import Mapping

from squall.rebalance.assignment import Assignment, ExecutorKey, WorkerKey
from squall.rebalance.errors import InfeasibleError
from squall.rebalance.params import SchedulerParams
from squall.rebalance.prepare import Request, scheduler


def storm_slot_order(free: Mapping[str, int]) -> list[str]:
    """The node of each free slot, in EvenScheduler's order (see the module docstring)."""
    groups = [(node, count) for node, count in sorted(free.items()) if count > 0]
    groups.sort(key=lambda g: -g[1])  # list.sort is stable: equal counts keep id order
    order: list[str] = []
    for k in range(max((c for _, c in groups), default=0)):
        order.extend(node for node, count in groups if k < count)
    return order


def _place(req: Request, params: SchedulerParams, current: Assignment | None) -> Assignment:
    """Storm's even scheduling of ``workloads`` on ``nodes``.

    Uses min(W, free slots, executors) workers per topology; with ``params.strict``
    raises :class:`InfeasibleError` when that is fewer than min(W, executors).
    """
    free = dict(req.free)
    for _, _, node in req.hint.workers:  # live workers of these topologies hold their slots
        free[node] = max(0, free[node] - 1)
    executor_worker: dict[ExecutorKey, int] = {}
    worker_node: dict[WorkerKey, str] = {}
    for wl in req.workloads:
        t = wl.topology
        alive = req.hint.workers_of(t)
        for w in alive:
            worker_node[(t, w)] = req.hint.node_of_worker(t, w)
            for e in req.hint.executors_on(t, w):
                executor_worker[(t, e)] = w
        todo = [e.id for e in wl.executors if not req.hint.has_executor(t, e.id)]
        if not todo:
            continue
        slots = storm_slot_order(free)
        total = min(wl.workers, len(slots) + len(alive))
        wanted = min(wl.workers, len(wl.executors))
        if params.strict and total < wanted:
            raise InfeasibleError(
                f"topology {t!r} asks for {wanted} workers but only {len(slots) + len(alive)} slots are free"
            )
        new_slots = slots[: max(0, total - len(alive))]
        if not new_slots and not alive:
            raise InfeasibleError(f"topology {t!r}: no free slot left for its {len(todo)} executors")
        next_id = max(alive, default=-1) + 1
        # Executors without a slot join the live workers when no new slot is free.
        targets: list[tuple[int | None, str]] = (
            [(None, node) for node in new_slots] if new_slots else [(w, worker_node[(t, w)]) for w in alive]
        )
        opened: dict[int, int] = {}
        for i, e in enumerate(todo):
            k = i % len(targets)
            worker, node = targets[k]
            if worker is None:
                if k not in opened:
                    opened[k] = next_id
                    next_id += 1
                    worker_node[(t, opened[k])] = node
                    free[node] -= 1
                worker = opened[k]
            executor_worker[(t, e)] = worker
    return Assignment.of(executor_worker, worker_node)


schedule = scheduler(_place)
