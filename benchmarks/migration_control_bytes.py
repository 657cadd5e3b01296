"""Bytes on the boards' control links (supervisor <-> Nimbus) during one live migration of
executors with large state, on a local cluster (real processes on loopback), as a table.

    python benchmarks/migration_control_bytes.py [--state-kib 2048] [--down-mbit 0] [--runs 1]

Every supervisor reaches Nimbus through a TCP relay in this process that counts the bytes
each way (ZeroMQ's framing included: what a link carries) and, with ``--down-mbit``, passes
Nimbus -> board bytes at most that fast per board connection (a slow board link emulated in
user space; the up direction is not limited). A topology of a spout and two "holder" bolts
that each keep ``--state-kib`` of state (their ``snapshot()``) runs on 3 workers; one live
change takes it to 2 workers, so holders move with their state. Printed per run: bytes down
and up on all control links from the request until the links are quiet again (what the
migration queued has left, also after its end), the snapshots' bytes
(Nimbus's count, on a Squall that keeps it), registrations during the change (a board that
judged Nimbus silent registers again) and boards Nimbus declared lost, and the spouts' pause.

Before and after in one session: ``python benchmarks/against.py REV
benchmarks/migration_control_bytes.py ...`` runs it on REV's code. Loopback on a shared
machine: the byte counts do not depend on the load, the times do.
"""

from __future__ import annotations

import argparse
import re
import socket
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from squall.localcluster import LocalCluster

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also through benchmarks/against.py
from polling import wait as _wait  # noqa: E402

from squall.ports import free_port

TOPOLOGY = textwrap.dedent('''
    """A spout and bolts that hold a large state (benchmark topology)."""

    import time

    from squall import Bolt, Spout, Topology


    class Ticks(Spout):
        outputs = ["n"]

        def initialize(self, conf, ctx):
            self.n, self.next_at = 0, 0.0

        def next_tuple(self):
            now = time.monotonic()
            if now >= self.next_at:
                self.next_at = now + 0.01
                self.n += 1
                self.emit([self.n])


    class Holder(Bolt):
        outputs = []

        def initialize(self, conf, ctx):
            self.state = bytes([ctx.task % 251]) * int(conf["bench.state.bytes"])
            self.seen = 0

        def process(self, tup):
            self.seen += 1

        def snapshot(self):
            return self.state

        def restore(self, data):
            self.state = data


    class Holding(Topology):
        ticks = Ticks.spec(par=1)
        holders = Holder.spec(inputs=[ticks], par=4)
''')


class Relay:
    """A TCP relay to ``target`` that counts bytes each way; ``down_bytes_s`` (0: no limit)
    caps each connection's target -> client direction."""

    def __init__(self, target: tuple[str, int], down_bytes_s: float = 0.0) -> None:
        self.target, self.down_bytes_s = target, down_bytes_s
        self.down = self.up = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", free_port()))
        host, port = self._listener.getsockname()[:2]
        self.address = f"{host}:{port}"
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def read(self) -> tuple[int, int]:
        with self._lock:
            return self.down, self.up

    def close(self) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:  # Nimbus not up yet: the board's ZeroMQ connects again
                client.close()
                continue
            self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream, "up", 0.0), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, "down", self.down_bytes_s), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str, rate: float) -> None:
        started, passed = time.monotonic(), 0
        try:
            while True:
                data = src.recv(16384 if rate else 262144)
                if not data:
                    break
                if rate:  # the link's pace: this many bytes may have left by now
                    passed += len(data)
                    ahead = passed / rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
                    else:
                        started, passed = time.monotonic(), len(data)
                dst.sendall(data)
                with self._lock:
                    if direction == "down":
                        self.down += len(data)
                    else:
                        self.up += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def wait(check: Callable[[], Any]) -> Any:
    return _wait(check, timeout_s=180.0)


