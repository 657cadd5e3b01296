"""The metrics window: cumulative worker counters in, rates out.

Workers report cumulative counters since they started (``WorkerMetrics``). For each worker
(topology, node, port) the window keeps the samples received within the last
``window_s`` seconds; a rate is the sum of the counter's increases between consecutive
samples divided by the time between the oldest and newest sample (the worker's own
``at`` clock, so boards need not agree on the time). A counter that goes down means the
worker restarted: the increase across that step is the new value itself.

Guarantees: rates are never negative; fewer than two samples give no rate (the executor
is absent from the result, not zero); an executor reported by two workers (it moved) is
taken from the one with the newest sample.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from squall.messages import LATENCY_BUCKETS_MS, ExecutorMetrics, WorkerMetrics

SourceKey = tuple[str, str, int]  # (topology, node, port)


@dataclass(frozen=True)
class Sample:
    received: float  # Nimbus's clock, to age samples out
    metrics: WorkerMetrics


@dataclass
class Rates:
    """Per-second rates of one topology over the window."""

    load_hz: dict[int, float] = field(default_factory=dict)  # executor -> cycles/s
    # (src, dst) -> items/s: tuples, and the acker's control items (counted at the sender)
    traffic: dict[tuple[int, int], float] = field(default_factory=dict)
    emitted: dict[int, float] = field(default_factory=dict)  # executor -> tuples/s
    control: dict[tuple[int, int], float] = field(default_factory=dict)  # the acker items within traffic
    executed: dict[int, float] = field(default_factory=dict)  # executor -> items processed/s
    cpu_cores: dict[int, float] = field(default_factory=dict)  # executor -> its own CPU, in cores
    clock_hz: dict[int, float] = field(default_factory=dict)  # executor -> clock of its board
    workers: dict[tuple[str, int], WorkerRates] = field(default_factory=dict)  # (node, port) -> figures
    executor_worker: dict[int, tuple[str, int]] = field(default_factory=dict)  # executor -> (node, port)


@dataclass(frozen=True)
class WorkerRates:
    """One worker's process figures over the window (CPU in cores: seconds per second)."""

    process_cores: float  # every thread of the worker process
    transfer_cores: float  # encode, send, receive and decode
    executor_cores: float  # the sum of its executors' own CPU
    items_crossing: float  # items/s sent to or received from other workers
    items_sent: float  # items/s sent to other workers
    bytes_sent: float  # data-plane bytes/s sent
    frames_sent: float
    rss_bytes: int
    measured: bool  # False: an older worker that reports no process CPU
    loop_cores: float = 0.0  # the loop thread's CPU (the executors run on it)
    loop_wait: float = 0.0  # seconds/s the loop thread was ready to run but had no CPU
    loop_runs: float = 0.0  # times/s the loop thread was put on a CPU


def _at(values: list[int], k: int) -> int:
    return values[k] if k < len(values) else 0


def _increase(values: list[float]) -> float:
    total = 0.0
    for a, b in zip(values, values[1:]):
        total += b - a if b >= a else b  # a drop: the worker restarted from zero
    return total


