"""Two-worker throughput, acking off, with what each worker's process spent on it in CPU
seconds: the figure that moves less with a shared machine's load than tuples per second.

    python benchmarks/worker_cpu_figures.py [--runs 3] [--seconds 5]

The chains and placement are ``benchmarks/worker_figures.py``'s throughput runs (the spout on
worker A; middle and sink on worker B; every tuple crosses once), per-tuple and batch-aware.
For each run it prints tuples/s (the growth of the sink's ``executed`` between two
heartbeats over the window) and, for each worker, tuples per CPU second of its whole process
(the growth of ``process_cpu_s`` over the same heartbeats: the loop, the executors and
libzmq's I/O thread). Each worker's figure is the rate it could reach alone on a core; the
lower of the two bounds the chain on an otherwise idle machine with a core per worker.

To compare with another revision, run this script with that revision installed (its workers
must import that revision too: ``benchmarks/against.py`` cannot, since the workers are
separate processes started with this interpreter).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from worker_figures import MIDDLE, SINK, SPOUT, TwoWorkers, by_executor, throughput_conf  # noqa: E402


def measure(chain: str, seconds: float, warmup: float = 1.0) -> tuple[float, float, float]:
    """(tuples/s, tuples per CPU second of worker A, of worker B) of one run of ``chain``."""
    conf = throughput_conf(chain)
    with tempfile.TemporaryDirectory() as tmp:
        w = TwoWorkers(Path(tmp), [SPOUT], [MIDDLE, SINK], conf, chain)
        try:
            w.sup.collect(warmup)
            a0, b0 = w.sup.last(w.a), w.sup.last(w.b)
            w.sup.collect(seconds)
            a1, b1 = w.sup.last(w.a), w.sup.last(w.b)
        finally:
            w.close()
    done = by_executor(b1)[SINK].executed - by_executor(b0)[SINK].executed
    # The sink's count between B's heartbeats; A's CPU over its own two heartbeats, scaled to
    # the same span (the two workers heartbeat at their own instants).
    span_b = b1.metrics.at - b0.metrics.at
    rate = done / span_b
    cpu_a = (a1.metrics.process_cpu_s - a0.metrics.process_cpu_s) / (a1.metrics.at - a0.metrics.at)
    cpu_b = (b1.metrics.process_cpu_s - b0.metrics.process_cpu_s) / span_b
    return rate, rate / cpu_a, rate / cpu_b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    for i in range(args.runs):
        for chain in ("per-tuple", "batch"):
            load = os.getloadavg()[0]
            rate, per_cpu_a, per_cpu_b = measure(chain, args.seconds)
            print(
                f"run {i + 1} {chain:<9}: {rate:9,.0f} tuples/s; per CPU second: "
                f"A {per_cpu_a:9,.0f}, B {per_cpu_b:9,.0f} (load average {load:.1f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
