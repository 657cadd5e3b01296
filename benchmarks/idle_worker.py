"""What a worker costs when it has nothing to do, and how well a paced spout keeps its rate:
real worker processes running the reference chain (spout -> stage1 -> stage2, one executor
each, one acker), a fake supervisor collecting their heartbeats.

    python benchmarks/idle_worker.py                 # both figures
    python benchmarks/idle_worker.py --seconds 30    # a longer idle window
    python benchmarks/idle_worker.py --spin-us 0 200 --rounds 3   # squall.worker.spin.us compared

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

    def __init__(self, tmp: Path, rate: float, spin_us: float | None = None) -> None:
        self.sup = FakeSupervisor()
        self.procs = Processes(tmp)
        chain = chain_topology(stages=3, replication=1, rate=rate, name="idle-bench")
        self.port = free_port()
        executors = [e.id for e in chain.spec.executors_with_ackers(1)]
        conf: dict[str, float] = {"topology.acker.executors": 1, "squall.worker.heartbeat.secs": 0.5}
        if spin_us is not None:  # a revision without the key ignores it
            conf["squall.worker.spin.us"] = spin_us
        launch = write_launch(tmp / "w.launch", chain.spec, self.port, executors, {}, self.sup.endpoint, tmp, conf)
        self.pid = self.procs.worker(launch).pid
        self.sup.wait_for(lambda: self.sup.last(self.port) is not None, 30, "the worker's first heartbeat")

    def spout(self):
        return by_executor(self.sup.last(self.port))[SPOUT]

    def close(self) -> None:
        self.procs.close()
        self.sup.close()


def measure_idle(seconds: float = 10.0, spin_us: float | None = None) -> Idle:
    with tempfile.TemporaryDirectory() as tmp:
        w = OneWorker(Path(tmp), rate=100, spin_us=spin_us)
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


def measure_pacing(rate: float, seconds: float = 5.0, warmup: float = 1.0, spin_us: float | None = None) -> Pacing:
    with tempfile.TemporaryDirectory() as tmp:
        w = OneWorker(Path(tmp), rate=rate, spin_us=spin_us)
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
    parser.add_argument(
        "--spin-us", type=float, nargs="*", default=None, help="squall.worker.spin.us values to compare"
    )
    parser.add_argument("--rounds", type=int, default=1, help="times each --spin-us value is run, alternately")
    args = parser.parse_args(argv)
    print(f"# load average {os.getloadavg()[0]:.1f}", flush=True)
    spins: list[float | None] = list(args.spin_us) if args.spin_us else [None]
    for _ in range(args.rounds):
        for spin in spins:
            spun = "" if spin is None else f", spin {spin:g} us"
            idle = measure_idle(args.seconds, spin)
            print(
                f"deactivated worker{spun}: {idle.core_share:.2%} of a core, {idle.wakeups_per_s:.1f} wake-ups/s "
                f"over {idle.seconds:.1f} s",
                flush=True,
            )
            for rate in args.rates:
                p = measure_pacing(rate, spin_us=spin)
                print(
                    f"spout paced at {rate:,.0f}/s{spun}: {p.measured:,.1f}/s ({p.measured / rate - 1:+.1%}), "
                    f"worker {p.core_share:.1%} of a core, over {p.seconds:.1f} s",
                    flush=True,
                )
    print(f"# load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
