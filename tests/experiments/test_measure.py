"""The measurement functions: latency files, traffic split by placement, aggregation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from squall.experiments import measure


def test_latency_files_are_read_cut_and_summarised(tmp_path: Path) -> None:
    (tmp_path / "t-1-5.lat").write_text("10.0 0.001\n11.0 0.003\n12.5 0.1\n")
    (tmp_path / "t-1-6.lat").write_text("10.5 0.002\ntorn")
    (tmp_path / "t-10-5.lat").write_text("10.2 9.9\n")  # another topology, not read
    samples = measure.read_latencies(tmp_path, "t-1")
    assert [t for t, _ in samples] == [10.0, 10.5, 11.0, 12.5]
    window = measure.between(samples, 10.0, 12.0)
    stats = measure.latency_stats(window, 2.0)
    assert stats["samples"] == 3 and stats["sink_tps"] == 1.5
    assert stats["latency_avg_ms"] == pytest.approx(2.0)
    assert stats["latency_p50_ms"] == pytest.approx(2.0)
    assert math.isnan(measure.latency_stats([], 1.0)["latency_avg_ms"])


def test_timeline_bins_per_second() -> None:
    bins = measure.timeline([(100.2, 0.001), (100.7, 0.003), (102.1, 0.010)], origin=100.0)
    assert bins == [(0.5, pytest.approx(2.0), 2), (2.5, pytest.approx(10.0), 1)]


def test_traffic_split_by_node_and_worker() -> None:
    view = {
        "executors": [
            {"id": 0, "node": "a", "port": 1, "pid": 9},
            {"id": 1, "node": "a", "port": 1, "pid": 9},
            {"id": 2, "node": "a", "port": 2, "pid": 8},
            {"id": 3, "node": "b", "port": 1, "pid": 7},
        ],
        "traffic": [[0, 1, 100.0], [1, 2, 50.0], [2, 3, 25.0]],
    }
    assert measure.traffic_split(view) == {"inter_node_tps": 25.0, "inter_worker_tps": 75.0, "total_tps": 175.0}
    assert measure.all_running(view)
    view["executors"][3]["node"] = None
    assert measure.traffic_split(view) is None and not measure.all_running(view)


def test_aggregate_gives_mean_spread_and_count() -> None:
    rows = [{"s": "x", "v": 1.0}, {"s": "x", "v": 3.0}, {"s": "y", "v": math.nan}]
    agg = measure.aggregate(rows, ["s"], ["v"])
    assert agg[0] == {"s": "x", "v": 2.0, "v_std": pytest.approx(math.sqrt(2)), "n": 2}
    assert agg[1]["n"] == 0 and math.isnan(agg[1]["v"])


def test_link_utilisation_takes_the_busier_direction_of_each_link() -> None:
    before = {"a": (0, 0), "b": (1000, 0), "c": (0, 0)}
    after = {"a": (1_250_000, 250_000), "b": (1000, 2_500_000), "c": (5, 5)}
    util = measure.link_utilisation(before, after, {"a": 100.0, "b": 20.0}, seconds=1.0)
    assert util == {"a": pytest.approx(0.1), "b": pytest.approx(1.0)}  # c: rate unknown, left out


def test_bootstrap_ratio_ci_brackets_the_ratio_and_widens_with_spread() -> None:
    ratio, lo, hi = measure.bootstrap_ratio_ci([5.0, 5.0, 5.0], [10.0, 10.0, 10.0])
    assert (ratio, lo, hi) == (0.5, 0.5, 0.5)  # no spread, no interval
    ratio, lo, hi = measure.bootstrap_ratio_ci([4.0, 5.0, 6.0], [8.0, 10.0, 12.0])
    assert ratio == pytest.approx(0.5) and lo < 0.5 < hi and lo > 0.3 and hi < 0.8
    assert measure.bootstrap_ratio_ci([4.0, 5.0, 6.0], [8.0, 10.0, 12.0]) == (ratio, lo, hi)  # seeded
    assert all(math.isnan(v) for v in measure.bootstrap_ratio_ci([1.0], [math.nan]))
    assert all(math.isnan(v) for v in measure.bootstrap_ratio_ci([1.0], [0.0]))
