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

Memory shape: a sample is kept as plain tuples of numbers, not as the decoded dataclasses.
CPython's cyclic garbage collector stops tracking a tuple once everything in it is untracked
(numbers, and tuples it untracked before; never a dict or a list: the per-source counts are
kept as flat tuples), one level of nesting per collection, so a sample is untracked after a
few collections and a full collection no longer walks the window. Kept as dataclasses, a
30 s window of 1,000 workers (500 boards) held ~400,000 tracked objects and each full
collection took 200-300 ms of CPU: the longest pauses of Nimbus's loop
(``benchmarks/nimbus_gc.py`` prints both figures). Only the newest report of each worker is
kept whole, for :meth:`MetricsWindow.latest`.

Cost of :meth:`MetricsWindow.rates`: a sample records, when it is added, how many samples in a
row before it continue each other (the same executors and sources, no counter the rates read
went down: the worker did not restart). When a worker's whole window is such a run, each rate
is its newest value minus its oldest (the sum of the increases telescopes), so computing the
rates reads two samples per worker instead of every sample of the window: at 500 boards
(1,000 workers, 30 samples each) ~0.7 s of CPU became a few tens of ms
(``benchmarks/history_sample.py``). Any other window is summed step by step as before.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from operator import le
from typing import Final

from squall.messages import LATENCY_BUCKETS_MS, ExecutorMetrics, WorkerMetrics

SourceKey = tuple[str, str, int]  # (topology, node, port)

# One executor's counters in a sample: (executor, cpu_s, emitted, executed, latency_sum_ms,
# latency_count, latency_buckets, received_from, sent_control), a plain tuple (see above);
# received_from and sent_control are flat (executor, count, executor, count, ...) tuples.
_EX: Final = 0
_CPU: Final = 1
_EMITTED: Final = 2
_EXECUTED: Final = 3
_LAT_SUM: Final = 4
_LAT_COUNT: Final = 5
_LAT_BUCKETS: Final = 6
_RECEIVED_FROM: Final = 7
_SENT_CONTROL: Final = 8
Counts = tuple[int, ...]  # (executor, count, executor, count, ...)
ExecutorRow = tuple[int, float, int, int, float, int, tuple[int, ...], Counts, Counts]
# One worker's sample: (received, at, clock_hz, process_cpu_s, transfer_cpu_s, sent_remote,
# received_remote, bytes_sent, frames_sent, rss_bytes, loop_cpu_s, loop_wait_s, loop_runs,
# executor rows). ``received`` is Nimbus's clock (to age samples out); ``at`` the worker's.
_RECEIVED: Final = 0
_AT: Final = 1
_CLOCK: Final = 2
_PROCESS_CPU: Final = 3
_TRANSFER_CPU: Final = 4
_SENT_REMOTE: Final = 5
_RECEIVED_REMOTE: Final = 6
_BYTES_SENT: Final = 7
_FRAMES_SENT: Final = 8
_RSS: Final = 9
_LOOP_CPU: Final = 10
_LOOP_WAIT: Final = 11
_LOOP_RUNS: Final = 12
_EXECUTORS: Final = 13
# How many steps in a row, up to this sample, continue the previous sample (see
# ``_continues``): 0 for a worker's first sample or one after a restart.
_RUN: Final = 14
Sample = tuple[
    float, float, float, float, float, int, int, int, int, int, float, float, int, tuple[ExecutorRow, ...], int
]


def _row(em: ExecutorMetrics) -> ExecutorRow:
    return (
        em.executor,
        em.cpu_s,
        em.emitted,
        em.executed,
        em.latency_sum_ms,
        em.latency_count,
        tuple(em.latency_buckets),
        _flat(em.received_from),
        _flat(em.sent_control),
    )


def _flat(counts: dict[int, int]) -> Counts:
    return tuple(itertools.chain.from_iterable(counts.items()))


def _unflat(counts: Counts) -> dict[int, int]:
    return dict(zip(counts[::2], counts[1::2], strict=True))


