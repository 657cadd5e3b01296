"""Every rebalance on probation: measured before, measured after, rolled back when it hurt.

Pure values and rules (no clock, no I/O); ``nimbus/live.py`` enacts them.

* Before a change is applied Nimbus takes the measured latency of the current placement
  (:class:`Measured`: average, p99, sample count, from the spouts' histograms over the
  metrics window) and keeps the placement (:class:`Probation`).
* After the migration completes, measurement starts afresh; once a full metrics window has
  been measured under the new placement, :func:`verdict` compares: average up by more than
  :attr:`Margins.avg_worse` (default 10%, ``topology.probation.avg.worse``) or p99 up by more
  than :attr:`Margins.p99_worse` (default 25%, ``topology.probation.p99.worse``) — with at
  least ``MIN_SAMPLES`` latencies on both sides — means *rolled back*: Nimbus moves the
  topology back to the kept placement and remembers the rejected one (:func:`signature`) so
  that no scheduler proposes it again before the cool-down ends. Otherwise the change is
  *kept*.
* Too few samples on either side keep the change and say so (an idle topology has no
  latency to lose).
* The p99 is judged only with at least ``MIN_TAIL_SAMPLES`` (1,000) latencies on both sides,
  so that at least ten latencies lie at or above it: from 100 latencies the p99 is the
  window's one or two slowest tuples, and a 25% rise of those is a coin toss, not a
  regression. With fewer the average alone decides and the reason says the p99 was not
  judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from squall.nimbus.records import Placement, Slot

AVG_WORSE = 0.10  # the default margins (fractions; the conf keys give them in percent)
P99_WORSE = 0.25
MIN_SAMPLES = 100
MIN_TAIL_SAMPLES = 1000  # a p99 from fewer rests on fewer than ten latencies
COOLDOWN_S = 600.0  # a rejected placement is not proposed again for this long

KEPT = "kept"
ROLLED_BACK = "rolled_back"


@dataclass(frozen=True)
class Measured:
    """Complete latency over one window."""

    avg_ms: float | None
    p99_ms: float | None
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"avg_ms": _round(self.avg_ms), "p99_ms": _round(self.p99_ms), "count": self.count}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


@dataclass
class Probation:
    """A change under watch. ``since`` is when its migration completed (None: still moving)."""

    event_id: int
    previous: Placement
    before: Measured
    since: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Margins:
    """How much worse a change may make latency before it is rolled back, as fractions of
    the latency before it (0.10: 10% higher). A very large margin means "never judged"."""

    avg_worse: float = AVG_WORSE
    p99_worse: float = P99_WORSE


def verdict(before: Measured, after: Measured, margins: Margins = Margins()) -> tuple[str, str]:
    """(KEPT or ROLLED_BACK, why). ``why`` names each figure that decided, with its margin."""
    if before.count < MIN_SAMPLES or after.count < MIN_SAMPLES:
        return (
            KEPT,
            f"too few latency samples to judge ({before.count} before, {after.count} after; need {MIN_SAMPLES})",
        )
    tail_judged = before.count >= MIN_TAIL_SAMPLES and after.count >= MIN_TAIL_SAMPLES
    worse = []
    avg_limit = margins.avg_worse
    if before.avg_ms and after.avg_ms is not None and after.avg_ms > before.avg_ms * (1 + avg_limit):
        worse.append(f"average {before.avg_ms:.3g} -> {after.avg_ms:.3g} ms (> +{avg_limit:.0%})")
    p99_limit = margins.p99_worse
    if tail_judged and before.p99_ms and after.p99_ms is not None and after.p99_ms > before.p99_ms * (1 + p99_limit):
        worse.append(f"p99 {before.p99_ms:.3g} -> {after.p99_ms:.3g} ms (> +{p99_limit:.0%})")
    if worse:
        return ROLLED_BACK, "latency rose: " + "; ".join(worse)
    why = (
        f"average {_fmt(before.avg_ms)} -> {_fmt(after.avg_ms)} ms, "
        f"p99 {_fmt(before.p99_ms)} -> {_fmt(after.p99_ms)} ms"
    )
    if not tail_judged:
        why += (
            f" (p99 not judged: {before.count} latencies before, {after.count} after;"
            f" a p99 needs {MIN_TAIL_SAMPLES} on each side)"
        )
    return KEPT, why


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


Signature = tuple[tuple[str, tuple[int, ...]], ...]


def signature(placement: Mapping[int, Slot]) -> Signature:
    """A placement up to port numbers: which executors share a worker, on which board."""
    groups: dict[tuple[str, int], list[int]] = {}
    for ex, slot in placement.items():
        groups.setdefault((slot.node, slot.port), []).append(ex)
    return tuple(sorted((node, tuple(sorted(execs))) for (node, _port), execs in groups.items()))


@dataclass
class Rejections:
    """Rejected placements per topology, each until its cool-down ends."""

    until: dict[str, dict[Signature, float]] = field(default_factory=dict)

    def add(self, topology: str, placement: Mapping[int, Slot], until: float) -> None:
        self.until.setdefault(topology, {})[signature(placement)] = until

    def rejected(self, topology: str, placement: Mapping[int, Slot], now: float) -> float | None:
        """When the cool-down of ``placement`` ends, or None when it is not rejected."""
        table = self.until.get(topology, {})
        for sig in [s for s, t in table.items() if t <= now]:
            del table[sig]
        return table.get(signature(placement))

    def forget(self, topology: str) -> None:
        self.until.pop(topology, None)
