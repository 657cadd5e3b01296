"""The floor under two-worker latency: a paced ping-pong between two processes with no Squall
in it, over ZeroMQ PUSH/PULL (as the data plane) and over a plain TCP socket.

    python benchmarks/worker_transport_floor.py [--count 3000] [--gap-ms 1]

Each side blocks as a worker's loop does (``select`` on the socket's descriptor) and answers
at once; a round trip is two crossings. With ``--gap-ms 1`` (one message a millisecond, the
rate of the latency figure) the threads sleep between messages, so every crossing pays its
thread wake-ups; ``--gap-ms 0`` is the back-to-back round trip usually quoted. ZeroMQ's
crossing wakes two more threads than TCP's (the sender's and the receiver's I/O threads).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import select
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from squall.ports import free_port  # noqa: E402
from squall.supervisor.runtime.stats import percentile  # noqa: E402

STOP = b"stop"


def _zmq_wait(sock: zmq.Socket, fd: int) -> None:
    while not (int(sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN):
        select.select([fd], [], [], 0.2)


def _zmq_echo(mine: int, theirs: int) -> None:
    ctx = zmq.Context()
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    pull.bind(f"tcp://127.0.0.1:{mine}")
    push.connect(f"tcp://127.0.0.1:{theirs}")
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


def zmq_round_trips(count: int, gap_s: float) -> list[float]:
    mine, theirs = free_port(), free_port()
    peer = mp.Process(target=_zmq_echo, args=(theirs, mine))
    peer.start()
    ctx = zmq.Context()
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    pull.bind(f"tcp://127.0.0.1:{mine}")
    push.connect(f"tcp://127.0.0.1:{theirs}")
    fd = pull.getsockopt(zmq.FD)
    msg = b"x" * 60  # about a one-tuple frame

    def round_trip() -> None:
        push.send(msg)
        _zmq_wait(pull, fd)
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
    args = ap.parse_args()
    gap = args.gap_ms / 1e3
    for name, run in (("ZeroMQ PUSH/PULL", zmq_round_trips), ("plain TCP", tcp_round_trips)):
        us = run(args.count, gap)
        print(
            f"{name:<17} round trip, one every {args.gap_ms:g} ms: p50 {percentile(us, 50):6.0f} us  "
            f"p99 {percentile(us, 99):6.0f} us  ({len(us)} round trips)"
        )


if __name__ == "__main__":
    main()