def _sample(received: float, m: WorkerMetrics, previous: Sample | None) -> Sample:
    """``m`` as plain tuples: what the window keeps of it (``previous``: the worker's
    sample before it, if kept, to count the run of continuing samples)."""
    sample = (
        received,
        m.at,
        m.clock_hz,
        m.process_cpu_s,
        m.transfer_cpu_s,
        m.sent_remote,
        m.received_remote,
        m.bytes_sent,
        m.frames_sent,
        m.rss_bytes,
        m.loop_cpu_s,
        m.loop_wait_s,
        m.loop_runs,
        tuple([_row(em) for em in m.executors]),
        0,
    )
    if previous is not None and _continues(previous, sample):
        return (*sample[:_RUN], previous[_RUN] + 1)
    return sample


def _continues(old: Sample, new: Sample) -> bool:
    """Whether every counter the rates read only grew from ``old`` to ``new``, over the same
    executors in the same order and the same sources: then the increase from one to the
    other is ``new - old`` for each (no restart to count from zero, no source gone). Runs on
    the loop for every worker report: written with ``map(le, ...)`` (no generator) and the
    comparisons chained, ~10 us for a worker of 5 executors."""
    if not (
        old[_PROCESS_CPU] <= new[_PROCESS_CPU]
        and old[_TRANSFER_CPU] <= new[_TRANSFER_CPU]
        and old[_SENT_REMOTE] <= new[_SENT_REMOTE]
        and old[_RECEIVED_REMOTE] <= new[_RECEIVED_REMOTE]
        and old[_BYTES_SENT] <= new[_BYTES_SENT]
        and old[_FRAMES_SENT] <= new[_FRAMES_SENT]
        and old[_LOOP_CPU] <= new[_LOOP_CPU]
        and old[_LOOP_WAIT] <= new[_LOOP_WAIT]
        and old[_LOOP_RUNS] <= new[_LOOP_RUNS]
    ):
        return False
    rows_old, rows_new = old[_EXECUTORS], new[_EXECUTORS]
    if len(rows_old) != len(rows_new):
        return False
    ids = []
    for a, b in zip(rows_old, rows_new):
        if not (
            a[_EX] == b[_EX]
            and a[_CPU] <= b[_CPU]
            and a[_EMITTED] <= b[_EMITTED]
            and a[_EXECUTED] <= b[_EXECUTED]
            # The same sources in the same order (the even places), and none lower: with
            # the keys equal, ``<=`` over the whole flat tuple compares only the counts.
            and a[_RECEIVED_FROM][::2] == b[_RECEIVED_FROM][::2]
            and all(map(le, a[_RECEIVED_FROM], b[_RECEIVED_FROM]))
            and a[_SENT_CONTROL][::2] == b[_SENT_CONTROL][::2]
            and all(map(le, a[_SENT_CONTROL], b[_SENT_CONTROL]))
        ):
            return False
        ids.append(b[_EX])
    return len(set(ids)) == len(ids)  # an executor reported twice is summed step by step


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


def _increase(values: list[float]) -> float:
    total = 0.0
    for a, b in zip(values, values[1:]):
        total += b - a if b >= a else b  # a drop: the worker restarted from zero
    return total


def _add_increases(into: list[int], counts: list[Sequence[int]]) -> None:
    """Add to ``into[k]`` the increase of each cumulative count ``counts[.][k]`` over the
    consecutive samples, as :func:`_increase` takes it (a drop: the worker restarted from
    zero), a missing entry read as 0: one pass over the sample pairs rather than one per
    bucket (a topology's hundreds of spouts times its buckets, at every rebalance)."""
    width = len(into)
    for before, after in zip(counts, counts[1:]):
        n_before, n_after = len(before), len(after)
        for k in range(width):
            b = after[k] if k < n_after else 0
            a = before[k] if k < n_before else 0
            into[k] += b - a if b >= a else b


def _per_s(values: Sequence[float], span: float) -> float:
    """The increase of a cumulative counter over consecutive ``values``, per second."""
    return _increase([float(v) for v in values]) / span


# Of one executor in one worker's window: (executor, its CPU in cores, emitted/s, executed/s,
# peer -> items/s received from it, peer -> control items/s sent to it), rates above 0 only.
ExecutorRates = tuple[int, float, float, float, dict[int, float], dict[int, float]]


