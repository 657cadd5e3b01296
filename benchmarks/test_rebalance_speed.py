"""How long the online scheduler takes as workloads grow.

Measure with ``pytest benchmarks/test_rebalance_speed.py --benchmark-enable``. In the
normal (disabled) run each case runs once as a correctness check, except the 10,000
executor one, which takes seconds and is skipped there.
"""

from __future__ import annotations

import pytest

from squall.rebalance import Node, SchedulerParams, evaluate, online
from squall.rebalance.reference import random_workload

SIZES = [100, 1_000, 10_000]


def case(executors: int):
    """executors/10 workers on ceil(workers/4) nodes of 4 slots, ~5 traffic pairs per executor."""
    workers = executors // 10
    workload = random_workload(executors, workers, pairs_per_executor=5, seed=1)
    nodes = tuple(Node(f"n{k:04d}", 4, 1e12) for k in range(-(-workers // 4)))
    return workload, nodes


@pytest.mark.parametrize("executors", SIZES, ids=[f"{n} executors" for n in SIZES])
def test_online_speed(benchmark, executors):
    if benchmark.disabled and executors > 1_000:
        pytest.skip("several seconds; runs under --benchmark-enable")
    workload, nodes = case(executors)
    result = benchmark.pedantic(
        online.schedule,
        args=([workload], nodes, SchedulerParams()),
        rounds=3 if executors <= 1_000 else 1,
        iterations=1,
    )
    # Correctness inside the measured case: every executor placed, workers as asked.
    assert len(result.executors) == executors
    assert len(result.workers_of(workload.topology)) == executors // 10
    assert evaluate(result, [workload], nodes).overloaded == ()
