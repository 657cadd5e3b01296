"""From measured counters to the latency model's profiles: pure functions, no I/O.

Workers report cumulative CPU and item counters (``WorkerMetrics``); supervisors report
their board's CPU, quota, throttling and memory (``BoardMetrics``). This module turns the
rates over the metrics window into what ``squall.rebalance`` needs:

* :class:`BoardWindow` keeps each board's samples and gives :class:`BoardRates`;
* :func:`honest_load` attributes *all* of each worker's process CPU to its executors: an
  executor's own CPU, plus a share of the worker's transfer CPU and loop overhead in
  proportion to the items it processed (equal shares when none were). The sum over a
  worker's executors is its measured process CPU, so the capacity checks of every
  load-aware scheduler (``online`` included) see the CPU the board really spends;
* :func:`workload_profile` gives per executor the rate and cycles per item, per worker the
  overhead and the transfer cycles per crossing message, the message size, a worker's memory
  (per message of the traffic matrix, as the model applies them: :func:`crossing_messages`);
* :func:`board_profile` gives the board's cores, clock, memory, link and throttling, and
  the background CPU (the board's use not accounted for by the topology's own workers).

Guarantees: never negative, never NaN; a missing figure (an older worker, a platform
without cgroups) gives a profile without it, and :func:`missing` says what is missing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from squall import config
from squall.messages import BoardMetrics
from squall.nimbus.metrics import Rates
from squall.rebalance.profile import BoardProfile, ExecutorProfile, WorkloadProfile

MIB = 1024 * 1024
DEFAULT_FLUSH_S = config.DEFAULT_TRANSFER_FLUSH_MS / 1000.0  # the longest an item waits in a batch
FLUSH_MS_KEY = config.TRANSFER_FLUSH_MS


@dataclass(frozen=True)
class BoardRates:
    """A board's figures over the window (CPU in cores)."""

    used_cores: float
    cores: float
    cpu_period_s: float
    throttled_share: float  # share of wall time the quota held the board stopped
    memory_used_mb: float
    memory_limit_mb: float
    source: str


class BoardWindow:
    """Board samples per supervisor, aged out by Nimbus's clock."""

    def __init__(self) -> None:
        self._samples: dict[str, deque[tuple[float, BoardMetrics]]] = {}

    def add(self, supervisor: str, sample: BoardMetrics, now: float, window_s: float) -> None:
        q = self._samples.setdefault(supervisor, deque())
        if q and q[-1][1].at == sample.at:
            return
        if q and sample.at < q[-1][1].at:  # the supervisor restarted: its clock and counters too
            q.clear()
        q.append((now, sample))
        while q and now - q[0][0] > window_s:
            q.popleft()

    def forget(self, supervisor: str) -> None:
        self._samples.pop(supervisor, None)

    def rates(self, supervisor: str) -> BoardRates | None:
        q = self._samples.get(supervisor)
        if not q or len(q) < 2:
            return None
        a, b = q[0][1], q[-1][1]
        span = b.at - a.at
        if span <= 0:
            return None
        used = max(0.0, b.cpu_s - a.cpu_s) / span
        throttled = max(0.0, b.throttled_s - a.throttled_s) / span
        return BoardRates(
            used_cores=used,
            cores=b.cores,
            cpu_period_s=b.cpu_period_s,
            throttled_share=min(1.0, throttled),
            memory_used_mb=b.memory_used_bytes / MIB,
            memory_limit_mb=b.memory_limit_bytes / MIB,
            source=b.source,
        )


def honest_load(rates: Rates) -> dict[int, float]:
    """Executor -> cycles/s including its share of its worker's transfer and overhead CPU."""
    by_worker: dict[tuple[str, int], list[int]] = {}
    for ex, where in rates.executor_worker.items():
        by_worker.setdefault(where, []).append(ex)
    out = dict(rates.load_hz)
    for where, execs in by_worker.items():
        w = rates.workers.get(where)
        if w is None or not w.measured:
            continue
        rest = max(0.0, w.process_cores - w.executor_cores)
        items = {ex: rates.executed.get(ex, 0.0) for ex in execs}
        total = sum(items.values())
        for ex in execs:
            share = items[ex] / total if total > 0 else 1.0 / len(execs)
            out[ex] = (rates.cpu_cores.get(ex, 0.0) + rest * share) * rates.clock_hz.get(ex, 0.0)
    return out


