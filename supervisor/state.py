"""The supervisor's decisions, as a state machine: events in, commands out.

The daemon (``squall.supervisor.daemon``) does the I/O — sockets, processes, files — and
feeds this class what happened; the methods return the commands to carry out. No sockets, no
processes, no clock reads here (time is passed in), so tests feed events and compare commands.

Guarantees:

* the set of workers converges on Nimbus's latest declarative ``SupervisorAssignment``: a
  worker not in it is stopped; a worker whose port now runs another topology, or whose
  topology conf changed (a parallelism rebalance changes the spec digest and the executor
  ids in it; a worker's spec and conf are fixed for its life) is restarted, and a changed
  spec digest has the code and spec fetched again;
  any other change — placement, activation, pause, the executor set (with states of
  executors moving in) — is sent to the running worker as one ``WorkerUpdate`` (live
  migration: only moved executors move, the process keeps running);
* each report to Nimbus carries what the worker last confirmed: its assignment version,
  ``paused``, and the snapshots it ``released``; a worker heartbeat that brings a new
  version, pause state or released snapshots is forwarded to Nimbus at once, not at the
  next tick, so a migration step is not held up by the heartbeat period;
* a worker starts only once its topology's code is on the board (fetched once per topology);
* a migrating executor's snapshot, which the assignment names by reference, is fetched once,
  one fetch in flight at a time, and kept while assignments name it
  (:mod:`squall.supervisor.arriving_states`); a worker that takes over executors is updated
  or started only once their snapshots are here (or known to be unavailable), with their
  bytes in ``states``, so no arriving executor starts empty while its state is on the way;
* a worker that dies unasked is restarted at once, then with exponential backoff while it
  keeps dying young; after ``MAX_FAST_FAILURES`` deaths within ``FAST_FAILURE_S`` of their
  start it is marked failed and left stopped (no crash loop), and the failure is reported;
* a heartbeat goes to Nimbus every ``heartbeat_s`` once registered, and registration is
  retried every ``heartbeat_s`` until Nimbus accepts it;
* fencing: assignments are ordered by (term, version). One of a higher term than any
  accepted is applied whatever its version (a new Nimbus, or one restarted on an empty
  data dir, numbers from 1 again); one of an older term is refused, counted in
  ``refused_assignments`` and logged (a warning once per stale term); registrations and
  heartbeats report the highest term accepted, so a Nimbus that is behind starts a newer one;
* a board that hears nothing from its Nimbus (no reply, ack or assignment) for
  ``nimbus_timeout_s`` looks for another: one ``ReconnectNimbus`` per silent period, after
  which it registers again (not with a Nimbus without terms, which sends no acks). Its
  workers are not touched: a change of Nimbus moves no executor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from squall.config import SPEC_DIGEST  # set by Nimbus in every worker's conf
from squall.messages import (
    BoardMetrics,
    Heartbeat,
    HeartbeatAck,
    RegisterReply,
    RegisterSupervisor,
    Reply,
    SupervisorAssignment,
    WorkerAssignment,
    WorkerHeartbeat,
    WorkerMetrics,
    WorkerReport,
    WorkerUpdate,
)
from squall.supervisor.arriving_states import ArrivingStates, FetchSnapshot, Key, refs_of

FAST_FAILURE_S = 10.0  # a worker that dies younger than this counts as a fast failure
MAX_FAST_FAILURES = 5
MAX_BACKOFF_S = 8.0
# How long a board waits without a word from its Nimbus before it looks for another. Below
# Nimbus's own supervisor timeout (5 s) minus a heartbeat, so a board re-attaches to a Nimbus
# restarted elsewhere before that Nimbus declares it dead and moves its workers.
NIMBUS_TIMEOUT_KEY = "supervisor.nimbus.timeout.secs"
DEFAULT_NIMBUS_TIMEOUT_S = 3.0

log = logging.getLogger("squall.supervisor")


# -- commands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SendNimbus:
    msg: object


@dataclass(frozen=True)
class FetchTopology:
    topology: str


@dataclass(frozen=True)
class StartWorker:
    assignment: WorkerAssignment


@dataclass(frozen=True)
class StopWorker:
    port: int


@dataclass(frozen=True)
class UpdateWorker:
    port: int
    update: WorkerUpdate


@dataclass(frozen=True)
class ReconnectNimbus:
    """Nimbus has been silent for the timeout: connect to the next address (or discover
    again); registration follows on the next tick."""

    silent_s: float
    attempt: int = 1  # reconnects since Nimbus was last heard (1: the first)


Command = SendNimbus | FetchTopology | FetchSnapshot | StartWorker | StopWorker | UpdateWorker | ReconnectNimbus


@dataclass
class WorkerSlot:
    """What the supervisor knows of the worker on one port."""

    assignment: WorkerAssignment
    pid: int = 0
    state: str = "starting"  # starting | running | failed
    started_at: float = 0.0
    restarts: int = 0
    fast_failures: int = 0
    restart_at: float | None = None  # when a dead worker is due to start again
    metrics: WorkerMetrics | None = None
    error: str = ""
    alive: bool = False  # a process exists for this slot
    confirmed_version: int = 0  # the assignment version of the worker's latest heartbeat
    paused: bool = False
    released: dict[int, bytes] = field(default_factory=dict)
    # Of ``released``: the snapshots Nimbus acknowledged (HeartbeatAck.taken) for heartbeats
    # from ``released_seq`` on; the reports leave them out. Cleared with a new ``released``
    # and on every registration (a new Nimbus may not hold them).
    taken: set[int] = field(default_factory=set)
    released_seq: int = 0


@dataclass
class SupervisorState:
    registration: RegisterSupervisor
    heartbeat_s: float = 1.0
    registered: bool = False
    next_register_at: float = 0.0
    registrations_sent: int = 0  # requests sent, accepted or not: a board that tries is seen trying
    next_heartbeat_at: float = 0.0
    seq: int = 0
    assignment_version: int = -1
    slots: dict[int, WorkerSlot] = field(default_factory=dict)
    ready_topologies: set[str] = field(default_factory=set)
    fetching: set[str] = field(default_factory=set)
    rss_bytes: int = 0
    # Reads the board's CPU and memory for each heartbeat (the daemon sets a BoardReader's).
    read_board: Callable[[], BoardMetrics | None] | None = None
    spec_digests: dict[str, object] = field(default_factory=dict)  # topology -> digest fetched
    term: int = 0  # the highest Nimbus term an assignment was accepted from (fencing)
    refused_assignments: int = 0  # assignments of an older term, refused
    last_refused_term: int = -1  # warned about once; its resends are only counted
    nimbus_timeout_s: float | None = None  # None: never look elsewhere (the daemon sets it)
    last_heard_at: float | None = None  # when Nimbus last sent anything (None: not yet)
    reconnects: int = 0
    silent_attempts: int = 0  # reconnects since Nimbus was last heard
    # False after a registration answered by a Nimbus without terms: it sends no heartbeat
    # acks, so its silence proves nothing (the board stays, as boards did before).
    nimbus_acks: bool = True
    # Snapshots of executors migrating onto this board, fetched once each (arriving_states).
    snapshots: ArrivingStates = field(default_factory=ArrivingStates)

    @property
    def supervisor_id(self) -> str:
        return self.registration.supervisor_id

    # -- nimbus ---------------------------------------------------------------------------

    def on_nimbus_heard(self, now: float, term: int | None = None) -> None:
        """A valid frame from Nimbus (of ``term``, when it states one): it is alive (see
        ``tick``). A Nimbus of an older term is not: its acks must not keep the board from
        looking for the current leader."""
        if term is not None and 0 < term < self.term:
            return
        self.last_heard_at = now
        self.silent_attempts = 0

    def on_heartbeat_ack(self, ack: HeartbeatAck, now: float) -> list[Command]:
        self.on_nimbus_heard(now, ack.term)
        if self.term and 0 < ack.term < self.term:
            return []  # an older Nimbus's word on snapshots counts no more than its liveness
        for port, ids in ack.taken.items():
            slot = self.slots.get(port)
            # An ack of a heartbeat sent before these snapshots were released speaks of
            # earlier ones (an executor can move out of one port twice).
            if slot is not None and ack.seq >= slot.released_seq:
                slot.taken.update(ex for ex in ids if ex in slot.released)
        return []

    def on_register_reply(self, reply: RegisterReply, now: float) -> list[Command]:
        self.on_nimbus_heard(now, reply.term)
        if reply.ok:
            self.registered = True
            for slot in self.slots.values():
                slot.taken.clear()  # this Nimbus may not hold what the last one took
            self.nimbus_acks = reply.term > 0
            if reply.term == 0:
                # A Nimbus without terms: a new registration may start a new numbering (one
                # that forgot this board), so what it pushes next is the truth. With terms,
                # a Nimbus that is behind starts a newer term instead (see on_assignment).
                self.assignment_version = -1
            self.heartbeat_s = reply.heartbeat_s or self.heartbeat_s
            self.next_heartbeat_at = now
            return []
        # Refused or forgotten (Nimbus restarted): register again at the next tick.
        self.registered = False
        self.next_register_at = now + self.heartbeat_s
        return []

    def on_assignment(self, msg: SupervisorAssignment, now: float) -> list[Command]:
        self.on_nimbus_heard(now, msg.term)
        if msg.supervisor_id != self.supervisor_id:
            return []
        if msg.term < self.term:
            self.refused_assignments += 1
            level = logging.WARNING if msg.term != self.last_refused_term else logging.DEBUG
            self.last_refused_term = msg.term
            log.log(
                level,
                "refused assignment version %d of term %d: this board follows term %d (a deposed or "
                "stale Nimbus; %d refused so far)",
                msg.version,
                msg.term,
                self.term,
                self.refused_assignments,
            )
            return []
        if msg.term == self.term and msg.version < self.assignment_version:
            return []  # older than what we run (a resend crossed a newer one)
        if msg.term > self.term and self.term:
            log.info(
                "Nimbus term %d replaces term %d: its assignment version %d is the truth",
                msg.term,
                self.term,
                msg.version,
            )
        self.term = msg.term
        self.assignment_version = msg.version
        desired = {w.port: w for w in msg.workers if w.port in self.registration.ports}
        cmds: list[Command] = []
        for port in sorted(set(self.slots) - set(desired)):
            if self.slots.pop(port).alive:
                cmds.append(StopWorker(port))
        wanted_topologies = {w.topology for w in desired.values()}
        self.ready_topologies &= wanted_topologies  # a resubmitted topology is fetched anew
        for w in desired.values():  # a new spec (parallelism rebalance): fetch it anew
            if self.spec_digests.setdefault(w.topology, w.conf.get(SPEC_DIGEST)) != w.conf.get(SPEC_DIGEST):
                self.spec_digests[w.topology] = w.conf.get(SPEC_DIGEST)
                self.ready_topologies.discard(w.topology)
        cmds.extend(self.snapshots.want(refs_of(desired.values()), now))
        for port, want in sorted(desired.items()):
            slot = self.slots.get(port)
            if slot is not None and slot.assignment.topology == want.topology and slot.assignment.conf == want.conf:
                changed = _needs_update(slot.assignment, want)
                slot.assignment = want
                if changed and slot.alive:
                    cmds.extend(self._update_worker(port, slot))
                continue
            if slot is not None and slot.alive:
                cmds.append(StopWorker(port))
            self.slots[port] = WorkerSlot(assignment=want, restart_at=now)
        for topology in sorted(wanted_topologies - self.ready_topologies - self.fetching):
            self.fetching.add(topology)
            cmds.append(FetchTopology(topology))
        cmds.extend(self._due_starts(now))
        return cmds

    def on_snapshot_reply(self, key: Key, reply: Reply, now: float) -> list[Command]:
        """Nimbus answered the fetch of snapshot ``key``: workers that waited for it are
        updated (or started) once everything they take over is here."""
        self.on_nimbus_heard(now)
        settles = key in self.snapshots.wanted  # else a late answer (to a retry), or no longer named
        state = reply.data.get("state") if reply.ok and isinstance(reply.data, dict) else None
        if isinstance(state, bytes):
            cmds: list[Command] = list(self.snapshots.arrived(key, state, now))
        else:
            why = reply.error or "a reply without the snapshot's bytes"
            cmds = list(self.snapshots.refused(key, f"Nimbus: {why}", now))
        if not settles:
            return cmds
        for port, slot in sorted(self.slots.items()):
            behind = slot.confirmed_version < slot.assignment.assignment_version
            if slot.alive and behind and key[0] == slot.assignment.topology and key[1] in slot.assignment.state_refs:
                cmds.extend(self._update_worker(port, slot))
        cmds.extend(self._due_starts(now))
        return cmds

    def on_topology_ready(self, topology: str, now: float) -> list[Command]:
        self.fetching.discard(topology)
        self.ready_topologies.add(topology)
        return self._due_starts(now)

    def on_topology_unavailable(self, topology: str, error: str, now: float) -> list[Command]:
        """The code could not be fetched or unpacked: its workers fail with the reason."""
        self.fetching.discard(topology)
        for slot in self.slots.values():
            if slot.assignment.topology == topology and not slot.alive:
                slot.state, slot.error, slot.restart_at = "failed", error, None
        return []

    # -- workers --------------------------------------------------------------------------

    def on_worker_started(self, port: int, pid: int, now: float) -> list[Command]:
        slot = self.slots.get(port)
        if slot is not None:
            slot.pid, slot.alive, slot.started_at, slot.state = pid, True, now, "starting"
        return []

    def on_worker_exited(self, port: int, returncode: int | None, now: float, reason: str = "") -> list[Command]:
        """A worker ended unasked; ``reason`` is what it wrote about why it could not start
        (an import error of the topology's code, ...), carried in the report's ``error``."""
        slot = self.slots.get(port)
        if slot is None or not slot.alive:
            return []
        slot.alive = False
        slot.pid = 0
        slot.restarts += 1
        slot.error = f"worker exited with code {returncode}" + (f": {reason.strip()}" if reason.strip() else "")
        if now - slot.started_at < FAST_FAILURE_S:
            slot.fast_failures += 1
        else:
            slot.fast_failures = 0
        if slot.fast_failures >= MAX_FAST_FAILURES:
            slot.state, slot.restart_at = "failed", None
            slot.error += f"; gave up after {slot.fast_failures} quick failures"
            return []
        # First restart at once (a killed worker is back within the heartbeat), then back off.
        delay = 0.0 if slot.fast_failures <= 1 else min(MAX_BACKOFF_S, 0.5 * 2 ** (slot.fast_failures - 2))
        slot.state = "starting"
        slot.restart_at = now + delay
        return self._due_starts(now)

    def on_worker_heartbeat(self, hb: WorkerHeartbeat, now: float) -> list[Command]:
        slot = self.slots.get(hb.port)
        if slot is None or hb.topology != slot.assignment.topology:
            return []
        news = (
            slot.metrics is None
            or hb.assignment_version != slot.confirmed_version
            or hb.paused != slot.paused
            or hb.released.keys() != slot.released.keys()
        )
        slot.metrics = hb.metrics
        if hb.assignment_version != slot.confirmed_version or hb.released.keys() != slot.released.keys():
            slot.taken.clear()  # released anew (at most once per executor and version)
            slot.released_seq = self.seq + 1  # the next heartbeat is the first to carry them
        slot.confirmed_version, slot.paused, slot.released = hb.assignment_version, hb.paused, dict(hb.released)
        cmds: list[Command] = []
        if slot.alive:
            slot.state = "running"
        if hb.assignment_version < slot.assignment.assignment_version and slot.alive:
            cmds.extend(self._update_worker(hb.port, slot))
        if news and self.registered:
            cmds.append(self._heartbeat(now))
        return cmds

    # -- time -------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Command]:
        cmds: list[Command] = []
        if self.last_heard_at is None:
            self.last_heard_at = now  # the silence is counted from the first tick
        silent_s = now - self.last_heard_at
        if self.nimbus_timeout_s is not None and self.nimbus_acks and silent_s >= self.nimbus_timeout_s:
            # Look elsewhere and register there; workers keep running meanwhile.
            self.last_heard_at = now
            self.reconnects += 1
            self.silent_attempts += 1
            self.registered = False
            self.next_register_at = now
            cmds.append(ReconnectNimbus(silent_s, self.silent_attempts))
        if not self.registered:
            if now >= self.next_register_at:
                self.next_register_at = now + self.heartbeat_s
                self.registrations_sent += 1
                cmds.append(SendNimbus(replace(self.registration, term=self.term)))
        elif now >= self.next_heartbeat_at:
            cmds.append(self._heartbeat(now))
        cmds.extend(self.snapshots.tick(now))
        cmds.extend(self._due_starts(now))
        return cmds

    def _heartbeat(self, now: float) -> SendNimbus:
        self.next_heartbeat_at = now + self.heartbeat_s
        self.seq += 1
        board = self.read_board() if self.read_board is not None else None
        return SendNimbus(Heartbeat(self.supervisor_id, self.seq, self.reports(), self.rss_bytes, board, self.term))

    def reports(self) -> list[WorkerReport]:
        return [
            WorkerReport(
                topology=s.assignment.topology,
                port=port,
                pid=s.pid,
                state=s.state,
                assignment_version=s.confirmed_version,
                restarts=s.restarts,
                metrics=s.metrics,
                error=s.error,
                paused=s.paused,
                released={ex: snap for ex, snap in s.released.items() if ex not in s.taken},
            )
            for port, s in sorted(self.slots.items())
        ]

    def _due_starts(self, now: float) -> list[Command]:
        cmds: list[Command] = []
        for _port, slot in sorted(self.slots.items()):
            if slot.alive or slot.restart_at is None or now < slot.restart_at:
                continue
            if slot.assignment.topology not in self.ready_topologies:
                continue
            launch = self.snapshots.resolve(slot.assignment)
            if launch is None:
                continue  # a snapshot it takes over is on its way: started when it is here
            slot.restart_at = None
            slot.alive = True  # until the daemon reports the exit
            slot.started_at = now
            slot.state = "starting"
            slot.metrics = None
            slot.confirmed_version, slot.paused, slot.released = 0, False, {}
            slot.taken.clear()
            cmds.append(StartWorker(launch))
        return cmds

    def _update_worker(self, port: int, slot: WorkerSlot) -> list[Command]:
        """The live update of ``slot``'s worker to its assignment, with the snapshots it
        takes over; none while one is still on its way (sent when it arrives)."""
        resolved = self.snapshots.resolve(slot.assignment)
        return [] if resolved is None else [UpdateWorker(port, _update(resolved))]


def _needs_update(a: WorkerAssignment, b: WorkerAssignment) -> bool:
    return (
        a.placement != b.placement
        or a.active != b.active
        or a.assignment_version != b.assignment_version
        or sorted(a.executors) != sorted(b.executors)
        or a.paused != b.paused
        or a.states != b.states
        or a.state_refs != b.state_refs
    )


def _update(a: WorkerAssignment) -> WorkerUpdate:
    """The whole (resolved) assignment as a live update. The executor set is always sent, so an update
    re-sent to a worker that fell behind is idempotent: the worker moves only the
    difference and ignores states of executors it already runs."""
    return WorkerUpdate(
        placement=a.placement,
        active=a.active,
        assignment_version=a.assignment_version,
        executors=list(a.executors),
        paused=a.paused,
        states=dict(a.states),
    )
