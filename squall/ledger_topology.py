"""The reference chain with a replayable source and exact books, for fault tests and chaos.

Aniello's chain (a spout, then bolts alternating shuffle and fields grouping on ``key``), with
a spout that behaves like a durable, replayable source (a Kafka partition with offsets): each
spout task numbers its tuples and journals every id to ``<ledger.dir>/spout-<task>.emitted``
*before* emitting it, and every acked id to ``spout-<task>.acked``. A spout task that starts
(first start, restart after its worker was killed, or a move without state after its board
was lost) reads both journals and replays every id emitted and not yet acked, then goes on
after the highest id. A tree that fails (a bolt or acker died, the message timeout fired) is
replayed at once. So every id that was ever emitted is eventually acked — at least once.

The last stage (the sink) appends ``<id> <wall time>`` to ``sink-<task>.log`` per tuple, so
tuples processed more than once and gaps in progress can be counted from outside.
:func:`read_books` reads every file of a ledger folder into a :class:`Books`.

Journals are appended with one ``write`` per line to files opened in append mode: a worker
killed with SIGKILL loses nothing already written (it is in the kernel), and concurrent
writers (a frozen worker thawed next to its replacement) never interleave within a line. The
folder must be shared by every board (one machine, or a network mount) for replays after a
board loss to find the journal.

Conf: ``ledger.dir`` (required), ``ledger.rate`` (tuples/s per spout task, default 100, 0 =
as fast as possible), ``ledger.total`` (ids per spout task, 0 = endless), ``ledger.work``
(busy-loop iterations per tuple per bolt).
"""

from __future__ import annotations

import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import msgpack

from squall.topology.component import Bolt, Spout, Stream, Tuple
from squall.topology.dsl import Topology
from squall.topology.grouping import Grouping
from squall.topology.pacing import Pacer

KEYS = 1024
ID_SPAN = 1_000_000_000  # ids of spout task t are t * ID_SPAN + 1, + 2, ...


