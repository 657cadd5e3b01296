"""The floor under two-worker latency: a paced ping-pong between two processes with no Squall
in it, over ZeroMQ PUSH/PULL (as the data plane) and over a plain TCP socket.

    python benchmarks/worker_transport_floor.py [--count 3000] [--gap-ms 1]
    python benchmarks/worker_transport_floor.py --zmq-only --spin-us 0 300 --io-threads 1 2 \
        --sched fifo --transport tcp ipc --rounds 2

The ZeroMQ options compared (every combination given, alternated ``--rounds`` times):
``--spin-us`` the measuring side polls its PULL without blocking this long before it blocks
(as a worker does with ``squall.worker.spin.us`` while its tree is in flight; the echoing
side, like a worker between paced tuples, always blocks); ``--io-threads`` ZeroMQ I/O threads
per context; ``--sched`` ``fifo`` gives both processes' I/O threads ``SCHED_FIFO`` priority
``--priority`` (``THREAD_SCHED_POLICY``/``THREAD_PRIORITY``: root only); ``--transport ipc``
a Unix-domain socket instead of loopback TCP (workers on one board).

Each side blocks as a worker's loop does (``select`` on the socket's descriptor) and answers
at once; a round trip is two crossings. With ``--gap-ms 1`` (one message a millisecond, the
rate of the latency figure) the threads sleep between messages, so every crossing pays its
thread wake-ups; ``--gap-ms 0`` is the back-to-back round trip usually quoted. ZeroMQ's
crossing wakes two more threads than TCP's (the sender's and the receiver's I/O threads).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import select
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from squall.ports import free_port  # noqa: E402
from squall.supervisor.runtime.stats import percentile  # noqa: E402

STOP = b"stop"


@dataclass(frozen=True)
class ZmqOptions:
    """One ZeroMQ set-up of the ping-pong (see the module's docstring)."""

    spin_us: float = 0.0
    io_threads: int = 1
    sched: str = "other"  # or "fifo"
    priority: int = 10
    transport: str = "tcp"  # or "ipc"
    spin_yield: bool = False  # yield the CPU (sched_yield) between the spin's polls

    def label(self) -> str:
        sched = f"FIFO {self.priority}" if self.sched == "fifo" else "default sched"
        spin = f"spin {self.spin_us:g} us" + (" yielding" if self.spin_yield and self.spin_us else "")
        return f"{self.transport}, {self.io_threads} I/O thread(s), {sched}, {spin}"

    def context(self) -> zmq.Context:
        ctx = zmq.Context(io_threads=self.io_threads)
        if self.sched == "fifo":
            ctx.set(zmq.THREAD_SCHED_POLICY, os.SCHED_FIFO)
            ctx.set(zmq.THREAD_PRIORITY, self.priority)
        return ctx

    def endpoint(self, port: int, folder: str) -> str:
        return f"ipc://{folder}/{port}.ipc" if self.transport == "ipc" else f"tcp://127.0.0.1:{port}"


def _zmq_wait(sock: zmq.Socket, fd: int, spin_s: float = 0.0, spin_yield: bool = False) -> None:
    if spin_s:
        end = time.perf_counter() + spin_s
        while time.perf_counter() < end:
            if int(sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
                return
            if spin_yield:
                os.sched_yield()
    while not (int(sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN):
        select.select([fd], [], [], 0.2)


def _zmq_echo(mine: int, theirs: int, opts: ZmqOptions = ZmqOptions(), folder: str = "") -> None:
    ctx = opts.context()
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    pull.bind(opts.endpoint(mine, folder))
    push.connect(opts.endpoint(theirs, folder))
    fd = pull.getsockopt(zmq.FD)
    while True:
        _zmq_wait(pull, fd)
        msg = pull.recv()
        if msg == STOP:
            break
        push.send(msg)
    ctx.destroy(linger=0)


def _tcp_echo(port: int) -> None:
    server = socket.create_server(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        select.select([conn], [], [], 0.2)
        msg = conn.recv(4096)
        if not msg or msg == STOP:
            break
        conn.sendall(msg)
    conn.close()
    server.close()


def _paced(count: int, gap_s: float, round_trip: Callable[[], None]) -> list[float]:
    """Microseconds of ``count`` round trips started ``gap_s`` apart."""
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        round_trip()
        out.append((time.perf_counter() - t0) * 1e6)
        while (left := t0 + gap_s - time.perf_counter()) > 0:
            select.select([], [], [], left)
    return out


def zmq_round_trips(count: int, gap_s: float, opts: ZmqOptions = ZmqOptions()) -> list[float]:
    mine, theirs = free_port(), free_port()
    with tempfile.TemporaryDirectory() as folder:
        peer = mp.Process(target=_zmq_echo, args=(theirs, mine, opts, folder))
        peer.start()
        ctx = opts.context()
        pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
        pull.bind(opts.endpoint(mine, folder))
        push.connect(opts.endpoint(theirs, folder))
        fd = pull.getsockopt(zmq.FD)
        msg = b"x" * 60  # about a one-tuple frame
        spin_s = opts.spin_us / 1e6

        def round_trip() -> None:
            push.send(msg)
            _zmq_wait(pull, fd, spin_s, opts.spin_yield)
            pull.recv()

        try:
            _paced(100, gap_s, round_trip)  # connected and warm
            return _paced(count, gap_s, round_trip)
        finally:
            push.send(STOP)
            peer.join(10)
            ctx.destroy(linger=0)


def tcp_round_trips(count: int, gap_s: float) -> list[float]:
    port = free_port()
    peer = mp.Process(target=_tcp_echo, args=(port,))
    peer.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            conn = socket.create_connection(("127.0.0.1", port))
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg = b"x" * 60

    def round_trip() -> None:
        conn.sendall(msg)
        select.select([conn], [], [], 1.0)
        conn.recv(4096)

    try:
        _paced(100, gap_s, round_trip)
        return _paced(count, gap_s, round_trip)
    finally:
        conn.sendall(STOP)
        peer.join(10)
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--gap-ms", type=float, default=1.0)
    ap.add_argument("--zmq-only", action="store_true", help="leave out plain TCP")
    ap.add_argument("--spin-us", type=float, nargs="*", default=[0.0])
    ap.add_argument("--io-threads", type=int, nargs="*", default=[1])
    ap.add_argument("--sched", choices=["other", "fifo"], nargs="*", default=["other"])
    ap.add_argument("--priority", type=int, default=10, help="SCHED_FIFO priority of the I/O threads")
    ap.add_argument("--transport", choices=["tcp", "ipc"], nargs="*", default=["tcp"])
    ap.add_argument("--spin-yield", action="store_true", help="also each spin with sched_yield between polls")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    gap = args.gap_ms / 1e3
    print(f"# load average {os.getloadavg()[0]:.1f}", flush=True)
    setups = [
        ZmqOptions(spin, threads, sched, args.priority, transport, yielding)
        for transport in args.transport
        for sched in args.sched
        for threads in args.io_threads
        for spin in args.spin_us
        for yielding in ([False, True] if args.spin_yield and spin else [False])
    ]
    for _ in range(args.rounds):
        for opts in setups:
            us = zmq_round_trips(args.count, gap, opts)
            print(
                f"ZeroMQ PUSH/PULL round trip, one every {args.gap_ms:g} ms, {opts.label()}: "
                f"p50 {percentile(us, 50):6.0f} us  p99 {percentile(us, 99):6.0f} us  "
                f"({len(us)} round trips, load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    if args.zmq_only:
        return
    for name, run in (("plain TCP", tcp_round_trips),):
        us = run(args.count, gap)
        print(
            f"{name:<17} round trip, one every {args.gap_ms:g} ms: p50 {percentile(us, 50):6.0f} us  "
            f"p99 {percentile(us, 99):6.0f} us  ({len(us)} round trips)"
        )


if __name__ == "__main__":
    main()
