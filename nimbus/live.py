"""Live rebalancing inside :class:`squall.nimbus.state.NimbusState`: the online loop, the
migration coordinator, probations and repair after a lost board.

A part NimbusState owns (``state.live``), not a mixin: it acts on the state's records through
the narrow :class:`LiveHost` interface (emit a command, push, save, reply, schedule), and what
it keeps is in composed parts: :class:`~squall.nimbus.migration.Migrations` (moves in progress, the
ports they hold), :class:`~squall.nimbus.rebalance_policy.LoopClocks` (when each placement
changed), :class:`~squall.nimbus.event_log.EventLog` (events as commands), and the
probations. The decisions live in :mod:`squall.nimbus.rebalance_policy` (whether and what to
apply) and :mod:`squall.nimbus.migration` (how the move proceeds). It writes nothing: every
change to the store is a command it emits through its host.

Guarantees:

* a declined proposal changes nothing but the event table: no placement, version or push;
* at most one migration per topology at a time; while it runs the topology's ``placement``
  is the old one (what is measured), and its old and new ports are reserved from every
  other placement;
* every migration ends (each phase has a timeout) with the target as the placement,
  ``paused`` False, its event completed with the spouts' pause time and any notes, and
  measurement restarted (metrics window cleared, loop clock reset);
* every evaluation, applied or declined, is one event; ``rebalances`` counts them by
  (topology, outcome) for Prometheus.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from squall.config import WORKERS
from squall.nimbus import views
from squall.nimbus.commands import DeleteMigration, SaveMigration
from squall.nimbus.event_log import EventLog
from squall.nimbus.migration import DONE, Migration, Migrations, advance, observe
from squall.nimbus.placement import map_ports, place, spread_caps, standby_caps
from squall.nimbus.probation import COOLDOWN_S, ROLLED_BACK, Margins, Measured, Probation, Rejections, verdict
from squall.nimbus.rebalance_policy import (
    ADAPTIVE,
    LATENCY,
    NODE_LOST,
    PERIODIC,
    REQUESTED,
    LoopClock,
    LoopClocks,
    LoopConf,
    Proposal,
    cost_summary,
    decide,
    not_due,
    prediction_summary,
    price,
    propose,
)
from squall.nimbus.records import RUNNING, Placement, Slot, TopologyRecord
from squall.nimbus.requests import RequestError, apply_rebalance
from squall.rebalance import InfeasibleError, InvalidInputError
from squall.topology.spec import ACKER_COMPONENT

if TYPE_CHECKING:
    from collections.abc import Iterable

    from squall.nimbus.commands import Command
    from squall.nimbus.metrics import MetricsWindow, Rates
    from squall.nimbus.records import SupervisorRecord
    from squall.nimbus.store import Store

log = logging.getLogger("squall.nimbus")

APPLIED = "applied"
DECLINED = "declined"
ROLLBACK = "rollback"  # the trigger of the move back after a failed probation


class LiveHost(Protocol):
    """What the live part reads and asks of the Nimbus state that owns it."""

    conf: dict[str, Any]
    topologies: dict[str, TopologyRecord]
    supervisors: dict[str, SupervisorRecord]
    metrics: MetricsWindow
    counters: Counter[str]
    boot: float | None
    timeout: float

    def emit(self, command: Command) -> None: ...
    def live_nodes(self, now: float) -> set[str]: ...
    def silence_judged_at(self, now: float) -> float: ...
    def rates(self, topology: str) -> Rates: ...
    def push(self, now: float, force: frozenset[str] | set[str] = frozenset()) -> None: ...
    def save(self, rec: TopologyRecord) -> None: ...
    def reply(self, peer: bytes, rid: int, data: Any = None, error: str = "") -> None: ...
    def find(self, name: str) -> TopologyRecord: ...
    def host_of(self, node: str) -> str: ...
    def schedule(self, rec: TopologyRecord, now: float, keep_current: bool) -> bool: ...


class LiveRebalancing:
    """A part of ``NimbusState`` (its ``live``); see the module docstring. It keeps the
    migrations, loop clocks, events and probations, and acts on ``nimbus``'s records."""

    def __init__(self, nimbus: LiveHost, store: Store) -> None:
        self.nimbus = nimbus
        self.event_log = EventLog(store.last_event_id())
        self.migrations = Migrations()
        for record, states in store.load_migrations():
            if record["topology"] in nimbus.topologies:
                self.migrations[record["topology"]] = Migration.from_record(record, states, restarted=True)
        self.loop_clocks = LoopClocks(store.load_clocks())
        # Changes under watch, and placements rejected by a probation. Held in memory: a
        # Nimbus restart ends the watch (the change stays), see docs/rebalancing.md.
        self.probations: dict[str, Probation] = {}
        self.rejections = Rejections()
        # topology -> snapshots its migration had when last saved (heartbeats collect more;
        # ticks save them, see advance_migrations)
        self._saved_states: dict[str, int] = {name: len(mig.states) for name, mig in self.migrations.items()}

    # -- helpers ---------------------------------------------------------------------------

    def loop_conf(self, rec: TopologyRecord) -> LoopConf:
        return LoopConf.of(rec.conf, self.nimbus.conf)

    @property
    def rebalances(self) -> Counter[tuple[str, str]]:
        """Evaluations by (topology, outcome), for Prometheus."""
        return self.event_log.counts

    def clock(self, rec: TopologyRecord) -> LoopClock:
        """The topology's loop clock; after a restart measurement restarts at boot."""
        return self.loop_clocks.of(rec, self.nimbus.boot)

    def changed(self, rec: TopologyRecord, now: float, settle_s: float = 0.0) -> None:
        """A new placement is in force: the timeout starts afresh, and the measurement once
        ``settle_s`` more has passed (see ``LoopClocks.changed``): the loop's next window and
        a probation's "after" window both start then."""
        self.nimbus.emit(self.loop_clocks.changed(rec.name, now, settle_s))
        self.nimbus.metrics.forget(rec.name)
        probation = self.probations.get(rec.name)
        if probation is not None and probation.since is None:
            probation.since = now + settle_s  # the new placement's own window starts then

    def measured(self, rec: TopologyRecord) -> Measured:
        """The topology's complete latency over the metrics window, from its spouts."""
        spouts = {c.name for c in rec.spec.spouts}
        ids = {e.id for e in rec.executors() if e.component in spouts}
        total, count, buckets = self.nimbus.metrics.latency(rec.name, ids)
        return Measured(total / count if count else None, views.percentile_ms(buckets, 0.99), count)

    def forget(self, name: str) -> None:
        """A removed topology: its migration, clock and counters go (the store drops the rest)."""
        self.migrations.pop(name, None)
        self._saved_states.pop(name, None)
        self.probations.pop(name, None)
        self.rejections.forget(name)
        self.loop_clocks.forget(name)
        self.event_log.forget(name)

    def reserved(self, except_topology: str = "") -> dict[str, set[int]]:
        """node -> ports held by migrating topologies (old and new workers)."""
        return self.migrations.reserved(except_topology)

    def _others(self, rec: TopologyRecord) -> Iterable[TopologyRecord]:
        return [o for o in self.nimbus.topologies.values() if o.name != rec.name]

    def record(
        self,
        rec: TopologyRecord,
        now: float,
        trigger: str,
        decision: str,
        reason: str,
        proposal: Proposal | None,
        moved: tuple[int, ...] = (),
        **extra: Any,
    ) -> int:
        event = {
            "topology": rec.name,
            "at": now,
            "trigger": trigger,
            "decision": decision,
            "reason": reason,
            "current": cost_summary(proposal.current) if proposal else None,
            "proposed": cost_summary(proposal.proposed) if proposal else None,
            "moved": list(moved),
            "paused_s": None,
            "notes": [],
            **extra,
        }
        log.info("topology %s: %s rebalance %s: %s", rec.name, trigger, decision, reason)
        add = self.event_log.add(rec.name, event)
        self.nimbus.emit(add)
        return add.event_id

    # -- starting a change -----------------------------------------------------------------

    def _apply(self, rec: TopologyRecord, proposal: Proposal, trigger: str, reason: str, now: float) -> None:
        """Record the applied proposal, put it on probation (the current placement and its
        measured latency are kept) and start moving its executors (or install it when
        nothing has to move)."""
        before = self.measured(rec)
        event_id = self.record(
            rec,
            now,
            trigger,
            APPLIED,
            reason,
            proposal,
            proposal.moved,
            predicted=prediction_summary(proposal, rec.name, before.avg_ms),
            measured_before=before.to_dict(),
        )
        if rec.placement and proposal.moved:
            self.probations[rec.name] = Probation(event_id, rec.placement, before)
        self._move(rec, proposal.placement, trigger, event_id, now)

    def _move(self, rec: TopologyRecord, target: Placement, trigger: str, event_id: int, now: float) -> None:
        moved = rec.placement.moved_to(target)
        lost = tuple(ex for ex in moved if ex in rec.placement and not self._port_alive(rec.placement[ex], now))
        if set(moved) <= set(lost):  # nothing alive moves: no state to hand over, no pause needed
            rec.placement = target
            rec.version += 1
            self.nimbus.save(rec)
            self.nimbus.emit(self.event_log.update(event_id, {"paused_s": 0.0, "done_at": now}))
            self.changed(rec, now)
            self.nimbus.push(now)
            return
        mig = Migration(
            rec.name, trigger, event_id, rec.placement, Placement.of(target), moved, lost, started_at=now, phase_at=now
        )
        self.migrations[rec.name] = mig
        rec.version += 1
        self.nimbus.save(rec)
        self._save_migration(mig)
        self.nimbus.push(now)

    def _port_alive(self, slot: Slot, now: float) -> bool:
        # The board's own liveness, not membership of live_nodes(): that set is built from
        # every board, and this is asked once per executor (quadratic at hundreds of boards).
        sup = self.nimbus.supervisors.get(slot.node)
        judged = self.nimbus.silence_judged_at(now)
        return sup is not None and sup.alive(judged, self.nimbus.timeout) and slot.port in sup.ports

    def rebalance(self, peer: bytes, rid: int, rec: TopologyRecord, pending: dict[str, Any], now: float) -> None:
        """``squall rebalance`` without a change of executors: new worker count and/or
        scheduler, moved live. With the online scheduler the proposal starts from the
        current assignment; other schedulers place from scratch, as on submit."""
        trial = dataclasses.replace(rec, conf=dict(rec.conf))
        apply_rebalance(trial, pending)
        reason = "requested: " + (", ".join(f"{k}={v}" for k, v in sorted(pending.items()) if v) or "reschedule")
        rates = self.nimbus.rates(rec.name)
        if trial.scheduler in ADAPTIVE and not rates.load_hz and not rates.traffic:
            # Measurement restarts with every placement change (a repair, a move): planned on
            # an empty window, online/latency would move executors for no measured reason
            # (24% of them, seen at 500 boards right after a lost board's repair).
            since = now - self.clock(rec).measure_since
            unmeasured = f"nothing measured in the {since:.3g} s since its placement last changed"
            if trial.conf.get(WORKERS) == rec.conf.get(WORKERS):  # a new worker count must be placed
                self.record(rec, now, REQUESTED, DECLINED, f"{reason}; {unmeasured}", None)
                raise RequestError(
                    f"cannot rebalance {rec.name!r} with {trial.scheduler!r}: {unmeasured} (the metrics "
                    f"window restarts with each change); ask again after the next heartbeats"
                )
            reason += f"; {unmeasured}: placed without traffic or load"
        try:
            proposal = propose(
                trial,
                rates,
                self.nimbus.supervisors,
                self.nimbus.live_nodes(now),
                self._others(rec),
                self.reserved(rec.name),
                keep_current=trial.scheduler in ADAPTIVE,
            )
        except (InfeasibleError, InvalidInputError) as exc:
            self.record(rec, now, REQUESTED, DECLINED, f"{reason}; no placement: {exc}", None)
            raise RequestError(f"cannot rebalance {rec.name!r}: {exc}") from None
        proposal = self._spread(trial, proposal, now)
        rec.conf, rec.scheduler, rec.spec = trial.conf, trial.scheduler, trial.spec
        self.nimbus.save(rec)
        self.nimbus.reply(peer, rid, views.topology_entry(rec))
        self._apply(rec, proposal, REQUESTED, reason, now)

    def repair(self, rec: TopologyRecord, now: float) -> None:
        """Reassign a running topology that lost workers (dead node or port); executors
        that were on them come back without state, survivors that move migrate live."""
        probation = self.probations.pop(rec.name, None)
        if probation is not None:
            self.nimbus.emit(
                self.event_log.update(
                    probation.event_id, {"probation": "ended: a node was lost; the failure path took over"}
                )
            )
        mig = self.migrations.pop(rec.name, None)
        if mig is not None:  # roll forward: the target is the placement to repair from
            rec.placement = mig.target
            self._finish_event(mig, now, "a node was lost mid-migration; rolled forward")
            self.nimbus.emit(DeleteMigration(rec.name))
        old = rec.placement
        standby = self._standby_target(rec, now)
        if standby is not None:
            rec.placement = standby
            rec.version += 1
        elif not self.nimbus.schedule(rec, now, keep_current=True):
            self.nimbus.save(rec)
            return
        target, rec.placement = rec.placement, old
        gone = sorted({s.node for s in old.values() if not self._port_alive(s, now)})
        moved = old.moved_to(target)
        event_id = self.record(rec, now, NODE_LOST, APPLIED, f"workers lost on {', '.join(gone)}", None, moved)
        self._move(rec, target, NODE_LOST, event_id, now)

    def _spread(self, trial: TopologyRecord, proposal: Proposal, now: float) -> Proposal:
        """A requested rebalance uses a board that joined or came back: when ``proposal``
        leaves every idle board unused, place again with the busy boards capped at an even
        share (:func:`spread_caps`); keep ``proposal`` when that finds no placement. Not for
        ``latency``: how many boards to use is what its objective decides."""
        if trial.scheduler == LATENCY:
            return proposal
        live, reserved = self.nimbus.live_nodes(now), self.reserved(trial.name)
        caps = spread_caps(trial, self.nimbus.supervisors, live, self._others(trial), proposal.placement, reserved)
        if caps is None:
            return proposal
        rates = self.nimbus.rates(trial.name)
        try:
            placement = place(
                trial,
                rates,
                self.nimbus.supervisors,
                live,
                self._others(trial),
                trial.scheduler in ADAPTIVE,
                reserved=reserved,
                slot_cap=caps,
            )
        except (InfeasibleError, InvalidInputError) as exc:
            log.info("topology %s: idle boards left unused (%s)", trial.name, exc)
            return proposal
        return price(trial, placement, rates, self.nimbus.supervisors, live, self._others(trial))

    def _standby_target(self, rec: TopologyRecord, now: float) -> Placement | None:
        """The repair placement with the lost workers on standby boards (the topology's
        alive boards without any of its workers), when they have room for all of them;
        None otherwise (then the scheduler places over every live board)."""
        live = self.nimbus.live_nodes(now)
        reserved = self.reserved(rec.name)
        caps = standby_caps(rec, self.nimbus.supervisors, live, self._others(rec), reserved)
        if caps is None:
            return None
        try:
            return place(
                rec,
                self.nimbus.rates(rec.name),
                self.nimbus.supervisors,
                live,
                self._others(rec),
                True,
                reserved=reserved,
                slot_cap=caps,
            )
        except (InfeasibleError, InvalidInputError) as exc:
            log.info("topology %s: no standby placement (%s); placing over every live board", rec.name, exc)
            return None

    # -- time ------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        self.advance_migrations(now)
        self._check_probations(now)
        self._run_loop(now)

    def _check_probations(self, now: float) -> None:
        """Judge every change whose new placement has been measured for a full window."""
        for name in sorted(self.probations):
            probation = self.probations[name]
            rec = self.nimbus.topologies.get(name)
            if rec is None or rec.phase != RUNNING:
                del self.probations[name]
                continue
            if probation.since is None or name in self.migrations:
                continue
            lc = self.loop_conf(rec)
            if now - probation.since < lc.window_s + 1.0:
                continue
            del self.probations[name]
            after = self.measured(rec)
            margins = Margins(lc.avg_worse_pct / 100.0, lc.p99_worse_pct / 100.0)
            outcome, why = verdict(probation.before, after, margins)
            seen = views.stats_view(rec, self.nimbus.metrics, lc.window_s)
            figures = {k: seen[k] for k in ("inter_node_tps", "inter_worker_tps", "nodes_used", "workers")}
            # judged_at: when the verdict fell, so a client can tell what it measured before it.
            update: dict[str, Any] = {
                "measured_after": {**after.to_dict(), **figures},
                "probation": why,
                "judged_at": now,
            }
            if outcome != ROLLED_BACK:
                self.nimbus.emit(self.event_log.update(probation.event_id, update))
                self.loop_clocks.kept(name)
                log.info("topology %s: change kept after probation: %s", name, why)
                continue
            held = self.loop_clocks.rolled_back(name, self.clock(rec), now, lc.backoff_s, COOLDOWN_S)
            update["decision"] = ROLLED_BACK
            update["loop_held_s"] = round(held - now, 3)
            self.nimbus.emit(self.event_log.update(probation.event_id, update))
            self.event_log.count(name, ROLLED_BACK)
            self.rejections.add(name, rec.placement, now + COOLDOWN_S)
            self._roll_back(rec, probation, why, now)

    def _roll_back(self, rec: TopologyRecord, probation: Probation, why: str, now: float) -> None:
        """Move back to the placement before the change (on the same boards; ports may
        differ if another topology took them meanwhile)."""
        live = self.nimbus.live_nodes(now)
        gone = sorted({s.node for s in probation.previous.values() if s.node not in live})
        if gone:
            log.warning("topology %s: cannot roll back, board(s) %s gone; the failure path repairs it", rec.name, gone)
            self.record(
                rec,
                now,
                ROLLBACK,
                DECLINED,
                f"{why}; the previous placement used {', '.join(gone)}, which is gone",
                None,
            )
            return
        taken: dict[str, set[int]] = {n: set(p) for n, p in self.reserved(rec.name).items()}
        for o in self._others(rec):
            for slot in o.placement.values():
                taken.setdefault(slot.node, set()).add(slot.port)
        ports_of = {n: self.nimbus.supervisors[n].ports for n in live}
        try:
            target = map_ports(rec.name, probation.previous.assignment(rec.name), rec.placement, ports_of, taken)
        except InfeasibleError as exc:
            self.record(rec, now, ROLLBACK, DECLINED, f"{why}; no port to move back to: {exc}", None)
            return
        moved = rec.placement.moved_to(target)
        event_id = self.record(rec, now, ROLLBACK, APPLIED, why, None, moved, rolls_back=probation.event_id)
        self._move(rec, target, ROLLBACK, event_id, now)

    def _run_loop(self, now: float) -> None:
        for name in sorted(self.nimbus.topologies):
            rec = self.nimbus.topologies[name]
            if (
                rec.scheduler not in ADAPTIVE
                or rec.phase != RUNNING
                or not rec.active
                or not rec.placement
                or name in self.migrations
                or name in self.probations
            ):
                continue
            lc, clock = self.loop_conf(rec), self.clock(rec)
            if not_due(lc, clock, now) is not None:
                continue
            live = self.nimbus.live_nodes(now)
            if any(not self._port_alive(s, now) for s in rec.placement.values()):
                continue  # repair comes first
            clock.last_eval = now
            try:
                proposal = propose(
                    rec, self.nimbus.rates(name), self.nimbus.supervisors, live, self._others(rec), self.reserved(name)
                )
            except (InfeasibleError, InvalidInputError) as exc:
                self.record(rec, now, PERIODIC, DECLINED, f"no placement: {exc}", None)
                continue
            measured = self.measured(rec)
            until = self.rejections.rejected(name, proposal.placement, now)
            if until is not None:
                self.record(
                    rec,
                    now,
                    PERIODIC,
                    DECLINED,
                    f"the proposal was rolled back before; not again for {until - now:.0f} s",
                    proposal,
                    proposal.moved,
                    predicted=prediction_summary(proposal, name, measured.avg_ms),
                    measured_before=measured.to_dict(),
                )
                continue
            decision = decide(proposal, now - clock.last_change, lc, rec.scheduler, name, measured.avg_ms)
            if decision.apply:
                self._apply(rec, proposal, PERIODIC, decision.reason, now)
            else:
                self.record(
                    rec,
                    now,
                    PERIODIC,
                    DECLINED,
                    decision.reason,
                    proposal,
                    proposal.moved,
                    predicted=prediction_summary(proposal, name, measured.avg_ms),
                    measured_before=measured.to_dict(),
                )

    def advance_migrations(self, now: float) -> None:
        """A full look at every migration (each tick): every live board's reports. Snapshots
        that heartbeats brought since the last save are saved here (the workers keep
        reporting them until the next version, so a Nimbus restarted meanwhile collects
        them again)."""
        pushed = False
        for name in sorted(self.migrations):
            mig = self.migrations[name]
            rec = self.nimbus.topologies.get(name)
            if rec is None or rec.phase != RUNNING:  # killed or restarting: the migration is moot
                del self.migrations[name]
                self.nimbus.emit(DeleteMigration(name))
                self._finish_event(mig, now, "abandoned: the topology is being killed or restarted")
                continue
            live = self.nimbus.live_nodes(now)
            reports = {
                (sup.id, port): r
                for sup in self.nimbus.supervisors.values()
                if sup.id in live
                for (topology, port), r in sup.reports.items()
                if topology == name
            }
            stepped = advance(mig, reports, live, rec.version, now, self.loop_conf(rec))
            if not stepped and len(mig.states) != self._saved_states.get(name):
                self._save_migration(mig)
            pushed = self._stepped(rec, mig, stepped, now) or pushed
        if pushed:
            self.nimbus.push(now)

    def observe(self, node: str, now: float) -> None:
        """A heartbeat of ``node``: every migration that has a worker there looks at that
        board's reports alone (:func:`~squall.nimbus.migration.observe`), not at every
        board's; one without the progress of a full look at its phase takes a full look."""
        sup = self.nimbus.supervisors.get(node)
        if sup is None:
            return
        pushed = False
        for name in sorted(self.migrations):
            mig = self.migrations[name]
            if node not in mig.nodes:
                continue
            rec = self.nimbus.topologies.get(name)
            if (
                rec is None
                or rec.phase != RUNNING
                or mig.progress is None
                or not mig.progress.matches(mig, rec.version)
            ):
                self.advance_migrations(now)
                return
            reports = {(node, port): r for (topology, port), r in sup.reports.items() if topology == name}
            stepped = observe(mig, node, reports, rec.version, now, self.loop_conf(rec))
            pushed = self._stepped(rec, mig, stepped, now) or pushed
        if pushed:
            self.nimbus.push(now)

    def _stepped(self, rec: TopologyRecord, mig: Migration, stepped: bool, now: float) -> bool:
        """After a look: when ``mig`` took a step, record it (or finish it); True then (a push is due)."""
        if not stepped:
            return False
        if mig.phase == DONE:
            self._finish_migration(rec, mig, now)
        else:
            rec.version += 1
            self.nimbus.save(rec)
            self._save_migration(mig)
            log.info("topology %s: migration %s", rec.name, mig.phase)
        return True

    def _save_migration(self, mig: Migration) -> None:
        self._saved_states[mig.topology] = len(mig.states)
        self.nimbus.emit(SaveMigration(mig.topology, mig.to_record(), dict(mig.states)))

    def _finish_migration(self, rec: TopologyRecord, mig: Migration, now: float) -> None:
        """RESUME: the target becomes the placement, unpaused."""
        del self.migrations[rec.name]
        rec.placement = mig.target
        rec.version += 1
        self.nimbus.save(rec)
        self.nimbus.emit(DeleteMigration(rec.name))
        self._finish_event(mig, now)
        # The spouts were paused for the whole migration and catch up when it ends: the
        # backlog of p paused seconds drains within p more while the topology uses at most
        # half of what its boards give it. Measuring that catch-up as the new placement's
        # latency rolled good changes back, and its CPU burst read as a board's overload made
        # the loop move again (figure 8, 2 December): measurement restarts after it.
        self.changed(rec, now, settle_s=now - mig.started_at)
        log.info(
            "topology %s: migration done, %d executor(s) moved, spouts paused %.2f s (drain %s after %.2f s)",
            rec.name,
            len(mig.moved),
            now - mig.started_at,
            mig.drain or "skipped",
            mig.drain_s or 0.0,
        )

    def _finish_event(self, mig: Migration, now: float, note: str = "") -> None:
        notes = [*mig.notes, *([note] if note else [])]
        done = {"paused_s": now - mig.started_at, "notes": notes, "done_at": now}
        if mig.drain:  # how the drain ended (quiescent or timed out) and how long it took
            done.update(drain=mig.drain, drain_s=mig.drain_s)
        if mig.sent:  # snapshots the new owners fetched: executor -> {"sends", "bytes"} (once each is the norm)
            done["snapshots_sent"] = {str(ex): {"sends": n, "bytes": b} for ex, (n, b) in sorted(mig.sent.items())}
        self.nimbus.emit(self.event_log.update(mig.event_id, done))


def changes_executors(rec: TopologyRecord, pending: Mapping[str, Any]) -> bool:
    """Whether a validated rebalance changes the executors (and so their ids)."""
    parallelism = dict(pending.get("parallelism") or {})
    ackers = parallelism.pop(ACKER_COMPONENT, None)
    if ackers is not None and ackers != rec.ackers:
        return True
    return any(rec.spec.component(name).par != par for name, par in parallelism.items())
