"""Pacing a spout at a fixed rate: ``Pacer(rate)`` says when ``next_tuple`` may emit.

::

    class Numbers(Spout):
        def initialize(self, conf, ctx):
            self.pacer = Pacer(float(conf.get("app.rate", 0)))

        def next_tuple(self):
            if self.pacer.ready():
                self.emit([...])

        def next_tuple_due(self):
            return self.pacer.next_due()  # the worker sleeps until then

Guarantees: at most one emission is allowed per ``ready()`` call; over any long stretch the
allowed emissions follow ``rate``; after a stall (a late wake-up on a busy board) the pacer
catches up at most ``max(one interval, catch_up_s)`` behind its schedule, so a short stall
costs no tuples and a long one causes no burst. A rate of 0 or less means unpaced: always
ready. Times are ``time.monotonic()`` seconds, or the ``now`` given (tests).
"""

from __future__ import annotations

import time


class Pacer:
    """Allows one emission every ``1 / rate`` seconds (see the module docstring)."""

    def __init__(self, rate: float, catch_up_s: float = 0.0, now: float | None = None) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        # Never less than one interval: a pacer that cannot make up one missed tick drifts slow.
        self.catch_up_s = max(self.interval, catch_up_s)
        self.next_at = time.monotonic() if now is None else now

    @property
    def paced(self) -> bool:
        """False for an unpaced pacer (rate 0): always ready."""
        return self.interval > 0

    def ready(self, now: float | None = None) -> bool:
        """True if an emission is due now, and counts it; False if the next one is not due yet."""
        if not self.interval:
            return True
        if now is None:
            now = time.monotonic()
        if now < self.next_at:
            return False
        self.next_at = max(self.next_at + self.interval, now - self.catch_up_s)
        return True

    def next_due(self) -> float | None:
        """When the next emission is due; None when unpaced (a tuple is always due)."""
        return self.next_at if self.interval else None
