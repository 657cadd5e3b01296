"""``/metrics`` rendered by ``prom.render``: the bytes ``prometheus_client``'s encoders write
for the same collector, in every format and name escaping a scraper can ask for, with the
per-executor series written without building a sample object each — no sockets."""

from __future__ import annotations

import math
import re

import pytest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from squall.nimbus.loop_stats import LoopStats
from squall.nimbus.prom import ExecutorRows, NimbusCollector, render
from squall.nimbus.snapshot import Snapshot
from tests.nimbus.live_helpers import CROSSING, online, run

ACCEPTS = [
    "",  # Prometheus text 0.0.4, names escaped with underscores
    "text/plain; version=1.0.0; escaping=allow-utf-8",
    "text/plain; version=1.0.0; escaping=underscores",
    "text/plain; version=1.0.0; escaping=dots",  # not rendered here: the library does it all
    "application/openmetrics-text",
    "application/openmetrics-text; version=1.0.0",
    "application/openmetrics-text; version=1.0.0; escaping=allow-utf-8",
    "application/openmetrics-text; version=1.0.0; escaping=values",  # the library, too
]

# Every family a scrape of a Nimbus with a running topology returned before render existed
# (and docs/nimbus.md, docs/observability.md name): the per-executor six first.
FAMILIES = [
    ("squall_executor_emitted", "counter"),
    ("squall_executor_transferred", "counter"),
    ("squall_executor_executed", "counter"),
    ("squall_executor_acked", "counter"),
    ("squall_executor_failed", "counter"),
    ("squall_executor_load_hz", "gauge"),
    ("squall_complete_latency_ms", "histogram"),
    ("squall_topology_inter_worker_tuples_per_second", "gauge"),
    ("squall_topology_inter_node_tuples_per_second", "gauge"),
    ("squall_topology_status", "gauge"),
    ("squall_worker_up", "gauge"),
    ("squall_supervisor_up", "gauge"),
    ("squall_rebalances", "counter"),
    ("squall_nimbus_events", "counter"),
    ("squall_nimbus_loop_lag_seconds", "gauge"),
    ("squall_nimbus_loop_lag_max_seconds", "gauge"),
    ("squall_nimbus_snapshot_age_seconds", "gauge"),
    ("squall_nimbus_loop_step_seconds", "histogram"),
    ("squall_nimbus_loop_step_cpu_seconds", "histogram"),
    ("squall_nimbus_loop_turn_seconds", "histogram"),
    ("squall_nimbus_loop_turn_cpu_seconds", "histogram"),
    ("squall_nimbus_loop_slow_turns", "counter"),
    ("squall_nimbus_loop_slow_turn_seconds", "counter"),
    ("squall_nimbus_loop_slow_turn_cpu_seconds", "counter"),
    ("squall_nimbus_gc_pause_seconds", "histogram"),
    ("squall_nimbus_gc_pause_cpu_seconds", "histogram"),
]


def running_collector() -> NimbusCollector:
    """A collector over a snapshot of a topology that has run 10 s with spouts recording
    latency, rebalanced once, with the loop's figures filled in."""
    st = online({"topology.reschedule.timeout.secs": 0})
    run(st, 1, 10, traffic=CROSSING, latency=[(0.0, 3.0), (5.0, 40.0)])
    snap = Snapshot.of(st, 10.0)
    stats = LoopStats()
    stats.step("Heartbeat", 0.002, 0.001)
    stats.step("Tick", 0.030, 0.028)
    stats.turn(0.040, 0.030)
    return NimbusCollector(
        st,
        lambda: 10.0,
        loop_lag=lambda: (0.004, 0.25),
        source=lambda: (snap, snap.now),
        snapshot_age=lambda: 0.05,
        loop_stats=stats,
    )


def families_of(body: bytes) -> list[tuple[str, str]]:
    """(name, type) of every family in a text body, in order (counters by their family name)."""
    return [
        (re.sub(r"_total$", "", name) if kind == "counter" else name, kind)
        for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", body.decode(), re.M)
    ]


