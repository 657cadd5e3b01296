"""The worker's sockets, and nothing else: the only part of a worker that imports ZeroMQ.

* a PULL bound on ``tcp://{host}:{port}`` (the slot) for tuple frames from other workers, its
  message size capped at ``MAX_DATA_FRAME_BYTES`` so one junk frame cannot take our memory;
* a DEALER (identity ``str(port)``) connected to the supervisor: updates in, heartbeats out;
* one PUSH per destination worker, opened on first use and closed once no task is routed
  there (``keep``).

Guarantees: no call blocks except ``wait``; ``send`` returns False (and keeps nothing) when a
peer's queue is full; a heartbeat the supervisor does not take now is dropped (the next one
carries the same cumulative counters). CURVE secures every socket when keys are given.

Asking a ZeroMQ socket whether a message waits (``getsockopt(EVENTS)``) costs about 4 us
here, a receive that finds nothing (``zmq.Again``) about 8 us, and the loop asks several
times a round. So each incoming socket remembers what ``EVENTS`` last said: once it said
"nothing", nothing more is asked of ZeroMQ until the socket's descriptor signals (one
``poll`` of both descriptors, under 1 us), which libzmq guarantees for the next message
arriving on a socket whose ``EVENTS`` reported none. Any other call on that socket (a
receive, a send on the DEALER) may consume that signal, so it forgets what it knew.
"""

from __future__ import annotations

import select
from collections.abc import Callable
from typing import cast

import zmq

from squall import security, wire
from squall.supervisor.transfer import MAX_DATA_FRAME_BYTES

# A plain int: ``events & zmq.POLLIN`` would go through the IntFlag's Python-level __rand__.
_POLLIN = int(zmq.POLLIN)
# What a socket's last ``EVENTS`` said, until a call on the socket makes it stale.
UNKNOWN, READY, QUIET = 0, 1, 2
# Frames ZeroMQ may queue per socket (each side) before sends are refused. Small on purpose:
# a frame carries up to a batch of tuples, and queued frames are RSS on a board.
DEFAULT_HWM = 100


