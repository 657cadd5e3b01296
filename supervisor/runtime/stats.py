"""Per-executor counters: what Storm UI shows (emitted, transferred, executed, acked, failed),
the complete latency of spouts, and the busy time and per-source receive counts that the
cluster turns into measured load and traffic."""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field

import numpy as np

LATENCY_SAMPLES = 20_000  # recent complete-latency samples kept per spout executor


@dataclass
class ExecutorStats:
    component: str
    emitted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    transferred: int = 0
    executed: int = 0
    acked: int = 0
    failed: int = 0
    errors: int = 0
    busy_s: float = 0.0
    latency_sum_s: float = 0.0
    latency_count: int = 0
    latencies_s: deque = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    received_from: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def record_latency(self, seconds: float) -> None:
        self.latency_sum_s += seconds
        self.latency_count += 1
        self.latencies_s.append(seconds)


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
    p99 = float(np.percentile(np.asarray(samples), 99) * 1e3) if samples else None
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