def _lines(path: Path) -> list[list[str]]:
    """Whitespace-split lines of ``path``; a torn last line (a writer killed mid-write) is skipped."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return []
    rows = [line.split() for line in text.split("\n")]
    if rows and text and not text.endswith("\n"):
        rows.pop()
    return [r for r in rows if r]


def _ints(path: Path) -> list[int]:
    out = []
    for row in _lines(path):
        try:
            out.append(int(row[0]))
        except ValueError:
            continue
    return out


class LedgerSpout(Spout):
    """Emits ``[key, ts, id]``; see the module docstring for the journals and replays."""

    outputs = [Stream(fields=["key", "ts", "id"])]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.pacer = Pacer(float(conf.get("ledger.rate", 100)))
        self.total = int(conf.get("ledger.total", 0))
        folder = Path(conf["ledger.dir"])
        folder.mkdir(parents=True, exist_ok=True)
        self.base = ctx.task * ID_SPAN
        emitted_path, acked_path = folder / f"spout-{ctx.task}.emitted", folder / f"spout-{ctx.task}.acked"
        emitted: dict[int, float] = {}
        for row in _lines(emitted_path):
            try:
                emitted[int(row[0])] = float(row[1])
            except (ValueError, IndexError):
                continue
        acked = set(_ints(acked_path))
        self.in_flight: dict[int, float] = {i: ts for i, ts in emitted.items() if i not in acked}
        self.backlog: deque[int] = deque(sorted(self.in_flight))  # replayed before anything new
        self.seq = max((i - self.base for i in emitted), default=0)
        self.emitted_log = open(emitted_path, "a", buffering=1, encoding="ascii")
        self.acked_log = open(acked_path, "a", buffering=1, encoding="ascii")
        self.failed_log = open(folder / f"spout-{ctx.task}.failed", "a", buffering=1, encoding="ascii")

    def next_tuple(self) -> None:
        if self.backlog:
            tid = self.backlog.popleft()
            if tid in self.in_flight:
                self._emit(tid)
            return
        if self.total and self.seq >= self.total:
            return
        if not self.pacer.ready():
            return
        self.seq += 1
        tid = self.base + self.seq
        ts = time.time()
        self.emitted_log.write(f"{tid} {ts:.6f}\n")  # journaled before it leaves: replayable
        self.in_flight[tid] = ts
        self._emit(tid)

    def _emit(self, tid: int) -> None:
        self.emit([tid % KEYS, self.in_flight[tid], tid], tup_id=tid)

    def ack(self, tid: Any) -> None:
        ts = self.in_flight.pop(tid, None)
        latency = time.time() - ts if ts is not None else -1.0
        self.acked_log.write(f"{tid} {latency:.4f}\n")

    def fail(self, tid: Any) -> None:
        self.failed_log.write(f"{tid}\n")
        if tid in self.in_flight:
            self._emit(tid)

    def snapshot(self) -> bytes:
        """A live move carries the position and the trees in flight (no replay needed)."""
        return msgpack.packb({"seq": self.seq, "in_flight": self.in_flight, "backlog": list(self.backlog)})

    def restore(self, data: bytes) -> None:
        state = msgpack.unpackb(data, strict_map_key=False)
        self.seq = int(state["seq"])
        self.in_flight = {int(k): float(v) for k, v in state["in_flight"].items()}
        self.backlog = deque(int(i) for i in state["backlog"])


class LedgerStage(Bolt):
    """Forwards ``[key, ts, id]`` after ``ledger.work`` busy-loop iterations; the last stage
    (``ledger.sink``) appends ``<id> <wall time>`` to ``sink-<task>.log`` instead."""

    outputs = [Stream(fields=["key", "ts", "id"])]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.work = int(conf.get("ledger.work", 0))
        # Not ``self.log``: that is Component.log, which the component keeps.
        self.sink_file: TextIO | None = None
        if conf.get("ledger.sink"):
            folder = Path(conf["ledger.dir"])
            folder.mkdir(parents=True, exist_ok=True)
            self.sink_file = open(folder / f"sink-{ctx.task}.log", "a", buffering=1, encoding="ascii")

    def process(self, tup: Tuple) -> None:
        acc = 0
        for i in range(self.work):
            acc = (acc * 31 + i) & 0xFFFF
        if self.sink_file is not None:
            self.sink_file.write(f"{tup.values[2]} {time.time():.4f}\n")
        else:
            self.emit(tup.values)


def ledger_topology(stages: int = 3, replication: int = 2, name: str = "ledger-chain") -> type[Topology]:
    """The chain: stage 0 is the spout; stage i >= 1 subscribes to stage i-1 with shuffle
    grouping when i is odd and fields grouping on ``key`` when i is even."""
    if stages < 2 or replication < 1:
        raise ValueError("a chain needs at least 2 stages and replication >= 1")
    prev = LedgerSpout.spec(name="spout", par=replication)
    attrs: dict[str, Any] = {"name": name, "spout": prev}
    for i in range(1, stages):
        grouping = Grouping.SHUFFLE if i % 2 == 1 else Grouping.fields("key")
        prev = attrs[f"stage{i}"] = LedgerStage.spec(
            name=f"stage{i}",
            inputs={prev: grouping},
            par=replication,
            config={"ledger.sink": True} if i == stages - 1 else None,
        )
    return type("LedgerChain", (Topology,), attrs)


def bundle() -> bytes:
    """A code bundle for the chain: a stub file, since its components live in this package."""
    from squall.bundle import make_bundle

    stub = Path(tempfile.mkdtemp(prefix="squall-ledger-")) / "ledger_chain.py"
    stub.write_text('"""Ledger chain: its components live in squall.ledger_topology."""\n')
    return make_bundle(stub)


def submit(
    client: Any,
    name: str,
    ledger_dir: Path,
    workers: int,
    stages: int = 3,
    replication: int = 2,
    scheduler: str = "round_robin",
    conf: dict[str, Any] | None = None,
) -> None:
    """Submit the chain as ``name`` through a :class:`squall.client.NimbusClient`."""
    topology = ledger_topology(stages, replication, name)
    full = {"ledger.dir": str(ledger_dir), **(conf or {})}
    client.submit(name, topology.spec.to_dict(), bundle(), scheduler, workers, full)


@dataclass
class Books:
    """What a ledger folder says: ids emitted, acked (with multiplicity), sink deliveries."""

    emitted: set[int] = field(default_factory=set)
    acked: dict[int, int] = field(default_factory=dict)  # id -> times acked
    failed: int = 0
    latencies_s: list[float] = field(default_factory=list)  # complete latency of each ack
    sink: dict[int, int] = field(default_factory=dict)  # id -> times processed at the sink
    sink_times: list[float] = field(default_factory=list)

    @property
    def missing(self) -> set[int]:
        """Emitted and never acked."""
        return self.emitted - self.acked.keys()

    @property
    def acked_twice(self) -> int:
        return sum(1 for n in self.acked.values() if n > 1)

    @property
    def sink_twice(self) -> int:
        return sum(1 for n in self.sink.values() if n > 1)

    @property
    def sink_missing(self) -> set[int]:
        return self.emitted - self.sink.keys()

    def max_gap_s(self, start: float | None = None, end: float | None = None) -> float:
        """The longest time without any tuple reaching a sink (between ``start`` and ``end``
        when given, wall clock)."""
        times = sorted(self.sink_times)
        if start is not None:
            times = [start, *(t for t in times if t >= start)]
        if end is not None:
            times = [*(t for t in times if t <= end), end]
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)

    def summary(self) -> dict[str, Any]:
        return {
            "emitted": len(self.emitted),
            "acked": len(self.acked),
            "missing": len(self.missing),
            "acked_more_than_once": self.acked_twice,
            "failed_and_replayed": self.failed,
            "sink_distinct": len(self.sink),
            "sink_total": sum(self.sink.values()),
            "sink_more_than_once": self.sink_twice,
            "max_complete_latency_s": round(max(self.latencies_s, default=0.0), 3),
        }


def read_books(folder: Path) -> Books:
    books = Books()
    for path in folder.glob("spout-*.emitted"):
        books.emitted.update(_ints(path))
    for path in folder.glob("spout-*.acked"):
        for row in _lines(path):
            try:
                tid = int(row[0])
                latency = float(row[1]) if len(row) > 1 else -1.0
            except ValueError:
                continue
            books.acked[tid] = books.acked.get(tid, 0) + 1
            if latency >= 0:
                books.latencies_s.append(latency)
    for path in folder.glob("spout-*.failed"):
        books.failed += len(_ints(path))
    for path in folder.glob("sink-*.log"):
        for row in _lines(path):
            try:
                tid, at = int(row[0]), float(row[1])
            except (ValueError, IndexError):
                continue
            books.sink[tid] = books.sink.get(tid, 0) + 1
            books.sink_times.append(at)
    return books