def nimbus_count(cluster: LocalCluster, event: str) -> int:
    """A count from Nimbus's /metrics (``squall_nimbus_events{event=...}``; 0 when absent)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{cluster.http_port}/metrics", timeout=10).read().decode()
    pattern = r'squall_nimbus_events_total\{event="' + re.escape(event) + r'"\} ([0-9.e+]+)'
    found = re.search(pattern, text)
    return int(float(found.group(1))) if found else 0


QUIET_BYTES = 100_000  # control traffic of 3 boards over QUIET_S without a migration: some kB
QUIET_S = 3.0


def settle(relay: Relay, most_s: float = 90.0) -> float:
    """When the control links went quiet after the migration (what it queued has left: an
    assignment pushed again after a re-registration may still be on its way down when the
    migration is over); ``time.monotonic()`` of the last growth, within ``most_s``."""
    history = [(time.monotonic(), sum(relay.read()))]
    deadline = history[0][0] + most_s
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now, total = time.monotonic(), sum(relay.read())
        history.append((now, total))
        old = [(t, b) for t, b in history if now - t >= QUIET_S]
        if old and total - old[-1][1] < QUIET_BYTES:
            return old[-1][0]
    return time.monotonic()


def running(cluster: LocalCluster, name: str, workers: int) -> bool:
    with cluster.client() as c:
        execs = c.assignment(name)["executors"]
    return bool(execs) and all(e["pid"] for e in execs) and len({(e["node"], e["port"]) for e in execs}) == workers


def measure(state_bytes: int, down_mbit: float, workdir: Path, log_level: str = "WARNING") -> dict[str, Any]:
    app = workdir / "holding.py"
    app.write_text(TOPOLOGY)
    nimbus_port = free_port()
    relay = Relay(("127.0.0.1", nimbus_port), down_mbit * 1e6 / 8)
    try:
        with LocalCluster(
            supervisors=3,
            slots=2,
            port=nimbus_port,
            data_dir=workdir / "cluster",
            log_level=log_level,
            supervisor_nimbus=[relay.address],
        ) as cluster:
            name = cluster.submit(str(app), name="holding", workers=3, conf={"bench.state.bytes": state_bytes})
            wait(lambda: running(cluster, name, 3))
            time.sleep(3.0)  # a few heartbeats: the links' steady state
            with cluster.client(timeout_s=15) as c:
                registrations = nimbus_count(cluster, "msg_RegisterSupervisor")
                down0, up0 = relay.read()
                t0 = time.monotonic()
                c.rebalance(name, workers=2)
                (event,) = [e for e in c.events(name) if e["decision"] == "applied"]
                done = wait(
                    lambda: next(
                        (e for e in c.events(name) if e["id"] == event["id"] and e.get("paused_s") is not None), None
                    )
                )
                took = time.monotonic() - t0
                quiet = settle(relay) - t0
                down1, up1 = relay.read()
                lost = [e for e in c.events(name) if e["trigger"] == "node lost"]
                registrations = nimbus_count(cluster, "msg_RegisterSupervisor") - registrations
                c.kill(name, 0)
    finally:
        relay.close()
    sent = done.get("snapshots_sent")
    return {
        "down": down1 - down0,
        "up": up1 - up0,
        "seconds": took,
        "quiet_s": quiet,
        "paused_s": done["paused_s"],
        "moved": len(done["moved"]),
        "snapshot_bytes": sum(s["bytes"] for s in sent.values()) if sent else None,
        "snapshot_sends": sum(s["sends"] for s in sent.values()) if sent else None,
        "registrations": registrations,
        "lost": len(lost),
        "notes": done.get("notes", []),
    }


def mb(n: float | None) -> str:
    return "-" if n is None else f"{n / 1e6:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--state-kib", type=int, default=2048, help="state of each holder bolt task (KiB)")
    ap.add_argument("--down-mbit", type=float, default=0.0, help="cap on Nimbus -> board per connection (0: none)")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args(argv)
    rows = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="squall-ctlbytes-") as tmp:
            rows.append(measure(args.state_kib * 1024, args.down_mbit, Path(tmp)))
    cap = f"{args.down_mbit:g} Mbit/s down per board" if args.down_mbit else "no cap"
    print(f"holder state {args.state_kib} KiB per task, 4 holder tasks; control links: {cap}")
    head = f"{'run':>3}  {'moved':>5}  {'down MB':>8}  {'up MB':>6}  {'snapshots MB (sends)':>21}  "
    print(head + f"{'registrations':>13}  {'boards lost':>11}  {'paused s':>8}  {'quiet after s':>13}")
    for k, r in enumerate(rows, 1):
        snaps = "-" if r["snapshot_bytes"] is None else f"{mb(r['snapshot_bytes'])} ({r['snapshot_sends']})"
        print(
            f"{k:>3}  {r['moved']:>5}  {mb(r['down']):>8}  {mb(r['up']):>6}  {snaps:>21}  "
            f"{r['registrations']:>13}  {r['lost']:>11}  {r['paused_s']:>8.2f}  {r['quiet_s']:>13.1f}"
        )
        for note in r["notes"]:
            print(f"     note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
