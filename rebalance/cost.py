"""The cost model and the rule that decides whether a proposed assignment is applied.

* :func:`evaluate` turns (assignment, workloads, nodes) into a :class:`Cost`;
* :func:`crossing` splits traffic rows into inter-worker and inter-node tuples/s by the rule
  :func:`evaluate` prices with (what Nimbus's pages and metrics show);
* :func:`should_apply` compares two costs and says whether Nimbus should switch, and why.

Both are pure: no clock is read; the caller passes the seconds since the last change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from squall.rebalance.assignment import Assignment
from squall.rebalance.errors import InfeasibleError, InvalidInputError
from squall.rebalance.model import Node, TrafficRow, Workload

# A node is overloaded when its load exceeds capacity by more than this relative margin:
# loads are float sums, and a node filled exactly to capacity must not flip to
# "overloaded" because of the last bit of rounding.
OVERLOAD_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Cost:
    """What an assignment costs.

    inter_node_tps: tuples/s between executors on different nodes.
    inter_worker_tps: tuples/s between executors in different workers, whether or not the
        workers share a node (so it is >= inter_node_tps).
    node_load_hz: (node id, summed executor load in cycles/s) for every node, by id.
    overloaded: ids of nodes whose load exceeds their capacity, sorted.
    overload_hz: total load above capacity, summed over the overloaded nodes.
    """

    inter_node_tps: float
    inter_worker_tps: float
    node_load_hz: tuple[tuple[str, float], ...]
    overloaded: tuple[str, ...]
    overload_hz: float

    def load_of(self, node: str) -> float:
        return dict(self.node_load_hz)[node]

    def to_dict(self) -> dict[str, Any]:
        return {
            "inter_node_tps": self.inter_node_tps,
            "inter_worker_tps": self.inter_worker_tps,
            "node_load_hz": dict(self.node_load_hz),
            "overloaded": list(self.overloaded),
            "overload_hz": self.overload_hz,
        }


def evaluate(assignment: Assignment, workloads: Sequence[Workload], nodes: Sequence[Node]) -> Cost:
    """Cost of ``assignment`` for the measured ``workloads`` on ``nodes``.

    Every executor of every workload must be assigned (else :class:`InvalidInputError`),
    and every node the assignment uses must be in ``nodes`` (else :class:`InfeasibleError`).
    Rows of topologies not in ``workloads`` are ignored (their load is unknown).
    """
    capacity = {n.id: n.capacity_hz for n in nodes}
    for node in assignment.nodes_used():
        if node not in capacity:
            raise InfeasibleError(f"assignment uses node {node!r}, which is not among the {len(nodes)} nodes")
    node_parts: dict[str, list[float]] = {n: [] for n in capacity}
    inter_node: list[float] = []
    inter_worker: list[float] = []
    for wl in workloads:
        t = wl.topology
        where: dict[int, tuple[int, str]] = {}
        for ex, load in zip(wl.executors, wl.load_hz):
            if not assignment.has_executor(t, ex.id):
                raise InvalidInputError(f"topology {t!r}: executor {ex.id} is not in the assignment")
            place = (assignment.worker_of(t, ex.id), assignment.node_of(t, ex.id))
            where[ex.id] = place
            node_parts[place[1]].append(load)
        _split(where, wl.traffic, inter_worker, inter_node)
    loads = {n: math.fsum(parts) for n, parts in node_parts.items()}
    over = {n: loads[n] - capacity[n] for n in loads if loads[n] > capacity[n] * (1 + OVERLOAD_TOLERANCE)}
    return Cost(
        inter_node_tps=math.fsum(inter_node),
        inter_worker_tps=math.fsum(inter_worker),
        node_load_hz=tuple(sorted(loads.items())),
        overloaded=tuple(sorted(over)),
        overload_hz=math.fsum(over.values()),
    )


def crossing(assignment: Assignment, topology: str, traffic: Iterable[TrafficRow]) -> tuple[float, float]:
    """(inter-worker, inter-node) tuples/s of ``topology``'s ``traffic`` rows under
    ``assignment``, counted as :func:`evaluate` counts them; rows with an executor the
    assignment does not place are left out."""
    rows = list(traffic)
    ids = {ex for src, dst, _ in rows for ex in (src, dst)}
    where = {
        ex: (assignment.worker_of(topology, ex), assignment.node_of(topology, ex))
        for ex in ids
        if assignment.has_executor(topology, ex)
    }
    inter_worker: list[float] = []
    inter_node: list[float] = []
    _split(where, rows, inter_worker, inter_node)
    return math.fsum(inter_worker), math.fsum(inter_node)


def _split(
    where: Mapping[int, tuple[int, str]],
    traffic: Iterable[TrafficRow],
    inter_worker: list[float],
    inter_node: list[float],
) -> None:
    """Append each row's rate to the lists it crosses: another worker, and another node."""
    for src, dst, rate in traffic:
        a, b = where.get(src), where.get(dst)
        if a is None or b is None:
            continue
        if a[0] != b[0]:
            inter_worker.append(rate)
            if a[1] != b[1]:
                inter_node.append(rate)


