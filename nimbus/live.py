"""Live rebalancing inside :class:`squall.nimbus.state.NimbusState`: the online loop, the
migration coordinator, rebalance events, and the GetEvents / GetStats queries.

A mixin so ``state.py`` stays readable: it uses the state's records, store and push, and
adds no I/O of its own. The decisions live in :mod:`squall.nimbus.loop` (whether and what to
apply) and :mod:`squall.nimbus.migration` (how the move proceeds); this module enacts them.

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
from typing import TYPE_CHECKING, Any

from squall import messages as M
from squall.nimbus import views
from squall.nimbus.loop import (
    NODE_LOST, ONLINE, PERIODIC, REQUESTED, LoopClock, LoopConf, Proposal, assignment_of, cost_summary, decide,
    moved_between, not_due, propose,
)
from squall.nimbus.migration import DONE, Migration, advance, declared
from squall.nimbus.placement import node_of, place, spread_caps, standby_caps, workload_of
from squall.nimbus.records import RUNNING, Slot, TopologyRecord
from squall.nimbus.requests import RequestError, apply_rebalance
from squall.rebalance import InfeasibleError, InvalidInputError, evaluate
from squall.topology.spec import ACKER_COMPONENT

if TYPE_CHECKING:
    from collections.abc import Iterable

    from squall.nimbus.metrics import MetricsWindow, Rates
    from squall.nimbus.records import SupervisorRecord
    from squall.nimbus.store import Store

log = logging.getLogger("squall.nimbus")

APPLIED = "applied"
DECLINED = "declined"


class LiveRebalancing:
    """Mixed into ``NimbusState``; see the module docstring."""

    if TYPE_CHECKING:  # provided by NimbusState
        store: Store
        conf: dict[str, Any]
        topologies: dict[str, TopologyRecord]
        supervisors: dict[str, SupervisorRecord]
        metrics: MetricsWindow
        counters: Counter[str]
        boot: float | None

        def live_nodes(self, now: float) -> set[str]: ...
        def rates(self, topology: str) -> Rates: ...
        def _push(self, now: float, force: frozenset[str] | set[str] = frozenset()) -> None: ...
        def _save(self, rec: TopologyRecord) -> None: ...
        def _reply(self, peer: bytes, rid: int, data: Any = None, error: str = "") -> None: ...
        def _find(self, name: str) -> TopologyRecord: ...
        def _host(self, node: str) -> str: ...
        def _schedule(self, rec: TopologyRecord, now: float, keep_current: bool) -> bool: ...

    def _init_live(self) -> None:
        self.migrations: dict[str, Migration] = {}
        for record, states in self.store.load_migrations():
            if record["topology"] in self.topologies:
                self.migrations[record["topology"]] = Migration.from_record(record, states, restarted=True)
        self._last_change: dict[str, float] = self.store.load_clocks()
        self.clocks: dict[str, LoopClock] = {}
        self.rebalances: Counter[tuple[str, str]] = Counter()

    # -- helpers ---------------------------------------------------------------------------

    def loop_conf(self, rec: TopologyRecord) -> LoopConf:
        return LoopConf.of(rec.conf, self.conf)

    def clock(self, rec: TopologyRecord) -> LoopClock:
        """The topology's loop clock; after a restart measurement restarts at boot."""
        if rec.name not in self.clocks:
            last = self._last_change.get(rec.name, rec.submitted_at)
            self.clocks[rec.name] = LoopClock(last, max(last, self.boot if self.boot is not None else last))
        return self.clocks[rec.name]

    def _changed(self, rec: TopologyRecord, now: float) -> None:
        """A new placement is in force: the timeout and the measurement start afresh."""
        self.clocks[rec.name] = LoopClock(now, now)
        self._last_change[rec.name] = now
        self.store.save_clock(rec.name, now)
        self.metrics.forget(rec.name)

    def _forget_live(self, name: str) -> None:
        """A removed topology: its migration, clock and counters go (the store drops the rest)."""
        self.migrations.pop(name, None)
        self.clocks.pop(name, None)
        self._last_change.pop(name, None)
        for key in [k for k in self.rebalances if k[0] == name]:
            del self.rebalances[key]

    def reserved(self, except_topology: str = "") -> dict[str, set[int]]:
        """node -> ports held by migrating topologies (old and new workers)."""
        out: dict[str, set[int]] = {}
        for name, mig in self.migrations.items():
            if name != except_topology:
                for s in [*mig.old.values(), *mig.target.values()]:
                    out.setdefault(s.node, set()).add(s.port)
        return out

    def _others(self, rec: TopologyRecord) -> Iterable[TopologyRecord]:
        return [o for o in self.topologies.values() if o.name != rec.name]

    def declared_migrating(self, rec: TopologyRecord, node: str) -> list[M.WorkerAssignment] | None:
        """The paused workers of a migrating topology on ``node``; None when it is not migrating."""
        per_node = self.declared_migrating_all(rec)
        return None if per_node is None else per_node.get(node, [])

    def declared_migrating_all(self, rec: TopologyRecord) -> dict[str, list[M.WorkerAssignment]] | None:
        """node -> the workers of a migrating topology there (one pass for every node); None
        when it is not migrating."""
        mig = self.migrations.get(rec.name)
        if mig is None or rec.phase != RUNNING:
            return None
        out: dict[str, list[M.WorkerAssignment]] = {}
        for (n, _port), wa in declared(mig, rec, self._host).items():
            out.setdefault(n, []).append(wa)
        return out

    def _record(self, rec: TopologyRecord, now: float, trigger: str, decision: str, reason: str,
                proposal: Proposal | None, moved: tuple[int, ...] = (), **extra: Any) -> int:
        event = {
            "topology": rec.name, "at": now, "trigger": trigger, "decision": decision, "reason": reason,
            "current": cost_summary(proposal.current) if proposal else None,
            "proposed": cost_summary(proposal.proposed) if proposal else None,
            "moved": list(moved), "paused_s": None, "notes": [], **extra,
        }
        self.rebalances[(rec.name, decision)] += 1
        log.info("topology %s: %s rebalance %s: %s", rec.name, trigger, decision, reason)
        return self.store.add_event(rec.name, event)

    # -- starting a change -----------------------------------------------------------------

    def _apply(self, rec: TopologyRecord, proposal: Proposal, trigger: str, reason: str, now: float) -> None:
        """Record the applied proposal and start moving its executors (or install it when
        nothing has to move)."""
        event_id = self._record(rec, now, trigger, APPLIED, reason, proposal, proposal.moved)
        self._move(rec, proposal.placement, trigger, event_id, now)

    def _move(self, rec: TopologyRecord, target: dict[int, Slot], trigger: str, event_id: int, now: float) -> None:
        moved = moved_between(rec.placement, target)
        lost = tuple(ex for ex in moved if ex in rec.placement and not self._port_alive(rec.placement[ex], now))
        if set(moved) <= set(lost):  # nothing alive moves: no state to hand over, no pause needed
            rec.placement = target
            rec.version += 1
            self._save(rec)
            self.store.update_event(event_id, {"paused_s": 0.0, "done_at": now})
            self._changed(rec, now)
            self._push(now)
            return
        mig = Migration(rec.name, trigger, event_id, dict(rec.placement), dict(target), moved, lost,
                        started_at=now, phase_at=now)
        self.migrations[rec.name] = mig
        rec.version += 1
        self._save(rec)
        self.store.save_migration(rec.name, mig.to_record(), mig.states)
        self._push(now)

    def _port_alive(self, slot: Slot, now: float) -> bool:
        sup = self.supervisors.get(slot.node)
        return sup is not None and slot.node in self.live_nodes(now) and slot.port in sup.ports

    def _rebalance_live(self, peer: bytes, rid: int, rec: TopologyRecord, pending: dict[str, Any], now: float) -> None:
        """``squall rebalance`` without a change of executors: new worker count and/or
        scheduler, moved live. With the online scheduler the proposal starts from the
        current assignment; other schedulers place from scratch, as on submit."""
        trial = dataclasses.replace(rec, conf=dict(rec.conf))
        apply_rebalance(trial, pending)
        reason = "requested: " + (", ".join(f"{k}={v}" for k, v in sorted(pending.items()) if v) or "reschedule")
        try:
            proposal = propose(trial, self.rates(rec.name), self.supervisors, self.live_nodes(now),
                               self._others(rec), self.reserved(rec.name), keep_current=trial.scheduler == ONLINE)
        except (InfeasibleError, InvalidInputError) as exc:
            self._record(rec, now, REQUESTED, DECLINED, f"{reason}; no placement: {exc}", None)
            raise RequestError(f"cannot rebalance {rec.name!r}: {exc}") from None
        proposal = self._spread(trial, proposal, now)
        rec.conf, rec.scheduler, rec.spec = trial.conf, trial.scheduler, trial.spec
        self._save(rec)
        self._reply(peer, rid, views.topology_entry(rec))
        self._apply(rec, proposal, REQUESTED, reason, now)

    def _repair_live(self, rec: TopologyRecord, now: float) -> None:
        """Reassign a running topology that lost workers (dead node or port); executors
        that were on them come back without state, survivors that move migrate live."""
        mig = self.migrations.pop(rec.name, None)
        if mig is not None:  # roll forward: the target is the placement to repair from
            rec.placement = mig.target
            self._finish_event(mig, now, "a node was lost mid-migration; rolled forward")
            self.store.delete_migration(rec.name)
        old = dict(rec.placement)
        standby = self._standby_target(rec, now)
        if standby is not None:
            rec.placement = standby
            rec.version += 1
        elif not self._schedule(rec, now, keep_current=True):
            self._save(rec)
            return
        target, rec.placement = rec.placement, old
        gone = sorted({s.node for s in old.values() if not self._port_alive(s, now)})
        moved = moved_between(old, target)
        event_id = self._record(rec, now, NODE_LOST, APPLIED, f"workers lost on {', '.join(gone)}", None, moved)
        self._move(rec, target, NODE_LOST, event_id, now)

    def _spread(self, trial: TopologyRecord, proposal: Proposal, now: float) -> Proposal:
        """A requested rebalance uses a board that joined or came back: when ``proposal``
        leaves every idle board unused, place again with the busy boards capped at an even
        share (:func:`spread_caps`); keep ``proposal`` when that finds no placement."""
        live, reserved = self.live_nodes(now), self.reserved(trial.name)
        caps = spread_caps(trial, self.supervisors, live, self._others(trial), proposal.placement, reserved)
        if caps is None:
            return proposal
        try:
            placement = place(trial, self.rates(trial.name), self.supervisors, live, self._others(trial),
                              trial.scheduler == ONLINE, reserved=reserved, slot_cap=caps)
        except (InfeasibleError, InvalidInputError) as exc:
            log.info("topology %s: idle boards left unused (%s)", trial.name, exc)
            return proposal
        nodes = [node_of(self.supervisors[n]) for n in sorted(live)]
        proposed = evaluate(assignment_of(trial.name, placement), [workload_of(trial, self.rates(trial.name))], nodes)
        return Proposal(placement, moved_between(trial.placement, placement), proposal.current, proposed)

    def _standby_target(self, rec: TopologyRecord, now: float) -> dict[int, Slot] | None:
        """The repair placement with the lost workers on standby boards (the topology's
        alive boards without any of its workers), when they have room for all of them;
        None otherwise (then the scheduler places over every live board)."""
        live = self.live_nodes(now)
        reserved = self.reserved(rec.name)
        caps = standby_caps(rec, self.supervisors, live, self._others(rec), reserved)
        if caps is None:
            return None
        try:
            return place(rec, self.rates(rec.name), self.supervisors, live, self._others(rec), True,
                         reserved=reserved, slot_cap=caps)
        except (InfeasibleError, InvalidInputError) as exc:
            log.info("topology %s: no standby placement (%s); placing over every live board", rec.name, exc)
            return None

    # -- time ------------------------------------------------------------------------------

    def _live_tick(self, now: float) -> None:
        self._advance_migrations(now)
        self._run_loop(now)

    def _run_loop(self, now: float) -> None:
        for name in sorted(self.topologies):
            rec = self.topologies[name]
            if rec.scheduler != ONLINE or rec.phase != RUNNING or not rec.active or not rec.placement \
                    or name in self.migrations:
                continue
            lc, clock = self.loop_conf(rec), self.clock(rec)
            if not_due(lc, clock, now) is not None:
                continue
            live = self.live_nodes(now)
            if any(not self._port_alive(s, now) for s in rec.placement.values()):
                continue  # repair comes first
            clock.last_eval = now
            try:
                proposal = propose(rec, self.rates(name), self.supervisors, live, self._others(rec),
                                   self.reserved(name))
            except (InfeasibleError, InvalidInputError) as exc:
                self._record(rec, now, PERIODIC, DECLINED, f"no placement: {exc}", None)
                continue
            decision = decide(proposal, now - clock.last_change, lc)
            if decision.apply:
                self._apply(rec, proposal, PERIODIC, decision.reason, now)
            else:
                self._record(rec, now, PERIODIC, DECLINED, decision.reason, proposal, proposal.moved)

    def _advance_migrations(self, now: float) -> None:
        pushed = False
        for name in sorted(self.migrations):
            mig = self.migrations[name]
            rec = self.topologies.get(name)
            if rec is None or rec.phase != RUNNING:  # killed or restarting: the migration is moot
                del self.migrations[name]
                self.store.delete_migration(name)
                self._finish_event(mig, now, "abandoned: the topology is being killed or restarted")
                continue
            live = self.live_nodes(now)
            reports = {
                (sup.id, port): r for sup in self.supervisors.values() if sup.id in live
                for (topology, port), r in sup.reports.items() if topology == name
            }
            collected = len(mig.states)
            if not advance(mig, reports, live, rec.version, now, self.loop_conf(rec)):
                if len(mig.states) != collected:
                    self.store.save_migration(name, mig.to_record(), mig.states)
                continue
            pushed = True
            if mig.phase == DONE:
                self._finish_migration(rec, mig, now)
            else:
                rec.version += 1
                self._save(rec)
                self.store.save_migration(name, mig.to_record(), mig.states)
                log.info("topology %s: migration %s", name, mig.phase)
        if pushed:
            self._push(now)

    def _finish_migration(self, rec: TopologyRecord, mig: Migration, now: float) -> None:
        """RESUME: the target becomes the placement, unpaused."""
        del self.migrations[rec.name]
        rec.placement = dict(mig.target)
        rec.version += 1
        self._save(rec)
        self.store.delete_migration(rec.name)
        self._finish_event(mig, now)
        self._changed(rec, now)
        log.info("topology %s: migration done, %d executor(s) moved, spouts paused %.2f s",
                 rec.name, len(mig.moved), now - mig.started_at)

    def _finish_event(self, mig: Migration, now: float, note: str = "") -> None:
        notes = [*mig.notes, *([note] if note else [])]
        self.store.update_event(mig.event_id, {"paused_s": now - mig.started_at, "notes": notes, "done_at": now})


def changes_executors(rec: TopologyRecord, pending: Mapping[str, Any]) -> bool:
    """Whether a validated rebalance changes the executors (and so their ids)."""
    parallelism = dict(pending.get("parallelism") or {})
    ackers = parallelism.pop(ACKER_COMPONENT, None)
    if ackers is not None and ackers != rec.ackers:
        return True
    return any(rec.spec.component(name).par != par for name, par in parallelism.items())

