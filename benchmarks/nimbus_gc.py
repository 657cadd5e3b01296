"""What Nimbus's metrics window costs a full garbage collection, at the scale of hundreds of boards.

    python benchmarks/nimbus_gc.py --workers 1000 --samples 30

Fills a ``MetricsWindow`` as ``--workers`` workers (two per board) reporting once a second
for ``--samples`` seconds would (``--executors`` executors each, three sources per executor,
every report through the wire codec as a heartbeat would come), then prints the objects the
cyclic garbage collector tracks and the CPU time of a full collection (best and median of
``--rounds``), for the window as Nimbus keeps it and for the same reports kept as the decoded
dataclasses (what the window kept before). With ``--history``, it instead builds a Nimbus
state at ``--boards`` boards and 5,000 executors fed 44 s of heartbeats, samples the charts'
history every 2 s as the HTTP side does, and prints the same figures with that history kept
and without it. A full collection runs on Nimbus's loop thread:
its time is a pause every message waits out. CPU time of this thread, so less sensitive to a
loaded machine than wall time, but not insensitive (caches are shared).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from squall import messages as M
from squall.nimbus.metrics import MetricsWindow
from squall.wire import decode, encode


def reports(workers: int, samples: int, executors: int) -> list[tuple[float, str, int, M.WorkerMetrics]]:
    """(received, node, port, metrics) for every worker and second, decoded from the wire."""
    out = []
    total = workers * executors
    for s in range(samples):
        for w in range(workers):
            execs = [
                M.ExecutorMetrics(
                    executor=w * executors + j,
                    component="stage",
                    emitted=200 * s,
                    transferred=200 * s,
                    executed=200 * s,
                    cpu_s=0.01 * s,
                    received_from={(w * executors + j + 7 * i) % total: 60 * s for i in range(1, 4)},
                )
                for j in range(executors)
            ]
            m = M.WorkerMetrics(at=float(s), clock_hz=1.5e9, executors=execs, sent_remote=s, received_remote=s)
            hb = M.Heartbeat(f"b{w // 2}", s, [M.WorkerReport("t", 7000 + w % 2, 1, "running", 1, metrics=m)])
            decoded = decode(encode(hb)).workers[0].metrics
            out.append((float(s), f"b{w // 2}", 7000 + w % 2, decoded))
    return out


def full_collection_ms(rounds: int) -> tuple[float, float]:
    """(best, median) CPU ms of ``gc.collect()`` on this thread."""
    took = []
    for _ in range(rounds):
        start = time.thread_time()
        gc.collect()
        took.append((time.thread_time() - start) * 1e3)
    return min(took), statistics.median(took)


def measure(label: str, keep: Any, rounds: int) -> None:
    gc.collect()
    tracked = len(gc.get_objects())
    best, median = full_collection_ms(rounds)
    print(f"{label} | {tracked:,} | {best:.1f} | {median:.1f}", flush=True)
    del keep


def with_history(boards: int, rounds: int) -> None:
    """The charts' history as Nimbus's HTTP side keeps it, at ``boards`` boards (see the
    module docstring), against the same state without it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # history_sample, beside this file
    from history_sample import heartbeats, placed_state

    from squall.nimbus.events import Tick
    from squall.nimbus.history import History
    from squall.nimbus.snapshot import Snapshot

    with tempfile.TemporaryDirectory() as tmp:
        st, nodes, executors = placed_state(tmp, boards, 5000)
        gc.freeze()  # what was built before the heartbeats, as squall nimbus freezes its start
        history = History()
        for second in range(1, 45):
            heartbeats(st, nodes, executors, float(second))
            st.apply(Tick(float(second)))
            if second % 2 == 0:
                snap = Snapshot.of(st, float(second))
                history.sample(snap, snap.now)
        del snap
        measure("the state and the charts' history (20 samples)", history, rounds)
        del history
        measure("the state alone", None, rounds)
        gc.unfreeze()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=30, help="seconds of heartbeats in the window")
    parser.add_argument("--executors", type=int, default=5, help="executors per worker")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--history", action="store_true", help="the charts' history instead (see above)")
    parser.add_argument("--boards", type=int, default=500, help="with --history")
    args = parser.parse_args(argv)
    if args.history:
        print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.boards} boards", flush=True)
        print("what is kept | objects tracked (whole process) | full collection CPU ms best | median", flush=True)
        with_history(args.boards, args.rounds)
        return 0
    print(
        f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.workers} workers x "
        f"{args.samples} samples x {args.executors} executors",
        flush=True,
    )
    print("what is kept | objects tracked (whole process) | full collection CPU ms best | median", flush=True)
    measure("nothing (the baseline)", None, args.rounds)
    got = reports(args.workers, args.samples, args.executors)
    window = MetricsWindow()
    for received, node, port, metrics in got:
        window.add("t", node, port, metrics, received, float(args.samples))
    del got
    measure("the metrics window", window, args.rounds)
    start = time.thread_time()
    rates = window.rates("t")
    print(f"# rates() of the window: {(time.thread_time() - start) * 1e3:.0f} ms CPU, {len(rates.traffic)} edges")
    del window, rates
    measure("the same reports as dataclasses", reports(args.workers, args.samples, args.executors), args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
