"""EMULATED per-link delay for the testbed: a userspace TCP relay in each board's namespace.

The kernel here has no netem, so a board link's delay cannot be added by a qdisc. Instead,
in each board's namespace, an iptables ``nat OUTPUT`` rule REDIRECTs every TCP connection
the board opens *to another board's address* into this relay (Nimbus's address is not
redirected: the control plane stays direct). The relay reads the connection's original
destination (``SO_ORIGINAL_DST``), opens its own connection there (marked with ``SO_MARK``
so the rule lets it through) and forwards every chunk it reads after the delay of the link
the chunk leaves by:

* board A -> board B (A's uplink): ``delay_ms`` of A, plus jitter;
* board B -> board A on the same connection (B's uplink): ``delay_ms`` of B, plus jitter.

Every connection between two boards goes through exactly one relay (its opener's), so a
request and its reply cross two links: round trip = delay(A) + delay(B), that is 2 x delay
between boards of one link class. The data plane (workers' ZeroMQ) is untouched: a worker
connects to a peer's address as always and never knows.

What this emulation is, and is not:

* it delays **TCP payload chunks**, in order, not packets: a chunk read at t leaves at
  ``max(t + delay + jitter, previous chunk's departure)`` — a FIFO link keeps order, as real
  links and TCP do; jitter is uniform in ``[-jitter, +jitter]``, clipped at zero delay
  (netem's default distribution is uniform too);
* TCP handshakes and ACKs are local to each side of the relay and are not delayed; only
  data is. Throughput limits stay with the tc HTB qdiscs on the veth links, which the
  relay's outgoing connection still crosses;
* the relay is a Python process outside the boards' CPU caps (it plays the network, not
  the board); it adds its own forwarding cost (tens of microseconds per chunk on an idle
  machine, more on a loaded one), so delays well below a millisecond are not faithful;
  ``squall testbed status`` measures what the links really add.

Guarantees: a connection whose destination refuses is closed on the opener's side (as a
refused connect would be, one step later); a failure on one connection never stops the
relay; the relay exits on SIGTERM. It also serves a TCP echo on the board's own address so
``measure_rtt`` (run in another board's namespace) can time a round trip through the links.

Run as ``python -m squall.experiments.linkdelay serve ...`` by the testbed; see
:func:`serve_main` and :func:`ping_main`.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import signal
import socket
import statistics
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
RELAY_MARK = 0x5153  # "SQ": the relay's own connections carry it, so the REDIRECT rule skips them
CHUNK = 65536
ECHO_MESSAGE = 32  # bytes per echo round trip: one small segment, like a tuple batch header


@dataclass(frozen=True)
class LinkDelay:
    """One board link's emulated one-way delay and jitter, in milliseconds."""

    delay_ms: float
    jitter_ms: float = 0.0

    def sample_s(self, rng: random.Random) -> float:
        jitter = rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms > 0 else 0.0
        return max(0.0, self.delay_ms + jitter) / 1e3


def original_destination(conn: socket.socket) -> tuple[str, int]:
    """Where a REDIRECTed connection was going (netfilter's SO_ORIGINAL_DST, a sockaddr_in)."""
    raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, packed = struct.unpack_from("!2xH4s", raw)
    return socket.inet_ntoa(packed), port


class DelayLine:
    """One direction of one connection: chunks read from ``src`` leave on ``dst`` after the
    link's delay, in order. Two threads: a reader stamps departure times, a writer waits for
    them (``time.sleep`` is precise to tens of microseconds, unlike an event loop's timer)."""

    def __init__(
        self, src: socket.socket, dst: socket.socket, link: LinkDelay, rng: random.Random, on_done: Callable[[], None]
    ) -> None:
        self.src, self.dst, self.link, self.rng = src, dst, link, rng
        self.items: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
        self.on_done = on_done
        self.bytes = 0

    def start(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self) -> None:
        last = 0.0
        try:
            while True:
                data = self.src.recv(CHUNK)
                if not data:
                    break
                last = max(time.monotonic() + self.link.sample_s(self.rng), last)
                self.items.put((last, data))
        except OSError:
            pass
        self.items.put(None)

    def _write(self) -> None:
        try:
            while True:
                item = self.items.get()
                if item is None:
                    self.dst.shutdown(socket.SHUT_WR)  # the sender closed: pass the FIN on
                    break
                due, data = item
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                self.dst.sendall(data)
                self.bytes += len(data)
        except OSError:
            for s in (self.src, self.dst):  # a broken side ends the whole connection
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.on_done()


