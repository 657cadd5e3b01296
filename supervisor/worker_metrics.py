"""A worker's counters as the wire's ``WorkerMetrics``: per executor, cumulative since start.

The engine counts receptions per *source task*; the cluster measures traffic between
*executors* (the unit the scheduler places), so ``received_from`` is summed here over each
source executor's tasks, and ``sent_control`` (control items per destination task) over each
destination executor's tasks. ``cpu_s`` is the executor's CPU (thread) time, which Nimbus turns
into load in cycles/s with ``clock_hz``. Reading the counters costs O(executors + sources)
and allocates only the message, so a heartbeat every second is negligible.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from squall.messages import DataLinks, ExecutorMetrics, WorkerMetrics
from squall.topology.spec import ExecutorSpec

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def read_small(path: str) -> bytes:
    """A small /proc file's bytes, read without a Python file object (``open`` builds a
    buffered reader each time: about twice the cost, and a heartbeat reads several of these
    on the worker's loop). Raises OSError."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def rss_bytes() -> int:
    """This process's resident set size, from /proc (no psutil import on the worker path);
    0 where /proc is missing."""
    try:
        return int(read_small("/proc/self/statm").split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class OtherThreadsCpu:
    """CPU seconds of this process's threads other than the loop's — libzmq's I/O thread,
    which does the sockets' sends and receives — from ``/proc/self/task/<tid>/schedstat``
    (nanoseconds on CPU; ``stat``'s clock ticks where schedstat is missing). Cumulative and
    never decreasing: a thread that ends keeps counting what it had used when last read.
    0 where /proc is missing."""

    def __init__(self, loop_tid: int, proc: str = "/proc/self/task") -> None:
        self.loop_tid = loop_tid
        self.proc = proc
        self._seen: dict[str, float] = {}
        self._retired_s = 0.0
        self._tick_s = 1.0 / (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)

    def read(self) -> float:
        try:
            tids = os.listdir(self.proc)
        except OSError:
            return self._retired_s + sum(self._seen.values())
        now: dict[str, float] = {}
        for tid in tids:
            if tid == str(self.loop_tid):
                continue
            seconds = self._thread_cpu_s(tid)
            if seconds is not None:
                now[tid] = max(seconds, self._seen.get(tid, 0.0))
        for tid, last in self._seen.items():
            if tid not in now:
                self._retired_s += last
        self._seen = now
        return self._retired_s + sum(now.values())

    def _thread_cpu_s(self, tid: str) -> float | None:
        try:
            return int(read_small(f"{self.proc}/{tid}/schedstat").split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            pass
        try:
            with open(f"{self.proc}/{tid}/stat", "rb") as f:  # rare: kernels without schedstat
                fields = f.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) * self._tick_s  # utime + stime
        except (OSError, ValueError, IndexError):
            return None


def thread_schedstat(tid: int, proc: str = "/proc/self/task") -> tuple[float, float, int]:
    """(seconds on a CPU, seconds ready to run but waiting for a CPU, times put on a CPU)
    of thread ``tid``, cumulative, from ``schedstat``; zeros where the kernel keeps none."""
    try:
        fields = read_small(f"{proc}/{tid}/schedstat").split()
        return int(fields[0]) / 1e9, int(fields[1]) / 1e9, int(fields[2])
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0, 0


def task_to_executor(executors: Iterable[ExecutorSpec]) -> dict[int, int]:
    """Every task of the topology (ackers included) -> the id of the executor holding it."""
    return {t: e.id for e in executors for t in e.tasks}


def _per_executor(per_task: Mapping[int, int], task_executor: Mapping[int, int]) -> dict[int, int]:
    """Counts per task summed per executor holding the task; tasks of no executor are dropped."""
    out: dict[int, int] = {}
    for task, n in per_task.items():
        executor = task_executor.get(task)
        if executor is not None:
            out[executor] = out.get(executor, 0) + n
    return out


def executor_metrics(executor_id: int, ex: Any, task_executor: dict[int, int]) -> ExecutorMetrics:
    """One executor's counters; ``ex`` is a runtime executor (spout, bolt or acker)."""
    st = ex.stats
    received = _per_executor(st.received_from, task_executor)
    sent_control = _per_executor(st.sent_control, task_executor)
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
        sent_control=sent_control,
    )


@dataclass(frozen=True)
class TransferCounts:
    """The data plane's cumulative figures: CPU (thread) time spent encoding and sending,
    receiving and decoding frames, and the frames and bytes that crossed the sockets. Named
    as the ``WorkerMetrics`` fields they fill."""

    transfer_cpu_s: float = 0.0
    frames_sent: int = 0
    frames_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


def worker_metrics(
    executors: Iterable[Any],
    task_executor: dict[int, int],
    clock_hz: float,
    sent_remote: int,
    received_remote: int = 0,
    queued: int = 0,
    transfer: TransferCounts = TransferCounts(),
    loop_tid: int | None = None,
    links: DataLinks | None = None,
    spins: tuple[int, int] = (0, 0),
) -> WorkerMetrics:
    """The whole worker's counters at this instant (``at`` is wall-clock time).

    ``sent_remote``/``received_remote`` are items handed to / taken from other workers'
    sockets, cumulative; ``queued`` is a level (items not yet processed or sent). Nimbus
    reads quiescence from ``links`` (each data link's last frame sent and received, see
    ``DataLinks``) and ``queued`` 0 everywhere.

    ``process_cpu_s`` is the whole process's CPU (every thread: the loop, libzmq's I/O
    thread); what neither the executors' ``cpu_s`` nor ``transfer.transfer_cpu_s`` covers is the
    worker's overhead (the loop itself, heartbeats, the I/O thread, the interpreter).
    ``loop_cpu_s``/``loop_wait_s``/``loop_runs``: the loop thread ``loop_tid``'s CPU, its
    wait for a CPU while ready to run (what delays every item the worker is woken for) and
    how many times it got one. ``spins``: the loop's waits that began by polling, and those
    a data frame ended (``Worker.spins``, ``Worker.spin_hits``)."""
    loop_cpu_s, loop_wait_s, loop_runs = thread_schedstat(loop_tid) if loop_tid is not None else (0.0, 0.0, 0)
    return WorkerMetrics(
        at=time.time(),
        clock_hz=float(clock_hz),
        executors=[executor_metrics(ex.spec.id, ex, task_executor) for ex in executors],
        sent_remote=sent_remote,
        rss_bytes=rss_bytes(),
        received_remote=received_remote,
        queued=queued,
        process_cpu_s=time.process_time(),
        transfer_cpu_s=transfer.transfer_cpu_s,  # field by field: ``asdict`` deep-copies each value
        frames_sent=transfer.frames_sent,
        frames_received=transfer.frames_received,
        bytes_sent=transfer.bytes_sent,
        bytes_received=transfer.bytes_received,
        loop_cpu_s=loop_cpu_s,
        loop_wait_s=loop_wait_s,
        loop_runs=loop_runs,
        links=links,
        spins=spins[0],
        spin_hits=spins[1],
    )
