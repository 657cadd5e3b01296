"""What a worker costs when it has nothing to do, and how well a paced spout keeps its rate:
real worker processes running the reference chain (spout -> stage1 -> stage2, one executor
each, one acker), a fake supervisor collecting their heartbeats.

    python benchmarks/idle_worker.py                 # both figures
    python benchmarks/idle_worker.py --seconds 30    # a longer idle window

* idle: the worker runs the chain at 100 tuples/s, is deactivated (a ``WorkerUpdate``, as
  its supervisor sends on ``squall deactivate``), its last trees complete, then its process
  CPU (utime + stime from /proc/<pid>/stat, every thread) is read over the window and
  printed as a share of one core, with its voluntary context switches per second (how often
  it wakes up);
* pacing: for each rate (tuples/s of the one spout task), the spout's ``emitted`` growth
  between two heartbeats over the window, divided by their time difference, and the
  worker's CPU over the same window.

Nothing is estimated: every figure is read from /proc or from the worker's own counters.
Run on a quiet machine; other processes competing for the cores make the pacing figures
noisier (the idle figure hardly moves).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests.worker's helpers

from squall.experiments.reference import chain_topology  # noqa: E402
from squall.messages import WorkerUpdate  # noqa: E402
from squall.ports import free_port  # noqa: E402
from tests.worker.worker_helpers import FakeSupervisor, Processes, by_executor, write_launch  # noqa: E402

SPOUT = 0  # the chain's executor ids: spout 0, stage1 1, stage2 2, acker 3
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


@dataclass
class Idle:
    core_share: float  # CPU seconds per wall second
    wakeups_per_s: float  # voluntary context switches per second
    seconds: float


@dataclass
class Pacing:
    rate: float
    measured: float
    core_share: float
    seconds: float


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S


def voluntary_switches(pid: int) -> int:
    """Summed over the process's threads (/proc/<pid>/status counts only the main one)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        for line in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


class OneWorker:
    """One worker process running the whole chain at ``rate``; ``close()`` stops everything."""

    def __init__(self, tmp: Path, rate: float) -> None:
        self.sup = FakeSupervisor()
        self.procs = Processes(tmp)
        chain = chain_topology(stages=3, replication=1, rate=rate, name="idle-bench")
        self.port = free_port()
        executors = [e.id for e in chain.spec.executors_with_ackers(1)]
        conf = {"topology.acker.executors": 1, "squall.worker.heartbeat.secs": 0.5}
        launch = write_launch(tmp / "w.launch", chain.spec, self.port, executors, {}, self.sup.endpoint, tmp, conf)
        self.pid = self.procs.worker(launch).pid
        self.sup.wait_for(lambda: self.sup.last(self.port) is not None, 30, "the worker's first heartbeat")

    def spout(self):
        return by_executor(self.sup.last(self.port))[SPOUT]

    def close(self) -> None:
        self.procs.close()
        self.sup.close()


def measure_idle(seconds: float = 10.0) -> Idle:
    with tempfile.TemporaryDirectory() as tmp:
        w = OneWorker(Path(tmp), rate=100)
        try:
            w.sup.wait_for(lambda: w.spout().acked >= 100, 30, "trees completing")
            w.sup.send(w.port, WorkerUpdate(placement={}, active=False, assignment_version=2))
            w.sup.wait_for(lambda: w.sup.last(w.port).assignment_version == 2, 10, "the deactivation")
            w.sup.wait_for(lambda: w.spout().acked + w.spout().failed >= w.spout().emitted, 40, "the last trees")
            w.sup.collect(1.0)
            cpu0, sw0, t0 = process_cpu_s(w.pid), voluntary_switches(w.pid), time.monotonic()
            w.sup.collect(seconds)
            cpu1, sw1, t1 = process_cpu_s(w.pid), voluntary_switches(w.pid), time.monotonic()
        finally:
            w.close()
    return Idle((cpu1 - cpu0) / (t1 - t0), (sw1 - sw0) / (t1 - t0), t1 - t0)


def measure_pacing(rate: float, seconds: float = 5.0, warmup: float = 1.0) -> Pacing:
    with tempfile.TemporaryDirectory() as tmp:
        w = OneWorker(Path(tmp), rate=rate)
        try:
            w.sup.collect(warmup)
            first, cpu0 = w.sup.last(w.port), process_cpu_s(w.pid)
            t0 = time.monotonic()
            w.sup.collect(seconds)
            last, cpu1 = w.sup.last(w.port), process_cpu_s(w.pid)
            t1 = time.monotonic()
        finally:
            w.close()
    emitted = by_executor(last)[SPOUT].emitted - by_executor(first)[SPOUT].emitted
    span = last.metrics.at - first.metrics.at
    return Pacing(rate, emitted / span, (cpu1 - cpu0) / (t1 - t0), span)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="idle measuring window (default 10)")
    parser.add_argument("--rates", type=float, nargs="*", default=[100.0, 1000.0], help="spout rates to pace")
    args = parser.parse_args(argv)
    idle = measure_idle(args.seconds)
    print(
        f"deactivated worker: {idle.core_share:.2%} of a core, {idle.wakeups_per_s:.1f} wake-ups/s "
        f"over {idle.seconds:.1f} s"
    )
    for rate in args.rates:
        p = measure_pacing(rate)
        print(
            f"spout paced at {rate:,.0f}/s: {p.measured:,.1f}/s ({p.measured / rate - 1:+.1%}), "
            f"worker {p.core_share:.1%} of a core, over {p.seconds:.1f} s"
        )


if __name__ == "__main__":
    main()
