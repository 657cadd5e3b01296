"""The latency model: predicted board utilisation and end-to-end latency of any placement.

A queueing-network model in the spirit of DRS (Fu et al., ICDCS 2015), fitted to what
Squall measures (``squall.rebalance.profile``). For executor ``e`` in worker ``w`` on board
``n``, with tuple rate ``lam_e`` and service time ``s_e`` (its cycles over the board's clock):

* **Worker CPU** (cores): ``U_w = sum(lam_e s_e) + o + c x X_w``, where ``o`` is the worker's
  own loop overhead, ``c`` the CPU per item crossing between workers (half at each end) and
  ``X_w`` the items/s crossing ``w``'s boundary.
* **Board utilisation**: ``rho_n = (sum(U_w) + background) / cores_n``.
* **Time per visit**: ``T_e = s_e + Q_w`` where ``Q_w`` is the wait of an M/M/1 queue at
  the worker's one thread, slowed by the board when the board is the busier of the two:
  ``Q_w = r/(1-r) x mean service of w``, ``r = max(U_w, rho_n)``; on a board capped by a
  CPU quota, plus the throttling wait ``f(rho_n) x period x (1 - quota)/2``, with the share
  of time throttled ``f`` fitted to the measured one (``f ~ rho^4``, scaled to match).
* **Time per hop** between executors: 0 inside a worker (an in-memory queue); between
  workers, the batching delay plus the encode/decode CPU; between boards, also each
  board's one-way link delay and the transmission time of the item on both links, queued
  (M/M/1) by the links' load.
* **End to end** (Little's law over the network): the time per root tuple is the sum of
  visits and hops weighted by their rates over the source rate; acker items count their
  CPU in full but only one acker visit and one hop in and out per tree, since only the
  last ack of a tree is on its critical path.

The model is a linear sum of per-worker and per-edge terms, which is what lets the search
(:mod:`squall.rebalance.latency_search`) price a move incrementally.

Everything here is pure and deterministic. Where a profile is missing a default is used and
named in ``Prediction.assumptions``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from squall.rebalance.assignment import Assignment
from squall.rebalance.errors import InfeasibleError
from squall.rebalance.model import Node, Workload
from squall.rebalance.profile import BoardProfile

MAX_UTILISATION = 0.75  # hard limit on every board's predicted utilisation
SATURATED = 0.999  # utilisation at which a queue is treated as (almost) unstable
THROTTLE_EXPONENT = 4.0  # how steeply the share of time a quota throttles rises with load
DEFAULT_THROTTLED_AT_FULL = 0.5  # share of time throttled at utilisation 1 with no measurement


@dataclass(frozen=True)
class BoardTerms:
    """A board's constants as the model uses them (defaults applied)."""

    cores: float
    clock_hz: float
    memory_mb: float
    link_bps: float  # 0: unlimited
    link_delay_s: float
    throttle_wait_full_s: float  # throttling wait at utilisation 1 (0: no quota)
    throttle_scale: float
    background_cores: float


def board_terms(node: Node, assumptions: set[str]) -> BoardTerms:
    b = node.board
    if b is None:
        assumptions.add(f"board {node.id}: no profile; assumed 1 core at clock = capacity, no link delay")
        b = BoardProfile(cores=1.0, clock_hz=node.capacity_hz)
    clock = b.clock_hz
    if clock <= 0:
        clock = node.capacity_hz / b.cores
        assumptions.add(f"board {node.id}: clock unknown; taken as capacity / cores")
    wait_full = 0.0
    scale = 0.0
    if b.cpu_period_s > 0 and b.cores < 64:
        wait_full = b.cpu_period_s * max(0.0, 1.0 - min(1.0, b.cores)) / 2.0 if b.cores < 1 else b.cpu_period_s / 4.0
        if b.throttled_share > 0 and b.measured_utilisation > 0.05:
            scale = min(1.0, b.throttled_share / b.measured_utilisation ** THROTTLE_EXPONENT)
        else:
            scale = DEFAULT_THROTTLED_AT_FULL
    return BoardTerms(
        cores=b.cores, clock_hz=clock, memory_mb=b.memory_mb, link_bps=b.link_mbit * 1e6,
        link_delay_s=b.link_delay_ms / 1e3, throttle_wait_full_s=wait_full, throttle_scale=scale,
        background_cores=b.background_cores,
    )


def throttle_wait(terms: BoardTerms, rho: float) -> float:
    if terms.throttle_wait_full_s <= 0:
        return 0.0
    share = min(1.0, terms.throttle_scale * max(0.0, rho) ** THROTTLE_EXPONENT)
    return share * terms.throttle_wait_full_s


def queue_wait(mean_service_s: float, r: float) -> float:
    r = min(max(r, 0.0), SATURATED)
    return r / (1.0 - r) * mean_service_s


@dataclass(frozen=True)
class Prediction:
    """What the model predicts for one placement.

    ``latency_ms``: per topology, mean complete latency (None when the topology has no
    measured rates). ``utilisation``: per board used by anyone, predicted CPU / cores.
    ``violations``: why the placement breaks a hard limit (utilisation above
    ``MAX_UTILISATION``, memory); empty when feasible. ``assumptions``: defaults used.
    """

    latency_ms: dict[str, float | None]
    utilisation: dict[str, float]
    workers_on: dict[str, int]
    violations: tuple[str, ...]
    assumptions: tuple[str, ...]
    excess: float = 0.0  # how far above the hard limits, summed (0 when feasible)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def feasible(self) -> bool:
        return not self.violations

    def total_latency_ms(self) -> float | None:
        values = [v for v in self.latency_ms.values() if v is not None]
        return math.fsum(values) if values else None

    def to_dict(self) -> dict[str, Any]:
        total = self.total_latency_ms()
        return {
            "predicted_latency_ms": None if total is None else round(total, 4),
            "predicted_latency_ms_by_topology": {
                t: None if v is None else round(v, 4) for t, v in sorted(self.latency_ms.items())
            },
            "utilisation": {n: round(u, 4) for n, u in sorted(self.utilisation.items())},
            "workers_on": dict(sorted(self.workers_on.items())),
            "feasible": self.feasible,
            "violations": list(self.violations),
            "assumptions": list(self.assumptions),
        }


def predict(assignment: Assignment, workloads: Sequence[Workload], nodes: Sequence[Node]) -> Prediction:
    """Predict utilisation and latency of ``assignment`` (see the module docstring).

    Workers of topologies not in ``workloads`` count toward slots and memory on their
    boards; their CPU is in each board's ``background_cores``. Raises
    :class:`InfeasibleError` when the assignment uses a node not in ``nodes``.
    """
    from squall.rebalance.latency_search import Network  # the evaluator shares its arithmetic

    by_id = {n.id: n for n in nodes}
    for node in assignment.nodes_used():
        if node not in by_id:
            raise InfeasibleError(f"assignment uses node {node!r}, which is not among the {len(nodes)} nodes")
    net = Network(workloads, nodes)
    state = net.state_of(assignment)
    return net.prediction(state, extra_workers=_foreign_workers(assignment, workloads))


def _foreign_workers(assignment: Assignment, workloads: Sequence[Workload]) -> Mapping[str, int]:
    names = {w.topology for w in workloads}
    out: dict[str, int] = {}
    for t, _w, node in assignment.workers:
        if t not in names:
            out[node] = out.get(node, 0) + 1
    return out
