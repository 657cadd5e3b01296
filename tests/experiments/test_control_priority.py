"""Control traffic on a saturated board link: with the mark (the default), the board's
heartbeats pass its bulk data and Nimbus never declares it lost; without it, the same run
starves them. Skipped without root (the testbed needs it).

One board on a 1 Mbit/s link sends bulk TCP to a sink on the bridge for three times Nimbus's
board timeout, while its supervisor heartbeats over the same link. Each run records, from
Nimbus's own view: every "declared dead" in its log, and the longest gap between two
heartbeats it took in (the board's ``last_seen``, polled from the host side of the link,
which the bulk data does not cross). The link's class counters show where the packets went.

Then, on the marked testbed, a marked bulk transfer (what a migration's snapshots are on the
control connection) competes with the unmarked one: it gets most of the link, and the data
keeps its floor.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from squall.control_mark import CS5, tos_byte
from squall.experiments import measure
from squall.experiments.boards import parse_boards
from squall.experiments.netns import BEST_EFFORT_CLASS, PRIORITY_CLASS
from squall.experiments.testbed import Testbed
from squall.ports import free_port
from tests.experiments.testbed_helpers import SUBNET, needs_testbed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

BOARD = parse_boards([{"id": "slow", "class": "pi5", "link_mbit": 1, "delay_ms": 0, "jitter_ms": 0}])
BOARD_TIMEOUT_S = 5.0  # Nimbus's default nimbus.supervisor.timeout.secs
SATURATE_S = 3 * BOARD_TIMEOUT_S
CONTEND_S = 6.0  # marked against unmarked bulk; the shares are read over its last 4 s
BULK_CONNECTIONS = 4

# Runs in the board's namespace: n connections writing as fast as the link takes them, for
# the given seconds, with the given TOS byte (0: best effort, like the data plane).
BULK_SENDER = """
import socket, sys, time
host, port, seconds, n, tos = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
conns = []
for _ in range(n):
    c = socket.socket()
    c.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
    c.connect((host, port))
    conns.append(c)
for c in conns:
    c.setblocking(False)
chunk, end = b"x" * 65536, time.monotonic() + seconds
while time.monotonic() < end:
    for c in conns:
        try:
            c.send(chunk)
        except BlockingIOError:
            pass
    time.sleep(0.001)
"""


@dataclass
class Run:
    declared_dead: int  # times Nimbus declared the board dead (its log)
    longest_gap_s: float  # longest time between two heartbeats Nimbus took in (registrations count)
    heartbeats: int  # distinct arrivals seen while saturated, and the first one after
    link_util: float  # the board's uplink use while the sender ran, share of its rate (as experiments count it)
    priority_bytes: int  # what the uplink's priority class sent during the run
    best_effort_dropped: int  # packets the uplink's best-effort class dropped during the run


@contextmanager
def sink(address: str) -> Iterator[int]:
    """A TCP sink on ``address`` (the bridge) that reads and discards; yields its port."""
    server = socket.create_server((address, 0))
    server.settimeout(0.2)
    done = threading.Event()

    def drain(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(0.5)
            while not done.is_set():
                try:
                    if not conn.recv(1 << 16):
                        return
                except TimeoutError:
                    continue
                except OSError:
                    return

    def accept() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=drain, args=(conn,), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield server.getsockname()[1]
    finally:
        done.set()
        acceptor.join(5)
        server.close()


def bulk(tb: Testbed, port: int, seconds: float, connections: int, tos: int = 0) -> subprocess.Popen[bytes]:
    """Bulk TCP from the board to the sink on ``port``, in the board's namespace."""
    ns = tb.namespace_of(tb.boards[0])
    args = [tb.bridge_address, str(port), str(seconds), str(connections), str(tos)]
    return subprocess.Popen(["nsenter", f"--net=/var/run/netns/{ns}", sys.executable, "-c", BULK_SENDER, *args])


