"""The thin loop around :class:`NimbusState`: a ZeroMQ ROUTER, a clock and an HTTP endpoint.

Everything here is I/O: it reads frames and the clock, turns them into events
(:mod:`squall.nimbus.events`) and hands each to the state, which decides and has its writes
carried out by the store (``NimbusState.apply``); the sends that come back go on the wire.

Guarantees: a malformed, unknown or oversized frame is counted (``bad_frames``), logged
once per kind of fault, and dropped — the loop never dies of input; ``tick`` runs about
every ``TICK_S`` seconds, scheduled on the monotonic clock, and how late it ran is kept as
the loop lag (``squall_nimbus_loop_lag_seconds``); ``stop()`` (or SIGTERM/SIGINT after
``install_signal_handlers``) ends ``run()`` within one poll interval, closing the socket
and the HTTP server. Peers may be DEALERs (one frame) or REQs (empty delimiter); a reply
goes back with the envelope its peer used.

Only this loop's thread touches the state. After a batch of events that changed it (at most
every ``PUBLISH_S``, or ten times as long as the last copy took, so copies stay few whatever
the event rate and never cost more than a tenth of the loop at any scale; and always before
the answer to a write leaves, so a client that got its answer reads its own write; a query's
or a heartbeat's answer needs no new copy) the loop publishes an
immutable :class:`~squall.nimbus.snapshot.Snapshot` in ``published``; the HTTP
threads read the latest one without a lock and without waiting for the loop (and a
topology's events on a SQLite connection of their own), so a loop busy with a long event
still has its pages and ``/metrics`` served (the snapshot's age, in
``squall_nimbus_snapshot_age_seconds``, then shows how long it has been busy). Writes from
HTTP go through the :class:`LoopInbox` and wait for the loop, as a write must.

Silence: a board's silence is judged up to the time Nimbus had read what reached it
(``Tick.heard_until``), proven by a probe, not inferred from an empty socket. Every
``PROBE_S`` the loop sends itself a stamp through its own ROUTER, over TCP from a DEALER in
the same ZeroMQ context; once a probe stamped at ``t`` has been read and the socket then
found empty, what had reached Nimbus's host before ``t`` has been read too (ZeroMQ's I/O
thread serves connections in the order they became readable), and ticks judge silence at
``t``. An empty socket alone proves nothing: it only says the I/O thread has handed over
nothing more, and while that thread is stalled (descheduled on a loaded machine, or busy)
heartbeats wait in the kernel, unseen. With the probe, such a stall delays every board's
verdict instead of killing them all; ``heard_until`` lags the clock by the probe's period
and one trip through the loopback (about 0.1 s on an idle loop) when nothing stalls.

Requests before heartbeats: the ROUTER hands over one message per waiting peer in turn, so
a request that reaches a Nimbus behind on its heartbeats (hundreds of boards, a loop that
waited for a CPU) used to wait for one heartbeat of every board with one queued, ~0.4 ms of
CPU each: that backlog was the loop lag's tail at 500 boards. The loop now reads everything
waiting (heartbeats into a queue of their own, at most ``BEATS_AT_MOST``), handles every other
message as it is read, and handles the queued heartbeats in slices of ``BEATS_SLICE_S``,
reading the socket again between slices: a request waits for at most one slice, however
long the backlog. Not at the heartbeats' expense: while heartbeats wait, the time spent on
messages handled ahead of them must be matched by as long on the heartbeats before another
goes ahead (until then the others queue in turn), so a flood of requests cannot starve the
heartbeats and delay the verdict on a silent board. A peer's messages keep their order
(while one of its frames is queued, its next ones queue behind it), and silence is judged
up to a probe's stamp only once every frame queued when the socket was then found empty has
been handled.

Time: the state is fed :func:`steady_clock`, wall time read once at start and advanced by
the monotonic clock, so a step of the system clock (NTP sync on a board without a real-time
clock) neither stops ticks nor declares every board dead.
"""

from __future__ import annotations

import logging
import os
import signal
import struct
import threading
import time
from collections import deque
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import msgpack
import zmq