def _rates_step_by_step(q: tuple[Sample, ...], span: float) -> Iterator[ExecutorRates]:
    """The rates of every executor present in two samples or more of ``q``, summing the
    increases between its consecutive samples (a drop counts from zero: a restart)."""
    series: dict[int, list[ExecutorRow]] = {}
    for sample in q:
        for row in sample[_EXECUTORS]:
            series.setdefault(row[_EX], []).append(row)
    for ex, rows in series.items():
        if len(rows) < 2:
            continue
        yield (
            ex,
            _increase([r[_CPU] for r in rows]) / span,
            _increase([float(r[_EMITTED]) for r in rows]) / span,
            _increase([float(r[_EXECUTED]) for r in rows]) / span,
            _rates_by_peer([_unflat(r[_RECEIVED_FROM]) for r in rows], span),
            _rates_by_peer([_unflat(r[_SENT_CONTROL]) for r in rows], span),
        )


def _rates_of_run(first: Sample, last: Sample, span: float) -> Iterator[ExecutorRates]:
    """What :func:`_rates_step_by_step` gives when every sample from ``first`` to ``last``
    continues the one before (``_continues``): each sum of increases is ``last - first``."""
    for a, b in zip(first[_EXECUTORS], last[_EXECUTORS]):
        yield (
            b[_EX],
            (b[_CPU] - a[_CPU]) / span,
            (b[_EMITTED] - a[_EMITTED]) / span,
            (b[_EXECUTED] - a[_EXECUTED]) / span,
            _peer_rates(a[_RECEIVED_FROM], b[_RECEIVED_FROM], span),
            _peer_rates(a[_SENT_CONTROL], b[_SENT_CONTROL], span),
        )


def _peer_rates(old: Counts, new: Counts, span: float) -> dict[int, float]:
    """Peer -> items/s from ``old`` to ``new``, flat counts of the same peers in the same
    order, none lower in ``new``; by peer, the rates above 0 (as :func:`_rates_by_peer`)."""
    out: dict[int, float] = {}
    if not new:
        return out
    for peer, a, b in sorted(zip(new[::2], old[1::2], new[1::2])):
        if b > a:
            out[peer] = (b - a) / span
    return out


def _rates_by_peer(counts: list[dict[int, int]], span: float) -> dict[int, float]:
    """Peer executor -> items/s over consecutive cumulative ``counts`` (the rates above 0)."""
    out = {}
    for peer in sorted({p for c in counts for p in c}):
        rate = _increase([float(c.get(peer, 0)) for c in counts]) / span
        if rate > 0:
            out[peer] = rate
    return out


