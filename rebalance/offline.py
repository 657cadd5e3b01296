"""offline: the topology-based scheduler, for a topology nothing has been measured about.

Components are taken in topological order (:mod:`squall.topology.order`: layer by layer
from the sources, by name within a layer, a cycle's members in one layer). Each
component's executors, in task order, go to slots (workers) holding at most M executors
(the alpha formula of the online scheduler):

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
from collections.abc import Mapping

from squall.rebalance.assignment import Assignment, WorkerKey
from squall.rebalance.errors import InfeasibleError
from squall.rebalance.model import Workload
from squall.rebalance.params import SchedulerParams
from squall.rebalance.prepare import Request, m_cap
from squall.rebalance.round_robin import storm_slot_order
from squall.rebalance.two_phase import two_phase
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


def executors_to_slots(wl: Workload, n_workers: int, params: SchedulerParams, _hint: Assignment) -> dict[int, int]:
    """Phase 1: {executor id: slot k}, by :func:`slots_for_topology` (blind to ``current``)."""
    return {e: k for k, executors in enumerate(slots_for_topology(wl, n_workers, params)) for e in executors}


def storm_slots(
    request: Request, _params: SchedulerParams, placed: Mapping[str, Mapping[int, int]]
) -> dict[WorkerKey, str]:
    """Phase 2: slot k of each topology (name order) is the k-th of the slots still free,
    in Storm's order, as round_robin takes them."""
    free = dict(request.free)
    worker_node: dict[WorkerKey, str] = {}
    for t in sorted(placed):
        slots = sorted(set(placed[t].values()))
        order = storm_slot_order(free)[: len(slots)]
        if len(order) < len(slots):  # worker_budget leaves a slot for every worker
            raise InfeasibleError(f"topology {t!r}: {len(slots)} workers but {len(order)} free slots left")
        for k, node in zip(slots, order):
            worker_node[(t, k)] = node
            free[node] -= 1
    return worker_node


schedule = two_phase(executors_to_slots, storm_slots, doc="Topology-based placement of ``workloads`` (see module doc).")