from squall import messages as M
from squall.control_mark import DEFAULT_CONTROL_DSCP, mark_control
from squall.nimbus import config as C
from squall.nimbus.commands import Send
from squall.nimbus.events import Event, Received, Tick
from squall.nimbus.full_collections import FULL_COLLECTION_S, FullCollections
from squall.nimbus.gil import ShortSwitches
from squall.nimbus.http_api import LoopInbox
from squall.nimbus.loop_stats import LoopStats
from squall.nimbus.queries import QUERIES
from squall.nimbus.snapshot import Snapshot
from squall.nimbus.state import NimbusState
from squall.security import ClusterKeys, release, secure_client, secure_server
from squall.wire import MAX_FRAME_BYTES, PROTOCOL_VERSION, Encoder, WireError, decode

if TYPE_CHECKING:
    from squall.nimbus.replication import Replica

log = logging.getLogger("squall.nimbus")

TICK_S = 0.5
POLL_MS = 100
# A change shows on the HTTP side within this; it caps the loop's snapshot copies at 20/s
# however many events arrive (a reply to a request is published at once, see _execute).
PUBLISH_S = 0.05
ANSWERS = (M.Reply, M.RegisterReply)  # answers to a request: published before they leave
PUBLISH_COST_SHARE = 0.1  # at most this share of the loop's time goes to copying snapshots
# Messages that change nothing a reader could be waiting to see: their answers need no copy.
READ_ONLY = (M.Heartbeat, M.GetSnapshot, *QUERIES)  # a snapshot fetch changes only send counts
# The loop sends itself a probe this often (see "Silence" above): heard_until lags by about this.
PROBE_S = 0.1
PROBE_HWM = 100  # probes queued while the I/O thread stalls; beyond, newer ones are dropped
PROBE_STAMP = struct.Struct("!d")
STALL_WARN_S = 5.0  # heard_until this far behind is logged (once until it catches up)
FRAME_SLACK = 64 * 1024  # ZeroMQ drops a peer above MAXMSGSIZE; the codec rejects above the frame limit
# Heartbeats wait in a queue of their own (see "Requests before heartbeats" above). A heartbeat
# frame starts with these bytes (squall.wire.encode: [version, "Heartbeat", fields]); a frame
# that does not is handled as read, whatever it turns out to be.
HEARTBEAT_HEAD = b"\x93" + msgpack.packb(PROTOCOL_VERSION) + msgpack.packb("Heartbeat")
BEATS_SLICE_S = 0.002  # queued heartbeats handled between two reads of the socket
BEATS_AT_MOST = 2000  # heartbeats read ahead at most; beyond, they wait in the socket as before
DRAIN_AT_MOST = 1000  # messages handled per drain, so ticks still happen under a flood


def steady_clock() -> Any:
    """A clock that reads like wall time but never steps: wall time at the call, advanced
    by ``time.monotonic`` since. Durations measured on it are true elapsed time."""
    wall0, mono0 = time.time(), time.monotonic()
    return lambda: wall0 + (time.monotonic() - mono0)


def probe_endpoint(bound: str) -> str:
    """Where the probe connects to reach ``bound`` (a ROUTER's ``LAST_ENDPOINT``): a wildcard
    address is reached on loopback."""
    for wildcard, loopback in (("tcp://0.0.0.0:", "tcp://127.0.0.1:"), ("tcp://[::]:", "tcp://[::1]:")):
        if bound.startswith(wildcard):
            return loopback + bound.removeprefix(wildcard)
    return bound


