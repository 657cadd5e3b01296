"""How far an empty socket over-counts boards' silence, and how far Nimbus's probe does.

    python benchmarks/heard_lag.py [--boards 500] [--secs 15] [--push-kb 90] [--push-every 0.5]
                                   [--burners 4] [--boards-nice -15]

A ROUTER loop shaped like Nimbus's (``nimbus/server.py``: poll, read until the socket is
empty, push to every board now and then) keeps two answers to "up to when has everything
that reached me been read?" side by side:

* **empty socket** (the server's rule before the probe): the moment the loop last found its
  socket empty;
* **probe** (the rule now): the stamp of the newest probe the loop sent itself through its
  own socket (every ``PROBE_S``, from a DEALER of the same context), taken when the socket
  was next found empty.

Each message a board sends carries the time it was sent. A message read after the rule
said "heard until T", though it was sent before T, is silence over-counted by ``T - sent``:
the figures are how many messages that happened to and by how much (p50, p99, max).

The boards are plain TCP sockets speaking ZMTP 3.0 (NULL mechanism), not ZeroMQ sockets:
on loopback a ``send`` puts the bytes into the router's kernel before it returns, so a delay
after the stamp is the router's own (its I/O thread, its loop), not a board's I/O thread.
``--burners`` processes spin on the CPUs; ``--push-kb``/``--push-every`` make the router's
I/O thread write a frame of that size to every board (Nimbus's pushes: ~90 KB each at 5,000
executors). ``--kernel`` samples, each time the socket is found empty (at most every 50 ms),
how many of the router's TCP connections held unread bytes in the kernel (``/proc/net/tcp``).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from squall.nimbus.server import PROBE_S  # noqa: E402

STAMP = struct.Struct("!Qd")  # a board's message: sequence number, time sent (monotonic)


def zmtp_frame(body: bytes, command: bool = False) -> bytes:
    flags = 0x04 if command else 0x00
    if len(body) < 256:
        return bytes([flags, len(body)]) + body
    return bytes([flags | 0x02]) + struct.pack("!Q", len(body)) + body


def zmtp_dealer(host: str, port: int) -> socket.socket:
    """A TCP connection that a ROUTER takes for a DEALER (ZMTP 3.0, NULL mechanism)."""
    s = socket.create_connection((host, port))
    s.sendall(b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" * 32)
    greeting = b""
    while len(greeting) < 64:
        greeting += s.recv(64 - len(greeting))
    s.sendall(zmtp_frame(b"\x05READY\x0bSocket-Type" + struct.pack("!I", 6) + b"DEALER", command=True))
    s.setblocking(False)
    return s


def boards(port: int, n: int, period_s: float, ready: Any, stop: Any, pad: int, nice: int) -> None:
    if nice:
        os.nice(nice)
    socks = [zmtp_dealer("127.0.0.1", port) for _ in range(n)]
    ready.put(n)
    due = [time.monotonic() + random.random() * period_s for _ in socks]
    header = zmtp_frame(b"x" * (STAMP.size + pad))[: -(STAMP.size + pad)]
    body, seq = b"x" * pad, 0
    while not stop.is_set():
        now = time.monotonic()
        for i, s in enumerate(socks):
            if now >= due[i]:
                seq += 1
                try:
                    s.send(header + STAMP.pack(seq, time.monotonic()) + body)
                except BlockingIOError:  # the router reads nothing: its buffer is full
                    pass
                due[i] += period_s
            try:
                while s.recv(1 << 20):  # pushes and the router's handshake: read and dropped
                    pass
            except BlockingIOError:
                pass
        time.sleep(0.005)
    for s in socks:
        s.close()


def burn(stop: Any) -> None:
    while not stop.is_set():
        pass


def kernel_backlog(port: int) -> int:
    """How many of the router's TCP connections (local port ``port``) hold unread bytes."""
    tail, held = f":{port:04X}", 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1].endswith(tail) and int(fields[4].split(":")[1], 16):
                held += 1
    return held


def spread(xs: list[float]) -> str:
    """p50 / p99 / max of ``xs`` (seconds), in ms."""
    xs = sorted(xs)
    at = [xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 for q in (0.5, 0.99, 1.0)]
    return "p50 {:.1f} / p99 {:.1f} / max {:.1f} ms".format(*at)