class WorkerSockets:
    """A worker's PULL, DEALER and PUSH sockets; ``frames_received``/``bytes_received``
    count what the PULL took (well-formed or not)."""

    def __init__(
        self,
        host: str,
        port: int,
        supervisor_endpoint: str,
        keys_dir: str = "",
        hwm: int = DEFAULT_HWM,
        context: zmq.Context | None = None,
    ) -> None:
        """``context``: the ZeroMQ context to use and terminate at ``close`` (default: the
        process's shared one; a test running a worker in its own process passes its own)."""
        self.keys = security.load(keys_dir) if keys_dir else None
        self.ctx = context if context is not None else zmq.Context.instance()
        self.hwm = hwm
        self.frames_received = 0
        self.bytes_received = 0
        self.pull = self.ctx.socket(zmq.PULL)
        self.pull.setsockopt(zmq.LINGER, 0)
        self.pull.setsockopt(zmq.RCVHWM, hwm)
        self.pull.setsockopt(zmq.MAXMSGSIZE, MAX_DATA_FRAME_BYTES)
        security.secure_server(self.pull, self.keys)
        try:
            _bind(self.pull, host, port)
        except zmq.ZMQError:
            self.pull.close(linger=0)
            raise
        self.dealer = self.ctx.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.IDENTITY, str(port).encode())
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.setsockopt(zmq.MAXMSGSIZE, wire.limit_of("WorkerUpdate").frame_bytes)
        self.dealer.setsockopt(zmq.SNDHWM, 10)  # a dead supervisor must not make heartbeats pile up
        security.secure_client(self.dealer, self.keys)
        self.dealer.connect(supervisor_endpoint)
        self.pushes: dict[str, zmq.Socket] = {}
        # The sockets' file descriptors, to block on with a sub-millisecond timeout (ZeroMQ's
        # poll counts whole milliseconds, too coarse for a spout paced at 1,000 tuples/s).
        self._pull_fd, self._dealer_fd = self.pull.getsockopt(zmq.FD), self.dealer.getsockopt(zmq.FD)
        self._wake_fds = [self._pull_fd, self._dealer_fd]
        self._signals = select.poll()  # "has a descriptor signalled?" without blocking
        for fd in self._wake_fds:
            self._signals.register(fd, select.POLLIN)
        self._pull_state = self._dealer_state = UNKNOWN
        self.events_asked = 0  # ``EVENTS`` queries made of ZeroMQ (each about 4 us)

    # -- the data plane ----------------------------------------------------------------

    def send(self, endpoint: str, frame: bytes) -> bool:
        """Queue ``frame`` for the worker at ``endpoint`` ("host:port"); False if it cannot
        take it now."""
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

    def keep(self, endpoints: set[str]) -> None:
        """Close the PUSH sockets of endpoints no task is routed to any more."""
        for endpoint in set(self.pushes) - endpoints:
            self.pushes.pop(endpoint).close(linger=100)

    def _signalled(self, fd: int) -> bool:
        """The descriptor of a socket whose ``EVENTS`` said "nothing" has signalled since."""
        return any(ready == fd for ready, _ in self._signals.poll(0))

    def _ready(self, sock: zmq.Socket) -> bool:
        self.events_asked += 1
        return bool(cast(int, sock.getsockopt(zmq.EVENTS)) & _POLLIN)

    def data_waiting(self) -> bool:
        """A frame waits on the PULL (asked of ZeroMQ only when it may have changed)."""
        state = self._pull_state
        if state == READY:
            return True
        if state == QUIET and not self._signalled(self._pull_fd):
            return False
        ready = self._ready(self.pull)
        self._pull_state = READY if ready else QUIET
        return ready

    def receive_data(self, deliver: Callable[[bytes], tuple[int, int]], limit: int, max_items: int) -> tuple[int, int]:
        """Hand waiting frames to ``deliver``, up to ``limit`` frames and stopping once it
        has returned ``max_items`` items; returns the sums of what it returned (items
        delivered, bad)."""
        pull = self.pull
        got = bad = 0
        state = self._pull_state
        for _ in range(limit):
            if state != READY:
                if state == QUIET and not self._signalled(self._pull_fd):
                    break
                if not self._ready(pull):
                    state = QUIET
                    break
            try:
                frame = pull.recv(zmq.NOBLOCK)
            except zmq.Again:  # not after EVENTS said a message waits; kept as a safety net
                state = QUIET
                break
            state = UNKNOWN
            self.frames_received += 1
            self.bytes_received += len(frame)
            n, b = deliver(frame)
            got += n
            bad += b
            if got >= max_items:
                break
        self._pull_state = state
        return got, bad

    # -- the supervisor ----------------------------------------------------------------

    def receive_control(self) -> list[bytes]:
        """Every frame waiting from the supervisor (the last part of each message)."""
        frames: list[bytes] = []
        if self._dealer_state == QUIET and not self._signalled(self._dealer_fd):
            return frames
        dealer = self.dealer
        while self._ready(dealer):  # no zmq.Again raised on every round
            try:
                frames.append(dealer.recv_multipart(zmq.NOBLOCK)[-1])
            except zmq.Again:
                break
        self._dealer_state = QUIET
        return frames

    def send_control(self, frame: bytes) -> None:
        self._dealer_state = UNKNOWN  # a send processes the socket's commands: its signal may be gone
        try:
            self.dealer.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            pass  # supervisor not reading; the next heartbeat carries the same cumulative counters

    # -- waiting and closing -----------------------------------------------------------

    def wait(self, seconds: float) -> None:
        """Block until a socket may have a message, at most ``seconds``.

        ZeroMQ's descriptors are edge-triggered: readable means "check the socket's events",
        so a socket that already holds a message returns at once, and ``select`` then waits
        for a change (a spurious wake-up only costs one more loop iteration). A socket whose
        ``EVENTS`` last said "nothing" is not asked again: its descriptor signals what comes."""
        if self.data_waiting():
            return
        if self._dealer_state != QUIET:
            if self._ready(self.dealer):
                self._dealer_state = READY
                return
            self._dealer_state = QUIET
        select.select(self._wake_fds, [], [], seconds)

    def close(self) -> None:
        for sock in self.pushes.values():
            sock.close(linger=200)  # let the last batches leave; bounded so exit stays prompt
        self.pull.close(linger=0)
        self.dealer.close(linger=100)
        security.release(self.ctx)
        self.ctx.term()


def _bind(sock: zmq.Socket, host: str, port: int) -> None:
    try:
        sock.bind(f"tcp://{host}:{port}")
    except zmq.ZMQError as exc:
        if exc.errno == zmq.EADDRINUSE:
            raise
        # ``host`` may be a name ZeroMQ cannot bind to; the port is what identifies the slot.
        sock.bind(f"tcp://*:{port}")