def workload_profile(
    rates: Rates,
    executor_ids: Iterable[int],
    sources: Iterable[int],
    ackers: Iterable[int],
    flush_s: float = DEFAULT_FLUSH_S,
) -> WorkloadProfile | None:
    """The topology's profile, or None when the window holds no rates yet. ``flush_s``:
    the topology's flush delay (the model derives the mean wait in a batch from it)."""
    ids = sorted(executor_ids)
    if not any(ex in rates.executed for ex in ids):
        return None
    source_ids = tuple(sorted(set(sources)))
    execs = []
    for ex in ids:
        lam = rates.executed.get(ex, 0.0)
        if ex in source_ids:
            lam = max(lam, rates.emitted.get(ex, 0.0))
        cores = rates.cpu_cores.get(ex, 0.0)
        cycles = cores * rates.clock_hz.get(ex, 0.0) / lam if lam > 0 else 0.0
        execs.append(ExecutorProfile(ex, lam, cycles))
    measured = [(where, w) for where, w in sorted(rates.workers.items()) if w.measured]
    overhead_hz = transfer_per_item = item_bytes = worker_mb = 0.0
    if measured:
        clock = _clock_of(rates, [where for where, _ in measured])
        overheads = [max(0.0, w.process_cores - w.executor_cores - w.transfer_cores) for _, w in measured]
        overhead_hz = sum(overheads) / len(overheads) * clock
        sent, received = crossing_messages(rates)
        crossing = sum(sent.get(where, 0.0) + received.get(where, 0.0) for where, _ in measured)
        transfer = sum(w.transfer_cores for _, w in measured)
        # Each crossing message is counted once at its sender's worker and once at its
        # receiver's, and the CPU at both ends is in ``transfer``: cycles per message, both
        # ends together.
        transfer_per_item = 2.0 * transfer * clock / crossing if crossing > 0 else 0.0
        sent_items = sum(sent.get(where, 0.0) for where, _ in measured)
        sent_bytes = sum(w.bytes_sent for _, w in measured)
        item_bytes = sent_bytes / sent_items if sent_items > 0 else 0.0
        worker_mb = max(w.rss_bytes for _, w in measured) / MIB
    source_rate = sum(rates.emitted.get(ex, 0.0) for ex in source_ids)
    return WorkloadProfile(
        executors=tuple(execs),
        source_rate=source_rate,
        sources=source_ids,
        ackers=tuple(sorted(set(ackers))),
        worker_overhead_hz=overhead_hz,
        transfer_cycles_per_item=transfer_per_item,
        item_bytes=item_bytes,
        worker_memory_mb=worker_mb,
        flush_s=flush_s,
    )


def crossing_messages(rates: Rates) -> tuple[dict[tuple[str, int], float], dict[tuple[str, int], float]]:
    """Messages/s each worker sends to, and receives from, executors on other workers, read
    from the traffic matrix (tuples and acker messages, one per message).

    The model prices a crossing per message of that matrix (``transfer_cycles_per_item``
    times the traffic between two workers; ``item_bytes`` times the traffic between two
    boards), so the per-message figures are divided by messages in the same unit. The
    workers' own counters count frame *items*, and one bulk acker item carries the messages
    of many trees: dividing by items overstated the cost of every message, by as much as
    acking was bulked. An executor no worker reports is taken to be elsewhere."""
    sent: dict[tuple[str, int], float] = {}
    received: dict[tuple[str, int], float] = {}
    where = rates.executor_worker
    for (src, dst), rate in rates.traffic.items():
        w_src, w_dst = where.get(src), where.get(dst)
        if w_src == w_dst:
            continue
        if w_src is not None:
            sent[w_src] = sent.get(w_src, 0.0) + rate
        if w_dst is not None:
            received[w_dst] = received.get(w_dst, 0.0) + rate
    return sent, received


def _clock_of(rates: Rates, workers: list[tuple[str, int]]) -> float:
    clocks = [
        rates.clock_hz[ex] for ex, where in rates.executor_worker.items() if where in workers and ex in rates.clock_hz
    ]
    return max(clocks) if clocks else 0.0


def board_profile(
    board: BoardRates | None,
    clock_hz: float,
    cores_registered: int,
    memory_mb_registered: int,
    topology_cores: float,
    link_mbit: float = 0.0,
    link_delay_ms: float = 0.0,
    cpu_wait_ms: float = 0.0,
) -> BoardProfile:
    """The board as the model sees it while placing one topology whose workers use
    ``topology_cores`` on it now (their CPU is not background: the model places it);
    ``cpu_wait_ms``: what those workers' loop threads waited for a CPU each time they became
    ready to run."""
    registered = BoardProfile(
        cores=float(max(1, cores_registered)),
        clock_hz=clock_hz,
        memory_mb=float(memory_mb_registered),
        link_mbit=link_mbit,
        link_delay_ms=link_delay_ms,
        cpu_wait_ms=min(1e4, max(0.0, cpu_wait_ms)),
    )
    if board is None:
        return registered
    # A figure the board measured wins over the registration; zero means not measured.
    cores = board.cores if board.cores > 0 else registered.cores
    return replace(
        registered,
        cores=cores,
        memory_mb=board.memory_limit_mb if board.memory_limit_mb > 0 else registered.memory_mb,
        cpu_period_s=board.cpu_period_s,
        measured_utilisation=min(4.0, board.used_cores / cores),
        throttled_share=board.throttled_share,
        background_cores=max(0.0, board.used_cores - topology_cores),
    )


def topology_cores_by_node(rates: Rates) -> dict[str, float]:
    """node -> process CPU (cores) of the topology's workers there."""
    out: dict[str, float] = {}
    for (node, _port), w in rates.workers.items():
        out[node] = out.get(node, 0.0) + (w.process_cores if w.measured else w.executor_cores)
    return out


def cpu_wait_by_node(rates: Rates) -> dict[str, float]:
    """node -> mean ms the topology's loop threads there waited for a CPU each time they
    became ready to run (nodes whose workers report no such figure are left out)."""
    runs: dict[str, float] = {}
    waited: dict[str, float] = {}
    for (node, _port), w in rates.workers.items():
        if w.loop_runs > 0:
            runs[node] = runs.get(node, 0.0) + w.loop_runs
            waited[node] = waited.get(node, 0.0) + w.loop_wait
    return {n: waited[n] / runs[n] * 1e3 for n in sorted(runs)}


def missing(rates: Rates, boards: Mapping[str, BoardRates | None]) -> list[str]:
    """What the model has to do without, in words (for events)."""
    out = []
    old = sorted(f"{n}:{p}" for (n, p), w in rates.workers.items() if not w.measured)
    if old:
        out.append(f"workers {', '.join(old)} report no process CPU (older version?): their overhead is unknown")
    blind = sorted(n for n, b in boards.items() if b is None)
    if blind:
        out.append(f"boards {', '.join(blind)} report no CPU figures: cores taken from registration")
    return out
