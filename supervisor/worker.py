"""The worker process: one slot (port) of one node, running its share of a topology's executors.

Started by its supervisor as ``python -m squall.supervisor.worker LAUNCH_FILE``, where the file
holds ``squall.wire.encode(WorkerLaunch(...))``. The worker

* binds a PULL on ``tcp://{host}:{port}`` for tuple batches from other workers and sends its
  own over PUSH sockets, batched per destination worker (``squall.supervisor.transfer``);
* connects a DEALER (identity ``str(port)``) to its supervisor, sends ``WorkerHeartbeat`` with
  cumulative metrics every ``squall.worker.heartbeat.secs`` — and at once after applying an
  update — and applies ``WorkerUpdate`` live: placement re-routes remote tasks; ``active``
  toggles the spouts; ``paused`` holds them for a migration; ``executors`` moves executors
  in (restoring ``states``) and out (their snapshots go up in ``released``) — see
  ``squall.supervisor.worker_update`` and docs/worker.md;
* runs everything from one thread: receive a bounded number of frames, one engine round,
  flush due batches, heartbeat when due; when a round did nothing it blocks on its sockets
  (``select`` on their descriptors) until the next thing is due — a spout's next emission (``Spout.next_tuple_due``,
  else 1 ms), an engine timer with work, a batch's flush, the heartbeat, the parent check —
  so a frame arriving wakes it at once and an idle worker costs (almost) no CPU;
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

import logging
import os
import select
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import zmq

from squall import config, security, wire
from squall.messages import WorkerHeartbeat, WorkerLaunch, WorkerUpdate
from squall.supervisor.runtime.engine import Engine, acker_count
from squall.supervisor.runtime.stats import CpuMeter
from squall.supervisor.transfer import (
    DEFAULT_BACKLOG_FRAMES,
    DEFAULT_BATCH_SIZE,
    DEFAULT_FLUSH_MS,
    DEFAULT_HOLD_LIMIT,
    MAX_DATA_FRAME_BYTES,
    Outbox,
    TupleCodec,
)
from squall.supervisor.worker_metrics import OtherThreadsCpu, TransferCounts, task_to_executor, worker_metrics
from squall.supervisor.worker_update import ComponentClasses, apply_update, routes_for
from squall.topology.loader import resolve_class
from squall.topology.spec import ACKER_COMPONENT, SPOUT, TopologySpec

log = logging.getLogger("squall.worker")

RECV_FRAMES_PER_ROUND = 64  # bounds one round's intake so spouts and timers still get a turn
PARENT_CHECK_S = 0.2  # also the longest an idle worker blocks
# A plain int: ``events & zmq.POLLIN`` would go through the IntFlag's Python-level __rand__.
_POLLIN = int(zmq.POLLIN)
STOP_DRAIN_S = 0.3
# Frames ZeroMQ may queue per socket (each side) before sends are refused. Small on purpose:
# a frame carries up to a batch of tuples, and queued frames are RSS on a board.
DEFAULT_HWM = 100
EXIT_CODE_ERROR = 4  # the topology's code does not load: retrying will not help
ERROR_SUFFIX = ".error"  # next to the launch file: why the worker could not start
ERROR_CHARS = 2000


class CodeLoadError(Exception):
    """A component class of the topology could not be imported or resolved."""


class _WorkerEngine(Engine):
    """The engine, plus one more reason for spouts to pause: a destination worker that is
    refusing frames (otherwise the spouts would fill the transfer backlog and drop)."""

    congested: Callable[[], bool] = staticmethod(lambda: False)

    def backpressured(self) -> bool:
        return self.congested() or super().backpressured()

    def inboxes_full(self) -> bool:
        """Local inboxes over the high mark: stop taking frames so senders feel the pressure.
        Congestion is deliberately not a reason: two workers refusing each other's frames
        while neither reads would deadlock."""
        return super().backpressured()


class Worker:
    """The worker's state and loop; ``main()`` wires it to a launch file and signals."""

    def __init__(
        self, launch: WorkerLaunch, clock: Callable[[], float] = time.monotonic, context: zmq.Context | None = None,
    ) -> None:
        """``context``: the ZeroMQ context to use and terminate at shutdown (default: the
        process's shared one; a test running a worker in its own process passes its own)."""
        self.launch = launch
        self.clock = clock
        a = launch.assignment
        self.assignment_version = a.assignment_version
        self.active = a.active
        self.released: dict[int, bytes] = {}  # snapshots of executors moved out at this version
        if launch.bundle_dir and launch.bundle_dir not in sys.path:
            sys.path.insert(0, launch.bundle_dir)
        self.spec = TopologySpec.from_dict(launch.spec)
        self.conf: dict[str, Any] = {**self.spec.config, **a.conf}
        self.all_executors = self.spec.executors_with_ackers(acker_count(self.spec, self.conf))
        known = {e.id for e in self.all_executors}
        self.local_ids = frozenset(a.executors) & known
        local = [e for e in self.all_executors if e.id in self.local_ids]
        local_tasks = {t for e in local for t in e.tasks}
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
        self.frames_received = 0
        self.bytes_received = 0
        # Encode+send and receive+decode, wherever they happen (executors leave it out of theirs),
        # plus libzmq's I/O thread, which moves the frames (set again when the loop starts).
        self.transfer_meter = CpuMeter()
        self.io_threads = OtherThreadsCpu(threading.get_native_id())
        self._logged_bad: set[str] = set()
        self._logged_encode: set[tuple[int, str]] = set()
        self.stopping = False

        # CURVE on every socket when the supervisor passed the cluster keys (squall.security).
        self.keys = security.load(launch.keys_dir) if launch.keys_dir else None
        self.ctx = context if context is not None else zmq.Context.instance()
        self.pull = self.ctx.socket(zmq.PULL)
        self.pull.setsockopt(zmq.LINGER, 0)
        self.hwm = int(self.conf.get(config.TRANSFER_HWM, DEFAULT_HWM))
        self.pull.setsockopt(zmq.RCVHWM, self.hwm)
        self.pull.setsockopt(zmq.MAXMSGSIZE, MAX_DATA_FRAME_BYTES)  # one junk frame must not take our memory
        security.secure_server(self.pull, self.keys)
        self._bind(self.pull, launch.host, launch.port)
        self.dealer = self.ctx.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.IDENTITY, str(launch.port).encode())
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.setsockopt(zmq.MAXMSGSIZE, wire.limit_of("WorkerUpdate").frame_bytes)
        self.dealer.setsockopt(zmq.SNDHWM, 10)  # a dead supervisor must not make heartbeats pile up
        security.secure_client(self.dealer, self.keys)
        self.dealer.connect(launch.supervisor_endpoint)
        self.pushes: dict[str, zmq.Socket] = {}
        # The sockets' file descriptors, to block on with a sub-millisecond timeout (ZeroMQ's
        # poll counts whole milliseconds, too coarse for a spout paced at 1,000 tuples/s).
        self._wake_fds = [self.pull.getsockopt(zmq.FD), self.dealer.getsockopt(zmq.FD)]

        self.outbox = Outbox(
            self._send,
            clock,
            batch_size=int(self.conf.get(config.TRANSFER_BATCH_SIZE, DEFAULT_BATCH_SIZE)),
            flush_ms=float(self.conf.get(config.TRANSFER_FLUSH_MS, DEFAULT_FLUSH_MS)),
            backlog_frames=int(self.conf.get(config.TRANSFER_BACKLOG_FRAMES, DEFAULT_BACKLOG_FRAMES)),
            on_error=self._encode_error,
            hold_limit=int(self.conf.get(config.TRANSFER_HOLD_ITEMS, DEFAULT_HOLD_LIMIT)),
            meter=self.transfer_meter,
        )
        self.bolt_tasks = {
            t for e in self.all_executors if e.component != ACKER_COMPONENT
            and self.spec.component(e.component).kind != SPOUT for t in e.tasks
        }
        self.placement = dict(a.placement)
        self._place(a.placement)
        self.engine = _WorkerEngine(
            self.spec, classes, self.conf, executor_ids=self.local_ids, remote_sink=self._remote_sink, clock=clock,
            states=a.states,
        )
        self.engine.paused = a.paused
        self.engine.congested = self.outbox.congested
        self.engine.wiring.transfer_meter = self.transfer_meter
        self.codec = TupleCodec(
            self.spec, self.all_executors, local_tasks, self.engine.wiring.sinks, forward=self.outbox.forward
        )
        self.heartbeat_s = float(self.conf.get(config.WORKER_HEARTBEAT, config.DEFAULT_WORKER_HEARTBEAT_S))
        self.parent = os.getppid()

    # -- setup -------------------------------------------------------------------------

    @staticmethod
    def _bind(sock: zmq.Socket, host: str, port: int) -> None:
        try:
            sock.bind(f"tcp://{host}:{port}")
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EADDRINUSE:
                raise
            # ``host`` may be a name ZeroMQ cannot bind to; the port is what identifies the slot.
            sock.bind(f"tcp://*:{port}")

    def _remote_sink(self, task: int):
        return self.outbox.data_sink(task) if task in self.bolt_tasks else self.outbox.control_sink(task)

    def _place(self, placement: dict[int, str], nowhere: frozenset[int] = frozenset()) -> list[tuple]:
        """Route every task not run here to its executor's worker ("": in transit, held;
        missing or in ``nowhere``: dropped and counted). Returns held items whose task is
        local now, for the caller to deliver."""
        back = self.outbox.place(routes_for(self.all_executors, self.local_ids, placement, nowhere))
        for endpoint in set(self.pushes) - self.outbox.endpoints():
            self.pushes.pop(endpoint).close(linger=100)
        return back

    def _send(self, endpoint: str, frame: bytes) -> bool:
        sock = self.pushes.get(endpoint)
        if sock is None:
            sock = self.pushes[endpoint] = self.ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.SNDHWM, self.hwm)
            sock.setsockopt(zmq.LINGER, 0)
            # Peers start in any order: retry soon (not ZeroMQ's 100 ms) so the first tuples do
            # not wait, backing off to 1 s for a peer that stays down.
            sock.setsockopt(zmq.RECONNECT_IVL, 10)
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
            security.secure_client(sock, self.keys)
            sock.connect(f"tcp://{endpoint}")
        try:
            sock.send(frame, zmq.NOBLOCK, copy=len(frame) < 65536)
        except zmq.Again:
            return False
        return True

    def _encode_error(self, item: tuple, exc: Exception) -> None:
        source = item[2] if len(item) > 2 and isinstance(item[1], str) else None
        ex = self.engine.by_id.get(self.task_executor.get(source, -1)) if source is not None else None
        stream = item[1] if isinstance(item[1], str) else "control"
        component = ex.component if ex is not None else "?"
        if ex is not None:
            ex.stats.errors += 1
        key = (source if source is not None else -1, stream)
        if key not in self._logged_encode:
            self._logged_encode.add(key)
            log.error(
                "%r emitted on stream %r a value that cannot be sent to another worker (%s); "
                "dropped (further ones counted as errors)", component, stream, exc,
            )

    def _bad(self, what: str, n: int = 1) -> None:
        self.bad_frames += n
        if what not in self._logged_bad:
            self._logged_bad.add(what)
            log.warning("dropped %s (further ones are counted in bad_frames, not logged)", what)

    # -- the loop ----------------------------------------------------------------------

    def run(self) -> None:
        engine = self.engine
        engine.start(activate=self.active)
        self.io_threads.loop_tid = threading.get_native_id()
        outbox = self.outbox
        clock = self.clock
        next_beat = clock()
        next_parent_check = clock() + PARENT_CHECK_S
        while not self.stopping:
            self.loops += 1
            got = self._receive_control()  # always: an update may be what ends a congestion
            if not engine.inboxes_full():
                got += self._receive_data()
            did = engine.run_once()
            outbox.flush(idle=did == 0)
            now = clock()
            if now >= next_beat:
                self.heartbeat()
                next_beat = now + self.heartbeat_s
            if now >= next_parent_check:
                next_parent_check = now + PARENT_CHECK_S
                if os.getppid() != self.parent:
                    log.warning("supervisor (pid %d) is gone; worker %s exits", self.parent, self.me)
                    self.stopping = True
            if not did and not got and not self.stopping:
                self._wait(now, min(next_beat, next_parent_check))
        self.shutdown()

    def _wait(self, now: float, due: float) -> None:
        """Block until a socket may have a message or the next thing is due: ``due`` (the
        loop's own heartbeat and parent check), the engine's next round with work, the
        outbox's next flush.

        ZeroMQ's descriptors are edge-triggered: readable means "check the socket's events",
        so a socket that already holds a message returns at once, and ``select`` then waits
        for a change (a spurious wake-up only costs one more loop iteration)."""
        for when in (self.engine.next_due(now), self.outbox.next_due(now)):
            if when is not None and when < due:
                due = when
        if due <= now:
            return
        for sock in (self.pull, self.dealer):
            if sock.getsockopt(zmq.EVENTS) & _POLLIN:
                return
        select.select(self._wake_fds, [], [], due - now)

    def _receive_data(self) -> int:
        pull = self.pull
        if not pull.getsockopt(zmq.EVENTS) & _POLLIN:
            return 0  # cheaper than a receive that raises zmq.Again, on every round
        got = 0
        deliver = self.codec.deliver
        meter = self.transfer_meter
        meter.start()  # once per batch of frames: receive, decode, forward
        try:
            for _ in range(RECV_FRAMES_PER_ROUND):
                try:
                    frame = pull.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self.frames_received += 1
                self.bytes_received += len(frame)
                n, bad = deliver(frame)
                got += n
                if bad:
                    self._bad("malformed tuple frames or items (or items for tasks not run here)", bad)
        finally:
            meter.stop()
        return got

    def _receive_control(self) -> int:
        got = 0
        dealer = self.dealer
        while dealer.getsockopt(zmq.EVENTS) & _POLLIN:  # no zmq.Again raised on every round
            try:
                parts = dealer.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            got += 1
            if self._control(parts[-1]):
                self.heartbeat()  # at once: a migration waits on this confirmation
        return got

    def _control(self, frame: bytes) -> bool:
        """Apply one frame from the supervisor; True if it was an update."""
        try:
            msg = wire.decode(frame)
        except wire.WireError as exc:
            self._bad(f"a malformed control frame from the supervisor ({exc})")
            return False
        if not isinstance(msg, WorkerUpdate):
            self._bad(f"an unexpected {type(msg).__name__} from the supervisor")
            return False
        self.apply(msg)
        return True

    def apply(self, update: WorkerUpdate) -> None:
        """A live change: placement, activation, pause, executors in and out (see
        ``squall.supervisor.worker_update.apply_update`` for the order and guarantees)."""
        apply_update(self, update)

    def queued(self) -> int:
        """Items not yet processed or sent: local inboxes, outbox buffers, backlog, held."""
        return self.engine.queued() + self.outbox.pending()

    def heartbeat(self) -> None:
        outbox = self.outbox
        transfer = TransferCounts(
            cpu_s=self.transfer_meter.cpu_s + self.io_threads.read(),
            frames_sent=outbox.sent_frames,
            frames_received=self.frames_received,
            bytes_sent=outbox.sent_bytes,
            bytes_received=self.bytes_received,
        )
        metrics = worker_metrics(
            self.engine.executors, self.task_executor, self.launch.clock_hz, outbox.sent_items,
            received_remote=self.codec.received, queued=self.queued(), transfer=transfer,
            loop_tid=self.io_threads.loop_tid,
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
        try:
            self.dealer.send(wire.encode(hb), zmq.NOBLOCK)
        except zmq.Again:
            pass  # supervisor not reading; the next heartbeat carries the same cumulative counters

    def shutdown(self) -> None:
        """Deactivate spouts, let local queues drain briefly, flush, close, final heartbeat."""
        engine = self.engine
        engine.deactivate()
        deadline = self.clock() + STOP_DRAIN_S
        while self.clock() < deadline and engine.run_once():
            self.outbox.flush()
        self.outbox.flush(idle=True)
        self.heartbeat()
        for sock in self.pushes.values():
            sock.close(linger=200)  # let the last batches leave; bounded so exit stays prompt
        self.pull.close(linger=0)
        self.dealer.close(linger=100)
        security.release(self.ctx)
        self.ctx.term()


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
        worker = Worker(launch)
    except Exception as exc:  # import errors in user code, port taken, bad spec: report and exit
        log.exception("worker %s:%d of %r could not start: %s", launch.host, launch.port, launch.topology, exc)
        _write_error(Path(args[0]), exc)
        return EXIT_CODE_ERROR if isinstance(exc, CodeLoadError) else 3
    holder.append(worker)
    worker.stopping = bool(stop_requested)
    log.info("worker %s of %r running executors %s (pid %d)", worker.me, launch.topology,
             sorted(worker.local_ids), os.getpid())
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