class MetricsWindow:
    """Samples per worker, aged out by Nimbus's clock."""

    def __init__(self) -> None:
        self._samples: dict[SourceKey, tuple[Sample, ...]] = {}  # oldest first; never edited
        # The newest report of each worker with samples, whole: (received, metrics).
        self._newest: dict[SourceKey, tuple[float, WorkerMetrics]] = {}

    def add(self, topology: str, node: str, port: int, metrics: WorkerMetrics, now: float, window_s: float) -> None:
        """Record a sample; a repeat of the newest one (same ``at``) is ignored."""
        key = (topology, node, port)
        q = self._samples.get(key, ())
        if q and q[-1][_AT] == metrics.at:
            return
        self._samples[key] = (*q, _sample(now, metrics, q[-1] if q else None))
        self._newest[key] = (now, metrics)
        self._trim(key, now, window_s)

    def _trim(self, key: SourceKey, now: float, window_s: float) -> None:
        q = self._samples[key]
        old = 0
        while old < len(q) and now - q[old][_RECEIVED] > window_s:
            old += 1
        if old == len(q):
            del self._samples[key]
            del self._newest[key]
        elif old:
            self._samples[key] = q[old:]

    def expire(self, now: float, window_s_of: dict[str, float]) -> None:
        """Age every source out (``window_s_of``: topology -> window; unknown ones dropped)."""
        for key in list(self._samples):
            if key[0] not in window_s_of:
                del self._samples[key]
                del self._newest[key]
            else:
                self._trim(key, now, window_s_of[key[0]])

    def copy(self) -> MetricsWindow:
        """A window with the same samples that later ``add``/``expire`` here leave unchanged
        (every worker's samples are an immutable tuple: only the dicts are copied)."""
        out = MetricsWindow()
        out._samples = dict(self._samples)
        out._newest = dict(self._newest)
        return out

    def forget(self, topology: str) -> None:
        for key in [k for k in self._samples if k[0] == topology]:
            del self._samples[key]
            del self._newest[key]

    def latest(self, topology: str) -> dict[int, tuple[ExecutorMetrics, str, int]]:
        """Executor -> (its newest counters, node, port)."""
        best: dict[int, tuple[float, ExecutorMetrics, str, int]] = {}
        for (t, node, port), (received, newest) in self._newest.items():
            if t != topology:
                continue
            for em in newest.executors:
                if em.executor not in best or best[em.executor][0] < received:
                    best[em.executor] = (received, em, node, port)
        return {ex: (em, node, port) for ex, (_, em, node, port) in best.items()}

    def latency(self, topology: str, executors: set[int]) -> tuple[float, int, list[int]]:
        """Complete latency recorded by ``executors`` (the spouts) within the window:
        (sum of ms, count, counts per ``LATENCY_BUCKETS_MS`` bucket with +inf last)."""
        total, count = 0.0, 0
        buckets = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        for (t, _node, _port), q in self._samples.items():
            if t != topology or len(q) < 2:
                continue
            series: dict[int, list[ExecutorRow]] = {}
            for sample in q:
                for row in sample[_EXECUTORS]:
                    if row[_EX] in executors:
                        series.setdefault(row[_EX], []).append(row)
            for rows in series.values():
                total += _increase([r[_LAT_SUM] for r in rows])
                count += int(_increase([float(r[_LAT_COUNT]) for r in rows]))
                _add_increases(buckets, [r[_LAT_BUCKETS] for r in rows])
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
            first, last = q[0], q[-1]
            span = last[_AT] - first[_AT]
            if span <= 0:
                continue
            clock = last[_CLOCK]
            # One run of continuing samples: the sum of the increases is newest - oldest.
            run = last[_RUN] >= len(q) - 1
            read = (first, last) if run else q
            executor_cores = 0.0
            for ex, cores, emitted, executed, received, sent_control in (
                _rates_of_run(first, last, span) if run else _rates_step_by_step(q, span)
            ):
                if newest_of.get(ex, float("-inf")) >= last[_RECEIVED]:
                    continue
                newest_of[ex] = last[_RECEIVED]
                executor_cores += cores
                out.cpu_cores[ex] = cores
                out.clock_hz[ex] = clock
                out.executor_worker[ex] = (_node, _port)
                out.load_hz[ex] = cores * clock
                out.emitted[ex] = emitted
                out.executed[ex] = executed
                traffic_into.pop(ex, None)  # a newer worker of this executor replaces them
                traffic_into[ex] = received
                # Control items (to and from ackers) are counted where they are sent.
                control_from.pop(ex, None)
                control_from[ex] = sent_control

            out.workers[(_node, _port)] = WorkerRates(
                process_cores=_per_s([s[_PROCESS_CPU] for s in read], span),
                transfer_cores=_per_s([s[_TRANSFER_CPU] for s in read], span),
                executor_cores=executor_cores,
                items_crossing=(
                    _increase([float(s[_SENT_REMOTE]) for s in read])
                    + _increase([float(s[_RECEIVED_REMOTE]) for s in read])
                )
                / span,
                items_sent=_per_s([s[_SENT_REMOTE] for s in read], span),
                bytes_sent=_per_s([s[_BYTES_SENT] for s in read], span),
                frames_sent=_per_s([s[_FRAMES_SENT] for s in read], span),
                rss_bytes=last[_RSS],
                measured=last[_PROCESS_CPU] > 0 or first[_PROCESS_CPU] > 0,
                loop_cores=_per_s([s[_LOOP_CPU] for s in read], span),
                loop_wait=_per_s([s[_LOOP_WAIT] for s in read], span),
                loop_runs=_per_s([s[_LOOP_RUNS] for s in read], span),
            )
        out.traffic = {(src, dst): rate for dst, into in traffic_into.items() for src, rate in into.items()}
        control = {(src, dst): rate for src, sent in control_from.items() for dst, rate in sent.items()}
        for key, rate in control.items():
            out.traffic[key] = out.traffic.get(key, 0.0) + rate
        out.control = control
        return out
