"""Every rebalance on probation: measured before, measured after, rolled back when it hurt.

Pure values and rules (no clock, no I/O); ``nimbus/live.py`` enacts them.

* Before a change is applied Nimbus takes the measured latency of the current placement
  (:class:`Measured`: average, p99, sample count, from the spouts' histograms over the
  metrics window) and keeps the placement (:class:`Probation`).
* After the migration completes, measurement starts afresh; once a full metrics window has
  been measured under the new placement, :func:`verdict` compares: average up by more than
  ``AVG_WORSE`` (10%) or p99 up by more than ``P99_WORSE`` (25%) — with at least
  ``MIN_SAMPLES`` latencies on both sides — means *rolled back*: Nimbus moves the topology
  back to the kept placement and remembers the rejected one (:func:`signature`) so that no
  scheduler proposes it again before the cool-down ends. Otherwise the change is *kept*.
* Too few samples on either side keep the change and say so (an idle topology has no
  latency to lose).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from squall.nimbus.records import Placement, Slot

AVG_WORSE = 0.10
P99_WORSE = 0.25
MIN_SAMPLES = 100
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


def verdict(before: Measured, after: Measured) -> tuple[str, str]:
    """(KEPT or ROLLED_BACK, why)."""
    if before.count < MIN_SAMPLES or after.count < MIN_SAMPLES:
        return (
            KEPT,
            f"too few latency samples to judge ({before.count} before, {after.count} after; need {MIN_SAMPLES})",
        )
    worse = []
    if before.avg_ms and after.avg_ms is not None and after.avg_ms > before.avg_ms * (1 + AVG_WORSE):
        worse.append(f"average {before.avg_ms:.3g} -> {after.avg_ms:.3g} ms (> +{AVG_WORSE:.0%})")
    if before.p99_ms and after.p99_ms is not None and after.p99_ms > before.p99_ms * (1 + P99_WORSE):
        worse.append(f"p99 {before.p99_ms:.3g} -> {after.p99_ms:.3g} ms (> +{P99_WORSE:.0%})")
    if worse:
        return ROLLED_BACK, "latency rose: " + "; ".join(worse)
    return KEPT, (
        f"average {_fmt(before.avg_ms)} -> {_fmt(after.avg_ms)} ms, "
        f"p99 {_fmt(before.p99_ms)} -> {_fmt(after.p99_ms)} ms"
    )


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
