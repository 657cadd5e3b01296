"""The worker process: one slot (port) of one node, running its share of a topology's executors.

Started by its supervisor as ``python -m squall.supervisor.worker LAUNCH_FILE``, where the file
holds ``squall.wire.encode(WorkerLaunch(...))``. The worker

* binds a PULL on ``tcp://{host}:{port}`` for tuple batches from other workers and sends its
  own over PUSH sockets, batched per destination worker (``squall.supervisor.transfer``);
  the sockets are ``squall.supervisor.worker_io``'s, the only module of the worker that
  imports ZeroMQ, so ``Worker`` also runs on a fake ``WorkerIO`` (tests without sockets);
* connects a DEALER (identity ``str(port)``) to its supervisor, sends ``WorkerHeartbeat`` with
  cumulative metrics every ``squall.worker.heartbeat.secs`` — and at once after applying an
  update — and applies ``WorkerUpdate`` live: placement re-routes remote tasks; ``active``
  toggles the spouts; ``paused`` holds them for a migration; ``executors`` moves executors
  in (restoring ``states``) and out (their snapshots go up in ``released``). What to do is
  decided by ``squall.supervisor.worker_plan.plan`` (events in, commands out; the order and
  guarantees of an update are in its docstring); ``Worker.handle`` carries it out;
* runs everything from one thread: receive a bounded number of frames, one engine round,
  flush due batches (all of them when the round leaves nothing runnable: no queued item, no
  spout with more to emit, no frame waiting), heartbeat when due, no frame waits and no
  tree of a local spout is in flight (the last for ``HEARTBEAT_TREES_WAIT_S`` at most; all
  of it at most ``HEARTBEAT_DEFER_MAX_S`` late); then, when nothing is
  runnable, it blocks on its sockets
  (``select`` on their descriptors) until the next thing is due — a spout's next emission (``Spout.next_tuple_due``,
  else 1 ms), an engine timer with work, a batch's flush, the heartbeat, the parent check —
  so a frame arriving wakes it at once and an idle worker costs (almost) no CPU; while it
  expects a frame (a tree of a local spout in flight, or frames arriving closer together
  than ``squall.worker.spin.us``) it first polls the PULL without blocking for up to that
  long (0, the default, never), counted in ``spins`` and ``spin_hits``;
* measures its CPU: the process's (every thread), and the data plane's (encode and send,
  receive and decode) apart from the executors', plus frames and bytes each way — all in
  the heartbeat's ``WorkerMetrics``;
* never dies of bad input: a malformed frame or item, or a message it does not expect, is
  counted (``bad_frames`` in the heartbeat), logged once and dropped;
* exits 0 within about a second on SIGTERM/SIGINT (spouts deactivated, local queues drained
  briefly, batches flushed, sockets closed) and exits by itself when its supervisor dies
  (its parent pid changes), so no orphan keeps a slot.

Exit codes: 0 stopped, 2 bad launch file, 3 could not start (port taken, bad spec),
``EXIT_CODE_ERROR`` (4) the topology's code does not load (import error, missing class). On
3 and 4 the reason is also written to ``LAUNCH_FILE`` with the suffix ``.error``, where the
supervisor reads it for its report to Nimbus.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from squall import config, wire
from squall.messages import DataLinks, LinkMark, WorkerHeartbeat, WorkerLaunch
from squall.supervisor import worker_plan as wp
from squall.supervisor.runtime.engine import Engine, acker_count
from squall.supervisor.runtime.layout import source_of
from squall.supervisor.runtime.stats import CpuMeter
from squall.supervisor.transfer import (
    DEFAULT_BACKLOG_FRAMES,
    DEFAULT_BATCH_SIZE,
    DEFAULT_FLUSH_MS,
    DEFAULT_HOLD_LIMIT,
    Outbox,
    TupleCodec,
)
from squall.supervisor.worker_metrics import OtherThreadsCpu, TransferCounts, task_to_executor, worker_metrics
from squall.topology.loader import resolve_class
from squall.topology.spec import ACKER_COMPONENT, TopologySpec

log = logging.getLogger("squall.worker")

RECV_FRAMES_PER_ROUND = 64  # bounds one round's intake so spouts and timers still get a turn
# Intake in items: a round takes at most a bolt batch (``squall.bolt.batch``) of items off the
# PULL, and none while a local inbox holds more than INTAKE_BATCHES of them. A round drains at
# most one batch per executor, so more would only wait as Python objects (about 400 bytes an
# item) instead of as frame bytes in ZeroMQ's queues (about 30): taking 64 frames of 256 at a
# time held 13,000-25,000 items in the receiving worker of the throughput run (36 MB of RSS).
INTAKE_BATCHES = 2
PARENT_CHECK_S = 0.2  # also the longest an idle worker blocks
# A due heartbeat (about 0.1-0.5 ms of Python and /proc reads) waits for a round that leaves
# nothing runnable with no frame waiting, so it does not hold up a tuple the worker has in
# hand; a worker that is never idle sends it this late at most.
HEARTBEAT_DEFER_MAX_S = 0.1
# It also waits for a moment when no tree of a local spout is in flight, this long at most:
# a spout whose trees are always in flight (a high rate, long trees) then beats at the first
# quiet round after it, as it did before, rather than at the bound whatever is waiting.
HEARTBEAT_TREES_WAIT_S = 0.02
STOP_DRAIN_S = 0.3
EXIT_CODE_ERROR = 4  # the topology's code does not load: retrying will not help
ERROR_SUFFIX = ".error"  # next to the launch file: why the worker could not start
ERROR_CHARS = 2000


class CodeLoadError(Exception):
    """A component class of the topology could not be imported or resolved."""


class WorkerIO(Protocol):
    """The worker's sockets (``squall.supervisor.worker_io.WorkerSockets``; a test's fake)."""

    frames_received: int
    bytes_received: int

    def send(self, endpoint: str, frame: bytes) -> bool: ...
    def keep(self, endpoints: set[str]) -> None: ...
    def data_waiting(self) -> bool: ...
    def receive_data(
        self, deliver: Callable[[bytes], tuple[int, int]], limit: int, max_items: int
    ) -> tuple[int, int]: ...
    def receive_control(self) -> list[bytes]: ...
    def send_control(self, frame: bytes) -> None: ...
    def wait(self, seconds: float) -> None: ...
    def close(self) -> None: ...


class ComponentClasses(dict):
    """Component name -> user class, resolved from the spec on first use, so executors that
    move into a worker later find their class without the worker importing every
    component's code at start."""

    def __init__(self, spec: TopologySpec, resolve: Callable[[str], type]) -> None:
        super().__init__()
        self._spec = spec
        self._resolve = resolve

    def __missing__(self, component: str) -> type:
        cls = self[component] = self._resolve(self._spec.component(component).class_ref)
        return cls


