"""Where Nimbus's server loop spends its time: its own steps, and the garbage collector's pauses.

The loop lag a client sees (a request waiting in the socket) is the time the loop was busy
with something else: a step (one message handled, a tick, a snapshot copied) or a collection
of the cyclic garbage collector, which stops every thread of the process. :class:`LoopStats`
counts both, so a long tail can be named by its cause rather than guessed:

* every step's duration, by kind (the message type, ``Tick``, ``publish``), in a histogram
  (:data:`STEP_BUCKETS_S`) with its sum;
* every collection's duration, by generation (0, 1, 2), in the same histogram shape, timed
  by a ``gc.callbacks`` hook — whichever thread triggered it, as it paused them all.

Both are exported on ``/metrics`` (``squall_nimbus_loop_step_seconds``,
``squall_nimbus_gc_pause_seconds``). A step's duration includes the collections that ran
inside it; the two are not to be added up. Cost: two ``perf_counter`` calls per step and per
collection. Written by the loop thread (steps) and any thread (collections, under the GIL);
read by the HTTP threads as copies, so a scrape sees each histogram as of one moment, not
necessarily both at the same one.
"""

from __future__ import annotations

import bisect
import gc
import time
from typing import Any

# Upper bounds (s) of the histogram buckets; +Inf is the last bucket. Chosen around the
# loop lag's target at hundreds of boards (p99 <= 50 ms) and a board's heartbeat period.
STEP_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


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


class LoopStats:
    """See the module docstring. ``install()`` hooks the garbage collector; ``close()`` unhooks it."""

    def __init__(self) -> None:
        self.steps: dict[str, Histogram] = {}
        self.gc_pauses: dict[int, Histogram] = {0: Histogram(), 1: Histogram(), 2: Histogram()}
        self._gc_started: float | None = None
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            gc.callbacks.append(self._on_gc)
            self._installed = True

    def close(self) -> None:
        if self._installed:
            gc.callbacks.remove(self._on_gc)
            self._installed = False

    def step(self, kind: str, seconds: float) -> None:
        """The loop spent ``seconds`` on one step of ``kind``."""
        hist = self.steps.get(kind)
        if hist is None:
            hist = self.steps[kind] = Histogram()
        hist.add(seconds)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        # No allocation of tracked objects here: this runs around every collection.
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started is not None:
            took = time.perf_counter() - self._gc_started
            self._gc_started = None
            hist = self.gc_pauses.get(info.get("generation", 2))
            if hist is not None:
                hist.add(took)

    def read(self) -> tuple[dict[str, Histogram], dict[int, Histogram]]:
        """Copies of (steps by kind, collections by generation), for a reader on another thread."""
        steps = {kind: hist.copy() for kind, hist in list(self.steps.items())}
        return steps, {gen: hist.copy() for gen, hist in self.gc_pauses.items()}
