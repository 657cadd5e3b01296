"""Where Nimbus's server loop spends its time: its own steps, its turns, and the garbage collector's pauses.

The loop lag a client sees (a request waiting in the socket) is the time the loop was busy
with something else: a step (one message handled, a tick, a snapshot copied) or a collection
of the cyclic garbage collector, which stops every thread of the process. :class:`LoopStats`
counts both, so a long tail can be named by its cause rather than guessed:

* every step's duration, by kind (the message type, ``Tick``, ``publish``, ``full_gc``), in a
  histogram (:data:`STEP_BUCKETS_S`) with its sum, and the loop thread's CPU time during it in
  a second histogram of the same shape: wall time far above CPU time is the loop waiting (for
  a CPU on a loaded machine, or for the interpreter lock another thread holds), CPU time is
  Nimbus's own work and does not depend on the machine's load;
* every turn of the loop (everything it does between two polls of its socket: a request that
  arrives meanwhile waits for the rest of it), wall and CPU, in the same histogram shape; a
  turn longer than :data:`SLOW_TURN_S` is also counted by what took longest in it (a step's
  kind, or ``gc genN`` for a collection on the loop's thread), with its wall and CPU time;
* every collection's duration, by generation (0, 1, 2), in the same histogram shape, timed
  by a ``gc.callbacks`` hook — whichever thread triggered it, as it paused them all — and
  the CPU time of the thread that ran it.

All are exported on ``/metrics`` (``squall_nimbus_loop_step_seconds``,
``squall_nimbus_loop_step_cpu_seconds``, ``squall_nimbus_loop_turn_seconds``,
``squall_nimbus_loop_turn_cpu_seconds``, ``squall_nimbus_loop_slow_turns_total``,
``squall_nimbus_gc_pause_seconds``, ``squall_nimbus_gc_pause_cpu_seconds``). A step's
duration includes the collections that ran inside it; the two are not to be added up. Cost:
two ``perf_counter`` and two ``thread_time`` calls per step, per turn and per collection.
Written by the loop thread (steps, turns) and any thread (collections, under the GIL); read by
the HTTP threads as copies, so a scrape sees each histogram as of one moment, not necessarily
all of them at the same one.
"""

from __future__ import annotations

import bisect
import gc
import threading
import time
from typing import Any

# Upper bounds (s) of the histogram buckets; +Inf is the last bucket. Chosen around the
# loop lag's target at hundreds of boards (p99 <= 50 ms) and a board's heartbeat period.
STEP_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# A turn this long is counted by what took longest in it (a bucket bound, so the count
# matches the turn histogram's).
SLOW_TURN_S = 0.025


class Histogram:
    """Counts per bucket of :data:`STEP_BUCKETS_S` (+Inf last) and the sum of the values."""

    __slots__ = ("counts", "total_s")

    def __init__(self) -> None:
        self.counts = [0] * (len(STEP_BUCKETS_S) + 1)
        self.total_s = 0.0

    def add(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(STEP_BUCKETS_S, seconds)] += 1
        self.total_s += seconds

    def copy(self) -> Histogram:
        out = Histogram()
        out.counts, out.total_s = list(self.counts), self.total_s
        return out


class SlowTurns:
    """Turns longer than :data:`SLOW_TURN_S` whose longest part was one kind: how many, and
    their wall and CPU seconds in all."""

    __slots__ = ("count", "wall_s", "cpu_s")

    def __init__(self, count: int = 0, wall_s: float = 0.0, cpu_s: float = 0.0) -> None:
        self.count, self.wall_s, self.cpu_s = count, wall_s, cpu_s

    def copy(self) -> SlowTurns:
        return SlowTurns(self.count, self.wall_s, self.cpu_s)


class Read:
    """What :meth:`LoopStats.read` returns: copies, safe to read on another thread."""

    def __init__(self, stats: LoopStats) -> None:
        self.steps = {kind: hist.copy() for kind, hist in list(stats.steps.items())}
        self.step_cpu = {kind: hist.copy() for kind, hist in list(stats.step_cpu.items())}
        self.gc_pauses = {gen: hist.copy() for gen, hist in stats.gc_pauses.items()}
        self.gc_cpu = {gen: hist.copy() for gen, hist in stats.gc_cpu.items()}
        self.turns = stats.turns.copy()
        self.turn_cpu = stats.turn_cpu.copy()
        self.slow_turns = {kind: slow.copy() for kind, slow in list(stats.slow_turns.items())}


class LoopStats:
    """See the module docstring. ``install()`` hooks the garbage collector and takes the
    calling thread as the loop's; ``close()`` unhooks it."""

    def __init__(self) -> None:
        self.steps: dict[str, Histogram] = {}
        self.step_cpu: dict[str, Histogram] = {}
        self.gc_pauses: dict[int, Histogram] = {0: Histogram(), 1: Histogram(), 2: Histogram()}
        self.gc_cpu: dict[int, Histogram] = {0: Histogram(), 1: Histogram(), 2: Histogram()}
        self.turns = Histogram()
        self.turn_cpu = Histogram()
        self.slow_turns: dict[str, SlowTurns] = {}
        self._gc_started: tuple[float, float] | None = None
        self._installed = False
        self._loop_thread: int | None = None
        # The longest part of the turn under way: (wall s, kind).
        self._longest: tuple[float, str] = (0.0, "")

    def install(self) -> None:
        if not self._installed:
            gc.callbacks.append(self._on_gc)
            self._installed = True
            self._loop_thread = threading.get_ident()

    def close(self) -> None:
        if self._installed:
            gc.callbacks.remove(self._on_gc)
            self._installed = False

    def step(self, kind: str, seconds: float, cpu_s: float | None = None) -> None:
        """The loop spent ``seconds`` (``cpu_s`` of them on a CPU, when measured) on one step of ``kind``."""
        hist = self.steps.get(kind)
        if hist is None:
            hist = self.steps[kind] = Histogram()
        hist.add(seconds)
        if cpu_s is not None:
            cpu = self.step_cpu.get(kind)
            if cpu is None:
                cpu = self.step_cpu[kind] = Histogram()
            cpu.add(cpu_s)
        if seconds > self._longest[0]:
            self._longest = (seconds, kind)

    def turn(self, seconds: float, cpu_s: float) -> None:
        """One turn of the loop (between two polls) took ``seconds``, ``cpu_s`` of them on a CPU."""
        self.turns.add(seconds)
        self.turn_cpu.add(cpu_s)
        if seconds > SLOW_TURN_S:
            kind = self._longest[1] or "between steps"
            slow = self.slow_turns.get(kind)
            if slow is None:
                slow = self.slow_turns[kind] = SlowTurns()
            slow.count += 1
            slow.wall_s += seconds
            slow.cpu_s += cpu_s
        self._longest = (0.0, "")

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        # No allocation of tracked objects here: this runs around every collection.
        if phase == "start":
            self._gc_started = (time.perf_counter(), time.thread_time())
        elif self._gc_started is not None:
            took = time.perf_counter() - self._gc_started[0]
            cpu = time.thread_time() - self._gc_started[1]
            self._gc_started = None
            generation = info.get("generation", 2)
            hist = self.gc_pauses.get(generation)
            if hist is not None:
                hist.add(took)
                self.gc_cpu[generation].add(cpu)
            if took > self._longest[0] and threading.get_ident() == self._loop_thread:
                self._longest = (took, GC_KINDS.get(generation, "gc"))

    def read(self) -> Read:
        """Copies of what was counted, for a reader on another thread."""
        return Read(self)


GC_KINDS = {0: "gc gen0", 1: "gc gen1", 2: "gc gen2"}
