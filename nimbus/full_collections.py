"""Nimbus's full garbage collections, run by its loop on a schedule rather than by CPython's rule.

CPython collects its oldest generation whenever that generation has grown by a quarter since
the last full collection. At hundreds of boards nearly everything Nimbus allocates per
heartbeat — the decoded reports it keeps until the board's next heartbeat, the snapshot
copies the HTTP side reads — lives just long enough to be promoted there, so that rule fired
every second or two, and each full collection walked every live object on the loop thread
(tens of ms at 500 boards, the tail of the loop lag; docs/nimbus.md has the figures). Those
collections found next to nothing to free: what Nimbus drops is freed by reference counting
when the next report or snapshot replaces it, not by the cycle collector.

So, while installed, CPython still collects the two young generations as before (cheap:
they hold what was allocated lately), never the oldest one by itself; the loop calls
:meth:`FullCollections.run_if_due` between events, which collects everything once every
``every_s`` seconds (``nimbus.gc.full.secs``; 0 leaves CPython's rule in place). Cyclic
garbage (an exception's traceback, a cycle a library builds) is then held at most that
long. Process-wide: the first ``install`` sets the thresholds, the
last ``close`` puts back what it found (several servers in one process, as in tests, share it).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from squall.nimbus.process_setting import SharedSetting

FULL_COLLECTION_S = 60.0
NEVER = 1 << 30  # a generation-2 threshold no count reaches: CPython never starts a full collection

_THRESHOLDS: SharedSetting[tuple[int, ...]] = SharedSetting(gc.get_threshold, lambda t: gc.set_threshold(*t))


class FullCollections:
    """See the module docstring."""

    def __init__(self, every_s: float = FULL_COLLECTION_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self.clock = clock
        self.runs = 0
        self._last = clock()
        self._active = False

    def install(self) -> None:
        if self._active or self.every_s <= 0:
            return
        # The two young generations keep CPython's thresholds; the oldest is never due.
        _THRESHOLDS.acquire(lambda saved: (saved[0], saved[1], NEVER))
        self._active = True
        self._last = self.clock()

    def close(self) -> None:
        if not self._active:
            return
        self._active = False
        _THRESHOLDS.release()

    def run_if_due(self) -> bool:
        """Collect every generation when ``every_s`` passed since the last time (or since
        ``install``); True when it did."""
        if not self._active or self.clock() - self._last < self.every_s:
            return False
        gc.collect()
        self.runs += 1
        self._last = self.clock()
        return True
