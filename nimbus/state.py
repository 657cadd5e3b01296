"""Nimbus's decisions: a state machine from events to commands, with no I/O of its own.

``step(event)`` decides on one event (:mod:`squall.nimbus.events`: a message received, or a
tick, each with its time), as do ``on_message(peer, msg, now)`` and ``on_tick(now)``: they
return the commands to carry out (:mod:`squall.nimbus.commands`: sends, store writes, store
reads) and write nothing themselves. Nothing here reads a clock, sleeps or touches a socket.
``apply(event)`` (and ``handle`` / ``tick``) decides and then carries the commands out through
the store handed in: one transaction per event, committed before any send leaves. The same
events in the same order give the same commands, whatever the hash seed (no clock, no
randomness; ``tests/nimbus/test_nimbus_replay.py`` checks it), so a replicated log of events
can drive it.

Guarantees:

* a write that fails sends nothing and changes nothing on disk; topologies go back to what
  the store holds, and every supervisor's assignment is pushed afresh at the next change;
* it never raises on bad input: an unexpected message type is counted and ignored (or
  answered ``Reply(ok=False)`` when it carries a ``rid``), a refused request gets a
  ``Reply`` whose ``error`` names the fault, and an internal error is counted, logged and
  answered instead of propagating;
* every ``SupervisorAssignment`` is the full declarative set of the supervisor's workers,
  with a version that grows per supervisor (persisted, so it keeps growing across
  restarts); it is pushed on registration and whenever that set changes;
* a topology's placement covers each of its executors exactly once, on distinct
  (node, port) workers, and ports of one node are never shared between topologies;
* a restarted Nimbus (a new ``NimbusState`` over the same store) pushes the stored
  placement unchanged to supervisors as they re-register; supervisors that do not
  re-register within the timeout are declared dead and their workers reassigned; a
  migration it was in the middle of resumes from its stored phase;
* placement changes that keep the executors (the online loop, ``rebalance -n`` or
  ``--scheduler``, repair after a lost node) move only the executors that move, live
  (:mod:`squall.nimbus.live`); a change of parallelism restarts the topology's workers.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

from squall import messages as M
from squall.nimbus import config as C
from squall.nimbus import views
from squall.nimbus.commands import (
    Command,
    DeleteSupervisor,
    DeleteTopology,
    DropBundle,
    PutBundle,
    SaveSupervisor,
    SaveTopology,
    Send,
)
from squall.nimbus.events import Event, Received, Tick
from squall.nimbus.failures import every_worker_failed
from squall.nimbus.leadership import Leadership
from squall.nimbus.live import LiveRebalancing, changes_executors
from squall.nimbus.metrics import MetricsWindow
from squall.nimbus.migration import Migrations, answer_fetch, snapshots_taken
from squall.nimbus.placement import DeclaredWorkers, place
from squall.nimbus.profiles import BoardWindow, Rates
from squall.nimbus.queries import QUERIES, find
from squall.nimbus.records import (
    FAILED,
    KILLING,
    NO_PLACEMENT,
    REBALANCING,
    RUNNING,
    WAITING,
    SupervisorRecord,
    TopologyRecord,
)
from squall.nimbus.requests import (
    RequestError,
    apply_rebalance,
    registration_fault,
    validate_rebalance,
    validate_submit,
)
from squall.nimbus.store import Store, StoreError
from squall.rebalance import InfeasibleError, InvalidInputError

log = logging.getLogger("squall.nimbus")


__all__ = ["NimbusState", "Send", "Command"]

# A tick whose heard_until lags its time by more than this counts as behind: the server's
# probe (nimbus.server) makes it lag about 0.1 s even when nothing waits.
BEHIND_S = 0.5
RESEND_S = 5.0  # an assignment a supervisor's heartbeats do not reflect is sent again this often


class NimbusState:
    """See the module docstring. ``conf`` overrides :data:`config.NIMBUS_DEFAULTS`."""

    def __init__(self, store: Store, conf: dict[str, Any] | None = None, leadership: Leadership | None = None) -> None:
        self.store = store
        self.conf: dict[str, Any] = {**C.NIMBUS_DEFAULTS, **(conf or {})}
        self.timeout = C.number(self.conf, C.SUPERVISOR_TIMEOUT, 5.0)
        self.topologies: dict[str, TopologyRecord] = {r.name: r for r in store.load_topologies()}
        self.supervisors: dict[str, SupervisorRecord] = {s.id: s for s in store.load_supervisors()}
        self.metrics = MetricsWindow()
        self.boards = BoardWindow()
        self.counters: Counter[str] = Counter()
        self.waiting_reason: dict[str, str] = {}
        self.boot: float | None = None  # first time seen: supervisors from the store get a grace
        # Up to when the server had read every message sent to it (the last tick says): the
        # time silence is judged at, so a backlog in Nimbus's own socket kills no board.
        self.heard_until: float | None = None
        self._out: list[Command] = []
        self._capacity_changed = True
        self._hidden: set[str] = set()  # topologies left out of pushes for a moment
        self._declared = DeclaredWorkers()  # per-node worker sets, rebuilt only on change
        self._pushed_at: dict[str, float] = {}  # supervisor -> when its assignment was last sent
        self._pushed_keys_of: dict[str, tuple[Any, frozenset[tuple[str, int]]]] = {}  # see _pushed_keys
        # The term every assignment carries (fencing): a standalone Nimbus's own, or a replica's
        # Raft term (nimbus.replication).
        self.leadership = leadership if leadership is not None else Leadership(store)
        self._handlers: dict[type, Callable[[bytes, Any, float], None]] = {
            M.RegisterSupervisor: self._register,
            M.Heartbeat: self._heartbeat,
            M.SubmitTopology: self._submit,
            M.KillTopology: self._kill,
            M.SetActive: self._set_active,
            M.RebalanceTopology: self._rebalance,
            M.GetSnapshot: self._get_snapshot,
            **{kind: self._query for kind in QUERIES},
            M.GetNimbusStatus: lambda peer, m, now: self.reply(peer, m.rid, self.leadership.status()),
        }
        self.live = LiveRebalancing(self, store)  # migrations, the loop, probations, repair

    # -- entry points ----------------------------------------------------------------------

    def step(self, event: Event) -> list[Command]:
        """Decide on one event; writes nothing itself (see the module docstring)."""
        if isinstance(event, Received):
            return self.on_message(event.peer, event.msg, event.now)
        return self.on_tick(event.now, event.heard_until)

    def apply(self, event: Event) -> list[Send]:
        """Decide on ``event``, carry the commands out through the store, return the sends."""
        commands = self.step(event)
        rid = getattr(event.msg, "rid", None) if isinstance(event, Received) else None
        peer = event.peer if isinstance(event, Received) and isinstance(rid, int) else None
        return self.carry_out(commands, peer, rid)

    def handle(self, peer: bytes, msg: Any, now: float) -> list[Send]:
        """:meth:`apply` to a message from ``peer``."""
        return self.apply(Received(peer, msg, now))

    def tick(self, now: float) -> list[Send]:
        """:meth:`apply` to a tick."""
        return self.apply(Tick(now))

    def carry_out(self, commands: list[Command], peer: bytes | None = None, rid: Any = None) -> list[Send]:
        """Apply ``commands`` through the store; the sends to put on the wire. When the
        writes fail nothing is sent but, to a request (``peer`` and ``rid``), the error."""
        try:
            return self.store.carry_out(commands)
        except StoreError as exc:  # memory goes back to what the store holds; nothing is pushed
            self._store_failed(exc)
            error = f"Nimbus could not save the change, so nothing changed: {exc}"
        except Exception as exc:  # a bug (a value the store cannot encode): as above, and logged
            self.counters["internal_errors"] += 1
            log.exception("internal error carrying out %d command(s)", len(commands))
            self._store_failed(StoreError(f"{type(exc).__name__}: {exc}"))
            error = f"internal error, so nothing changed: {type(exc).__name__}: {exc}"
        return [] if peer is None else [Send(peer, M.Reply(rid=rid, ok=False, error=error))]

    def on_message(self, peer: bytes, msg: Any, now: float) -> list[Command]:
        """Decide on one decoded message from ``peer``; writes nothing itself."""
        if self.boot is None:
            self.boot = now
        self._out = []
        handler = self._handlers.get(type(msg))
        if handler is None:
            self.counters["unexpected_messages"] += 1
            if isinstance(getattr(msg, "rid", None), int):
                self.reply(peer, msg.rid, error=f"Nimbus does not handle {type(msg).__name__}")
            return self._flush()
        self.counters[f"msg_{type(msg).__name__}"] += 1
        try:
            handler(peer, msg, now)
        except RequestError as exc:
            self.reply(peer, msg.rid, error=str(exc))
        except Exception as exc:  # a bug must not kill the control plane; it is logged and answered
            self.counters["internal_errors"] += 1
            log.exception("internal error handling %s", type(msg).__name__)
            if isinstance(getattr(msg, "rid", None), int):
                self.reply(peer, msg.rid, error=f"internal error: {type(exc).__name__}: {exc}")
        return self._flush()

    def on_tick(self, now: float, heard_until: float | None = None) -> list[Command]:
        """Time passes: declare silent supervisors dead and repair their topologies, finish
        due kills and rebalances, place waiting topologies, age the metrics window.
        ``heard_until``: see :class:`~squall.nimbus.events.Tick`."""
        if self.boot is None:
            self.boot = now
        self.heard_until = now if heard_until is None else min(now, heard_until)
        self._out = []
        try:
            self._tick(now)
        except Exception:  # as in handle: log, count, keep serving
            self.counters["internal_errors"] += 1
            log.exception("internal error in tick")
        return self._flush()

    def _store_failed(self, exc: StoreError) -> None:
        """A write failed and was rolled back: topologies go back to what the store holds (so
        memory never runs ahead of disk) and the commands computed from the change were
        dropped, so every supervisor gets its set pushed again at the next change."""
        self.counters["store_errors"] += 1
        log.error("store write failed; topologies reloaded from the store: %s", exc)
        self.topologies = {r.name: r for r in self.store.load_topologies()}
        for sup in self.supervisors.values():
            sup.last_pushed = None
        self._capacity_changed = True

    def emit(self, command: Command) -> None:
        """Add ``command`` to the current event's output (how the live part acts)."""
        self._out.append(command)

    @property
    def migrations(self) -> Migrations:
        """Migrations in progress, by topology (kept by the live part)."""
        return self.live.migrations

    @property
    def rebalances(self) -> Counter[tuple[str, str]]:
        """Rebalance evaluations by (topology, outcome), for Prometheus."""
        return self.live.rebalances

    def _flush(self) -> list[Command]:
        out, self._out = self._out, []
        return out

    def reply(self, peer: bytes, rid: int, data: Any = None, error: str = "") -> None:
        self._out.append(Send(peer, M.Reply(rid=rid, ok=not error, error=error, data=data)))

    # -- supervisors -----------------------------------------------------------------------

    def live_nodes(self, now: float) -> set[str]:
        judged = self.silence_judged_at(now)
        return {s.id for s in self.supervisors.values() if s.alive(judged, self.timeout)}

    def silence_judged_at(self, now: float) -> float:
        """The time a board's silence is measured to: ``now``, or, while the last tick found
        messages still unread, the time up to which everything sent had been read."""
        return now if self.heard_until is None else min(now, self.heard_until)

    def _register(self, peer: bytes, m: M.RegisterSupervisor, now: float) -> None:
        reason = registration_fault(m, str(self.conf[C.CLUSTER]))
        old = self.supervisors.get(m.supervisor_id)
        # The same process (host and pid) coming back on a new connection is a reconnect, not
        # an impostor: ZeroMQ gives a reconnected DEALER a new identity.
        reconnect = old is not None and (old.host, old.pid) == (m.host, m.pid)
        if (
            not reason
            and old is not None
            and old.peer not in (None, peer)
            and old.alive(self.silence_judged_at(now), self.timeout)
            and not reconnect
        ):
            reason = (
                f"supervisor id {m.supervisor_id!r} is already registered from another connection and alive "
                f"(last heartbeat {now - (old.last_seen or now):.1f} s ago); pick another id or retry after "
                f"{self.timeout:g} s"
            )
        if reason:
            self.counters["registrations_refused"] += 1
            self._out.append(Send(peer, M.RegisterReply(ok=False, reason=reason)))
            return
        sup = old or SupervisorRecord(m.supervisor_id, m.host, list(m.ports), m.capacity_hz)
        sup.host, sup.ports, sup.capacity_hz = m.host, sorted(m.ports), m.capacity_hz
        sup.clock_hz, sup.cores, sup.memory_mb, sup.pid = m.clock_hz, m.cores, m.memory_mb, m.pid
        sup.link_mbit, sup.link_delay_ms = m.link_mbit, m.link_delay_ms
        sup.peer, sup.last_seen, sup.dead, sup.last_pushed = peer, now, False, None
        self.supervisors[sup.id] = sup
        raised = self.leadership.observe(m.term, m.supervisor_id)  # fencing: a board ahead raises the term
        self._out.extend(self.leadership.writes())
        self._out.append(SaveSupervisor.of(sup))
        log.info("supervisor %s registered from %s with ports %s", sup.id, sup.host, sup.ports)
        self._out.append(
            Send(
                peer,
                M.RegisterReply(ok=True, heartbeat_s=C.number(self.conf, C.HEARTBEAT, 1.0), term=self.leadership.term),
            )
        )
        # A board that came back with fewer ports: its topologies that lost a port are repaired.
        lost = {
            r.name
            for r in self.topologies.values()
            for s in r.placement.values()
            if s.node == sup.id and s.port not in sup.ports
        }
        self._repair(sorted(lost), now)
        self._capacity_changed = True
        self._place_waiting(now)
        self.push(now, force=set(self.supervisors) if raised else {sup.id})

    def _heartbeat(self, peer: bytes, m: M.Heartbeat, now: float) -> None:
        sup = self.supervisors.get(m.supervisor_id)
        if sup is None or sup.peer != peer or sup.dead:
            self.counters["heartbeats_unknown"] += 1
            self._out.append(Send(peer, M.RegisterReply(ok=False, reason="unknown supervisor; register again")))
            return
        sup.last_seen = now
        term = self.leadership.term  # the ack states the term it was received in
        try:
            self._heard_from(sup, m, now)
        finally:
            # The board's proof of life, sent even if taking in its reports failed; sent after
            # them because it names the released snapshots they handed over (not sent again).
            taken = snapshots_taken(self.live.migrations, m.workers)
            self._out.append(Send(peer, M.HeartbeatAck(m.seq, term, taken)))

    def _heard_from(self, sup: SupervisorRecord, m: M.Heartbeat, now: float) -> None:
        """Take in a known board's heartbeat: its term, reports, board figures and metrics."""
        if self.leadership.observe(m.term):
            self._out.extend(self.leadership.writes())
            self.push(now, force=set(self.supervisors))
        sup.reports = {(r.topology, r.port): r for r in m.workers}
        if m.board is not None:
            self.boards.add(sup.id, m.board, now, C.number(self.conf, C.METRICS_WINDOW, 30.0))
            sup.board = self.boards.rates(sup.id)
        for r in m.workers:
            rec = self.topologies.get(r.topology)
            if rec is not None and r.metrics is not None:
                window = C.number(rec.conf, C.METRICS_WINDOW, C.number(self.conf, C.METRICS_WINDOW, 30.0))
                self.metrics.add(r.topology, sup.id, r.port, r.metrics, now, window)
        self._fail_topologies(sorted({r.topology for r in m.workers if r.state == "failed"}), now)
        if self.live.migrations:
            self.live.observe(sup.id, now)

    def _get_snapshot(self, peer: bytes, m: M.GetSnapshot, now: float) -> None:
        """A board fetches a snapshot its ACQUIRE assignment names (docs/nimbus.md, "snapshots
        go down once"): one snapshot per reply, from the migration's held states."""
        state, error = answer_fetch(self.live.migrations, m)
        if state is None:
            self.counters["snapshot_fetches_refused"] += 1
            self.reply(peer, m.rid, error=error)
            return
        self.counters["snapshots_sent"] += 1
        self.counters["snapshot_bytes_sent"] += len(state)
        data = {"topology": m.topology, "executor": m.executor, "digest": m.digest, "state": state}
        self.reply(peer, m.rid, data)

    # -- topology requests -----------------------------------------------------------------

    def _submit(self, peer: bytes, m: M.SubmitTopology, now: float) -> None:
        if m.name in self.topologies:
            state = self.topologies[m.name].status
            raise RequestError(f"topology {m.name!r} already exists (status {state}); kill it first")
        sub = validate_submit(m, int(C.number(self.conf, C.BUNDLE_MAX, 32 * 1024 * 1024)))
        digest = hashlib.sha256(m.bundle).hexdigest()  # the store files bundles under it
        self._out.append(PutBundle(digest, m.bundle))
        sub.conf[C.BUNDLE_DIGEST] = digest
        rec = TopologyRecord(m.name, sub.spec, sub.scheduler, sub.conf, digest, len(m.bundle), now)
        self.schedule(rec, now, keep_current=False)
        self.topologies[rec.name] = rec
        self.save(rec)
        log.info("topology %s submitted: %s", rec.name, rec.status)
        for warning in sub.warnings:
            log.warning("%s", warning)
        self.reply(peer, m.rid, {**views.topology_entry(rec), "warnings": list(sub.warnings)})
        self.push(now)

    def find(self, name: str) -> TopologyRecord:
        return find(self.topologies, name)

    def _query(self, peer: bytes, m: Any, now: float) -> None:
        """A read-only request: answered by a function of the state (:mod:`squall.nimbus.queries`)."""
        self._out.append(QUERIES[type(m)](self, peer, m, now))

    def _fail_topologies(self, names: list[str], now: float) -> None:
        """Running topologies whose every worker is reported failed (:func:`every_worker_failed`)
        become FAILED: the placement is dropped, freeing the slots, and the workers' errors are
        kept for ``squall list``. ``rebalance`` tries them again."""
        for name in names:
            rec = self.topologies.get(name)
            if rec is None or rec.phase != RUNNING or name in self.live.migrations:
                continue
            error = every_worker_failed(rec, self.supervisors)
            if error is None:
                continue
            rec.phase, rec.placement, rec.error = FAILED, NO_PLACEMENT, error
            rec.version += 1
            self.save(rec)
            self._capacity_changed = True
            log.error("topology %s FAILED: %s", name, rec.error)
            self.push(now)

    def _wait_of(self, rec: TopologyRecord, wait_s: float | None) -> float:
        if wait_s is None:
            return C.number(rec.conf, C.MESSAGE_TIMEOUT, C.number(self.conf, C.MESSAGE_TIMEOUT, 30.0))
        if not math.isfinite(wait_s) or wait_s < 0:
            raise RequestError(f"wait must be a number of seconds >= 0, got {wait_s!r}")
        return wait_s

    def _kill(self, peer: bytes, m: M.KillTopology, now: float) -> None:
        rec = self.find(m.name)
        wait = self._wait_of(rec, m.wait_s)
        deadline = now + wait
        if rec.phase == KILLING and rec.deadline is not None:
            deadline = min(deadline, rec.deadline)
        rec.phase, rec.deadline, rec.pending = KILLING, deadline, None
        rec.version += 1
        self.save(rec)
        self.reply(peer, m.rid, views.topology_entry(rec))
        if deadline <= now:
            self._remove(rec)
        self.push(now)

    def _set_active(self, peer: bytes, m: M.SetActive, now: float) -> None:
        rec = self.find(m.name)
        if rec.phase == KILLING:
            raise RequestError(f"topology {m.name!r} is being killed")
        if rec.active != m.active:
            rec.active = m.active
            rec.version += 1
            self.save(rec)
        self.reply(peer, m.rid, views.topology_entry(rec))
        self.push(now)

    def _rebalance(self, peer: bytes, m: M.RebalanceTopology, now: float) -> None:
        rec = self.find(m.name)
        if rec.phase in (KILLING, REBALANCING):
            raise RequestError(f"topology {m.name!r} is {rec.status}; wait for it to finish")
        if rec.name in self.live.migrations:
            raise RequestError(f"topology {m.name!r} is migrating executors; wait for it to finish")
        pending = validate_rebalance(rec, m)
        wait = self._wait_of(rec, m.wait_s)
        if rec.phase == RUNNING and rec.placement and not changes_executors(rec, pending):
            self.live.rebalance(peer, m.rid, rec, pending, now)  # nothing to drain: no wait
            return
        if rec.phase in (WAITING, FAILED):
            wait = 0.0  # nothing runs, nothing to drain; a failed topology is tried again
        rec.phase, rec.deadline, rec.pending = REBALANCING, now + wait, pending
        rec.version += 1
        self.save(rec)
        self.reply(peer, m.rid, views.topology_entry(rec))
        if wait <= 0:
            self._finish_rebalance(rec, now)
        self.push(now)

    def rates(self, topology: str) -> Rates:
        return self.metrics.rates(topology)

    # -- time ------------------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        assert self.boot is not None
        newly_dead = []
        judged = self.silence_judged_at(now)
        if now - judged > BEHIND_S:
            self.counters["ticks_behind_backlog"] += 1
        for sup in self.supervisors.values():
            if sup.dead:
                continue
            silent_since = sup.last_seen if sup.last_seen is not None else self.boot
            if judged - silent_since > self.timeout:
                sup.dead = True
                sup.peer, sup.reports, sup.last_pushed = None, {}, None
                newly_dead.append(sup.id)
                log.warning(
                    "supervisor %s declared dead after %.1f s of silence (all sent until %.1f s ago was read)",
                    sup.id,
                    now - silent_since,
                    now - judged,
                )
        if newly_dead:
            self._capacity_changed = True
            dead = set(newly_dead)
            hit = {r.name for r in self.topologies.values() if any(s.node in dead for s in r.placement.values())}
            self._repair(sorted(hit), now)
        for rec in sorted(self.topologies.values(), key=lambda r: r.name):
            if rec.deadline is None or rec.deadline > now:
                continue
            if rec.phase == KILLING:
                self._remove(rec)
            elif rec.phase == REBALANCING:
                self._finish_rebalance(rec, now)
        self._place_waiting(now)
        self.live.tick(now)
        self.metrics.expire(
            now,
            {
                n: C.number(r.conf, C.METRICS_WINDOW, C.number(self.conf, C.METRICS_WINDOW, 30.0))
                for n, r in self.topologies.items()
            },
        )
        self.push(now)
        self._resend_unconfirmed(now)
        self._prune_boards(now)

    # -- scheduling ------------------------------------------------------------------------

    def schedule(self, rec: TopologyRecord, now: float, keep_current: bool) -> bool:
        """Place ``rec`` over the live supervisors; WAITING (no placement) when it cannot."""
        live = self.live_nodes(now)
        try:
            if not live:
                raise InfeasibleError("no live supervisor")
            placement = place(
                rec,
                self.rates(rec.name),
                self.supervisors,
                live,
                self.topologies.values(),
                keep_current,
                reserved=self.live.reserved(rec.name),
            )
        except (InfeasibleError, InvalidInputError) as exc:
            if rec.placement or rec.phase != WAITING:
                rec.version += 1
            rec.placement, rec.phase = NO_PLACEMENT, WAITING
            self.waiting_reason[rec.name] = str(exc)
            log.info("topology %s waits for capacity: %s", rec.name, exc)
            return False
        rec.placement, rec.phase, rec.error = placement, RUNNING, ""
        rec.version += 1
        self.waiting_reason.pop(rec.name, None)
        return True

    def _repair(self, names: list[str], now: float) -> None:
        """Reassign running topologies whose workers sit on dead nodes or lost ports
        (killing and rebalancing ones are about to be removed or rescheduled anyway)."""
        for name in names:
            rec = self.topologies[name]
            if rec.phase == RUNNING:
                self.live.repair(rec, now)

    def _place_waiting(self, now: float) -> None:
        if not self._capacity_changed:
            return
        self._capacity_changed = False
        for name in sorted(self.topologies):
            rec = self.topologies[name]
            if rec.phase == WAITING and self.live_nodes(now):
                if self.schedule(rec, now, keep_current=False):
                    self.save(rec)

    def _finish_rebalance(self, rec: TopologyRecord, now: float) -> None:
        if apply_rebalance(rec, rec.pending or {}):
            self.metrics.forget(rec.name)  # executor ids changed meaning
            # The spec changed: push a set without the topology first, so supervisors stop
            # its old workers and fetch the new spec before starting the new ones.
            self._hidden.add(rec.name)
            self.push(now)
            self._hidden.discard(rec.name)
        rec.pending, rec.deadline = None, None
        self.schedule(rec, now, keep_current=False)
        self._capacity_changed = True
        self.save(rec)
        self.live.changed(rec, now)
        log.info("topology %s rebalanced: %s", rec.name, rec.status)

    def _remove(self, rec: TopologyRecord) -> None:
        self._out.append(DeleteTopology(rec.name))
        del self.topologies[rec.name]
        self.live.forget(rec.name)
        self._out.append(DropBundle(rec.bundle_digest))
        self.metrics.forget(rec.name)
        self.waiting_reason.pop(rec.name, None)
        self._capacity_changed = True
        log.info("topology %s removed", rec.name)

    def save(self, rec: TopologyRecord) -> None:
        if rec.name in self.topologies:
            self._out.append(SaveTopology.of(rec))

    # -- pushing assignments ---------------------------------------------------------------

    def declared(self, node: str) -> list[M.WorkerAssignment]:
        """The full set of workers ``node`` must run, by topology then port."""
        return self._declared_all().get(node, [])

    def _declared_all(self) -> dict[str, list[M.WorkerAssignment]]:
        """node -> the full set of workers it must run, by topology then port: one pass per
        topology for every node (a board's set is only read out of it)."""
        out: dict[str, list[M.WorkerAssignment]] = {}
        for name in sorted(self.topologies):
            rec = self.topologies[name]
            if name in self._hidden:
                continue
            per_node = self.live.migrations.declared_by_node(rec, self.host_of)
            if per_node is None:
                per_node = self._declared.of(rec, self.host_of)
            for node, workers in per_node.items():
                out.setdefault(node, []).extend(workers)
        self._declared.retain(self.topologies)
        self.live.migrations.retain_declared(self.topologies)
        return out

    def host_of(self, node: str) -> str:
        sup = self.supervisors.get(node)
        return sup.host if sup is not None else node

    def push(self, now: float, force: frozenset[str] | set[str] = frozenset()) -> None:
        declared = self._declared_all()
        for sup in sorted(self.supervisors.values(), key=lambda s: s.id):
            if sup.peer is None or not sup.alive(self.silence_judged_at(now), self.timeout):
                continue
            workers = declared.get(sup.id, [])
            if sup.id not in force and workers == sup.last_pushed:
                continue
            sup.version += 1
            self._out.append(SaveSupervisor.of(sup))  # carried out before the send: a failed save sends nothing
            sup.last_pushed = workers
            self._pushed_at[sup.id] = now
            self._out.append(Send(sup.peer, M.SupervisorAssignment(sup.id, sup.version, workers, self.leadership.term)))

    def _prune_boards(self, now: float) -> None:
        """Forget boards silent for ``nimbus.supervisor.retention.secs`` that no placement
        names: their row, record and series go, so registrations cannot grow without end.
        A pruned board that comes back registers as new (its supervisor accepts the new
        numbering of assignments after a successful registration)."""
        assert self.boot is not None
        retention = C.number(self.conf, C.RETENTION, 3600.0)
        for sup in list(self.supervisors.values()):
            silent_since = sup.last_seen if sup.last_seen is not None else self.boot
            if not (sup.dead or sup.last_seen is None) or now - silent_since <= retention:
                continue
            if any(slot.node == sup.id for rec in self.topologies.values() for slot in rec.placement.values()):
                continue
            self._out.append(DeleteSupervisor(sup.id))
            del self.supervisors[sup.id]
            self._pushed_at.pop(sup.id, None)
            self._pushed_keys_of.pop(sup.id, None)
            self.counters["boards_pruned"] += 1
            log.info("supervisor %s forgotten after %.0f s of silence", sup.id, now - silent_since)

    def _pushed_keys(self, sup: SupervisorRecord) -> frozenset[tuple[str, int]]:
        """The (topology, port) of every worker last pushed to ``sup``: built once per push,
        not at every tick for every board."""
        cached = self._pushed_keys_of.get(sup.id)
        if cached is None or cached[0] is not sup.last_pushed:
            keys = frozenset((w.topology, w.port) for w in sup.last_pushed or [])
            cached = self._pushed_keys_of[sup.id] = (sup.last_pushed, keys)
        return cached[1]

    def _resend_unconfirmed(self, now: float) -> None:
        """Reconciliation: a send may be dropped (a full queue, a reconnecting link), so an
        assignment whose workers the supervisor's heartbeats (ones sent well after it) do not
        list is sent again, the same version, every ``RESEND_S`` until they do (applying it
        twice is harmless: it is declarative)."""
        for sup in sorted(self.supervisors.values(), key=lambda s: s.id):
            if sup.peer is None or sup.last_pushed is None or not sup.alive(self.silence_judged_at(now), self.timeout):
                continue
            if sup.reports.keys() == self._pushed_keys(sup):
                continue
            pushed_at = self._pushed_at.get(sup.id, now)
            heard_since = (sup.last_seen or pushed_at) - pushed_at  # a heartbeat came after the send
            if now - pushed_at >= RESEND_S and heard_since >= RESEND_S / 2:
                self._pushed_at[sup.id] = now
                self.counters["assignments_resent"] += 1
                self._out.append(
                    Send(sup.peer, M.SupervisorAssignment(sup.id, sup.version, sup.last_pushed, self.leadership.term))
                )
