"""How a running worker applies a ``WorkerUpdate``: placement, activation, and live migration
(pause, executors moving in and out, states to restore).

The steps of one update, in this order, all within one round of the worker's single thread
(no tuple moves in between):

1. a new ``assignment_version`` forgets the snapshots reported for the previous one;
2. ``paused`` is applied first, so no spout emits under the new routes before they are set;
3. executors no longer listed are removed from the engine; each snapshot is kept in
   ``released`` and reported in every heartbeat until the version changes;
4. executors newly listed are added, restoring ``states[id]`` when given (a state for an
   executor already running here is ignored, so a re-sent update is harmless); one that
   cannot be built (its code fails to import or ``initialize`` raises) is logged and left
   out, and items for it are dropped rather than forwarded back and forth;
5. the placement is applied: tasks placed at ``""`` are in transit and their items are held
   (bounded); held items whose task now has an owner go to it, or, if it is now local here,
   to its inbox;
6. activation (``active``) is applied; the caller then sends a heartbeat at once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Iterable

from squall.messages import WorkerUpdate
from squall.topology.spec import ExecutorSpec, TopologySpec

if TYPE_CHECKING:
    from squall.supervisor.worker import Worker

log = logging.getLogger("squall.worker")


class ComponentClasses(dict):
    """Component name -> user class, resolved from the spec on first use, so executors that
    move into a worker later find their class without the worker importing every
    component's code at start."""

    def __init__(self, spec: TopologySpec, resolve: Callable[[str], type]) -> None:
        super().__init__()
        self._spec = spec
        self._resolve = resolve

    def __missing__(self, component: str) -> type:
        cls = self[component] = self._resolve(self._spec.component(component).class_ref)
        return cls


def routes_for(
    executors: Iterable[ExecutorSpec],
    local_ids: frozenset[int],
    placement: dict[int, str],
    nowhere: frozenset[int] = frozenset(),
) -> dict[int, str | None]:
    """Task -> endpoint for every task not run here ("" in transit, None nowhere)."""
    routes: dict[int, str | None] = {}
    for e in executors:
        if e.id in local_ids:
            continue
        endpoint = None if e.id in nowhere else placement.get(e.id)
        for t in e.tasks:
            routes[t] = endpoint
    return routes


def apply_update(worker: "Worker", update: WorkerUpdate) -> None:
    """Apply ``update`` to ``worker`` (the steps in this module's docstring)."""
    engine = worker.engine
    if update.assignment_version != worker.assignment_version:
        worker.released = {}
    worker.assignment_version = update.assignment_version
    engine.paused = bool(update.paused)

    known = {e.id for e in worker.all_executors}
    wanted = worker.local_ids if update.executors is None else frozenset(update.executors) & known
    removed = sorted(worker.local_ids - wanted)
    added = sorted(wanted - worker.local_ids)
    failed: set[int] = set()
    for eid in removed:
        worker.released[eid] = engine.remove_executor(eid)
    for eid in added:
        try:
            engine.add_executor(eid, update.states.get(eid))
        except Exception as exc:  # user code that fails to import or initialize: not run here
            log.error("worker %s: executor %d cannot run here, its items are dropped: %s", worker.me, eid, exc)
            failed.add(eid)
    worker.local_ids = engine.local_executor_ids()
    if removed or added:
        worker.codec.set_local(engine.wiring.local_tasks)

    worker.placement = dict(update.placement)
    back = worker._place(update.placement, nowhere=frozenset(failed))
    if back:
        worker.codec.deliver_local(back)

    if update.active and not worker.active:
        engine.activate()
    elif not update.active and worker.active:
        engine.deactivate()
    worker.active = update.active
    log.info(
        "worker %s: assignment version %d applied (active=%s, paused=%s, executors %s, out %s, in %s)",
        worker.me, update.assignment_version, worker.active, engine.paused, sorted(worker.local_ids),
        removed, [e for e in added if e not in failed],
    )