@pytest.mark.parametrize("accept", ACCEPTS)
def test_a_scrape_is_the_bytes_the_library_writes_with_every_family(accept):
    collector = running_collector()
    encoder, _ = choose_encoder(accept)
    body = render(collector, encoder)
    assert body == encoder(collector)
    if "escaping=dots" in accept or "escaping=values" in accept:  # these rename every family
        return
    assert families_of(body) == FAMILIES
    text = body.decode()
    assert 'squall_executor_emitted_total{component="c",executor="0",topology="t"} 100.0' in text
    assert re.search(r'squall_complete_latency_ms_bucket\{component="c",le="\+Inf",topology="t"\} [1-9]', text)


class Rows(NimbusCollector):
    """A collector whose per-executor rows are given: names and values a real state seldom has."""

    def __init__(self, rows: ExecutorRows) -> None:
        super().__init__(None, lambda: 0.0, source=lambda: (None, 0.0))  # type: ignore[arg-type]
        self.rows = rows

    def collect_split(self) -> tuple[ExecutorRows, list]:
        events = CounterMetricFamily("squall_nimbus_events", "messages", labels=["event"])
        events.add_metric(["x"], 3)
        age = GaugeMetricFamily("squall_nimbus_snapshot_age_seconds", "age")
        age.add_metric([], 0.5)
        return self.rows, [events, age]


ODD = ExecutorRows(
    counted=[
        ("t", 'say "hi"', "1", (0, 999_999, 1_000_000, 2**40, -5)),
        ("t", "back\\slash\nnew line", "2", (7, 8, 9, 10, 11)),
        ('top"o', "ünïcødé ✓", "3", (1, 2, 3, 4, 5)),
    ],
    loads=[
        ("t", 'say "hi"', "1", 1.5e9),
        ("t", "back\\slash\nnew line", "2", 1e-7),
        ("t", "?", "99", 123456.789),  # a load without counters: its label set is built apart
        ('top"o', "ünïcødé ✓", "3", math.inf),
        ("u", "c", "4", 0.0),
    ],
)


@pytest.mark.parametrize("accept", ACCEPTS)
def test_odd_label_values_and_numbers_are_written_as_the_library_writes_them(accept):
    collector = Rows(ODD)
    encoder, _ = choose_encoder(accept)
    assert render(collector, encoder) == encoder(collector)


def test_the_per_executor_series_are_written_without_a_sample_object_each(monkeypatch):
    """The cost the change removed: the library makes (and validates) an object per series.
    ``render`` adds none for the per-executor families; the library path adds one each."""
    rows = ExecutorRows(
        counted=[("t", "c", str(ex), (ex, ex, ex, ex, ex)) for ex in range(500)],
        loads=[("t", "c", str(ex), float(ex)) for ex in range(500)],
    )
    collector = Rows(rows)
    added = {"n": 0}
    for family in (CounterMetricFamily, GaugeMetricFamily):
        original = family.add_metric

        def counting(self, *args, _original=original, **kw):
            added["n"] += 1
            return _original(self, *args, **kw)

        monkeypatch.setattr(family, "add_metric", counting)
    encoder, _ = choose_encoder("")
    body = render(collector, encoder)
    assert added["n"] == 2  # the two other families' samples
    assert body.count(b"\nsquall_executor_") == 6 * 500
    added["n"] = 0
    assert encoder(collector) == body
    assert added["n"] == 2 + 6 * 500


def test_a_state_without_topologies_renders_the_empty_executor_families():
    st = online()
    st.topologies.clear()
    collector = NimbusCollector(st, lambda: 1.0)
    for accept in ("", "application/openmetrics-text; version=1.0.0"):
        encoder, _ = choose_encoder(accept)
        assert render(collector, encoder) == encoder(collector)
