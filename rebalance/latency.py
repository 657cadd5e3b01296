"""The latency model: predicted board utilisation and end-to-end latency of any placement.

A queueing-network model in the spirit of DRS (Fu et al., ICDCS 2015), fitted to what
Squall measures (``squall.rebalance.profile``). For executor ``e`` in worker ``w`` on board
``n``, with tuple rate ``lam_e`` and service time ``s_e`` (its cycles over the board's clock):

* **Worker CPU** (cores): ``U_w = sum(lam_e s_e) + o + c x X_w``, where ``o`` is the worker's
  own loop overhead, ``c`` the CPU per item crossing between workers (half at each end) and
  ``X_w`` the items/s crossing ``w``'s boundary.
* **Board utilisation**: ``rho_n = (sum(U_w) + background) / cores_n``.
* **Time per visit**: ``T_e = s_e + Q_w`` where ``Q_w`` is the wait of an M/D/1 queue at
  the worker's one thread (near-constant service), slowed by the board when the board is
  the busier of the two: ``Q_w = r/(2(1-r)) x mean service of w``, ``r = max(U_w, rho_n)``.
* **Waking**: each time an item enters a worker from another worker the worker's thread
  is woken and waits for a CPU (a spout's tuple is timed from its emission, after its
  wake-up, so that wait is not the tuple's): the board's measured mean
  wait per wake-up (``cpu_wait_ms``), less what the quota's stops explain (an arrival
  during a stop, probability ``f``, waits half a stop) — what other processes take from
  the board: another program on a real board, the host's load on an emulated one.
* **Batching**: an item that leaves its worker waits in the batch for the rest of the
  worker's busy period (a worker sends when a round finds nothing to do), about
  ``r/(1-r)`` mean services, at most the flush delay.
* **Quota stops**: on a board capped by a CPU quota the share of time the quota holds the
  board stopped ``f`` is fitted to the measured one (``f ~ rho^4``, scaled to match). A
  stop holds the whole board, so it delays each *stay* of a root tuple on the board (a
  stay starts at the spout or where an item enters from another board) by
  ``f x (half a stop + the stay's time on the board)``.
* **Time per hop** between executors: 0 inside a worker (an in-memory queue); between
  workers, the encode/decode CPU; between boards, also the one-way delay between them —
  half the sum of the two boards' link delays, each board's share of a round trip
  (``rtt(A, B) = d(A) + d(B)``) — and the transmission time of the item on both links,
  queued (M/M/1) by the links' load.
* **End to end** (Little's law over the network): the time per root tuple is the sum of
  visits and hops weighted by their rates over the source rate; acker items count their
  CPU in full but only one acker visit and one hop in and out per tree, since only the
  last ack of a tree is on its critical path.

The model is a linear sum of per-worker and per-edge terms, which is what lets the search
(:mod:`squall.rebalance.latency_state`) price a move incrementally.

Everything here is pure and deterministic. Where a profile is missing a default is used and
named in ``Prediction.assumptions``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from squall.rebalance.assignment import Assignment
from squall.rebalance.errors import InfeasibleError
from squall.rebalance.model import Node, Workload
from squall.rebalance.profile import BoardProfile

if TYPE_CHECKING:
    from squall.rebalance.latency_network import Network

MAX_UTILISATION = 0.75  # hard limit on every board's predicted utilisation
SATURATED = 0.999  # utilisation at which a queue is treated as (almost) unstable
THROTTLE_EXPONENT = 4.0  # how steeply the share of time a quota throttles rises with load
DEFAULT_THROTTLED_AT_FULL = 0.5  # share of time throttled at utilisation 1 with no measurement
THROTTLED_FLOOR = 0.05  # ... and at least this much when the measurement saw no throttling


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
    wake_wait_s: float = 0.0  # a worker's wait for a CPU when woken, beyond the quota's stops


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
        if b.measured_utilisation > 0.05:
            # Fitted to what the quota did at the measured load; a board that was never
            # throttled keeps a small floor, so packing more onto it is not free.
            fitted = b.throttled_share / b.measured_utilisation**THROTTLE_EXPONENT
            scale = min(1.0, max(fitted, THROTTLED_FLOOR))
        else:
            scale = DEFAULT_THROTTLED_AT_FULL
    return BoardTerms(
        cores=b.cores,
        clock_hz=clock,
        memory_mb=b.memory_mb,
        link_bps=b.link_mbit * 1e6,
        link_delay_s=b.link_delay_ms / 1e3,
        throttle_wait_full_s=wait_full,
        throttle_scale=scale,
        background_cores=b.background_cores,
        wake_wait_s=max(0.0, b.cpu_wait_ms / 1e3 - b.throttled_share * wait_full),
    )


def throttle_share(terms: BoardTerms, rho: float) -> float:
    """Predicted share of wall time board's quota holds it stopped at utilisation ``rho``."""
    if terms.throttle_wait_full_s <= 0:
        return 0.0
    return min(1.0, terms.throttle_scale * max(0.0, rho) ** THROTTLE_EXPONENT)


