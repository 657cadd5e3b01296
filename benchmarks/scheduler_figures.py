"""How long ``online`` takes as workloads grow (the cases of ``test_rebalance_speed.py``:
executors/10 workers on boards of 4 slots, ~5 traffic pairs per executor).

    python benchmarks/scheduler_figures.py [--sizes 1000 10000] [--runs 3]

Prints, per size, the best wall time and the best CPU time of this process over ``--runs``
calls (the CPU figure is the steadier one on a shared machine), after checking the result:
every executor placed, as many workers as asked, no board overloaded. It uses only the
public ``online.schedule``, so ``benchmarks/against.py`` runs it against an older revision.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_rebalance_speed import case  # noqa: E402

from squall.rebalance import SchedulerParams, evaluate, online  # noqa: E402


def measure(executors: int, runs: int) -> tuple[float, float]:
    """(best wall s, best CPU s) of ``online.schedule`` on the case of that size."""
    workload, nodes = case(executors)
    walls, cpus = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = online.schedule([workload], nodes, SchedulerParams())
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - started_cpu)
        assert len(result.executors) == executors
        assert len(result.workers_of(workload.topology)) == executors // 10
        assert evaluate(result, [workload], nodes).overloaded == ()
    return min(walls), min(cpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    for n in args.sizes:
        wall, cpu = measure(n, args.runs)
        print(
            f"online, {n:>6,} executors / {n // 10:>5,} workers / {-(-n // 40):>4,} boards: "
            f"best {wall:7.3f} s wall, {cpu:7.3f} s CPU",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
