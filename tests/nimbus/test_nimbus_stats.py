"""GetStats and the latency percentile; node-lost events — NimbusState, no sockets."""

from __future__ import annotations

import pytest

from squall import messages as M
from squall.messages import LATENCY_BUCKETS_MS
from squall.nimbus.views import percentile_ms
from tests.nimbus.live_helpers import CROSSING, online, report_all
from tests.nimbus.nimbus_helpers import ask, heartbeat, new_state, register, submit


def hist(**counts: int) -> list[int]:
    """A histogram with counts at bucket indexes (``b3=10``: 10 in the 4th bucket)."""
    out = [0] * (len(LATENCY_BUCKETS_MS) + 1)
    for key, c in counts.items():
        out[int(key[1:])] = c
    return out


def upto(bound_ms: float) -> int:
    """The index of the bucket whose upper bound is ``bound_ms``."""
    return LATENCY_BUCKETS_MS.index(bound_ms)


ONE, TWO, FIVE = upto(1.0), upto(2.0), upto(5.0)


@pytest.mark.parametrize(
    "buckets, q, expected",
    [
        (hist(b0=100), 0.5, 0.05),  # half way through [0, 0.1]
        (hist(**{f"b{TWO}": 100}), 0.99, 1.6 + 0.99 * 0.4),  # bucket (1.6, 2]
        (hist(**{f"b{ONE}": 50, f"b{FIVE}": 50}), 0.99, 4.0 + 1.0 * 0.98),  # second half is in (4, 5]
        (hist(**{f"b{len(LATENCY_BUCKETS_MS)}": 10}), 0.99, LATENCY_BUCKETS_MS[-1]),  # +inf reports the last bound
        (hist(), 0.99, None),
    ],
    ids=["first bucket", "one bucket", "two buckets", "overflow", "empty"],
)
def test_percentile_interpolates_inside_its_bucket(buckets, q, expected):
    got = percentile_ms(buckets, q)
    assert got == (None if expected is None else pytest.approx(expected))


def spout_metrics(at: float, emitted: int, latency: list[int], total_ms: float) -> M.ExecutorMetrics:
    return M.ExecutorMetrics(
        0,
        "spout",
        emitted=emitted,
        acked=emitted - 1,
        failed=1,
        latency_sum_ms=total_ms,
        latency_count=sum(latency),
        latency_buckets=latency,
    )


def test_stats_have_the_documented_shape_and_window_deltas():
    st = online()
    report_all(st, 1.0, traffic=CROSSING)
    report_all(st, 5.0, traffic=CROSSING)
    stats = ask(st, M.GetStats(1, "t"), 5.0).data
    assert set(stats) == {
        "topology",
        "window_s",
        "inter_node_tps",
        "inter_worker_tps",
        "latency_avg_ms",
        "latency_p99_ms",
        "emitted",
        "acked",
        "failed",
        "nodes_used",
        "workers",
        "model",
    }
    assert set(stats["model"]) == {"workload", "nodes", "current", "measured_latency_ms"}
    assert stats["inter_node_tps"] == pytest.approx(400.0) and stats["inter_worker_tps"] == pytest.approx(400.0)
    assert (stats["nodes_used"], stats["workers"], stats["window_s"]) == (2, 2, 10.0)
    assert stats["latency_avg_ms"] is None  # no spout recorded a latency

    st = online()  # a fresh window

    # Spout 0 on n1:6700 recorded 100 latencies before the window's first sample and 100 in (1.6, 2] ms since.
    def beat(at: float, lat: list[int], total: float, emitted: int) -> None:
        metrics = M.WorkerMetrics(at, 1e9, [spout_metrics(at, emitted, lat, total)])
        heartbeat(st, "n1", at, [M.WorkerReport("t", 6700, 1, "running", 1, metrics=metrics)])

    beat(1.0, hist(b0=100), 10.0, 100)
    beat(3.0, hist(**{"b0": 100, f"b{TWO}": 100}), 160.0, 300)
    s = ask(st, M.GetStats(2, "t"), 3.0).data
    assert s["latency_avg_ms"] == pytest.approx(1.5) and s["latency_p99_ms"] == pytest.approx(1.6 + 0.99 * 0.4)
    assert (s["emitted"], s["acked"], s["failed"]) == (300, 299, 1)
    assert "no topology" in ask(st, M.GetStats(3, "nope"), 3.0).error
    assert "no topology" in ask(st, M.GetEvents(4, "nope"), 3.0).error


def test_a_lost_node_is_an_event_and_its_executors_come_back_without_pausing_the_rest():
    st = new_state()
    for n in ("n1", "n2", "n3"):
        register(st, n, [6700], 0.0)
    submit(st, "t", 0.0, workers=3)
    on_n3 = sorted(ex for ex, s in st.topologies["t"].placement.items() if s.node == "n3")
    heartbeat(st, "n1", 4.0)
    heartbeat(st, "n2", 4.0)
    st.tick(5.5)
    (e,) = ask(st, M.GetEvents(1, "t"), 5.5).data
    assert (e["trigger"], e["decision"], e["moved"], e["paused_s"]) == ("node-lost", "applied", on_n3, 0.0)
    assert "n3" in e["reason"] and not st.migrations


def test_prometheus_counts_rebalances_by_outcome():
    from prometheus_client import generate_latest

    from squall.nimbus.prom import registry_for
    from tests.nimbus.live_helpers import run

    st = online({"topology.reschedule.timeout.secs": 0})
    run(st, 1, 10, traffic=CROSSING)
    text = generate_latest(registry_for(st, lambda: 10.0)).decode()
    assert 'squall_rebalances_total{outcome="applied",topology="t"} 1.0' in text


def test_a_scrape_lists_each_topology_s_executors_once_not_once_per_executor(monkeypatch):
    """The finding: with ``__acker`` at 4096, /metrics took 25.7 s (a lookup over every executor
    for each executor). A scrape now reads each topology's executor list a bounded number of
    times however many executors have a load series."""
    from prometheus_client import generate_latest

    from squall.nimbus.prom import registry_for
    from squall.nimbus.records import TopologyRecord
    from tests.nimbus.live_helpers import run

    st = online({"topology.reschedule.timeout.secs": 0})
    run(st, 1, 10, traffic=CROSSING)
    calls = {"n": 0}
    original = TopologyRecord.executors

    def counted(self):
        calls["n"] += 1
        return original(self)

    monkeypatch.setattr(TopologyRecord, "executors", counted)
    text = generate_latest(registry_for(st, lambda: 10.0)).decode()
    series = text.count("squall_executor_load_hz{")
    assert series >= 4 and calls["n"] <= 2 * len(st.topologies), (series, calls)
