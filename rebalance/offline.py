"""offline: the topology-based scheduler, for a topology nothing has been measured about.

Components are taken in topological order (:func:`squall.topology.order.topological_order`:
layer by layer from the sources, by name within a layer, a cycle's members in one layer). Each component's executors, in task order, go to
slots (workers) holding at most M executors (the alpha formula of the online scheduler):

* before component index floor(epsilon x components): round-robin over the not-full slots
  already holding an executor of one of its input components; when there are none, over
  the other not-full slots;
* from that index on, empty slots come first, then the two groups above.

A slot left empty at the end takes the last executor of the fullest slot, so a topology
uses every worker it was given. Slots are Storm's (same order as round_robin), so worker
k of a topology runs on the node of the k-th free slot. It reads no load or traffic, so it
is capacity-blind; ``current`` is used only to keep other topologies where they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from squall.rebalance.assignment import Assignment, ExecutorKey, WorkerKey
from squall.rebalance.errors import InfeasibleError
from squall.rebalance.model import Node, Workload
from squall.rebalance.params import SchedulerParams
from squall.rebalance.prepare import check_load, m_cap, prepare, worker_budget
from squall.rebalance.round_robin import storm_slot_order
from squall.topology.order import topological_order


def slots_for_topology(wl: Workload, n_slots: int, params: SchedulerParams) -> list[list[int]]:
    """Executor ids per slot, following the module's rules."""
    M = m_cap(len(wl.executors), n_slots, params.alpha)
    edges = wl.component_edges()
    order = topological_order(wl.components(), edges)
    prefer_empty_from = math.floor(params.epsilon * len(order))
    slots: list[list[int]] = [[] for _ in range(n_slots)]
    slot_components: list[set[str]] = [set() for _ in range(n_slots)]
    by_component: dict[str, list[int]] = {}
    for e in wl.executors:
        by_component.setdefault(e.component, []).append(e.id)
    for index, comp in enumerate(order):
        inputs = {s for s, d in edges if d == comp and s != comp}
        turn: dict[str, int] = {}
        for ex in by_component[comp]:
            open_ = [k for k in range(n_slots) if len(slots[k]) < M]
            near = [k for k in open_ if slot_components[k] & inputs]
            empty = [k for k in open_ if not slots[k]]
            rest = [k for k in open_ if k not in set(near)]
            groups = [("near", near), ("rest", rest)]
            if index >= prefer_empty_from:
                groups.insert(0, ("empty", empty))
            name, pool = next((g, p) for g, p in groups if p)
            k = pool[turn.get(name, 0) % len(pool)]
            turn[name] = turn.get(name, 0) + 1
            slots[k].append(ex)
            slot_components[k].add(comp)
    for k in range(n_slots):
        if not slots[k]:
            fullest = max(range(n_slots), key=lambda x: (len(slots[x]), -x))
            slots[k].append(slots[fullest].pop())
    return slots


def schedule(
    workloads: Sequence[Workload],
    nodes: Sequence[Node],
    params: SchedulerParams = SchedulerParams(),
    current: Assignment | None = None,
) -> Assignment:
    """Topology-based placement of ``workloads`` (see module doc)."""
    req = prepare(workloads, nodes, current)
    check_load(req, params)
    budget = worker_budget(req, params)
    free = dict(req.free)
    executor_worker: dict[ExecutorKey, int] = {}
    worker_node: dict[WorkerKey, str] = {}
    for wl in req.workloads:
        t = wl.topology
        order = storm_slot_order(free)[: budget[t]]
        if not order:  # worker_budget leaves at least one slot per topology
            raise InfeasibleError(f"topology {t!r}: no free slot left")
        for k, executors in enumerate(slots_for_topology(wl, len(order), params)):
            worker_node[(t, k)] = order[k]
            free[order[k]] -= 1
            for e in executors:
                executor_worker[(t, e)] = k
    return Assignment.of(executor_worker, worker_node).merge(req.kept)
