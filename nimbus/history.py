"""A small ring buffer of per-topology samples for the web page's charts (server side).

``History.sample(state, now)`` is called every couple of seconds with a snapshot of the
state, on the HTTP side's sampling thread, while page renders read it (a lock keeps the two
apart); it keeps, per topology, up to ``points`` scalar samples (complete latency, throughput,
inter-worker and inter-node traffic, assignment version) and the newest few per-executor
counters, from which the REST API computes Storm's windowed fields. Memory stays bounded:
the scalar ring is fixed-size and per-executor counters are kept for ``counter_points`` only.
Topologies that disappear are forgotten at the next sample.

The per-executor counters are kept as plain tuples of numbers (:data:`COUNTED`), copied
from the reports, not the reports' ``ExecutorMetrics`` themselves: at 500 boards and 5,000
executors, keeping those alive for ``counter_points`` samples held ~200,000 objects that every
full garbage collection walked (220-235 ms of CPU each in process, against 16-18 ms without
them; docs/nimbus.md, "Sixth pass"); a tuple of numbers is not tracked by the collector.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from squall.messages import ExecutorMetrics
from squall.nimbus.views import traffic_split

# The counters of an executor the history keeps, in this order (see the module docstring).
COUNTED = ("emitted", "executed", "acked", "failed", "cpu_s", "latency_sum_ms", "latency_count")
_INDEX = {name: k for k, name in enumerate(COUNTED)}
Counts = tuple[float, ...]  # an executor's COUNTED values
Counters = dict[int, Counts]


def counts(em: ExecutorMetrics) -> Counts:
    """``em``'s COUNTED values, as a plain tuple."""
    return (em.emitted, em.executed, em.acked, em.failed, em.cpu_s, em.latency_sum_ms, em.latency_count)


def delta(old: Counts | None, new: Counts, name: str) -> float:
    """Increase of a cumulative counter (one of COUNTED); a drop means the worker restarted from zero."""
    k = _INDEX[name]
    b = float(new[k])
    if old is None:
        return 0.0
    a = float(old[k])
    return b - a if b >= a else b


@dataclass
class _Track:
    points: deque[dict[str, Any]]
    counters: deque[tuple[float, Counters]]
    marks: deque[dict[str, Any]]
    version: int | None = None
    spouts: set[int] = field(default_factory=set)


class History:
    def __init__(self, points: int = 300, counter_points: int = 20, rate_span_s: float = 5.0) -> None:
        self.points = points
        self.counter_points = counter_points
        self.rate_span_s = rate_span_s
        self._tracks: dict[str, _Track] = {}
        self._lock = threading.Lock()

    def sample(self, state: Any, now: float) -> None:
        with self._lock:
            self._sample(state, now)

    def _sample(self, state: Any, now: float) -> None:
        for name in [n for n in self._tracks if n not in state.topologies]:
            del self._tracks[name]
        for name, rec in state.topologies.items():
            track = self._tracks.get(name)
            if track is None:
                track = self._tracks[name] = _Track(
                    deque(maxlen=self.points), deque(maxlen=self.counter_points), deque(maxlen=50)
                )
            if track.version is not None and rec.version != track.version:
                track.marks.append({"t": now, "kind": "placement", "version": rec.version, "status": rec.status})
            track.version = rec.version
            kinds = {c.name: c.kind for c in rec.spec.components}
            track.spouts = {e.id for e in rec.executors() if kinds.get(e.component) == "spout"}
            latest = {ex: counts(em) for ex, (em, _n, _p) in state.metrics.latest(name).items()}
            track.counters.append((now, latest))
            iw, inn = traffic_split(rec, state.rates(name))
            track.points.append(
                {
                    "t": now,
                    "version": rec.version,
                    "status": rec.status,
                    "interWorker": iw,
                    "interNode": inn,
                    **self._rates(track, now),
                }
            )

    def _rates(self, track: _Track, now: float) -> dict[str, Any]:
        """Latency and throughput over the last ``rate_span_s`` seconds of counters."""
        older = None
        for t, counters in track.counters:
            if now - t >= self.rate_span_s:
                older = (t, counters)
        if older is None:
            return {"completeLatencyMs": None, "emittedPerS": None, "ackedPerS": None, "failedPerS": None}
        t0, old = older
        _t1, new = track.counters[-1]
        span = max(now - t0, 1e-9)
        lat_s = sum(delta(old.get(i), new[i], "latency_sum_ms") for i in track.spouts if i in new)
        lat_n = sum(delta(old.get(i), new[i], "latency_count") for i in track.spouts if i in new)
        return {
            "completeLatencyMs": lat_s / lat_n if lat_n else None,
            "emittedPerS": sum(delta(old.get(i), m, "emitted") for i, m in new.items()) / span,
            "ackedPerS": sum(delta(old.get(i), new[i], "acked") for i in track.spouts if i in new) / span,
            "failedPerS": sum(delta(old.get(i), new[i], "failed") for i in track.spouts if i in new) / span,
        }

    def series(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            track = self._tracks.get(name)
            return list(track.points) if track else []

    def marks(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            track = self._tracks.get(name)
            return list(track.marks) if track else []

    def span(self, name: str) -> tuple[Counters, Counters] | None:
        """(oldest, newest) per-executor counters kept, when at least two samples exist."""
        with self._lock:
            track = self._tracks.get(name)
            if track is None or len(track.counters) < 2:
                return None
            return track.counters[0][1], track.counters[-1][1]