class _WorkerEngine(Engine):
    """The engine, plus one more reason for spouts to pause: a destination worker that is
    refusing frames (otherwise the spouts would fill the transfer backlog and drop)."""

    congested: Callable[[], bool] = staticmethod(lambda: False)

    def backpressured(self) -> bool:
        return self.congested() or super().backpressured()

    def inboxes_full(self) -> bool:
        """A local inbox holds more than ``INTAKE_BATCHES`` bolt batches (or is over the
        backpressure mark, if lower): stop taking frames, so they wait in ZeroMQ's queues as
        bytes and the senders feel the pressure. Congestion is deliberately not a reason:
        two workers refusing each other's frames while neither reads would deadlock."""
        mark = min(self.backpressure_high, INTAKE_BATCHES * self.drain_limit)
        for box in self._inboxes:
            if len(box) > mark:
                return True
        return False


def open_worker(launch: WorkerLaunch, clock: Callable[[], float] = time.monotonic, context: Any = None) -> Worker:
    """A worker on real sockets (``context``: see ``WorkerSockets``)."""
    # Imported here, not at the top: the runtime itself (tests on a fake WorkerIO) loads no ZeroMQ.
    from squall.supervisor.worker_io import DEFAULT_HWM, WorkerSockets

    conf = {**TopologySpec.from_dict(launch.spec).config, **launch.assignment.conf}  # as Worker reads it
    hwm = int(conf.get(config.TRANSFER_HWM, DEFAULT_HWM))
    io = WorkerSockets(launch.host, launch.port, launch.supervisor_endpoint, launch.keys_dir, hwm, context)
    try:
        return Worker(launch, io, clock)
    except BaseException:
        io.close()
        raise


