"""How long ``online`` and ``latency`` take as workloads grow: executors/10 workers on
executors/40 boards, ~5 traffic pairs per executor (``online``: the cases of
``test_rebalance_speed.py``, boards of 4 slots; ``latency``: those of
``test_latency_speed.py``, the same random traffic with a measured-looking profile on boards
with a CPU quota, a memory limit and a link delay).

    python benchmarks/scheduler_figures.py [--sizes 1000 10000] [--schedulers online latency] [--runs 2]

Prints, per scheduler and size, the best wall time and the best CPU time of this process
over ``--runs`` calls (the CPU figure is the steadier one on a shared machine), after
checking the result: every executor placed, no more workers than asked (``online``: exactly
as many, no board overloaded; ``latency``: within the model's hard limits). For ``latency``
it also prints the objective the search minimises (the model's excess over its hard limits,
then the predicted latency), so a faster search can be checked to be no worse. Each line
ends with a digest of the placement, so a change meant to keep placements can be checked
to keep them. It uses only
public schedulers, so ``benchmarks/against.py`` runs it against an older revision.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_latency_speed import boards, profiled  # noqa: E402
from test_rebalance_speed import case  # noqa: E402

from squall.rebalance import Assignment, SchedulerParams, evaluate, get_scheduler  # noqa: E402
from squall.rebalance.latency import predict  # noqa: E402


def best_of(runs: int, call: Callable[[], Assignment]) -> tuple[float, float, Assignment]:
    """(best wall s, best CPU s, the last result) of ``runs`` calls."""
    walls, cpus = [], []
    result = None
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = call()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - started_cpu)
    assert result is not None
    return min(walls), min(cpus), result


def digest(result: Assignment) -> str:
    """A short hash of the whole placement: equal digests, identical placements."""
    return hashlib.sha256(json.dumps(result.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


def online_line(executors: int, runs: int) -> str:
    workload, nodes = case(executors)
    online = get_scheduler("online")
    wall, cpu, result = best_of(runs, lambda: online.schedule([workload], nodes, SchedulerParams()))
    assert len(result.executors) == executors
    assert len(result.workers_of(workload.topology)) == executors // 10
    assert evaluate(result, [workload], nodes).overloaded == ()
    return f"best {wall:7.3f} s wall, {cpu:7.3f} s CPU; placement {digest(result)}"


def latency_line(executors: int, runs: int) -> str:
    workers = executors // 10
    n_boards = -(-executors // 40)
    workload = profiled(executors, workers)
    cluster = boards(n_boards, -(-workers // n_boards))
    latency = get_scheduler("latency")
    wall, cpu, result = best_of(runs, lambda: latency.schedule([workload], cluster, SchedulerParams()))
    assert len(result.executors) == executors
    assert 1 <= len(result.workers_of(workload.topology)) <= workers
    prediction = predict(result, [workload], cluster)
    assert prediction.feasible, prediction.violations
    return (
        f"best {wall:7.3f} s wall, {cpu:7.3f} s CPU; objective: excess {prediction.excess:.3g}, "
        f"predicted latency {prediction.latency_ms[workload.topology]:.4f} ms; placement {digest(result)}"
    )


LINES = {"online": online_line, "latency": latency_line}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--schedulers", nargs="+", choices=sorted(LINES), default=["online", "latency"])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args(argv)
    for name in args.schedulers:
        for n in args.sizes:
            line = LINES[name](n, args.runs)
            print(f"{name:8} {n:>6,} executors / {n // 10:>5,} workers / {-(-n // 40):>4,} boards: {line}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
