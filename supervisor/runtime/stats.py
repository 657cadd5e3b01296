"""Per-executor counters: what Storm UI shows (emitted, transferred, executed, acked, failed),
the complete latency of spouts (sum, count, a cumulative histogram over
``squall.messages.LATENCY_BUCKETS_MS`` and recent samples), and the CPU time and per-source
receive counts that the cluster turns into measured load and traffic.

No numpy here: a worker imports this module, and numpy alone would add ~10 MB to its RSS.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from squall.messages import LATENCY_BUCKETS_MS

LATENCY_SAMPLES = 20_000  # recent complete-latency samples kept per spout executor
LATENCY_BOUNDS_S = tuple(b / 1e3 for b in LATENCY_BUCKETS_MS)  # bucket upper bounds, seconds


@dataclass
class ExecutorStats:
    component: str
    emitted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    transferred: int = 0
    executed: int = 0
    acked: int = 0
    failed: int = 0
    errors: int = 0
    busy_s: float = 0.0  # CPU time (thread time) spent in this executor, not wall time
    latency_sum_s: float = 0.0
    latency_count: int = 0
    latencies_s: deque = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    received_from: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # source task -> tuples
    # Destination task -> control items sent to it (acker items; an acker's notices to spouts).
    sent_control: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    # Counts per LATENCY_BUCKETS_MS bucket (upper bound inclusive), +inf last; cumulative, so
    # a reader never misses samples the bounded ``latencies_s`` has already dropped.
    latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_S) + 1))

    def record_latency(self, seconds: float) -> None:
        """One complete latency (the spout's hot loop inlines the same four updates)."""
        self.latency_sum_s += seconds
        self.latency_count += 1
        self.latencies_s.append(seconds)
        self.latency_buckets[bisect_left(LATENCY_BOUNDS_S, seconds)] += 1


class CpuMeter:
    """CPU (thread) time spent in one kind of work, e.g. moving data between workers.

    ``start()``/``stop()`` go around each call that does the work; they may nest (a receive
    that forwards an item may flush a batch), and only the outermost pair counts, so nothing
    is counted twice. ``cpu_s`` only grows. One thread only (the worker's loop thread)."""

    __slots__ = ("cpu_s", "_depth", "_started")

    def __init__(self) -> None:
        self.cpu_s = 0.0
        self._depth = 0
        self._started = 0.0

    def start(self) -> None:
        if not self._depth:
            self._started = time.thread_time()
        self._depth += 1

    def stop(self) -> None:
        self._depth -= 1
        if not self._depth:
            self.cpu_s += time.thread_time() - self._started


class RoundClock:
    """The thread CPU clock of one engine's executor batches (a bolt's ``drain``, a spout's
    ``step``, an acker's ``drain``), read twice per round (at the first batch's start and at
    ``close_round``) instead of once or twice per batch: inside a round (between
    ``open_round`` and ``close_round``) a batch reads only the monotonic clock at its end,
    and ``close_round`` shares the round's thread CPU among the round's batches in
    proportion to their monotonic spans, each less the transfer CPU counted during it.
    ``time.thread_time`` is a system call (1.35 us and more on a virtual machine, against
    about 0.05 us for ``time.perf_counter``, a vDSO read), and a round of a three-stage chain
    with acking times five batches: two readings instead of six.

    A batch calls ``start()`` before and ``charge(stats, started, transfer_s)`` once after
    (``transfer_s``: what the transfer meter counted meanwhile, batches flushed from inside
    an emit, measured apart and not to be counted twice).

    Guarantees: the busy times of a round's batches add up to the thread CPU time from the
    first batch's start to ``close_round`` less the transfer CPU counted inside them,
    nothing counted twice; each is at least 0 and is added to its executor's ``busy_s`` by
    ``close_round`` (so the counters are exact between rounds, not during one). A batch's
    span runs from the end of the batch before it in the round (the first: its own start),
    so what runs between two batches (the round's loop, an executor with nothing to do) is
    counted in the next batch, and the round's tail in the last. The split follows the
    monotonic clock: CPU the thread did not get (preemption) inside a batch shifts a share
    of the round's CPU towards that batch; the round's total stays exact. A batch that
    raised is not counted, as before. Outside a round every batch reads the thread clock
    twice and is counted at once."""

    __slots__ = ("_open", "_cpu_start", "_wall_start", "_wall_last", "_batches")

    def __init__(self) -> None:
        self._open = False
        self._cpu_start = -1.0  # the open round's first thread CPU reading; negative: none yet
        self._wall_start = 0.0  # the open round's first monotonic reading
        self._wall_last = 0.0  # the open round's last monotonic reading
        # the open round's batches, flat: stats, monotonic span, transfer CPU, stats, ...
        self._batches: list = []

    def open_round(self) -> None:
        self._open = True
        self._cpu_start = -1.0

    def close_round(self) -> None:
        """Share the round's thread CPU among its batches (see the class)."""
        self._open = False
        batches = self._batches
        if not batches:
            return
        cpu = time.thread_time() - self._cpu_start
        # the spans run end to end from the first start: their sum is the round's span
        wall = self._wall_last - self._wall_start
        transfers = batches[2::3]
        if wall > 0.0 and not any(transfers):  # one process: shares by span alone
            per_s = cpu / wall
            for stats, span in zip(batches[0::3], batches[1::3]):
                stats.busy_s += span * per_s
        else:
            self._share(batches, cpu, wall, transfers)
        batches.clear()

    @staticmethod
    def _share(batches: list, cpu: float, wall: float, transfers: list) -> None:
        """Each batch's share of ``cpu`` by its span less its own transfer CPU, floored at 0
        (a preempted transfer) and scaled so that they add up to ``cpu`` less all transfer."""
        own = cpu - sum(transfers)
        if own <= 0.0:
            return
        every = batches[0::3]
        if wall > 0.0:
            shares = [cpu * span / wall - t for span, t in zip(batches[1::3], transfers)]
            shares = [s if s > 0.0 else 0.0 for s in shares]
        else:
            shares = [1.0] * len(every)
        total = sum(shares)
        if total <= 0.0:
            shares = [1.0] * len(every)
            total = float(len(every))
        scale = own / total
        for stats, share in zip(every, shares):
            stats.busy_s += share * scale

    def start(self) -> float:
        """A batch's start: inside a round the monotonic reading it starts at (the thread
        clock is read for the round's first batch), outside one the thread clock's."""
        if not self._open:
            return time.thread_time()
        if self._cpu_start < 0.0:
            self._cpu_start = time.thread_time()
            self._wall_start = self._wall_last = time.perf_counter()
        return self._wall_last

    def charge(self, stats: ExecutorStats, started: float, transfer_s: float) -> None:
        """Count the batch that began at ``started`` (``start()``) in ``stats.busy_s``: at the
        round's close inside a round, at once outside one."""
        if self._open:
            now = time.perf_counter()
            batches = self._batches
            batches.append(stats)
            batches.append(now - started)
            batches.append(transfer_s)
            self._wall_last = now
            return
        stats.busy_s += time.thread_time() - started - transfer_s


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between closest ranks —
    the same value as numpy's default method. ``samples`` must not be empty."""
    ordered = sorted(samples)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class ComponentSummary:
    """Counts summed over a component's executors; latencies in milliseconds."""

    component: str
    kind: str
    executors: int
    emitted: int
    transferred: int
    executed: int
    acked: int
    failed: int
    errors: int
    complete_latency_ms: float | None
    p99_latency_ms: float | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def summarize(component: str, kind: str, stats: list[ExecutorStats]) -> ComponentSummary:
    samples = [s for st in stats for s in st.latencies_s]
    count = sum(st.latency_count for st in stats)
    avg = sum(st.latency_sum_s for st in stats) / count * 1e3 if count else None
    p99 = percentile(samples, 99) * 1e3 if samples else None
    return ComponentSummary(
        component=component,
        kind=kind,
        executors=len(stats),
        emitted=sum(sum(st.emitted.values()) for st in stats),
        transferred=sum(st.transferred for st in stats),
        executed=sum(st.executed for st in stats),
        acked=sum(st.acked for st in stats),
        failed=sum(st.failed for st in stats),
        errors=sum(st.errors for st in stats),
        complete_latency_ms=avg,
        p99_latency_ms=p99,
    )
