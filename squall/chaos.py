"""A bounded chaos run: the reference chain with a replayable spout on a local cluster while
workers and boards are killed at random, then exact books.

::

    report = run_chaos(seconds=60, seed=1)
    print(report.text())

Every ``interval`` seconds (jittered) one fault, drawn with ``seed``: kill -9 a random worker
(its supervisor restarts it), or kill -9 a random board (supervisor and workers; Nimbus
reassigns its executors after its timeout) — at most ``boards - 2`` boards down at once, and
each dead board started again ``board_down_s`` later so capacity returns. At the end every
board is back, the topology runs for a settle period (restarted spouts replay their journals),
then it is deactivated and drained until every emitted id was acked (or ``drain_s`` passes).

The report: ids emitted, acked, never acked (must be 0), acked more than once, processed more
than once at the sinks, trees failed and replayed, the worst complete latency (emit of an id
to its first ack, downtime included) and the longest gap in sink progress during the faults,
and the faults injected with their times.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from squall import ledger_topology as lt
from squall.client import NimbusError, NimbusUnreachable
from squall.localcluster import LocalCluster

NAME = "chaos"
MAX_SECONDS = 120.0


@dataclass
class ChaosConfig:
    seconds: float = 60.0  # of faults; capped at MAX_SECONDS
    seed: int = 1
    boards: int = 4
    slots: int = 2
    workers: int = 4
    interval_s: float = 4.0  # mean time between two faults
    board_down_s: float = 8.0  # a killed board is started again after this
    rate: float = 100.0  # tuples/s per spout task
    stages: int = 3
    replication: int = 2
    message_timeout_s: int = 5
    settle_s: float = 8.0
    drain_s: float = 60.0


@dataclass
class ChaosReport:
    config: ChaosConfig
    books: lt.Books
    faults: list[tuple[float, str]] = field(default_factory=list)  # (seconds since start, what)
    drained: bool = False
    max_gap_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.drained and not self.books.missing

    def summary(self) -> dict[str, Any]:
        return {
            **self.books.summary(),
            "faults": len(self.faults),
            "drained": self.drained,
            "max_sink_gap_s": round(self.max_gap_s, 2),
            "nothing_lost": self.ok,
        }

    def text(self) -> str:
        lines = [
            f"chaos: {self.config.seconds:g} s, seed {self.config.seed}, {self.config.boards} boards x "
            f"{self.config.slots} slots, {self.config.workers} workers, {len(self.faults)} faults"
        ]
        lines += [f"  {at:6.1f} s  {what}" for at, what in self.faults]
        s = self.summary()
        lines += [
            f"emitted {s['emitted']}, acked {s['acked']}, never acked {s['missing']}"
            + ("" if self.drained else " (drain timed out)"),
            f"duplicates: {s['acked_more_than_once']} ids acked more than once, "
            f"{s['sink_more_than_once']} ids processed more than once at the sinks "
            f"({s['sink_total'] - s['sink_distinct']} extra deliveries); {s['failed_and_replayed']} trees failed "
            "and were replayed",
            f"worst latency spike: complete latency {s['max_complete_latency_s']:.2f} s, "
            f"longest gap in sink progress {s['max_sink_gap_s']:.2f} s",
            "NOTHING LOST" if self.ok else "LOST TUPLES",
        ]
        return "\n".join(lines)


def run_chaos(
    config: ChaosConfig,
    workdir: Path | None = None,
    say: Callable[[str], None] = lambda s: None,
    cluster: LocalCluster | None = None,
) -> ChaosReport:
    """Run the chaos described by ``config`` on ``cluster`` (a fresh LocalCluster when None,
    closed at the end) and return the report."""
    seconds = min(float(config.seconds), MAX_SECONDS)
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="squall-chaos-"))
    folder = work / "ledger"
    folder.mkdir(parents=True, exist_ok=True)
    own = cluster is None
    cluster = cluster or LocalCluster(
        supervisors=config.boards, slots=config.slots, data_dir=work / "cluster", log_level="WARNING"
    )
    try:
        if own:
            cluster.start()
        conf = {"ledger.rate": config.rate, "topology.message.timeout.secs": config.message_timeout_s}
        with cluster.client(timeout_s=15) as c:
            lt.submit(c, NAME, folder, config.workers, config.stages, config.replication, conf=conf)
        _wait(lambda: len(lt.read_books(folder).acked) > 50, 30, "the chain to flow")
        say(f"chain flowing; {seconds:g} s of faults (seed {config.seed})")
        faults, start_wall = _inject(cluster, config, seconds, say)
        end_wall = time.time()
        say(f"faults over; every board back; settling {config.settle_s:g} s")
        _wait(lambda: _all_running(cluster), 60, "every worker running")
        time.sleep(config.settle_s)
        with cluster.client() as c:
            c.set_active(NAME, False)
        say("deactivated; draining")
        drained = _drain(folder, config.drain_s)
        time.sleep(0.5)
        books = lt.read_books(folder)
        with cluster.client() as c:
            c.kill(NAME, 0)
        return ChaosReport(config, books, faults, drained, books.max_gap_s(start_wall, end_wall))
    finally:
        if own:
            cluster.close()


def _inject(
    cluster: LocalCluster, config: ChaosConfig, seconds: float, say: Callable[[str], None]
) -> tuple[list[tuple[float, str]], float]:
    rng = random.Random(config.seed)
    start, start_wall = time.monotonic(), time.time()
    down: dict[str, float] = {}  # board -> when to start it again
    faults: list[tuple[float, str]] = []
    next_fault = start + config.interval_s * rng.uniform(0.5, 1.5)
    while True:
        now = time.monotonic()
        for node, due in sorted(down.items()):
            if now >= due or now - start >= seconds:
                cluster.start_supervisor(node)
                del down[node]
                faults.append((now - start, f"{node} back"))
                say(f"{now - start:6.1f} s  {node} back")
        if now - start >= seconds:
            return faults, start_wall
        if now >= next_fault:
            next_fault = now + config.interval_s * rng.uniform(0.5, 1.5)
            what = _one_fault(cluster, config, rng, down, now)
            if what:
                faults.append((now - start, what))
                say(f"{now - start:6.1f} s  {what}")
        time.sleep(0.1)


def _one_fault(
    cluster: LocalCluster, config: ChaosConfig, rng: random.Random, down: dict[str, float], now: float
) -> str:
    alive = [n for n in cluster.node_ids if n not in down]
    if rng.random() < 0.4 and len(alive) > 2:
        node = rng.choice(alive)
        cluster.kill_board(node)
        down[node] = now + config.board_down_s
        return f"kill -9 board {node} (supervisor and workers)"
    workers = sorted(cluster.worker_pids().items())
    if not workers:
        return ""
    (node, port), pid = rng.choice(workers)
    try:
        cluster.kill_worker(node, port)
    except (KeyError, ProcessLookupError):
        return ""  # it ended on its own meanwhile
    return f"kill -9 worker {node}:{port} (pid {pid})"


def _all_running(cluster: LocalCluster) -> bool:
    try:
        with cluster.client() as c:
            execs = c.assignment(NAME)["executors"]
    except (NimbusError, NimbusUnreachable):
        return False
    return bool(execs) and all(e["pid"] for e in execs)


def _drain(folder: Path, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        books = lt.read_books(folder)
        if books.emitted and not books.missing:
            return True
        time.sleep(0.5)
    return False


def _wait(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(f"chaos: timed out waiting for {what}")
