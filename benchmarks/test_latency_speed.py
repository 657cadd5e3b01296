"""How long the ``latency`` scheduler takes: up to 10,000 executors / 1,000 workers / 250 boards.

Measure with ``pytest benchmarks/test_latency_speed.py --benchmark-enable``; the normal run
does each case once as a correctness check, except the 10,000 executor one, which takes
seconds and is skipped there. The workload is the speed benchmark's random
one with a measured-looking profile (rates from the traffic into each executor, service
from its load) on boards with a CPU quota, a memory limit and a link delay.
"""

from __future__ import annotations

import pytest

from squall.rebalance import Node, SchedulerParams, Workload
from squall.rebalance.latency import predict
from squall.rebalance.latency_search import schedule
from squall.rebalance.profile import BoardProfile, ExecutorProfile, WorkloadProfile
from squall.rebalance.reference import random_workload

SIZES = [(100, 10, 3), (1_000, 100, 25), (10_000, 1_000, 250)]
CLOCK = 1.2e9


def profiled(executors: int, workers: int) -> Workload:
    base = random_workload(executors, workers, pairs_per_executor=5, seed=1)
    inflow: dict[int, float] = {}
    for _s, d, r in base.traffic:
        inflow[d] = inflow.get(d, 0.0) + r
    rows = []
    sources = []
    for e in base.executors:
        rate = inflow.get(e.id, 0.0)
        if rate == 0.0:
            sources.append(e.id)
            rate = 50.0
        rows.append(ExecutorProfile(e.id, rate, 2e4))  # ~17 us per item at 1.2 GHz
    profile = WorkloadProfile(
        tuple(rows),
        source_rate=50.0 * len(sources),
        sources=tuple(sources),
        worker_overhead_hz=0.02 * CLOCK,
        transfer_cycles_per_item=3e4,
        item_bytes=80.0,
        worker_memory_mb=30.0,
        flush_s=0.0005,
    )
    return Workload(
        base.topology,
        workers,
        base.executors,
        base.traffic,
        tuple(r.rate * r.service_cycles for r in rows),
        base.edges,
        profile,
    )


def boards(n: int, slots: int) -> tuple[Node, ...]:
    return tuple(
        Node(
            f"n{k:03d}",
            slots,
            4 * CLOCK * 0.8,
            BoardProfile(cores=4.0, clock_hz=CLOCK, memory_mb=1024.0, link_mbit=100.0, link_delay_ms=0.3),
        )
        for k in range(n)
    )


@pytest.mark.parametrize("executors, workers, nodes", SIZES, ids=[f"{e} executors" for e, _w, _n in SIZES])
def test_latency_speed(benchmark, executors, workers, nodes):
    if benchmark.disabled and executors > 1_000:
        pytest.skip("several seconds; runs under --benchmark-enable")
    workload = profiled(executors, workers)
    cluster = boards(nodes, -(-workers // nodes))
    result = benchmark.pedantic(schedule, args=([workload], cluster, SchedulerParams()), rounds=1, iterations=1)
    assert len(result.executors) == executors
    assert 1 <= len(result.workers_of(workload.topology)) <= workers
    assert predict(result, [workload], cluster).feasible