@dataclass(frozen=True)
class Decision:
    """Whether to apply a proposal, with the reason in words (for the log and the API)."""

    apply: bool
    reason: str


def should_apply(
    current: Cost,
    proposed: Cost,
    seconds_since_last_change: float,
    min_interval_s: float = 60.0,
    improvement_pct: float = 10.0,
) -> Decision:
    """The apply rule ("When to apply" in the design), made precise.

    In order:

    1. If fewer than ``min_interval_s`` seconds passed since the last applied change: no.
       (Pass ``math.inf`` when nothing was ever applied.)
    2. If the proposal carries *more* load above capacity (``overload_hz``) than the
       current assignment: no — never trade traffic for overload.
    3. If the current assignment overloads some node and the proposal carries strictly
       less load above capacity in total: yes, whatever the traffic. Moving the excess from
       one node to another does not count; the total must drop.
    4. If the current inter-node traffic is positive and the proposal's is strictly lower
       *and* at most ``(1 - improvement_pct/100)`` of it: yes.
    5. Otherwise: no.

    The strict "lower" in rule 4 keeps ``improvement_pct=0`` from churning on equal costs.
    """
    if not 0.0 <= improvement_pct <= 100.0:
        raise InvalidInputError(f"improvement_pct must be in [0, 100], got {improvement_pct}")
    if min_interval_s < 0:
        raise InvalidInputError(f"min_interval_s must be >= 0, got {min_interval_s}")
    if seconds_since_last_change < min_interval_s:
        return Decision(
            False, f"only {seconds_since_last_change:g} s since the last change; waiting for {min_interval_s:g} s"
        )
    if proposed.overload_hz > current.overload_hz * (1 + OVERLOAD_TOLERANCE):
        return Decision(
            False,
            f"proposal would overload nodes by {proposed.overload_hz:.4g} Hz (now {current.overload_hz:.4g} Hz)",
        )
    if current.overload_hz > 0 and proposed.overload_hz < current.overload_hz:
        return Decision(
            True,
            f"relieves overload on {', '.join(current.overloaded)}: "
            f"{current.overload_hz:.4g} Hz above capacity -> {proposed.overload_hz:.4g} Hz",
        )
    threshold = (1.0 - improvement_pct / 100.0) * current.inter_node_tps
    now, new = current.inter_node_tps, proposed.inter_node_tps
    if now > 0 and new < now and new <= threshold:
        return Decision(
            True,
            f"inter-node traffic {now:.4g} -> {new:.4g} tuples/s "
            f"({100.0 * (now - new) / now:.1f}% less, needed {improvement_pct:g}%)",
        )
    gain = 100.0 * (now - new) / now if now > 0 else 0.0
    return Decision(
        False, f"inter-node traffic {now:.4g} -> {new:.4g} tuples/s ({gain:.1f}% less, needed {improvement_pct:g}%)"
    )