def heartbeats_under_bulk(tb: Testbed, port: int) -> Run:
    """The board's uplink saturated with best-effort bulk for ``SATURATE_S``; what Nimbus
    saw of the board's heartbeats meanwhile."""
    board = tb.boards[0]
    with tb.client() as client:
        classes0, links0 = tb.link_classes()[board.id]["up"], tb.link_counters()
        sender = bulk(tb, port, SATURATE_S, BULK_CONNECTIONS)
        try:
            t0 = time.monotonic()
            seen: list[float] = []
            while sender.poll() is None:
                [sup] = client.cluster()["supervisors"]
                if sup["last_seen"] is not None and (not seen or sup["last_seen"] != seen[-1]):
                    seen.append(sup["last_seen"])
                time.sleep(0.2)
            seconds, links1 = time.monotonic() - t0, tb.link_counters()
            assert sender.returncode == 0, "the bulk sender failed"
            # The link is free again: the next heartbeat ends the last silence of the run,
            # which Nimbus has judged by then (in time, or as a death in its log).
            deadline, last = time.monotonic() + 3 * BOARD_TIMEOUT_S, seen[-1] if seen else None
            while not seen or seen[-1] == last:
                assert time.monotonic() < deadline, "the board never heartbeat again after the bulk data"
                [sup] = client.cluster()["supervisors"]
                if sup["last_seen"] is not None and sup["last_seen"] != last:
                    seen.append(sup["last_seen"])
                time.sleep(0.2)
        finally:
            if sender.poll() is None:
                sender.kill()
                sender.wait()
    classes1 = tb.link_classes()[board.id]["up"]
    gaps = [b - a for a, b in zip(seen, seen[1:])]
    return Run(
        declared_dead=tb.log("nimbus").count(f"supervisor {board.id} declared dead"),
        longest_gap_s=max(gaps, default=float("inf")),
        heartbeats=len(seen),
        link_util=measure.link_utilisation(links0, links1, tb.link_mbit(), seconds)[board.id],
        priority_bytes=classes1[PRIORITY_CLASS]["bytes"] - classes0[PRIORITY_CLASS]["bytes"],
        best_effort_dropped=classes1[BEST_EFFORT_CLASS]["dropped"] - classes0[BEST_EFFORT_CLASS]["dropped"],
    )


def shares_under_contention(tb: Testbed, port: int) -> tuple[float, float]:
    """Marked (CS5) and unmarked bulk at once on the board's uplink: the share of the link's
    rate each class sent over the last 4 s of ``CONTEND_S``."""
    board = tb.boards[0]
    senders = [bulk(tb, port, CONTEND_S, BULK_CONNECTIONS), bulk(tb, port, CONTEND_S, 1, tos_byte(CS5))]
    try:
        time.sleep(CONTEND_S - 4.0)  # both flows past their start
        t0, c0 = time.monotonic(), tb.link_classes()[board.id]["up"]
        time.sleep(3.5)
        t1, c1 = time.monotonic(), tb.link_classes()[board.id]["up"]
    finally:
        for s in senders:
            s.wait(30)
    rate_bytes = board.link_mbit * 1e6 / 8 * (t1 - t0)
    return tuple((c1[c]["bytes"] - c0[c]["bytes"]) / rate_bytes for c in (PRIORITY_CLASS, BEST_EFFORT_CLASS))  # type: ignore[return-value]


def test_marked_heartbeats_pass_a_saturated_link_and_unmarked_ones_starve(clean_prefix: str) -> None:
    needs_testbed()
    with Testbed(BOARD, prefix=clean_prefix, subnet=SUBNET, port=free_port()) as tb, sink(tb.bridge_address) as port:
        marked = heartbeats_under_bulk(tb, port)
        priority_share, best_effort_share = shares_under_contention(tb, port)
    with Testbed(BOARD, prefix=clean_prefix, subnet=SUBNET, port=free_port(), control_dscp=0) as tb:
        with sink(tb.bridge_address) as port:
            unmarked = heartbeats_under_bulk(tb, port)
    print(f"\nmarked (CS5):   {marked}\nunmarked (0):   {unmarked}")
    print(
        f"marked bulk against unmarked: priority {priority_share:.2f}, best effort {best_effort_share:.2f} of the link"
    )
    for run in (marked, unmarked):  # the bulk data really filled the link, both times
        assert run.link_util > 0.85 and run.best_effort_dropped > 0
    assert marked.priority_bytes > 0 and unmarked.priority_bytes == 0
    assert marked.declared_dead == 0
    assert marked.longest_gap_s < BOARD_TIMEOUT_S / 2  # a heartbeat a second, none held back for long
    # The same run without the mark: the board is lost, or at least went silent for half
    # the timeout (seen: lost every time, 8-12 heartbeats in 15 s where the marked run had 16-17).
    assert unmarked.declared_dead >= 1 or unmarked.longest_gap_s > BOARD_TIMEOUT_S / 2
    # A big marked transfer takes most of a saturated link (the priority class is served
    # first); the data keep their floor (10% guaranteed).
    assert priority_share > 0.7 and 0.05 < best_effort_share < 0.25
    assert priority_share + best_effort_share < 1.05