def throttle_delay(terms: BoardTerms, share: float, stays: float, time_on_board_s: float) -> float:
    """Delay per root tuple from a quota's stops, for ``stays`` stays on the board per root
    tuple that spend ``time_on_board_s`` there in all (service and queueing).

    A stop holds every thread of the board's cgroup at once, so it delays a stay, not each
    visit: a tuple that arrives during a stop (probability ``share``) waits for the rest of
    it (``throttle_wait_full_s``, half a stop), and one on the board when a stop begins
    (stops begin ``share / stop`` times a second) waits a whole stop — ``share`` times its
    time on the board. Pricing it per visit, as this model first did, overestimated a
    one-worker placement (ten visits to one stay) three- to four-fold."""
    if share <= 0:
        return 0.0
    return share * (stays * terms.throttle_wait_full_s + time_on_board_s)


def flush_wait(flush_s: float, mean_service_s: float, u: float) -> float:
    """Mean wait of an item in its sender's batch. The worker sends its batches as soon as
    a round of its loop finds nothing to do, and at the latest ``flush_s`` after the
    oldest item was buffered: an item waits for the rest of the worker's busy period,
    about ``u / (1 - u)`` mean services, capped by ``flush_s``. (Taken as ``flush_s / 2``
    whatever the load, this term alone was a third of every cross-worker prediction.)"""
    if flush_s <= 0:
        return 0.0
    u = min(max(u, 0.0), SATURATED)
    return min(flush_s, u / (1.0 - u) * mean_service_s)


SERVICE_SCV = 0.0  # squared coefficient of variation of service times (see queue_wait)


def queue_wait(mean_service_s: float, r: float) -> float:
    """Mean wait at a single server with utilisation ``r`` (Pollaczek-Khinchine, M/G/1):
    ``r s (1 + scv) / (2 (1 - r))``. Service times are taken as near-constant (scv 0): an
    executor's work per tuple varies little, and the exponential assumption (scv 1) doubled
    the waits and overestimated every measured experiment point."""
    r = min(max(r, 0.0), SATURATED)
    return r * mean_service_s * (1.0 + SERVICE_SCV) / (2.0 * (1.0 - r))


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
    return Predictor(workloads, nodes)(assignment)


class Predictor:
    """:func:`predict` for several assignments of the same ``workloads`` on the same
    ``nodes`` (a proposal and the placement it would replace): the model's constants are
    built once, on the first call (a tenth of a second at 5,000 executors), and each call
    gives what :func:`predict` would."""

    def __init__(self, workloads: Sequence[Workload], nodes: Sequence[Node]) -> None:
        self.workloads, self.nodes = workloads, nodes
        self._ids = {n.id for n in nodes}
        self._net: Network | None = None

    def __call__(self, assignment: Assignment) -> Prediction:
        for node in assignment.nodes_used():
            if node not in self._ids:
                raise InfeasibleError(f"assignment uses node {node!r}, which is not among the {len(self.nodes)} nodes")
        if self._net is None:
            from squall.rebalance.latency_network import Network  # the evaluator shares its arithmetic

            self._net = Network(self.workloads, self.nodes)
        state = self._net.state_of(assignment)
        return self._net.prediction(state, extra_workers=_foreign_workers(assignment, self.workloads))


def _foreign_workers(assignment: Assignment, workloads: Sequence[Workload]) -> Mapping[str, int]:
    names = {w.topology for w in workloads}
    out: dict[str, int] = {}
    for t, _w, node in assignment.workers:
        if t not in names:
            out[node] = out.get(node, 0) + 1
    return out
