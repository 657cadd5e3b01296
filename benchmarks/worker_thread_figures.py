"""Two-worker throughput, acking off, with each worker's CPU per tuple split by thread: the
loop thread (executors, outbox, codec) and libzmq's I/O thread (the sockets' sends and
receives), read from ``/proc/<pid>/task/<tid>/schedstat`` over the measured window.

    python benchmarks/worker_thread_figures.py [--runs 2] [--seconds 4] [--chain per-tuple]

The chains and placement are ``benchmarks/worker_figures.py``'s throughput runs (the spout on
worker A; middle and sink on worker B; every tuple crosses once). For each run it prints
tuples/s (the sink's ``executed`` over the window) and, per worker, the CPU nanoseconds per
tuple of each thread that ran more than a millisecond, and their sum as tuples per CPU
second. Linux only (``schedstat``).

Under ``benchmarks/against.py`` the workers import the other revision too (they inherit its
``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from worker_figures import MIDDLE, SINK, SPOUT, TwoWorkers, by_executor, throughput_conf  # noqa: E402


def thread_cpu_ns(pid: int) -> dict[tuple[str, str], int]:
    """(thread id, thread name) -> CPU nanoseconds so far, for every thread of ``pid``."""
    out: dict[tuple[str, str], int] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            ns = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except OSError:  # the thread ended meanwhile
            continue
        out[(tid, name)] = ns
    return out


def measure(chain: str, seconds: float, warmup: float = 1.0) -> tuple[float, dict[str, dict[str, float]]]:
    """(tuples/s, worker -> thread name -> CPU ns per tuple) of one run of ``chain``."""
    conf = throughput_conf(chain)
    with tempfile.TemporaryDirectory() as tmp:
        w = TwoWorkers(Path(tmp), [SPOUT], [MIDDLE, SINK], conf, chain)
        try:
            w.sup.collect(warmup)
            first = by_executor(w.sup.last(w.b))[SINK].executed
            t0 = time.monotonic()
            before = {port: thread_cpu_ns(pid) for port, pid in w.pids.items()}
            w.sup.collect(seconds)
            after = {port: thread_cpu_ns(pid) for port, pid in w.pids.items()}
            last = by_executor(w.sup.last(w.b))[SINK].executed
            t1 = time.monotonic()
        finally:
            w.close()
    done = max(1, last - first)
    per_thread: dict[str, dict[str, float]] = {}
    for port, side in ((w.a, "A"), (w.b, "B")):
        threads: dict[str, float] = {}
        for key, ns in after[port].items():
            spent = ns - before[port].get(key, 0)
            if spent > 1_000_000:
                name = key[1] if key[1] not in threads else f"{key[1]}[{key[0]}]"
                threads[name] = spent / done
        per_thread[side] = threads
    return done / (t1 - t0), per_thread


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--chain", choices=("per-tuple", "batch"), default="per-tuple")
    args = ap.parse_args()
    for i in range(args.runs):
        load = os.getloadavg()[0]
        rate, per_thread = measure(args.chain, args.seconds)
        print(f"run {i + 1} {args.chain}: {rate:9,.0f} tuples/s (load average {load:.1f}); CPU ns per tuple:")
        for side, threads in per_thread.items():
            total = sum(threads.values())
            parts = ", ".join(f"{name} {ns:,.0f}" for name, ns in sorted(threads.items(), key=lambda kv: -kv[1]))
            print(f"  worker {side}: {total:,.0f} ({1e9 / total:,.0f} tuples per CPU second): {parts}", flush=True)


if __name__ == "__main__":
    main()