class MetricsWindow:
    """Samples per worker, aged out by Nimbus's clock."""

    def __init__(self) -> None:
        self._samples: dict[SourceKey, deque[Sample]] = {}

    def add(self, topology: str, node: str, port: int, metrics: WorkerMetrics, now: float, window_s: float) -> None:
        """Record a sample; a repeat of the newest one (same ``at``) is ignored."""
        key = (topology, node, port)
        q = self._samples.setdefault(key, deque())
        if q and q[-1].metrics.at == metrics.at:
            return
        q.append(Sample(now, metrics))
        self._trim(key, now, window_s)

    def _trim(self, key: SourceKey, now: float, window_s: float) -> None:
        q = self._samples[key]
        while q and now - q[0].received > window_s:
            q.popleft()
        if not q:
            del self._samples[key]

    def expire(self, now: float, window_s_of: dict[str, float]) -> None:
        """Age every source out (``window_s_of``: topology -> window; unknown ones dropped)."""
        for key in list(self._samples):
            if key[0] not in window_s_of:
                del self._samples[key]
            else:
                self._trim(key, now, window_s_of[key[0]])

    def copy(self) -> MetricsWindow:
        """A window with the same samples that later ``add``/``expire`` here leave unchanged
        (the samples themselves are immutable: only the queues are copied)."""
        out = MetricsWindow()
        out._samples = {key: deque(q) for key, q in self._samples.items()}
        return out

    def forget(self, topology: str) -> None:
        for key in [k for k in self._samples if k[0] == topology]:
            del self._samples[key]

    def latest(self, topology: str) -> dict[int, tuple[ExecutorMetrics, str, int]]:
        """Executor -> (its newest counters, node, port)."""
        best: dict[int, tuple[float, ExecutorMetrics, str, int]] = {}
        for (t, node, port), q in self._samples.items():
            if t != topology or not q:
                continue
            newest = q[-1].metrics
            for em in newest.executors:
                if em.executor not in best or best[em.executor][0] < q[-1].received:
                    best[em.executor] = (q[-1].received, em, node, port)
        return {ex: (em, node, port) for ex, (_, em, node, port) in best.items()}

    def latency(self, topology: str, executors: set[int]) -> tuple[float, int, list[int]]:
        """Complete latency recorded by ``executors`` (the spouts) within the window:
        (sum of ms, count, counts per ``LATENCY_BUCKETS_MS`` bucket with +inf last)."""
        total, count = 0.0, 0
        buckets = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        for (t, _node, _port), q in self._samples.items():
            if t != topology or len(q) < 2:
                continue
            series: dict[int, list[ExecutorMetrics]] = {}
            for sample in q:
                for em in sample.metrics.executors:
                    if em.executor in executors:
                        series.setdefault(em.executor, []).append(em)
            for ems in series.values():
                total += _increase([e.latency_sum_ms for e in ems])
                count += int(_increase([float(e.latency_count) for e in ems]))
                for k in range(len(buckets)):
                    buckets[k] += int(_increase([float(_at(e.latency_buckets, k)) for e in ems]))
        return total, count, buckets

    def rates(self, topology: str) -> Rates:
        out = Rates()
        newest_of: dict[int, float] = {}
        # dst -> src -> rate, and src -> dst -> rate for control items (acker items, counted at
        # the sender): kept per executor so that a newer worker of an executor replaces its
        # rows in one step (scanning every edge per executor was quadratic at thousands).
        # A replaced executor's rows move to the end, as deleting and re-adding them would.
        traffic_into: dict[int, dict[int, float]] = {}
        control_from: dict[int, dict[int, float]] = {}
        for (t, _node, _port), q in sorted(self._samples.items()):
            if t != topology or len(q) < 2:
                continue
            span = q[-1].metrics.at - q[0].metrics.at
            if span <= 0:
                continue
            clock = q[-1].metrics.clock_hz
            series: dict[int, list[ExecutorMetrics]] = {}
            for sample in q:
                for em in sample.metrics.executors:
                    series.setdefault(em.executor, []).append(em)
            first, last = q[0].metrics, q[-1].metrics
            executor_cores = 0.0
            for ex, ems in series.items():
                if len(ems) < 2 or newest_of.get(ex, float("-inf")) >= q[-1].received:
                    continue
                newest_of[ex] = q[-1].received
                cores = _increase([e.cpu_s for e in ems]) / span
                executor_cores += cores
                out.cpu_cores[ex] = cores
                out.clock_hz[ex] = clock
                out.executor_worker[ex] = (_node, _port)
                out.load_hz[ex] = cores * clock
                out.emitted[ex] = _increase([float(e.emitted) for e in ems]) / span
                out.executed[ex] = _increase([float(e.executed) for e in ems]) / span
                traffic_into.pop(ex, None)  # a newer worker of this executor replaces them
                into = traffic_into[ex] = {}
                for src in sorted({s for e in ems for s in e.received_from}):
                    rate = _increase([float(e.received_from.get(src, 0)) for e in ems]) / span
                    if rate > 0:
                        into[src] = rate
                # Control items (to and from ackers) are counted where they are sent.
                control_from.pop(ex, None)
                sent = control_from[ex] = {}
                for dst in sorted({d for e in ems for d in e.sent_control}):
                    rate = _increase([float(e.sent_control.get(dst, 0)) for e in ems]) / span
                    if rate > 0:
                        sent[dst] = rate
            out.workers[(_node, _port)] = WorkerRates(
                process_cores=_increase([s.metrics.process_cpu_s for s in q]) / span,
                transfer_cores=_increase([s.metrics.transfer_cpu_s for s in q]) / span,
                executor_cores=executor_cores,
                items_crossing=(
                    _increase([float(s.metrics.sent_remote) for s in q])
                    + _increase([float(s.metrics.received_remote) for s in q])
                )
                / span,
                items_sent=_increase([float(s.metrics.sent_remote) for s in q]) / span,
                bytes_sent=_increase([float(s.metrics.bytes_sent) for s in q]) / span,
                frames_sent=_increase([float(s.metrics.frames_sent) for s in q]) / span,
                rss_bytes=last.rss_bytes,
                measured=last.process_cpu_s > 0 or first.process_cpu_s > 0,
                loop_cores=_increase([s.metrics.loop_cpu_s for s in q]) / span,
                loop_wait=_increase([s.metrics.loop_wait_s for s in q]) / span,
                loop_runs=_increase([float(s.metrics.loop_runs) for s in q]) / span,
            )
        out.traffic = {(src, dst): rate for dst, into in traffic_into.items() for src, rate in into.items()}
        control = {(src, dst): rate for src, sent in control_from.items() for dst, rate in sent.items()}
        for key, rate in control.items():
            out.traffic[key] = out.traffic.get(key, 0.0) + rate
        out.control = control
        return out