class Worker:
    """The worker's runtime — engine, outbox, codec — and its loop, over sockets it is given
    (``io``). The decisions are ``worker_plan.plan``'s; this class carries its commands out
    (``handle``), so it can run on a fake ``io`` in tests, without ZeroMQ."""

    def __init__(self, launch: WorkerLaunch, io: WorkerIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.launch = launch
        self.io = io
        self.clock = clock
        a = launch.assignment
        self.assignment_version = a.assignment_version
        self.active = a.active
        self.released: dict[int, bytes] = {}  # snapshots of executors moved out at this version
        if launch.bundle_dir and launch.bundle_dir not in sys.path:
            sys.path.insert(0, launch.bundle_dir)
        self.spec = TopologySpec.from_dict(launch.spec)
        self.conf: dict[str, Any] = {**self.spec.config, **a.conf}
        self.all_executors = tuple(self.spec.executors_with_ackers(acker_count(self.spec, self.conf)))
        known = {e.id for e in self.all_executors}
        local_ids = frozenset(a.executors) & known
        local = [e for e in self.all_executors if e.id in local_ids]
        # Resolved now for the executors run from the start (an import error fails the
        # launch), later for executors that move in.
        classes = ComponentClasses(self.spec, resolve_class)
        for e in local:
            if e.component != ACKER_COMPONENT:
                try:
                    classes[e.component]
                except Exception as exc:  # whatever the user's module raises on import
                    raise CodeLoadError(f"component {e.component!r}: {type(exc).__name__}: {exc}") from exc
        self.task_executor = task_to_executor(self.all_executors)
        self.me = f"{launch.host}:{launch.port}"
        self.bad_frames = 0
        self.loops = 0  # iterations of the loop: an idle worker's should be few
        self.beats_deferred = 0  # heartbeats that waited for a quiet round (work or a frame was waiting)
        # Encode+send and receive+decode, wherever they happen (executors leave it out of theirs),
        # plus libzmq's I/O thread, which moves the frames (set again when the loop starts).
        self.transfer_meter = CpuMeter()
        self.io_threads = OtherThreadsCpu(threading.get_native_id())
        self._logged_bad: set[str] = set()
        self._logged_encode: set[tuple[int, str]] = set()
        self.stopping = False

        self.outbox = Outbox(
            io.send,
            clock,
            batch_size=int(self.conf.get(config.TRANSFER_BATCH_SIZE, DEFAULT_BATCH_SIZE)),
            flush_ms=float(self.conf.get(config.TRANSFER_FLUSH_MS, DEFAULT_FLUSH_MS)),
            backlog_frames=int(self.conf.get(config.TRANSFER_BACKLOG_FRAMES, DEFAULT_BACKLOG_FRAMES)),
            on_error=self._encode_error,
            hold_limit=int(self.conf.get(config.TRANSFER_HOLD_ITEMS, DEFAULT_HOLD_LIMIT)),
            meter=self.transfer_meter,
            sender=self.me,
        )
        self.outbox.place(wp.routes_for(self.all_executors, local_ids, a.placement))
        put = self.outbox.put
        self.engine = _WorkerEngine(
            self.spec,
            classes,
            self.conf,
            executor_ids=local_ids,
            remote_sink=lambda _task: put,
            remote_run_sink=lambda _task: self.outbox.put_run,
            remote_row_sink=lambda _task: self.outbox.put_row,
            clock=clock,
            states=a.states,
        )
        self.engine.paused = a.paused
        self.engine.congested = self.outbox.congested
        self.engine.wiring.transfer_meter = self.transfer_meter
        self.codec = TupleCodec(
            self.spec,
            self.all_executors,
            self.engine.wiring.local_tasks,
            self.engine.wiring.sinks,
            forward=put,
            on_refused=self._frame_refused,
            run_sinks=self.engine.wiring.inbox_run_sinks,
        )
        self.heartbeat_s = float(self.conf.get(config.WORKER_HEARTBEAT, config.DEFAULT_WORKER_HEARTBEAT_S))
        self.spin_s = spin_seconds(self.conf)
        self.spins = 0  # waits that began by polling without blocking (a frame was expected)
        self.spin_hits = 0  # of those, the ones a data frame ended before their time was up
        self._last_data_at = -1e18  # when a round last took data frames (the loop's clock)
        self._gap = 1e18  # the time between the last two rounds that took data frames
        self._data_gap = 1e18  # the longer of the last two such times
        self.parent = os.getppid()
        self._next_beat = self._next_parent_check = 0.0  # set by ``start``
        self._beat_waited = False  # the due heartbeat already gave way once

    @property
    def local_ids(self) -> frozenset[int]:
        return self.engine.local_executor_ids()

    # -- decisions carried out -----------------------------------------------------------

    def view(self) -> wp.WorkerView:
        return wp.WorkerView(
            self.all_executors, self.local_ids, self.assignment_version, self.active, self.engine.paused
        )

    def handle(self, event: wp.Event) -> None:
        """Carry out ``plan``'s commands for ``event``, and for the events they lead to."""
        events = [event]
        while events:
            for cmd in wp.plan(self.view(), events.pop(0)):
                follow = self._carry_out[type(cmd)](self, cmd)
                if follow is not None:
                    events.append(follow)

    def _count_bad(self, cmd: wp.CountBad) -> None:
        self._bad(cmd.what, cmd.n)

    def _adopt_version(self, cmd: wp.AdoptVersion) -> None:
        if cmd.forget_released:
            self.released = {}
        self.assignment_version = cmd.version

    def _set_paused(self, cmd: wp.SetPaused) -> None:
        self.engine.paused = cmd.paused

    def _move(self, cmd: wp.MoveExecutors) -> wp.ExecutorsMoved:
        engine = self.engine
        for eid in cmd.remove:
            self.released[eid] = engine.remove_executor(eid)
        failed: set[int] = set()
        for eid, state in cmd.add:
            try:
                engine.add_executor(eid, state)
            except Exception as exc:  # user code that fails to import or initialize: not run here
                log.error("worker %s: executor %d cannot run here, its items are dropped: %s", self.me, eid, exc)
                failed.add(eid)
        self.codec.set_local(engine.wiring.local_tasks)
        log.info(
            "worker %s: executors out %s, in %s",
            self.me,
            list(cmd.remove),
            [eid for eid, _ in cmd.add if eid not in failed],
        )
        return wp.ExecutorsMoved(cmd.update, frozenset(failed))

    def _route(self, cmd: wp.Route) -> None:
        back = self.outbox.place(cmd.routes)
        self.io.keep(self.outbox.endpoints())
        if back:  # held items whose task is local now
            self.codec.deliver_local(back)

    def _set_active(self, cmd: wp.SetActive) -> None:
        if cmd.active:
            self.engine.activate()
        else:
            self.engine.deactivate()
        self.active = cmd.active

    def _confirm(self, cmd: wp.Confirm) -> None:
        log.info(
            "worker %s: assignment version %d applied (active=%s, paused=%s, executors %s)",
            self.me,
            cmd.version,
            self.active,
            self.engine.paused,
            sorted(self.local_ids),
        )
        self.heartbeat()

    # How each command is carried out (a missing one fails loudly, at its first use).
    _carry_out: dict[type, Callable[[Any, Any], wp.Event | None]] = {
        wp.CountBad: _count_bad,
        wp.AdoptVersion: _adopt_version,
        wp.SetPaused: _set_paused,
        wp.MoveExecutors: _move,
        wp.Route: _route,
        wp.SetActive: _set_active,
        wp.Confirm: _confirm,
    }

    def _encode_error(self, item: tuple[int, Any], exc: Exception) -> None:
        source, stream = source_of(item)
        ex = self.engine.by_id.get(self.task_executor.get(source, -1)) if source is not None else None
        component = ex.component if ex is not None else "?"
        if ex is not None:
            ex.stats.errors += 1
        key = (source if source is not None else -1, stream)
        if key not in self._logged_encode:
            self._logged_encode.add(key)
            log.error(
                "%r emitted on stream %r a value that cannot be sent to another worker (%s); "
                "dropped (further ones counted as errors)",
                component,
                stream,
                exc,
            )

    def _frame_refused(self, why: str) -> None:
        """Log each reason a data frame was refused once (the frame is counted by the caller)."""
        self._bad(f"a data frame that is not a frame of this version: {why}", 0)

    def _bad(self, what: str, n: int = 1) -> None:
        self.bad_frames += n
        if what not in self._logged_bad:
            self._logged_bad.add(what)
            log.warning("dropped %s (further ones are counted in bad_frames, not logged)", what)

    # -- the loop ----------------------------------------------------------------------

    def run(self) -> None:
        """Start the engine, then run rounds until stopped; an idle round blocks until the next
        thing is due. Shuts down at the end."""
        self.start()
        settle_garbage_collector()  # the process's own loop: tests that drive rounds keep their collector
        while not self.stopping:
            if not self.round():
                self._wait(self.clock(), min(self._next_beat, self._next_parent_check))
        self.shutdown()

    def start(self) -> None:
        self.engine.start(activate=self.active)
        self.io_threads.loop_tid = threading.get_native_id()
        now = self.clock()
        self._next_beat = now
        self._next_parent_check = now + PARENT_CHECK_S

    def round(self) -> bool:
        """One round: control frames, data frames (unless the inboxes are full), one engine
        round, due flushes, the heartbeat and parent check when due. True if the next round
        may have work at once (or the worker is stopping): the loop then goes on without
        waiting. False when nothing is runnable: the batches were sent, and the loop blocks
        until a frame arrives or something is due (an empty round in between would only
        hold the CPU that ZeroMQ's I/O thread needs to send them)."""
        engine = self.engine
        self.loops += 1
        control = self._receive_control()  # always: an update may be what ends a congestion
        if not engine.inboxes_full():
            self._receive_data()
        spouts = engine.spouts
        emits = [s.emit_count for s in spouts]
        did = engine.run_once()
        idle = did == 0 or self._nothing_runnable(spouts, emits)
        self.outbox.flush(idle=idle)
        now = self.clock()
        if now >= self._next_beat:
            self._beat_when_quiet(now, idle)
        if now >= self._next_parent_check:
            self._next_parent_check = now + PARENT_CHECK_S
            if os.getppid() != self.parent:
                log.warning("supervisor (pid %d) is gone; worker %s exits", self.parent, self.me)
                self.stopping = True
        return bool(self.stopping or control or not idle)

    def _beat_when_quiet(self, now: float, idle: bool) -> None:
        """Send the due heartbeat if the round left nothing runnable, no frame waits (its
        batches are already sent) and no tree of a local spout is in flight (that last
        condition dropped once it is ``HEARTBEAT_TREES_WAIT_S`` overdue), or once it is
        ``HEARTBEAT_DEFER_MAX_S`` overdue. A tree in flight while the worker is idle waits
        for another worker, whose frame comes back here: a heartbeat then would stop the loop
        just as it comes; once the trees are done, the heartbeat delays at most the spout's
        next emission, which its trees' latency does not count."""
        overdue = now - self._next_beat
        quiet = idle and not self.io.data_waiting()
        if (
            quiet and (overdue >= HEARTBEAT_TREES_WAIT_S or not self._trees_in_flight())
        ) or overdue >= HEARTBEAT_DEFER_MAX_S:
            self.heartbeat()
            self._next_beat = now + self.heartbeat_s
            self._beat_waited = False
        elif not self._beat_waited:
            self._beat_waited = True
            self.beats_deferred += 1

    def _trees_in_flight(self) -> bool:
        """Whether a spout of this worker waits for the outcome of a tree."""
        for s in self.engine.spouts:
            if s.pending:
                return True
        return False

    def _nothing_runnable(self, spouts: list[Any], emits_before: list[int]) -> bool:
        """After a round with work: would the next round find nothing to do at once? True
        when no local inbox holds an item, no spout emitted a whole batch this round (a spout
        task stops its batch at the first ``next_tuple`` that emits nothing, so fewer than a
        batch means it has no more now), and no frame waits on the PULL. Then the batches
        are sent now: waiting would only add latency, since nothing more is coming for them
        before the worker blocks. A busy worker (full spout batches, queued items, frames
        waiting) keeps batching by size and age."""
        for s, before in zip(spouts, emits_before):
            if s.emit_count - before >= s.batch:
                return False
        return not self.engine.queued() and not self.io.data_waiting()

    def _wait(self, now: float, due: float) -> None:
        """Wait until a socket may have a message or the next thing is due: ``due`` (the
        loop's own heartbeat and parent check), the engine's next round with work, the
        outbox's next flush. While a frame is expected (``_spin_end``), first poll for it
        without blocking, up to ``squall.worker.spin.us``; then block."""
        for when in (self.engine.next_due(now), self.outbox.next_due(now)):
            if when is not None and when < due:
                due = when
        if due <= now:
            return
        if self.spin_s:
            end = self._spin_end(now)
            if end is not None:
                if self._spin(min(end, due)):
                    return
                now = self.clock()
                if due <= now:
                    return
        self.io.wait(due - now)

    def _spin_end(self, now: float) -> float | None:
        """Until when to poll instead of blocking: ``spin_s`` from now while a tree of a
        local spout is in flight (its outcome comes back as a frame); ``spin_s`` after the
        last data frame while the last three rounds that took frames were each less than
        ``spin_s`` apart; else None. So a worker whose traffic stopped, or comes slower than
        the spin lasts (a middle bolt at 1,000 tuples/s), blocks at once, as before, and an
        idle worker never spins."""
        if self._trees_in_flight():
            return now + self.spin_s
        if self._data_gap <= self.spin_s and now - self._last_data_at < self.spin_s:
            return self._last_data_at + self.spin_s
        return None

    def _note_data(self, now: float) -> None:
        """A round took data frames at ``now``: what ``_spin_end`` reads. Two gaps, not one,
        so that two frames bunched by a delay upstream (a paced stream whose sender was held
        up) do not make a worker spin for a next frame that is a whole period away."""
        gap = now - self._last_data_at
        self._data_gap = max(gap, self._gap)
        self._gap, self._last_data_at = gap, now

    def _spin(self, end: float) -> bool:
        """Poll the PULL without blocking until ``end``; True as soon as a frame waits
        (counted in ``spin_hits``). A supervisor's update waits for the end of the spin at
        most, ``squall.worker.spin.us``. No yield between polls: the spinning thread holds
        nothing the process's ZeroMQ I/O thread waits for, the scheduler preempts it for a
        woken thread as it would any CPU-bound one, and a ``sched_yield`` per poll measured
        no better on the transport floor (docs/worker.md, "The wait strategy")."""
        self.spins += 1
        waiting, clock = self.io.data_waiting, self.clock
        while True:
            if waiting():
                self.spin_hits += 1
                return True
            if clock() >= end:
                return False

    def _receive_data(self) -> int:
        if not self.io.data_waiting():
            return 0
        meter = self.transfer_meter
        meter.start()  # once per batch of frames: receive, decode, forward
        try:
            got, bad = self.io.receive_data(self.codec.deliver, RECV_FRAMES_PER_ROUND, self.engine.drain_limit)
        finally:
            meter.stop()
        if self.spin_s:
            self._note_data(self.clock())
        if bad:
            self._bad("malformed tuple frames or items (or items for tasks not run here)", bad)
        return got

    def _receive_control(self) -> int:
        frames = self.io.receive_control()
        for frame in frames:
            self.handle(frame)
        return len(frames)

    def queued(self) -> int:
        """Items not yet processed or sent: local inboxes, outbox buffers, backlog, held."""
        return self.engine.queued() + self.outbox.pending()

    def heartbeat(self) -> None:
        outbox, io = self.outbox, self.io
        transfer = TransferCounts(
            transfer_cpu_s=self.transfer_meter.cpu_s + self.io_threads.read(),
            frames_sent=outbox.sent_frames,
            frames_received=io.frames_received,
            bytes_sent=outbox.sent_bytes,
            bytes_received=io.bytes_received,
        )
        metrics = worker_metrics(
            self.engine.executors,
            self.task_executor,
            self.launch.clock_hz,
            outbox.sent_items,
            received_remote=self.codec.received,
            queued=self.queued(),
            transfer=transfer,
            loop_tid=self.io_threads.loop_tid,
            links=self.links(),
            spins=(self.spins, self.spin_hits),
        )
        hb = WorkerHeartbeat(
            port=self.launch.port,
            pid=os.getpid(),
            topology=self.launch.topology,
            assignment_version=self.assignment_version,
            metrics=metrics,
            bad_frames=self.bad_frames,
            paused=self.engine.paused,
            released=dict(self.released),
        )
        io.send_control(wire.encode(hb))

    def links(self) -> DataLinks:
        """Each data link's last frame handed over (to routed workers) and received."""
        return DataLinks(
            endpoint=self.me,
            sent={e: LinkMark(link, n) for e, (link, n) in self.outbox.links().items()},
            received={e: LinkMark(link, n) for e, (link, n) in self.codec.links.items()},
        )

    def shutdown(self) -> None:
        """Deactivate spouts, let local queues drain briefly, flush, close, final heartbeat."""
        engine = self.engine
        engine.deactivate()
        deadline = self.clock() + STOP_DRAIN_S
        while self.clock() < deadline and engine.run_once():
            self.outbox.flush()
        self.outbox.flush(idle=True)
        self.heartbeat()
        self.io.close()


def spin_seconds(conf: dict[str, Any]) -> float:
    """``squall.worker.spin.us`` of a topology's conf, in seconds (its default when absent);
    ValueError naming the key for anything but a number from 0 to ``MAX_WORKER_SPIN_US``
    (Nimbus refuses the same at submit; a worker started otherwise refuses it at start)."""
    value = conf.get(config.WORKER_SPIN_US, config.DEFAULT_WORKER_SPIN_US)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= config.MAX_WORKER_SPIN_US:
        raise ValueError(
            f"{config.WORKER_SPIN_US} must be a number of microseconds from 0 to "
            f"{config.MAX_WORKER_SPIN_US:g}, got {value!r:.60}"
        )
    return float(value) / 1e6


def settle_garbage_collector() -> None:
    """After start-up: collect once, then move every object alive (modules, classes, the
    spec, the engine: about 33,000) to the collector's permanent generation (``gc.freeze``),
    so no later collection scans them again, wherever it stops the loop: a full collection
    over them cost 10 ms of CPU, the first middle-generation one about 0.4 ms. Objects made
    later, and their cycles, are collected as before. The thresholds stay CPython's: raised
    (20,000 young allocations), each young collection scanned proportionally more live
    objects (0.6-1 ms of CPU instead of about 20 us), longer pauses for the same work."""
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if len(args) != 1:
        print("usage: python -m squall.supervisor.worker LAUNCH_FILE", file=sys.stderr)
        return 2
    try:
        launch = wire.decode(Path(args[0]).read_bytes())
    except (OSError, wire.WireError) as exc:
        log.error("cannot read launch file %s: %s", args[0], exc)
        return 2
    if not isinstance(launch, WorkerLaunch):
        log.error("launch file %s holds a %s, not a WorkerLaunch", args[0], type(launch).__name__)
        return 2
    stop_requested: list[int] = []
    holder: list[Worker] = []

    def stop(signum: int, _frame: Any) -> None:
        stop_requested.append(signum)
        for w in holder:
            w.stopping = True

    # Before the (slow) start, so a stop during it is not lost.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        worker = open_worker(launch)
    except Exception as exc:  # import errors in user code, port taken, bad spec: report and exit
        log.exception("worker %s:%d of %r could not start: %s", launch.host, launch.port, launch.topology, exc)
        _write_error(Path(args[0]), exc)
        return EXIT_CODE_ERROR if isinstance(exc, CodeLoadError) else 3
    holder.append(worker)
    worker.stopping = bool(stop_requested)
    log.info(
        "worker %s of %r running executors %s (pid %d)",
        worker.me,
        launch.topology,
        sorted(worker.local_ids),
        os.getpid(),
    )
    worker.run()
    log.info("worker %s stopped", worker.me)
    return 0


def _write_error(launch_file: Path, exc: Exception) -> None:
    """Leave the reason next to the launch file for the supervisor (best effort)."""
    try:
        launch_file.with_suffix(ERROR_SUFFIX).write_text(str(exc)[-ERROR_CHARS:] or type(exc).__name__)
    except OSError as err:
        log.warning("cannot write the error file of %s: %s", launch_file, err)


if __name__ == "__main__":
    sys.exit(main())
