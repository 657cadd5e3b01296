"""Live migration of a running topology's executors, as a state machine over worker reports.

A :class:`Migration` goes PAUSE -> RELEASE -> ACQUIRE -> done. Nimbus pushes a new
``SupervisorAssignment`` version at each step; :func:`declared` says what every worker of the
topology must look like in the current phase and :func:`advance` reads the supervisors'
``WorkerReport``s (and the clock passed in) to decide when to take the next step:

1. PAUSE — same executors and placement, every worker ``paused``. Next once every worker
   reports this version, ``paused``, ``queued == 0`` and every data link between them has
   delivered its last frame (the receiver's last (link, frame) from the sender equals what
   the sender handed over, see :class:`~squall.messages.DataLinks`), the same in two
   consecutive fresh looks (quiescence) — or after ``drain_s``. ``Migration.drain`` says
   which (``QUIESCENT`` or ``TIMED_OUT``) and ``drain_s`` how long it took.
2. RELEASE — moved executors leave their old workers; their placement is ``""`` (in
   transit). Next once the old owners reported a ``released`` snapshot of each — or after
   ``release_s`` (the missing ones move without state; noted).
3. ACQUIRE — the target placement; each snapshot is named in ``state_refs`` of its new
   worker (digest and size), and the new owner's supervisor fetches the bytes once
   (``GetSnapshot``, answered by :func:`answer_fetch`), so a re-pushed assignment carries no
   snapshot; new workers appear; still paused. A worker the target empties stays, with no
   executors and the target placement, so what it still holds for moved executors (items
   that reached it after its executors left: a drain that timed out) is forwarded to their
   new owners instead of dying with it. Done once every target worker reports this version
   and ``running``, and every emptied one this version and nothing queued — or after
   ``acquire_s`` (noted).
4. RESUME — Nimbus installs the target as the topology's placement with ``paused`` False;
   emptied workers stop.

Looking costs what changed, not what exists: :func:`advance` reads every worker's report (a
full look: Nimbus takes one at each tick) and leaves, in the migration's :class:`Progress`,
what the phase still waits for — the workers not yet paused and quiet (PAUSE) or running
(ACQUIRE), the links of the quiet ones not yet matched, the snapshots still missing (RELEASE).
:func:`observe` then takes the next step from one board's reports alone (Nimbus calls it on
each heartbeat), updating that progress instead of scanning every board: at 500 boards a
look at every heartbeat had made the migration check quadratic in boards. Both decide
alike: the same conditions, timeouts and notes, the same two fresh quiet looks for PAUSE.

Guarantees: workers that hold no moved executor keep their port and executors in every
phase; executors whose old node is gone (``lost``) are never waited for and are acquired
without state; :meth:`Migration.to_record` / :meth:`Migration.from_record` round-trip
everything but the in-memory quiescence probe, progress and send counts, and a migration loaded after a
restart restarts its phase's timer (``phase_at`` None) rather than timing out at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from squall import messages as M
from squall.nimbus.rebalance_policy import LoopConf
from squall.nimbus.records import RUNNING, Placement, Slot, TopologyRecord

PAUSE = "pause"
RELEASE = "release"
ACQUIRE = "acquire"
DONE = "done"

QUIESCENT = "quiescent"  # how a drain ended: every link's last frame arrived, nothing queued
TIMED_OUT = "timed out"  # ... or ``drain_s`` passed first

Where = tuple[str, int]  # (node, port)


@dataclass
class Migration:
    topology: str
    trigger: str
    event_id: int
    old: Placement
    target: Placement
    moved: tuple[int, ...]  # executors whose (node, port) changes
    lost: tuple[int, ...] = ()  # moved executors whose old node is gone: no snapshot to wait for
    phase: str = PAUSE
    started_at: float = 0.0  # PAUSE pushed
    phase_at: float | None = None  # when the phase began; None: at the next look
    states: dict[int, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    drain: str = ""  # how PAUSE ended: QUIESCENT or TIMED_OUT ("" while it lasts)
    drain_s: float | None = None  # how long PAUSE lasted
    probe: tuple[Any, ...] | None = None  # last quiescence sums and report times (not persisted)
    # What the phase still waits for, as of the last look (not persisted: a full look rebuilds it).
    progress: Progress | None = field(default=None, compare=False, repr=False)
    nodes: frozenset[str] = field(init=False, compare=False, repr=False)  # boards of old and target
    awaited: frozenset[int] = field(init=False, compare=False, repr=False)  # = awaited_snapshots()
    # Executor -> [snapshots sent, bytes sent] in answer to fetches (GetSnapshot): one send
    # each is the norm; more means a board fetched again (a restart, a lost reply). Not
    # persisted: a Nimbus restarted during ACQUIRE counts from zero.
    sent: dict[int, list[int]] = field(default_factory=dict, compare=False)
    # Executor -> the reference to its held snapshot, computed once (see ``ref``).
    _refs: dict[int, M.StateRef] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.old, self.target = Placement.of(self.old), Placement.of(self.target)
        self.nodes = frozenset(s.node for s in (*self.old.values(), *self.target.values()))
        self.awaited = frozenset(self.awaited_snapshots())

    # -- persistence -----------------------------------------------------------------------

    def to_record(self) -> dict[str, Any]:
        """Everything but ``states``, ``sent`` and ``probe``, as JSON-able data."""
        return {
            "topology": self.topology,
            "trigger": self.trigger,
            "event_id": self.event_id,
            "old": _slots_out(self.old),
            "target": _slots_out(self.target),
            "moved": list(self.moved),
            "lost": list(self.lost),
            "phase": self.phase,
            "started_at": self.started_at,
            "phase_at": self.phase_at,
            "notes": list(self.notes),
            "drain": self.drain,
            "drain_s": self.drain_s,
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any], states: Mapping[int, bytes], restarted: bool) -> Migration:
        return cls(
            topology=data["topology"],
            trigger=data["trigger"],
            event_id=int(data["event_id"]),
            old=_slots_in(data["old"]),
            target=_slots_in(data["target"]),
            moved=tuple(data["moved"]),
            lost=tuple(data["lost"]),
            phase=data["phase"],
            started_at=float(data["started_at"]),
            phase_at=None if restarted else data["phase_at"],
            states=dict(states),
            notes=list(data["notes"]),
            drain=str(data.get("drain", "")),  # absent from records saved before drains were told
            drain_s=data.get("drain_s"),
        )

    # -- what is waited for ----------------------------------------------------------------

    def awaited_snapshots(self) -> tuple[int, ...]:
        lost = set(self.lost)
        return tuple(ex for ex in self.moved if ex not in lost)

    def missing_snapshots(self) -> tuple[int, ...]:
        return tuple(ex for ex in self.awaited_snapshots() if ex not in self.states)

    def ref(self, ex: int) -> M.StateRef | None:
        """The reference an assignment gives for ``ex``'s held snapshot (None: none held);
        its digest is computed once per snapshot."""
        ref = self._refs.get(ex)
        if ref is None and ex in self.states:
            data = self.states[ex]
            ref = self._refs[ex] = M.StateRef(hashlib.sha256(data).hexdigest(), len(data))
        return ref

    def wants_snapshot(self, ex: int) -> bool:
        """Still waiting for executor ``ex``'s snapshot: awaited, not held yet, and the
        migration has not moved on past RELEASE (after that a missing one moves without state)."""
        return self.phase in (PAUSE, RELEASE) and ex in self.awaited and ex not in self.states


def _slots_out(placement: Mapping[int, Slot]) -> dict[str, list[Any]]:
    return {str(ex): [s.worker, s.node, s.port] for ex, s in sorted(placement.items())}


def _slots_in(data: Mapping[str, Any]) -> Placement:
    return Placement((int(ex), Slot(int(w), str(n), int(p))) for ex, (w, n, p) in data.items())


class Migrations(dict[str, Migration]):
    """topology -> its migration in progress (at most one each).

    :meth:`declared_by_node` is asked on every push (every tick); its result is cached per
    topology until the migration's phase, its snapshots, the record's version, activation or
    worker conf or a node's host change, so a tick during a migration of thousands of
    executors costs a key comparison, and an unchanged assignment is the same objects (the
    push's comparison with what a board last got is then an identity check).
    """

    def __init__(self) -> None:
        super().__init__()
        self._declared: dict[str, tuple[tuple[Any, ...], dict[str, list[M.WorkerAssignment]]]] = {}

    def reserved(self, except_topology: str = "") -> dict[str, set[int]]:
        """node -> ports held by migrating topologies (old and new workers): kept out of
        every other placement while they move."""
        out: dict[str, set[int]] = {}
        for name, mig in self.items():
            if name != except_topology:
                for s in [*mig.old.values(), *mig.target.values()]:
                    out.setdefault(s.node, set()).add(s.port)
        return out

    def declared_by_node(
        self, rec: TopologyRecord, host_of: Callable[[str], str]
    ) -> dict[str, list[M.WorkerAssignment]] | None:
        """node -> the (paused) workers of ``rec`` there while it migrates, one pass for every
        node; None when it is not migrating (or not running: a kill or restart ends it)."""
        mig = self.get(rec.name)
        if mig is None or rec.phase != RUNNING:
            self._declared.pop(rec.name, None)
            return None
        nodes = {s.node for s in (*mig.old.values(), *mig.target.values())}
        hosts = tuple(sorted((n, host_of(n)) for n in nodes))
        key = (id(mig), mig.phase, len(mig.states), rec.version, rec.workers_running_active, rec.worker_conf(), hosts)
        cached = self._declared.get(rec.name)
        if cached is not None and cached[0] == key:
            return cached[1]
        out: dict[str, list[M.WorkerAssignment]] = {}
        for (node, _port), wa in declared(mig, rec, host_of).items():
            out.setdefault(node, []).append(wa)
        self._declared[rec.name] = (key, out)
        return out

    def retain_declared(self, names: Iterable[str]) -> None:
        """Forget the cached assignments of topologies not in ``names`` (gone ones)."""
        keep = set(names)
        for name in [n for n in self._declared if n not in keep]:
            del self._declared[name]


def declared(mig: Migration, rec: TopologyRecord, host_of: Callable[[str], str]) -> dict[Where, M.WorkerAssignment]:
    """(node, port) -> the worker the topology must run there in ``mig``'s phase (all paused)."""
    in_transit: set[int] = set(mig.lost)
    if mig.phase == ACQUIRE:
        source, in_transit = mig.target, set()
    else:
        source = mig.old
        if mig.phase == RELEASE:
            in_transit |= set(mig.moved)
    where = {ex: "" if ex in in_transit else f"{host_of(s.node)}:{s.port}" for ex, s in sorted(source.items())}
    workers = source.workers()
    if mig.phase == ACQUIRE:
        for key in emptied(mig):  # kept, with nothing to run, to forward what they hold
            workers[key] = []
    out = {}
    for key, execs in sorted(workers.items()):
        mine = [ex for ex in execs if ex not in in_transit] if mig.phase == RELEASE else execs
        refs = {ex: ref for ex in mine if (ref := mig.ref(ex)) is not None} if mig.phase == ACQUIRE else {}
        out[key] = M.WorkerAssignment(
            topology=rec.name,
            port=key[1],
            executors=mine,
            placement=where,  # one map shared by every worker (callers never mutate it)
            active=rec.workers_running_active,
            assignment_version=rec.version,
            conf=rec.worker_conf(),
            paused=True,
            state_refs=refs,  # references only: the bytes are fetched once (answer_fetch)
        )
    return out


def emptied(mig: Migration) -> list[Where]:
    """The old workers the target does not keep, in (node, port) order: in ACQUIRE they run
    no executor and forward what they hold; they stop at RESUME."""
    kept = set(mig.target.worker_keys())
    return sorted(key for key in mig.old.worker_keys() if key not in kept)


def answer_fetch(migrations: Mapping[str, Migration], m: M.GetSnapshot) -> tuple[bytes | None, str]:
    """A supervisor's fetch of a snapshot an ACQUIRE assignment names: (its bytes, "") when
    the topology's migration is in ACQUIRE and holds that executor's snapshot with that
    digest, else (None, why). Counts what it hands out in the migration's ``sent``."""
    what = f"snapshot of executor {m.executor} of topology {m.topology!r}"
    mig = migrations.get(m.topology)
    if mig is None:
        return None, f"no {what}: the topology is not migrating (its migration ended or never began)"
    if mig.phase != ACQUIRE:
        return None, f"no {what}: its migration is in {mig.phase}, snapshots are handed out in {ACQUIRE}"
    ref = mig.ref(m.executor)
    if ref is None:
        return None, f"no {what}: this migration holds none (the executor does not move, or moves without state)"
    if ref.digest != m.digest:
        return None, f"no {what} with digest {m.digest[:16]!r}: the one held is {ref.digest[:16]!r}"
    count = mig.sent.setdefault(m.executor, [0, 0])
    count[0] += 1
    count[1] += ref.size
    return mig.states[m.executor], ""


@dataclass
class Progress:
    """What ``phase`` waits for at assignment ``version``, one worker at a time (see the
    module docstring). ``expected``: node -> the workers there whose reports the phase reads
    (the old workers in PAUSE and RELEASE, the target's in ACQUIRE; on boards alive at the
    full look that built it). ``waiting``: those whose latest report does not satisfy the
    phase yet. RELEASE keeps ``missing``, the awaited snapshots not yet collected.

    PAUSE keeps each quiet worker's :class:`~squall.messages.DataLinks` (and report time)
    and, updated from the two workers of each link alone, ``unmatched``: the (sender,
    receiver) links between quiet workers whose last frame handed over is not the receiver's
    last frame received; ``unknown``: links to an endpoint no expected worker has (a worker
    on a lost board, or one nobody expected); ``uncounted``: quiet workers that report no
    links (an older version) or an endpoint another quiet worker already reports.
    ``frames`` sums every quiet worker's frame numbers, so it moves whenever a frame is
    handed over or received; ``fresh`` counts the looks at which a quiet worker's report was
    a new one (its ``at`` changed)."""

    phase: str
    version: int
    expected: dict[str, tuple[Where, ...]] = field(default_factory=dict)
    waiting: set[Where] = field(default_factory=set)
    quiet: dict[Where, tuple[M.DataLinks | None, float]] = field(default_factory=dict)
    by_endpoint: dict[str, Where] = field(default_factory=dict)
    senders_to: dict[str, set[str]] = field(default_factory=dict)  # receiver -> quiet senders linked to it
    unmatched: set[tuple[str, str]] = field(default_factory=set)
    unknown: set[tuple[str, str]] = field(default_factory=set)
    uncounted: set[Where] = field(default_factory=set)
    frames: int = 0
    fresh: int = 0
    missing: int = 0
    partial: bool = False  # some old worker is on a lost board: links to unknown endpoints are not waited for
    emptied: frozenset[Where] = frozenset()  # ACQUIRE: old workers the target empties (see ``emptied``)

    def matches(self, mig: Migration, version: int) -> bool:
        return self.phase == mig.phase and self.version == version

    def see(self, key: Where, r: M.WorkerReport | None) -> bool:
        """Take ``key``'s latest report; True when it is a new quiet report (PAUSE)."""
        if self.phase == ACQUIRE:
            if key in self.emptied:  # done once it took the target placement and holds nothing
                if _reports_version(r, self.version) and r.metrics is not None and r.metrics.queued == 0:
                    self.waiting.discard(key)
                else:
                    self.waiting.add(key)
            elif _running(r, self.version):
                self.waiting.discard(key)
            else:
                self.waiting.add(key)
            return False
        old = self._forget(key)
        if not (_reports_version(r, self.version) and r.paused and r.metrics is not None and r.metrics.queued == 0):
            self.waiting.add(key)
            return False
        m = r.metrics
        self.waiting.discard(key)
        self._remember(key, m.links, m.at)
        return old is None or old[1] != m.at

    def signature(self) -> tuple[int, int]:
        """Changes whenever a quiet worker's links do (frames only grow on a link)."""
        return self.frames, len(self.quiet)

    def _remember(self, key: Where, links: M.DataLinks | None, at: float) -> None:
        if links is not None and self.by_endpoint.get(links.endpoint, key) != key:
            links = None  # another quiet worker names the same endpoint: neither's links can be told apart
        self.quiet[key] = (links, at)
        if links is None:
            self.uncounted.add(key)
            return
        me = links.endpoint
        self.by_endpoint[me] = key
        self.frames += sum(m.frame for m in links.sent.values()) + sum(m.frame for m in links.received.values())
        for receiver in links.sent:
            self.senders_to.setdefault(receiver, set()).add(me)
            self._check(me, receiver)
        for sender in self.senders_to.get(me, ()):
            self._check(sender, me)

    def _forget(self, key: Where) -> tuple[M.DataLinks | None, float] | None:
        old = self.quiet.pop(key, None)
        if old is None:
            return None
        links = old[0]
        self.uncounted.discard(key)
        if links is None:
            return old
        me = links.endpoint
        if self.by_endpoint.get(me) == key:
            del self.by_endpoint[me]
        self.frames -= sum(m.frame for m in links.sent.values()) + sum(m.frame for m in links.received.values())
        for receiver in links.sent:
            senders = self.senders_to.get(receiver)
            if senders is not None:
                senders.discard(me)
                if not senders:
                    del self.senders_to[receiver]
            self.unmatched.discard((me, receiver))
            self.unknown.discard((me, receiver))
        for sender in self.senders_to.get(me, ()):
            self.unmatched.discard((sender, me))
            self.unknown.add((sender, me))  # its receiver is not quiet now (or gone)
        return old

    def _check(self, sender: str, receiver: str) -> None:
        """Whether the link's last frame handed over is the receiver's last received."""
        pair = (sender, receiver)
        self.unmatched.discard(pair)
        self.unknown.discard(pair)
        s = self.quiet[self.by_endpoint[sender]][0]
        r_key = self.by_endpoint.get(receiver)
        if r_key is None:
            self.unknown.add(pair)
            return
        r = self.quiet[r_key][0]
        assert s is not None and r is not None  # by_endpoint holds only workers that report links
        if r.received.get(sender) != s.sent[receiver]:
            self.unmatched.add(pair)


def advance(
    mig: Migration,
    reports: Mapping[Where, M.WorkerReport],
    live: set[str],
    version: int,
    now: float,
    lc: LoopConf,
) -> bool:
    """A full look: collect snapshots from every report and decide whether ``mig`` takes its
    next step; True when it did (``mig.phase`` is then the new phase, ``DONE`` at the end).
    Leaves ``mig.progress`` for :func:`observe`."""
    if mig.phase_at is None:
        mig.phase_at = now
    if mig.phase == RELEASE:
        _collect(mig, reports)
    previous = mig.progress
    progress = mig.progress = Progress(mig.phase, version)
    keys: Iterable[Where] = mig.target.worker_keys() if mig.phase == ACQUIRE else mig.old.worker_keys()
    if mig.phase == ACQUIRE:
        gone = emptied(mig)
        progress.emptied = frozenset(gone)
        keys = [*keys, *gone]
    expected: dict[str, list[Where]] = {}
    for key in keys:
        if key[0] in live:
            expected.setdefault(key[0], []).append(key)
    progress.expected = {node: tuple(ks) for node, ks in expected.items()}
    progress.missing = len(mig.missing_snapshots()) if mig.phase == RELEASE else 0
    if mig.phase in (PAUSE, ACQUIRE):
        for ks in progress.expected.values():
            for key in ks:
                progress.see(key, reports.get(key))
    if mig.phase == PAUSE:
        # Links to an endpoint no expected worker has are not waited for when a board of the
        # old placement is gone (its workers' frames are lost with it); otherwise they are.
        progress.partial = bool(mig.lost) or any(key[0] not in live for key in keys)
    if mig.phase == PAUSE and previous is not None:
        # A look is fresh when a quiet worker's report differs from the last look's.
        same = previous.matches(mig, version) and _reported(previous) == _reported(progress)
        progress.fresh = previous.fresh + (not same)
    return _decide(mig, now, lc)


def observe(
    mig: Migration, node: str, reports: Mapping[Where, M.WorkerReport], version: int, now: float, lc: LoopConf
) -> bool:
    """:func:`advance` after a heartbeat of ``node``, reading only its reports (``reports``:
    its workers', by (node, port)); needs the progress of a full look at this phase and
    version (``mig.progress.matches``), which it updates."""
    progress = mig.progress
    assert progress is not None and progress.matches(mig, version), "observe() needs a full look first"
    if mig.phase == RELEASE:
        progress.missing -= _collect(mig, reports)
        return _decide(mig, now, lc)
    fresh = False
    for key in progress.expected.get(node, ()):
        fresh = progress.see(key, reports.get(key)) or fresh
    progress.fresh += fresh
    return _decide(mig, now, lc)


def _decide(mig: Migration, now: float, lc: LoopConf) -> bool:
    """Whether the phase is over, from ``mig.progress`` (its timeout included)."""
    progress = mig.progress
    assert progress is not None and mig.phase_at is not None
    waited = now - mig.phase_at
    if mig.phase == PAUSE:
        if _quiescent(mig, progress):
            mig.drain, mig.drain_s = QUIESCENT, waited
            return _next(mig, RELEASE if mig.awaited_snapshots() else ACQUIRE, now)
        if waited >= lc.drain_s:
            mig.notes.append(f"drain timed out after {waited:g} s; moved on with tuples in flight{_why_not(progress)}")
            mig.drain, mig.drain_s = TIMED_OUT, waited
            return _next(mig, RELEASE if mig.awaited_snapshots() else ACQUIRE, now)
        return False
    if mig.phase == RELEASE:
        if progress.missing <= 0:
            return _next(mig, ACQUIRE, now)
        if waited >= lc.release_s:
            missing = ", ".join(map(str, mig.missing_snapshots()))
            mig.notes.append(f"no snapshot of executor(s) {missing} after {waited:g} s; they move without state")
            return _next(mig, ACQUIRE, now)
        return False
    if mig.phase == ACQUIRE:
        if not progress.waiting:
            return _next(mig, DONE, now)
        if waited >= lc.acquire_s:
            slow = sorted(f"{n}:{p}" for n, p in progress.waiting if (n, p) not in progress.emptied)
            holding = sorted(f"{n}:{p}" for n, p in progress.waiting if (n, p) in progress.emptied)
            if slow:
                mig.notes.append(f"worker(s) {', '.join(slow)} not running after {waited:g} s; resumed anyway")
            if holding:
                mig.notes.append(
                    f"emptied worker(s) {', '.join(holding)} still held items after {waited:g} s;"
                    " stopped anyway (what they held is lost)"
                )
            return _next(mig, DONE, now)
    return False


def _next(mig: Migration, phase: str, now: float) -> bool:
    mig.phase, mig.phase_at, mig.probe, mig.progress = phase, now, None, None
    return True


def _reports_version(r: M.WorkerReport | None, version: int) -> TypeGuard[M.WorkerReport]:
    return r is not None and r.assignment_version >= version


def _running(r: M.WorkerReport | None, version: int) -> bool:
    return r is not None and r.assignment_version >= version and r.state == "running"


def snapshots_taken(migrations: Mapping[str, Migration], reports: Iterable[M.WorkerReport]) -> dict[int, list[int]]:
    """For a board's heartbeat: per slot port, the released snapshots in ``reports`` that Nimbus
    holds or no longer needs (no migration of that topology wants them). The board stops
    sending those (``HeartbeatAck.taken``); one Nimbus still waits for is sent again with
    the next heartbeat, so a lost heartbeat loses no state."""
    taken: dict[int, list[int]] = {}
    for r in reports:
        if not r.released:
            continue
        mig = migrations.get(r.topology)
        ids = sorted(ex for ex in r.released if mig is None or not mig.wants_snapshot(ex))
        if ids:
            taken[r.port] = ids
    return taken


def _collect(mig: Migration, reports: Mapping[Where, M.WorkerReport]) -> int:
    """Keep every awaited snapshot the executor's old owner has handed over in ``reports``
    (all of them, or one board's); how many were new. Reads the reporting workers' own
    executors, not every missing one."""
    awaited, old = mig.awaited, mig.old.executors_by_worker()
    got = 0
    for key, r in reports.items():
        if not r.released:
            continue
        for ex in old.get(key, ()):
            if ex in r.released and ex in awaited and ex not in mig.states:
                mig.states[ex] = bytes(r.released[ex])
                got += 1
    return got


def _reported(progress: Progress) -> dict[Where, float]:
    """The quiet workers and the time of each one's report."""
    return {key: at for key, (_, at) in progress.quiet.items()}


def _open_links(progress: Progress) -> set[tuple[str, str]]:
    """The links whose last frame is not known to have arrived."""
    return progress.unmatched if progress.partial else progress.unmatched | progress.unknown


def _quiescent(mig: Migration, progress: Progress) -> bool:
    """Every old worker (on a live board) paused at the version with nothing queued, and the
    last frame of every data link between them received, the same in two consecutive fresh
    looks. Links from or to a worker on a lost board are not waited for: its frames are gone
    with it. A worker that reports no links (an older version) keeps the drain to its timeout."""
    if progress.waiting or progress.uncounted or _open_links(progress):
        mig.probe = None
        return False
    sums = progress.signature()
    previous, mig.probe = mig.probe, (sums, progress.fresh)
    if previous is None:
        return False
    if previous[1] == progress.fresh:  # nothing new reported since the last look
        mig.probe = previous
        return False
    return previous[0] == sums


def _why_not(progress: Progress) -> str:
    """What the drain still waited for, for the timeout's note ("" when nothing is known)."""
    parts = []
    if progress.waiting:
        parts.append(f"worker(s) not paused and empty: {_few(f'{n}:{p}' for n, p in progress.waiting)}")
    if progress.uncounted:
        older = _few(f"{n}:{p}" for n, p in progress.uncounted)
        parts.append(f"worker(s) with no usable data links (an older version, or an endpoint named twice): {older}")
    links = _open_links(progress)
    if links:
        parts.append(f"link(s) whose last frame has not arrived: {_few(f'{s}->{r}' for s, r in links)}")
    return f" ({'; '.join(parts)})" if parts else ""


def _few(names: Iterable[str], most: int = 5) -> str:
    """The first ``most`` of ``names`` in order, and how many more."""
    ordered = sorted(names)
    more = f" and {len(ordered) - most} more" if len(ordered) > most else ""
    return ", ".join(ordered[:most]) + more
