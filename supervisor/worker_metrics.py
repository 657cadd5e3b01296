"""A worker's counters as the wire's ``WorkerMetrics``: per executor, cumulative since start.

The engine counts receptions per *source task*; the cluster measures traffic between
*executors* (the unit the scheduler places), so ``received_from`` is summed here over each
source executor's tasks. ``cpu_s`` is the executor's CPU (thread) time, which Nimbus turns
into load in cycles/s with ``clock_hz``. Reading the counters costs O(executors + sources)
and allocates only the message, so a heartbeat every second is negligible.
"""

from __future__ import annotations

import os
import time
from typing import Any, Iterable

from squall.messages import ExecutorMetrics, WorkerMetrics
from squall.topology.spec import ExecutorSpec

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """This process's resident set size, from /proc (no psutil import on the worker path);
    0 where /proc is missing."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def task_to_executor(executors: Iterable[ExecutorSpec]) -> dict[int, int]:
    """Every task of the topology (ackers included) -> the id of the executor holding it."""
    return {t: e.id for e in executors for t in e.tasks}


def executor_metrics(executor_id: int, ex: Any, task_executor: dict[int, int]) -> ExecutorMetrics:
    """One executor's counters; ``ex`` is a runtime executor (spout, bolt or acker)."""
    st = ex.stats
    received: dict[int, int] = {}
    for task, n in st.received_from.items():
        source = task_executor.get(task)
        if source is not None:
            received[source] = received.get(source, 0) + n
    return ExecutorMetrics(
        executor=executor_id,
        component=ex.component,
        emitted=sum(st.emitted.values()),
        transferred=st.transferred,
        executed=st.executed,
        acked=st.acked,
        failed=st.failed,
        errors=st.errors,
        cpu_s=st.busy_s,
        received_from=received,
        latency_sum_ms=st.latency_sum_s * 1e3,
        latency_count=st.latency_count,
        latency_buckets=list(st.latency_buckets) if st.latency_count else [],
    )


def worker_metrics(
    executors: Iterable[Any],
    task_executor: dict[int, int],
    clock_hz: float,
    sent_remote: int,
    received_remote: int = 0,
    queued: int = 0,
) -> WorkerMetrics:
    """The whole worker's counters at this instant (``at`` is wall-clock time).

    ``sent_remote``/``received_remote`` are items handed to / taken from other workers'
    sockets, cumulative; ``queued`` is a level (items not yet processed or sent). Nimbus
    reads quiescence from them: queued 0 everywhere and sums of sent and received equal."""
    return WorkerMetrics(
        at=time.time(),
        clock_hz=float(clock_hz),
        executors=[executor_metrics(ex.spec.id, ex, task_executor) for ex in executors],
        sent_remote=sent_remote,
        rss_bytes=rss_bytes(),
        received_remote=received_remote,
        queued=queued,
    )