class NimbusServer:
    def __init__(
        self,
        state: NimbusState,
        host: str = "127.0.0.1",
        port: int = 6627,
        http_port: int = 8080,
        clock: Any = None,
        keys: ClusterKeys | None = None,
        api_token: str | None = None,
        replica: Replica | None = None,
    ) -> None:
        self.state = state
        # One of several replicas (nimbus.replication): it decides only while it leads, and
        # its decisions' sends leave once Raft committed their writes. None: a single Nimbus.
        self.replica = replica
        self.keys = keys
        self.clock = clock if clock is not None else steady_clock()
        self.loop_lag = (0.0, 0.0)  # (latest, max) seconds a tick ran after it was due
        # What the loop's time goes to (each step, each garbage collection), for /metrics.
        self.loop_stats = LoopStats()
        # Full garbage collections at the loop's pace, not CPython's (see full_collections).
        self.full_collections = FullCollections(C.number(state.conf, C.GC_FULL, FULL_COLLECTION_S))
        self.short_switches = ShortSwitches()  # the loop waits less for the GIL (see nimbus.gil)
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 500)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES + FRAME_SLACK)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 0)  # a reply to a vanished peer is dropped
        secure_server(self.sock, keys)  # with keys, only cluster members get through (CURVE)
        # Before bind: accepted connections take the mark, so replies and assignments to
        # boards pass a saturated link's data (squall.control_mark).
        mark_control(self.sock, state.conf.get(C.CONTROL_DSCP, DEFAULT_CONTROL_DSCP))
        self.sock.bind(f"tcp://{host}:{port}")
        self.address = f"tcp://{host}:{port}"
        # The probe (see "Silence" above): a DEALER of this context, through the same I/O
        # thread, the kernel and the ROUTER as every board's messages. Its routing id is
        # random, so no peer can pass for it.
        self._probe_id = b"probe-" + os.urandom(16)
        self._probe = self.ctx.socket(zmq.DEALER)
        self._probe.setsockopt(zmq.LINGER, 0)
        self._probe.setsockopt(zmq.SNDHWM, PROBE_HWM)
        self._probe.setsockopt(zmq.ROUTING_ID, self._probe_id)
        self._probe.setsockopt(zmq.IPV6, self.sock.getsockopt(zmq.IPV6))
        secure_client(self._probe, keys)
        mark_control(self._probe, state.conf.get(C.CONTROL_DSCP, DEFAULT_CONTROL_DSCP))  # as its peer, the board
        self._probe.connect(probe_endpoint(self.sock.getsockopt_string(zmq.LAST_ENDPOINT)))
        self._probe_due = time.monotonic()
        self._stop = threading.Event()
        self.stopped_by = ""  # the signal that stopped the loop, for the log
        self._req_peers: set[bytes] = set()
        # Packs each placement map once for every board's assignment frame (squall.wire.Encoder).
        self.encoder = Encoder()
        self._logged_faults: set[str] = set()
        self.http: ThreadingHTTPServer | None = None
        # What readers see: replaced (one reference store, atomic for readers) after each batch
        # of events that changed the state; never edited. ``_changed``: events since the last.
        self.published = Snapshot.of(state, self.clock())
        self.publications = 1
        self._changed = False
        self._wrote = False  # a write was applied since the last publication
        # The stamp of the newest probe read (None: none yet), and up to when everything that
        # reached Nimbus had been read: that stamp, once the socket was found empty after it.
        # Ticks judge boards' silence at the latter, so neither a backlog in the socket nor
        # a stalled I/O thread kills a board.
        self._probe_read: float | None = None
        # Heartbeats read, not yet handled (see "Requests before heartbeats" above), and how
        # many frames of each peer wait among them (its next frames queue behind them).
        self._beats: deque[list[bytes]] = deque()
        self._queued_from: dict[bytes, int] = {}
        # Frames queued and handled so far, and, each time the socket was found empty with a
        # newer probe read, (that probe's stamp, frames queued by then), oldest first: once
        # those frames are handled, everything that reached Nimbus before the stamp has been.
        self._queued_n = self._handled_n = 0
        self._marks: deque[tuple[float, int]] = deque()
        # Seconds spent on messages handled ahead of queued heartbeats, not yet matched by as
        # long on the heartbeats: while positive, other messages queue too (see _read).
        self._owed_s = 0.0
        self._heard_until: float | None = None
        self._stall_logged = False
        self._published_mono = time.monotonic()
        self._publish_every = PUBLISH_S  # raised when copies get slow (PUBLISH_COST_SHARE)
        self.inbox = LoopInbox()  # REST API reads and POSTs, handled on this loop (see http_api)
        # A byte on this pipe wakes the poll when the inbox gets work, so HTTP callers do not
        # wait for the poll timeout.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.inbox.wake = self._wake
        if replica is not None:
            replica.wake = self._wake  # pysyncobj's thread wakes the loop when it commits
        self._events = state.store.events_reader()  # the HTTP side's own connection to the events
        if http_port:
            from squall.nimbus.http_api import start as start_http

            token = api_token if api_token is not None else (keys.api_token() if keys else None)
            self.http = start_http(
                state,
                self.clock,
                host,
                http_port,
                self.inbox,
                latest=lambda: self.published,
                api_token=token,
                loop_lag=lambda: self.loop_lag,
                loop_stats=self.loop_stats,
                events=self._events.events if self._events is not None else None,
            )
            if replica is not None:
                self.http.leader_page = lambda: None if replica.leading else replica.leader_http()

    def install_signal_handlers(self) -> None:
        def stop_on(signum: int, _frame: Any) -> None:
            self.stopped_by = signal.Signals(signum).name  # logged by run(), not here: no I/O in a handler
            self.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop_on)

    def stop(self) -> None:
        self._stop.set()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"!")
        except (BlockingIOError, OSError):  # full (a wake is pending anyway) or closed
            pass

    def run(self) -> None:
        log.info("nimbus listening on %s", self.address)
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        next_tick = time.monotonic()
        self.loop_stats.install()
        self.full_collections.install()
        self.short_switches.install()
        try:
            while not self._stop.is_set():
                if time.monotonic() >= self._probe_due:
                    self._send_probe()
                due = min(next_tick, self._probe_due)
                if self._changed:
                    due = min(due, self._published_mono + self._publish_every)
                timeout_ms = max(0, min(POLL_MS, int((due - time.monotonic()) * 1000) + 1))
                ready = dict(poller.poll(0 if self._beats else timeout_ms))
                turn_started, turn_cpu = time.perf_counter(), time.thread_time()
                if self.sock not in ready:
                    self._found_empty()
                if self.sock in ready or self._beats:
                    self._drain(due)
                if self._wake_r in ready:
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                self._pump()
                self._execute(self.inbox.drain(self._handle_local))
                mono = time.monotonic()
                if mono >= next_tick:
                    late = mono - next_tick
                    self.loop_lag = (late, max(late, self.loop_lag[1]))
                    next_tick = max(next_tick + TICK_S, mono)  # after a stall: one tick, not a burst
                    started, cpu = time.perf_counter(), time.thread_time()
                    now = self.clock()
                    self._log_stall(now)
                    self._execute(self._apply(Tick(now, heard_until=self._heard_until)))
                    self.loop_stats.step("Tick", time.perf_counter() - started, time.thread_time() - cpu)
                    started, cpu = time.perf_counter(), time.thread_time()
                    if self.full_collections.run_if_due():
                        self.loop_stats.step("full_gc", time.perf_counter() - started, time.thread_time() - cpu)
                if self._changed and time.monotonic() - self._published_mono >= self._publish_every:
                    self._publish()
                self.loop_stats.turn(time.perf_counter() - turn_started, time.thread_time() - turn_cpu)
        finally:
            # A log that ends without this line was cut short: SIGKILL (the OOM killer, a
            # forced stop) or the file itself deleted, never a clean stop.
            log.info("nimbus loop stopping%s", f" on {self.stopped_by}" if self.stopped_by else "")
            self.short_switches.close()
            self.full_collections.close()
            self.loop_stats.close()
            self.close()

    def close(self) -> None:
        if self.http is not None:
            self.http.shutdown()
            # Close the listening socket only: request threads are daemons and end with their
            # connection (IO_TIMEOUT_S at most); nothing here waits for them.
            self.http.socket.close()
            self.http = None
        if self.replica is not None:
            self.replica.close()
        if self._events is not None:
            self._events.close()
        self._probe.close()
        self.sock.close()
        release(self.ctx)
        self.ctx.term()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _log_stall(self, now: float) -> None:
        """Say once when what Nimbus has read falls ``STALL_WARN_S`` behind, and again after
        it caught up: boards' silence is not judged past it meanwhile."""
        behind = now - self._heard_until if self._heard_until is not None else 0.0
        if behind > STALL_WARN_S and not self._stall_logged:
            log.warning(
                "nimbus has read what reached it only up to %.1f s ago (its own probe is late: its ZeroMQ I/O "
                "thread stalled or a backlog waits); no board is declared dead for silence past that",
                behind,
            )
        self._stall_logged = behind > STALL_WARN_S

    def _send_probe(self) -> None:
        """Send the loop's probe, stamped with the state's clock (see "Silence" above)."""
        self._probe_due = time.monotonic() + PROBE_S
        try:
            self._probe.send(PROBE_STAMP.pack(self.clock()), zmq.NOBLOCK)
        except zmq.Again:  # PROBE_HWM probes wait already: the I/O thread is stalled
            pass

    def _drain(self, due: float | None = None) -> bool:
        """Handle what the socket holds, at most ``DRAIN_AT_MOST`` messages and, with queued
        heartbeats, until the monotonic time ``due`` (the loop's next tick, probe or
        publication), so those happen on time under a steady stream; heartbeats in slices
        between reads (see "Requests before heartbeats" above). True when the socket was
        found empty and no heartbeat waits."""
        handled = 0
        while True:
            empty, n = self._read(DRAIN_AT_MOST - handled)
            handled += n
            if not self._beats:
                return empty
            if handled >= DRAIN_AT_MOST:
                return False
            started = time.perf_counter()
            end = started + BEATS_SLICE_S
            while self._beats and handled < DRAIN_AT_MOST:
                parts = self._beats.popleft()
                left = self._queued_from[parts[0]] - 1
                if left:
                    self._queued_from[parts[0]] = left
                else:
                    del self._queued_from[parts[0]]
                self._on_frames(parts)
                self._handled_n += 1
                handled += 1
                if time.perf_counter() >= end:
                    break
            self._owed_s = max(0.0, self._owed_s - (time.perf_counter() - started)) if self._beats else 0.0
            self._settle()
            if due is not None and time.monotonic() >= due:  # after one slice at least: progress
                return False

    def _read(self, at_most: int) -> tuple[bool, int]:
        """Read until the socket is empty (then True), ``at_most`` messages were handled, or
        ``BEATS_AT_MOST`` heartbeats wait: queue heartbeats, and what a peer sends behind a
        queued frame of its own; handle the rest now. Returns (found empty, handled)."""
        handled = 0
        while handled < at_most and len(self._beats) < BEATS_AT_MOST:
            try:
                parts = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                self._found_empty()
                return True, handled
            peer = parts[0]
            if peer == self._probe_id and len(parts) == 2 and len(parts[1]) == PROBE_STAMP.size:
                (stamp,) = PROBE_STAMP.unpack(parts[1])
                self._probe_read = stamp if self._probe_read is None else max(stamp, self._probe_read)
                continue
            if (
                peer in self._queued_from
                or parts[-1][: len(HEARTBEAT_HEAD)] == HEARTBEAT_HEAD
                or (self._beats and self._owed_s > 0.0)  # others had their share: wait in turn
            ):
                self._beats.append(parts)
                self._queued_from[peer] = self._queued_from.get(peer, 0) + 1
                self._queued_n += 1
                continue
            started = time.perf_counter()
            self._on_frames(parts)
            if self._beats:
                self._owed_s += time.perf_counter() - started
            handled += 1
        return False, handled

    def _found_empty(self) -> None:
        """The socket was found empty: what reached Nimbus before the newest probe read has
        been read, and is handled once the frames queued by now are (see "Silence" above).
        A stamp already marked keeps its earlier mark, which needs fewer frames handled."""
        stamp = self._probe_read
        if stamp is not None and (not self._marks or stamp > self._marks[-1][0]):
            if self._heard_until is None or stamp > self._heard_until:
                self._marks.append((stamp, self._queued_n))
        self._settle()

    def _settle(self) -> None:
        """Advance ``heard_until`` to the newest marked stamp whose frames have all been handled."""
        while self._marks and self._handled_n >= self._marks[0][1]:
            self._heard_until = self._marks.popleft()[0]

    def _on_frames(self, parts: list[bytes]) -> None:
        started, cpu = time.perf_counter(), time.thread_time()
        kind = self._on_frames_of(parts)
        self.loop_stats.step(kind, time.perf_counter() - started, time.thread_time() - cpu)

    def _on_frames_of(self, parts: list[bytes]) -> str:
        """Handle one message; the kind of step it was (its type, or the fault)."""
        if len(parts) == 3 and parts[1] == b"":
            self._req_peers.add(parts[0])
        elif len(parts) != 2:
            self._fault("envelope", f"{len(parts)} frame parts")
            return "bad_frame"
        peer, frame = parts[0], parts[-1]
        try:
            msg = decode(frame)
        except WireError as exc:
            self._fault(str(exc).split(":")[0], str(exc))
            return "bad_frame"
        if not isinstance(msg, READ_ONLY):
            self._wrote = True
        self._execute(self._apply(Received(peer, msg, self.clock())))
        return type(msg).__name__

    def _handle_local(self, peer: bytes, msg: Any) -> list[Send]:
        """A write from an HTTP thread; published before its caller is answered."""
        sends = self._apply(Received(peer, msg, self.clock()))
        self._publish()
        return sends

    def _apply(self, event: Event) -> list[Send]:
        """The sends of ``event`` due now: the state's (single Nimbus), the leading replica's
        (the rest follow its commit, see ``_pump``), or a follower's refusal."""
        self._changed = True
        if self.replica is None:
            return self.state.apply(event)
        try:
            if self.replica.leading:
                return self.replica.decide(event)
            if self.replica.loading:
                self.replica.hold(event)
                return []
            return self.replica.refusal(event.peer, event.msg) if isinstance(event, Received) else []
        except Exception:  # a bug must not stop the control plane (the state guards its own)
            self.state.counters["internal_errors"] += 1
            log.exception("internal error in the replica handling %s", type(event).__name__)
            return []

    def _pump(self) -> None:
        """A replica: carry out what Raft committed, and send what waited for it."""
        if self.replica is None:
            return
        try:
            sends = self.replica.pump(self.clock())
        except Exception:  # as in _apply: logged and counted, the loop goes on
            self.state.counters["internal_errors"] += 1
            log.exception("internal error carrying out replicated entries")
            sends = []
        if self.replica.state is not None and self.replica.state is not self.state:
            self.state = self.replica.state  # what readers and counters see: the leader's state
            self._changed = True
        if sends:
            self._changed = True  # committed writes: readers see them with their answers
            self._execute(sends)

    def _publish(self) -> None:
        """Replace the snapshot readers see by a copy of the state as it is now."""
        started, cpu = time.monotonic(), time.thread_time()
        self.published = Snapshot.of(self.state, self.clock(), self.published)
        self.publications += 1
        self._changed = self._wrote = False
        self._published_mono = time.monotonic()
        took = self._published_mono - started
        self.loop_stats.step("publish", took, time.thread_time() - cpu)
        self._publish_every = max(PUBLISH_S, took / PUBLISH_COST_SHARE)

    def _fault(self, kind: str, detail: str) -> None:
        self.state.counters["bad_frames"] += 1
        if kind not in self._logged_faults and len(self._logged_faults) < 100:
            self._logged_faults.add(kind)
            log.warning("dropped a bad frame: %s (further ones of this kind are only counted)", detail[:200])

    def _execute(self, commands: list[Send]) -> None:
        if self._wrote and any(isinstance(cmd.msg, ANSWERS) for cmd in commands):
            self._publish()  # a client that has its answer reads its own write over HTTP
        for cmd in commands:
            frame = self.encoder.encode(cmd.msg)
            frames = [cmd.peer, b"", frame] if cmd.peer in self._req_peers else [cmd.peer, frame]
            try:
                self.sock.send_multipart(frames, zmq.NOBLOCK)
            except zmq.ZMQError as exc:  # a full or vanished peer: the supervisor will resync
                log.debug("send to %r failed: %s", cmd.peer, exc)
