"""The online rebalancing loop's decisions, as pure functions (no clock, no I/O).

For a topology with the ``online`` scheduler, Nimbus calls :func:`not_due` every tick; when
it returns ``None`` it builds a :class:`Proposal` with :func:`propose` (the measured workload,
rescheduled from the current assignment) and asks :func:`decide` whether to apply it.

Guarantees:

* :func:`not_due` holds a topology back until ``interval`` seconds passed since the last
  evaluation *and* the metrics window is full since measurement (re)started, so a decision
  never rests on a window that mixes two placements;
* :func:`decide` is ``squall.rebalance.should_apply`` (timeout since the last change, the
  traffic-improvement threshold, overload relief), plus: a proposal that moves nothing is
  declined;
* costs are computed with ``squall.rebalance.evaluate`` over the same measured workload for
  the current and the proposed placement, so they compare like with like.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from squall.nimbus import config as C
from squall.nimbus.metrics import Rates
from squall.nimbus.placement import node_of, place, workload_of
from squall.nimbus.records import Slot, SupervisorRecord, TopologyRecord
from squall.rebalance import Assignment, Cost, Decision, evaluate, should_apply

ONLINE = "online"

# Triggers of a rebalance event.
PERIODIC = "periodic"
REQUESTED = "requested"
NODE_LOST = "node-lost"


@dataclass(frozen=True)
class LoopConf:
    """A topology's rebalancing settings, resolved (topology conf, then Nimbus conf, then defaults)."""

    interval_s: float
    timeout_s: float
    improvement_pct: float
    window_s: float
    drain_s: float
    release_s: float
    acquire_s: float

    @classmethod
    def of(cls, conf: Mapping[str, Any], nimbus_conf: Mapping[str, Any]) -> LoopConf:
        def get(key: str) -> float:
            default = C.number(dict(nimbus_conf), key, float(C.NIMBUS_DEFAULTS[key]))
            return C.number(dict(conf), key, default)

        return cls(
            interval_s=get(C.RESCHEDULE_INTERVAL),
            timeout_s=get(C.RESCHEDULE_TIMEOUT),
            improvement_pct=min(100.0, get(C.TRAFFIC_IMPROVEMENT)),
            window_s=get(C.METRICS_WINDOW),
            drain_s=get(C.MIGRATION_DRAIN),
            release_s=get(C.MIGRATION_RELEASE),
            acquire_s=get(C.MIGRATION_ACQUIRE),
        )


@dataclass
class LoopClock:
    """When the topology last changed placement, when measurement restarted, and when the
    loop last evaluated it (Nimbus's clock)."""

    last_change: float
    measure_since: float
    last_eval: float | None = None


def not_due(lc: LoopConf, clock: LoopClock, now: float) -> str | None:
    """Why the loop must not evaluate now, or ``None`` when it may."""
    if clock.last_eval is not None and now - clock.last_eval < lc.interval_s:
        return f"evaluated {now - clock.last_eval:g} s ago; interval {lc.interval_s:g} s"
    if now - clock.measure_since < lc.window_s:
        return f"metrics window not full: {now - clock.measure_since:g} of {lc.window_s:g} s measured"
    return None


@dataclass(frozen=True)
class Proposal:
    """A new placement for one topology, with what it costs against the current one."""

    placement: dict[int, Slot]
    moved: tuple[int, ...]  # executors whose (node, port) changes
    current: Cost | None  # None when the current placement cannot be priced (a dead node)
    proposed: Cost


def assignment_of(topology: str, placement: Mapping[int, Slot]) -> Assignment:
    """``placement`` as a rebalance ``Assignment``; workers labelled by (node, port) order."""
    label = {key: k for k, key in enumerate(sorted({(s.node, s.port) for s in placement.values()}))}
    return Assignment.of(
        {(topology, ex): label[(s.node, s.port)] for ex, s in placement.items()},
        {(topology, label[(s.node, s.port)]): s.node for s in placement.values()},
    )


def moved_between(old: Mapping[int, Slot], new: Mapping[int, Slot]) -> tuple[int, ...]:
    """Executors of ``new`` that run on another (node, port) than in ``old`` (or were absent)."""
    return tuple(sorted(
        ex for ex, s in new.items()
        if ex not in old or (old[ex].node, old[ex].port) != (s.node, s.port)
    ))


def propose(
    rec: TopologyRecord,
    rates: Rates,
    supervisors: Mapping[str, SupervisorRecord],
    live: set[str],
    others: Iterable[TopologyRecord],
    reserved: Mapping[str, set[int]],
    scheduler: str | None = None,
    keep_current: bool = True,
) -> Proposal:
    """Reschedule ``rec`` over the ``live`` supervisors with its measured ``rates``.

    Raises ``InfeasibleError`` / ``InvalidInputError`` like :func:`placement.place`.
    """
    placement = place(rec, rates, supervisors, live, others, keep_current, scheduler=scheduler, reserved=reserved)
    nodes = [node_of(supervisors[n]) for n in sorted(live)]
    workload = workload_of(rec, rates)
    current: Cost | None = None
    if rec.placement and all(s.node in live for s in rec.placement.values()):
        current = evaluate(assignment_of(rec.name, rec.placement), [workload], nodes)
    proposed = evaluate(assignment_of(rec.name, placement), [workload], nodes)
    return Proposal(placement, moved_between(rec.placement, placement), current, proposed)


def decide(proposal: Proposal, since_change: float, lc: LoopConf) -> Decision:
    """Apply or not, and why (see the module docstring)."""
    if proposal.current is None:
        return Decision(False, "the current placement uses a node that is gone; repair comes first")
    decision = should_apply(proposal.current, proposal.proposed, since_change, lc.timeout_s, lc.improvement_pct)
    if decision.apply and not proposal.moved:
        return Decision(False, "the proposal moves no executor")
    return decision


def cost_summary(cost: Cost | None) -> dict[str, Any] | None:
    """The part of a cost an event keeps: {"inter_node_tps", "inter_worker_tps", "overloaded"}."""
    if cost is None:
        return None
    return {
        "inter_node_tps": round(cost.inter_node_tps, 6),
        "inter_worker_tps": round(cost.inter_worker_tps, 6),
        "overloaded": list(cost.overloaded),
    }
