"""The worker data plane's figures over two real worker processes (see worker_figures.py for
how each is measured): throughput with acking off, complete latency at 1,000 tuples/s, RSS.

Measure:  pytest benchmarks/test_worker_figures.py --benchmark-enable -s
In the normal run (benchmarks disabled) each runs briefly as a correctness check: tuples flow
end to end, every tree completes, a worker stays under its memory budget.
"""

from __future__ import annotations

import pytest
from worker_figures import measure_latency, measure_throughput

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

RSS_BUDGET_MB = 60


def test_worker_chain_throughput_acking_off(benchmark):
    seconds, warmup = (5.0, 1.0) if not benchmark.disabled else (0.75, 0.25)
    result = benchmark.pedantic(measure_throughput, kwargs={"seconds": seconds, "warmup": warmup}, rounds=1)
    assert result.tuples_per_s > 1_000
    for name, mb in result.rss_mb.items():
        assert mb < RSS_BUDGET_MB, f"worker {name} uses {mb:.1f} MB"
    benchmark.extra_info.update(tuples_per_s=round(result.tuples_per_s), rss_mb=result.rss_mb)
    if not benchmark.disabled:
        print(
            f"\n2 workers, acking off: {result.tuples_per_s:,.0f} tuples/s; "
            f"RSS A {result.rss_mb['A']:.1f} MB, B {result.rss_mb['B']:.1f} MB"
        )


def test_worker_chain_complete_latency_at_1000_per_s(benchmark):
    count = 5_000 if not benchmark.disabled else 500
    result = benchmark.pedantic(measure_latency, kwargs={"count": count}, rounds=1)
    assert result.count == count and result.failed == 0
    benchmark.extra_info.update(p50_ms=round(result.p50_ms, 3), p99_ms=round(result.p99_ms, 3))
    if not benchmark.disabled:
        print(
            f"\n2 workers, 1,000 tuples/s: complete latency p50 {result.p50_ms:.2f} ms, "
            f"p99 {result.p99_ms:.2f} ms, mean {result.mean_ms:.2f} ms"
        )