class Relay:
    """Accepts REDIRECTed connections on ``listen`` and relays them with the delays of
    ``links`` (board address -> LinkDelay; ``own`` is this board's address)."""

    def __init__(self, own: str, links: dict[str, LinkDelay], seed: int | None = None) -> None:
        if own not in links:
            raise ValueError(f"the relay's own address {own} has no link delay")
        self.own, self.links = own, links
        self.rng = random.Random(seed)
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.echo = socket.create_server((own, 0), backlog=16)
        self.connections = 0
        self.failures = 0

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    @property
    def echo_port(self) -> int:
        return self.echo.getsockname()[1]

    def serve_forever(self) -> None:
        threading.Thread(target=self._echo_loop, daemon=True).start()
        while True:
            conn, _ = self.listener.accept()
            # Connect in a thread of its own: a peer that does not answer must not hold up
            # the connections behind it.
            threading.Thread(target=self._relay_or_close, args=(conn,), daemon=True).start()

    def _relay_or_close(self, conn: socket.socket) -> None:
        try:
            self._relay(conn)
        except OSError:
            self.failures += 1
            conn.close()

    def _relay(self, conn: socket.socket) -> None:
        host, port = original_destination(conn)
        peer_link = self.links.get(host)
        if peer_link is None:  # only other boards are redirected; anything else comes back undelayed
            peer_link = LinkDelay(0.0)
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        upstream.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, RELAY_MARK)
        upstream.settimeout(10.0)
        try:
            upstream.connect((host, port))
        except OSError:
            upstream.close()
            raise
        upstream.settimeout(None)
        for s in (conn, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connections += 1
        open_lines = [2]
        lock = threading.Lock()

        def done() -> None:
            with lock:
                open_lines[0] -= 1
                if open_lines[0] == 0:
                    conn.close()
                    upstream.close()

        DelayLine(conn, upstream, self.links[self.own], self.rng, done).start()  # out on our uplink
        DelayLine(upstream, conn, peer_link, self.rng, done).start()  # back on the peer's uplink

    def _echo_loop(self) -> None:
        while True:
            conn, _ = self.echo.accept()
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()


def _echo(conn: socket.socket) -> None:
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while data := conn.recv(CHUNK):
                conn.sendall(data)
        except OSError:
            pass


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            raise ConnectionError("echo connection closed")
        buf += part
    return buf


def measure_rtt(host: str, port: int, count: int = 20, timeout_s: float = 5.0) -> list[float]:
    """Round trips (seconds) of ``count`` small messages to the echo at host:port, one at a
    time over one TCP connection. Run inside a board's namespace, they cross the emulated
    links (the relay of this board delays the request, then the reply)."""
    rtts = []
    with socket.create_connection((host, port), timeout=timeout_s) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        msg = b"x" * ECHO_MESSAGE
        for i in range(count + 1):
            t0 = time.perf_counter()
            s.sendall(msg)
            _recv_exactly(s, len(msg))
            if i:  # the first one also pays the relay's connect to the peer
                rtts.append(time.perf_counter() - t0)
    return rtts


def parse_links(text: str) -> dict[str, LinkDelay]:
    """``addr=delay_ms/jitter_ms,...`` (the testbed's command line) -> links."""
    links = {}
    for item in text.split(","):
        addr, _, spec = item.partition("=")
        delay, _, jitter = spec.partition("/")
        links[addr.strip()] = LinkDelay(float(delay), float(jitter or 0.0))
    return links


def format_links(links: dict[str, LinkDelay]) -> str:
    return ",".join(f"{a}={d.delay_ms:g}/{d.jitter_ms:g}" for a, d in links.items())


def serve_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="linkdelay serve", description="EMULATED link delay relay (testbed)")
    p.add_argument("--own", required=True, help="this board's address")
    p.add_argument("--links", required=True, help="addr=delay_ms/jitter_ms,... for every board")
    p.add_argument("--ports-file", type=Path, required=True, help="where to write the relay and echo ports")
    a = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # The relay plays the network, which does not wait behind the boards' CPUs: a higher
    # priority keeps its wake-ups on time when the machine is busy (it only sleeps and copies).
    try:
        os.nice(-10)
    except OSError:
        pass  # not root: the emulation is then less precise under load (status shows by how much)
    relay = Relay(a.own, parse_links(a.links))
    tmp = a.ports_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"relay": relay.port, "echo": relay.echo_port}))
    tmp.replace(a.ports_file)
    print(
        f"EMULATED link delay relay for {a.own}: {format_links(relay.links)}; relay port {relay.port}, "
        f"echo port {relay.echo_port}",
        flush=True,
    )
    relay.serve_forever()
    return 0


def ping_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="linkdelay ping")
    p.add_argument("target", help="host:port of a board's echo")
    p.add_argument("--count", type=int, default=20)
    a = p.parse_args(argv)
    try:
        os.nice(-10)  # the measuring client, like the relays, should not wait behind the boards' CPUs
    except OSError:
        pass
    host, _, port = a.target.rpartition(":")
    rtts = measure_rtt(host, int(port), a.count)
    print(
        json.dumps(
            {
                "median_ms": statistics.median(rtts) * 1e3,
                "min_ms": min(rtts) * 1e3,
                "max_ms": max(rtts) * 1e3,
                "count": len(rtts),
            }
        )
    )
    return 0


if __name__ == "__main__":
    verb, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    sys.exit(
        {"serve": serve_main, "ping": ping_main}.get(
            verb, lambda _: print("usage: python -m squall.experiments.linkdelay serve|ping ...", file=sys.stderr) or 2
        )(rest)
    )