def over_counted(xs: list[float]) -> str:
    return f"{len(xs)} messages, over-counted by {spread(xs)}" if xs else "0 messages over-counted"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", type=int, default=500)
    ap.add_argument("--procs", type=int, default=3, help="processes running the boards")
    ap.add_argument("--secs", type=float, default=15.0)
    ap.add_argument("--heartbeat", type=float, default=1.0)
    ap.add_argument("--pad", type=int, default=2000, help="bytes of a heartbeat beyond its stamp")
    ap.add_argument("--push-kb", type=int, default=90)
    ap.add_argument("--push-every", type=float, default=0.5)
    ap.add_argument("--burners", type=int, default=0)
    ap.add_argument("--boards-nice", type=int, default=0)
    ap.add_argument("--kernel", action="store_true")
    a = ap.parse_args()

    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    probe = ctx.socket(zmq.DEALER)
    probe.setsockopt(zmq.LINGER, 0)
    probe.setsockopt(zmq.ROUTING_ID, b"probe")
    probe.setsockopt(zmq.SNDHWM, 100)
    probe.connect(f"tcp://127.0.0.1:{port}")

    spawn = mp.get_context("spawn")
    ready, stop = spawn.Queue(), spawn.Event()
    share = a.boards // a.procs
    kids = [
        spawn.Process(target=boards, args=(port, share, a.heartbeat, ready, stop, a.pad, a.boards_nice))
        for _ in range(a.procs)
    ]
    for kid in kids:
        kid.start()
    for _ in kids:  # every board connected (ZeroMQ's I/O thread answers their handshakes)
        ready.get(timeout=120)
    burners = [spawn.Process(target=burn, args=(stop,)) for _ in range(a.burners)]
    for kid in burners:
        kid.start()

    warm_s = 3.0  # boards' first heartbeats, the burners' start: not counted
    start = time.monotonic()
    stop_at = start + warm_s + a.secs
    poller = zmq.Poller()
    poller.register(router, zmq.POLLIN)
    push = b"p" * (a.push_kb * 1024)
    peers: set[bytes] = set()
    emptied: float | None = None  # the empty-socket rule's "heard until"
    probe_read: float | None = None
    heard: float | None = None  # the probe rule's
    over_empty: list[float] = []
    over_probe: list[float] = []
    transit: list[float] = []
    probe_due = next_push = start + warm_s
    last_sample, samples, held = 0.0, 0, 0
    while time.monotonic() < stop_at:
        now = time.monotonic()
        if now >= probe_due:
            probe_due = now + PROBE_S
            try:
                probe.send(struct.pack("!d", now), zmq.NOBLOCK)
            except zmq.Again:
                pass
        ready = dict(poller.poll(max(0, int((probe_due - time.monotonic()) * 1000) + 1)))
        while router in ready:
            try:
                peer, frame = router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            if peer == b"probe":
                probe_read = struct.unpack("!d", frame)[0]
                continue
            peers.add(peer)
            read_at = time.monotonic()
            _seq, sent = STAMP.unpack(frame[: STAMP.size])
            if read_at - start < warm_s:
                continue
            transit.append(read_at - sent)
            if emptied is not None and emptied > sent:
                over_empty.append(emptied - sent)
            if heard is not None and heard > sent:
                over_probe.append(heard - sent)
        emptied, heard = time.monotonic(), probe_read  # found empty (or not readable at the poll)
        if a.kernel and emptied - last_sample > 0.05:
            last_sample, samples = emptied, samples + 1
            held = max(held, kernel_backlog(port))
        if a.push_kb and time.monotonic() >= next_push:
            next_push += a.push_every
            for peer in peers:
                try:
                    router.send_multipart([peer, push], zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass
    stop.set()
    for kid in kids + burners:
        kid.join()
    probe.close()
    router.close()
    ctx.term()

    print(
        f"{a.boards} boards every {a.heartbeat:g} s, pushes of {a.push_kb} KB to each every {a.push_every:g} s, "
        f"{a.burners} burners, {a.secs:g} s; load {os.getloadavg()[0]:.1f}"
    )
    print(f"  read {len(transit)} messages; from send to read: {spread(transit) if transit else '-'}")
    print(f"  empty socket: {over_counted(over_empty)}")
    print(f"  probe:        {over_counted(over_probe)}")
    if a.kernel:
        print(f"  found empty, at most {held} connections held unread bytes in the kernel ({samples} samples)")


if __name__ == "__main__":
    main()
