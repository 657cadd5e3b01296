"""The rebalancing policy: whether and what to apply, as pure functions (no clock, no I/O).

For a topology with the ``online`` scheduler, Nimbus calls :func:`not_due` every tick; when
it returns ``None`` it builds a :class:`Proposal` with :func:`propose` (the measured workload,
rescheduled from the current assignment) and asks :func:`decide` whether to apply it.

Guarantees:

* :func:`not_due` holds a topology back until ``interval`` seconds passed since the last
  evaluation *and* the metrics window is full since measurement (re)started, so a decision
  never rests on a window that mixes two placements; and, after a probation rolled a change
  back, for ``backoff`` seconds (doubled for each further roll-back in a row, at most
  ``probation.COOLDOWN_S``): a roll-back says the scheduler's view of this topology was wrong,
  and a new proposal from the same view a few seconds later would pause the spouts again for
  the same mistake (the rejected placement alone is not enough: the next proposal differs a
  little and would be tried);
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
from squall.nimbus.commands import SaveClock
from squall.nimbus.metrics import Rates
from squall.nimbus.placement import nodes_of, place, workload_of
from squall.nimbus.profiles import missing
from squall.nimbus.records import Placement, SupervisorRecord, TopologyRecord
from squall.rebalance import (
    Assignment,
    Cost,
    Decision,
    InfeasibleError,
    InvalidInputError,
    Workload,
    evaluate,
    should_apply,
)
from squall.rebalance.latency import Prediction, Predictor

ONLINE = "online"
LATENCY = "latency"
ADAPTIVE = (ONLINE, LATENCY)  # schedulers the periodic loop runs for
# A latency proposal must promise at least this much (relative and absolute) to be applied.
LATENCY_GAIN = 0.10
LATENCY_GAIN_MS = 0.5
# Calibration (measured / predicted latency of the current placement) outside this range
# means the model does not describe this topology on these boards: decline, do not guess.
CALIBRATION_RANGE = (0.5, 2.0)

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
    backoff_s: float = 120.0
    avg_worse_pct: float = 10.0  # probation's margins (nimbus/probation.py)
    p99_worse_pct: float = 25.0

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
            backoff_s=get(C.RESCHEDULE_BACKOFF),
            avg_worse_pct=get(C.PROBATION_AVG_WORSE),
            p99_worse_pct=get(C.PROBATION_P99_WORSE),
        )


@dataclass
class LoopClock:
    """When the topology last changed placement, when measurement restarted, and when the
    loop last evaluated it (Nimbus's clock)."""

    last_change: float
    measure_since: float
    last_eval: float | None = None
    held_until: float | None = None  # the loop's back-off after a roll-back


class LoopClocks:
    """Every topology's :class:`LoopClock`. Only when a placement last changed is stored
    (``load`` at start, :class:`~squall.nimbus.commands.SaveClock` on a change); after a
    restart measurement restarts at the first event Nimbus sees (``boot``)."""

    def __init__(self, last_change: Mapping[str, float] | None = None) -> None:
        self._last_change: dict[str, float] = dict(last_change or {})
        self._clocks: dict[str, LoopClock] = {}
        self._rollbacks: dict[str, int] = {}  # roll-backs in a row, per topology

    def of(self, rec: TopologyRecord, boot: float | None) -> LoopClock:
        if rec.name not in self._clocks:
            last = self._last_change.get(rec.name, rec.submitted_at)
            self._clocks[rec.name] = LoopClock(last, max(last, boot if boot is not None else last))
        return self._clocks[rec.name]

    def changed(self, topology: str, now: float, settle_s: float = 0.0) -> SaveClock:
        """A new placement is in force at ``now``: the timeout restarts now, the measurement
        ``settle_s`` later (a migration's catch-up is not the placement's steady state); a
        back-off in force stays (a move back is a new placement too)."""
        held = self._clocks[topology].held_until if topology in self._clocks else None
        self._clocks[topology] = LoopClock(now, now + max(0.0, settle_s), held_until=held)
        self._last_change[topology] = now
        return SaveClock(topology, now)

    def rolled_back(self, topology: str, clock: LoopClock, now: float, backoff_s: float, cap_s: float) -> float:
        """A probation rolled a change of ``topology`` (whose clock is ``clock``) back at
        ``now``: hold the loop for ``backoff_s`` x 2^(roll-backs in a row - 1), at most
        ``cap_s``. Returns the hold's end. The hold is not stored: after a restart the loop
        waits for a full window anyway."""
        n = self._rollbacks.get(topology, 0) + 1
        self._rollbacks[topology] = n
        until = now + min(cap_s, backoff_s * 2 ** (n - 1))
        clock.held_until = until
        return until

    def kept(self, topology: str) -> None:
        """A probation kept a change: roll-backs are no longer in a row."""
        self._rollbacks.pop(topology, None)

    def forget(self, topology: str) -> None:
        self._clocks.pop(topology, None)
        self._last_change.pop(topology, None)
        self._rollbacks.pop(topology, None)


def not_due(lc: LoopConf, clock: LoopClock, now: float) -> str | None:
    """Why the loop must not evaluate now, or ``None`` when it may."""
    if clock.held_until is not None and now < clock.held_until:
        return f"backing off after a roll-back: {clock.held_until - now:g} s left"
    if clock.last_eval is not None and now - clock.last_eval < lc.interval_s:
        return f"evaluated {now - clock.last_eval:g} s ago; interval {lc.interval_s:g} s"
    if now - clock.measure_since < lc.window_s:
        return f"metrics window not full: {now - clock.measure_since:g} of {lc.window_s:g} s measured"
    return None


@dataclass(frozen=True)
class Proposal:
    """A new placement for one topology, with what it costs against the current one."""

    placement: Placement
    moved: tuple[int, ...]  # executors whose (node, port) changes
    current: Cost | None  # None when the current placement cannot be priced (a dead node)
    proposed: Cost
    predicted_current: Prediction | None = None  # the latency model on the current placement
    predicted: Prediction | None = None  # ... and on the proposed one
    assumptions: tuple[str, ...] = ()  # what the model had to do without


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
    workload = workload_of(rec, rates)  # the same measured workload places and prices
    placement = place(
        rec, rates, supervisors, live, others, keep_current, scheduler=scheduler, reserved=reserved, workload=workload
    )
    return price(rec, placement, rates, supervisors, live, others, workload=workload)


def price(
    rec: TopologyRecord,
    placement: Placement,
    rates: Rates,
    supervisors: Mapping[str, SupervisorRecord],
    live: set[str],
    others: Iterable[TopologyRecord] = (),
    workload: Workload | None = None,
) -> Proposal:
    """``placement`` against ``rec``'s current one: traffic costs and latency predictions,
    over the same measured workload (other topologies' workers count on their boards;
    ``workload``: :func:`workload_of` for ``rec`` and ``rates``, when the caller has it)."""
    nodes = nodes_of(supervisors, sorted(live), rates)
    workload = workload if workload is not None else workload_of(rec, rates)
    foreign = [o for o in others if o.name != rec.name]
    current: Cost | None = None
    predicted_current: Prediction | None = None
    predictor = Predictor([workload], nodes)  # one model for both placements
    if rec.placement and all(s.node in live for s in rec.placement.values()):
        current = evaluate(rec.placement.assignment(rec.name), [workload], nodes)
        predicted_current = _predict(rec, rec.placement, predictor, foreign, live)
    proposed = evaluate(placement.assignment(rec.name), [workload], nodes)
    predicted = _predict(rec, placement, predictor, foreign, live)
    # What the model did without, in words: older workers or boards without cgroups.
    assumptions = tuple(missing(rates, {n: supervisors[n].board for n in sorted(live)}))
    assumptions += predicted.assumptions if predicted is not None else ()
    return Proposal(
        placement, rec.placement.moved_to(placement), current, proposed, predicted_current, predicted, assumptions
    )


def _predict(
    rec: TopologyRecord,
    placement: Placement,
    predictor: Predictor,
    others: list[TopologyRecord],
    live: set[str],
) -> Prediction | None:
    own = Placement.of(placement).assignment(rec.name)
    rows_e = list(own.executors)
    rows_w = list(own.workers)
    for o in others:  # their workers take slots and memory on the boards they share
        for (node, _port), execs in o.worker_slots().items():
            if node in live:
                label = execs[0]
                rows_w.append((o.name, label, node))
                rows_e.extend((o.name, ex, label) for ex in execs)
    try:
        return predictor(Assignment(tuple(rows_e), tuple(rows_w)))
    except (InfeasibleError, InvalidInputError):
        return None


def calibration(measured_avg_ms: float | None, predicted: Prediction | None, topology: str) -> float | None:
    """measured / predicted average latency of the current placement (None: no figure)."""
    if measured_avg_ms is None or predicted is None:
        return None
    value = predicted.latency_ms.get(topology)
    if not value or value <= 0:
        return None
    return measured_avg_ms / value


def decide(
    proposal: Proposal,
    since_change: float,
    lc: LoopConf,
    scheduler: str = ONLINE,
    topology: str = "",
    measured_avg_ms: float | None = None,
) -> Decision:
    """Apply or not, and why (see the module docstring)."""
    if proposal.current is None:
        return Decision(False, "the current placement uses a node that is gone; repair comes first")
    if scheduler == LATENCY:
        return decide_latency(proposal, since_change, lc, topology, measured_avg_ms)
    decision = should_apply(proposal.current, proposal.proposed, since_change, lc.timeout_s, lc.improvement_pct)
    if decision.apply and not proposal.moved:
        return Decision(False, "the proposal moves no executor")
    return decision


def decide_latency(
    proposal: Proposal, since_change: float, lc: LoopConf, topology: str, measured_avg_ms: float | None
) -> Decision:
    """The latency scheduler's rule: after the timeout, within the hard limits, with a
    calibrated model, when the predicted latency drops by LATENCY_GAIN and LATENCY_GAIN_MS
    (or the proposal relieves a board above the utilisation limit)."""
    if since_change < lc.timeout_s:
        return Decision(False, f"only {since_change:g} s since the last change; waiting for {lc.timeout_s:g} s")
    if not proposal.moved:
        return Decision(False, "the proposal moves no executor")
    cur, new = proposal.predicted_current, proposal.predicted
    if cur is None or new is None:
        return Decision(False, "the latency model cannot price the placements")
    if new.excess > cur.excess + 1e-9:
        return Decision(False, f"the proposal breaks a hard limit: {'; '.join(new.violations)}")
    if cur.excess > 1e-9 and new.excess < cur.excess - 1e-9:
        return Decision(True, f"relieves {'; '.join(cur.violations)}")
    cal = calibration(measured_avg_ms, cur, topology)
    if cal is None:
        return Decision(False, "no measured latency to calibrate the model against")
    low, high = CALIBRATION_RANGE
    if not low <= cal <= high:
        return Decision(
            False,
            f"the model is badly calibrated here (measured/predicted = {cal:.2f}, "
            f"outside [{low:g}, {high:g}]): declining rather than guessing",
        )
    now_ms, new_ms = cur.latency_ms.get(topology), new.latency_ms.get(topology)
    if now_ms is None or new_ms is None:
        return Decision(False, "no measured rates to predict latency from")
    gain_ms = (now_ms - new_ms) * cal
    if new_ms <= now_ms * (1 - LATENCY_GAIN) and gain_ms >= LATENCY_GAIN_MS:
        return Decision(
            True,
            f"predicted latency {now_ms * cal:.3g} -> {new_ms * cal:.3g} ms "
            f"({100 * (now_ms - new_ms) / now_ms:.0f}% less, calibration {cal:.2f})",
        )
    return Decision(
        False,
        f"predicted latency {now_ms * cal:.3g} -> {new_ms * cal:.3g} ms: less than "
        f"{100 * LATENCY_GAIN:g}% and {LATENCY_GAIN_MS:g} ms better",
    )


def prediction_summary(
    proposal: Proposal | None, topology: str, measured_avg_ms: float | None
) -> dict[str, Any] | None:
    """The part of the model's view an event keeps."""
    if proposal is None or (proposal.predicted is None and proposal.predicted_current is None):
        return None
    cal = calibration(measured_avg_ms, proposal.predicted_current, topology)

    def one(p: Prediction | None) -> dict[str, Any] | None:
        if p is None:
            return None
        raw = p.latency_ms.get(topology)
        return {
            "latency_ms": None if raw is None else round(raw, 4),
            "calibrated_latency_ms": None if raw is None or cal is None else round(raw * cal, 4),
            "utilisation": {n: round(u, 4) for n, u in sorted(p.utilisation.items())},
            "violations": list(p.violations),
        }

    return {
        "current": one(proposal.predicted_current),
        "proposed": one(proposal.predicted),
        "calibration": None if cal is None else round(cal, 4),
        "assumptions": list(proposal.assumptions),
    }


def cost_summary(cost: Cost | None) -> dict[str, Any] | None:
    """The part of a cost an event keeps: {"inter_node_tps", "inter_worker_tps", "overloaded"}."""
    if cost is None:
        return None
    return {
        "inter_node_tps": round(cost.inter_node_tps, 6),
        "inter_worker_tps": round(cost.inter_worker_tps, 6),
        "overloaded": list(cost.overloaded),
    }
