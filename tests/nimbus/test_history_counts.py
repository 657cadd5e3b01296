"""The charts' history keeps executors' counters as plain numbers, which the garbage collector
does not walk, and computes the same rates from them."""

from __future__ import annotations

import gc

import pytest

from squall import messages as M
from squall.nimbus.history import COUNTED, History, counts, delta

pytestmark = pytest.mark.timeout(30)


def em(ex: int, k: int) -> M.ExecutorMetrics:
    return M.ExecutorMetrics(
        ex,
        "c",
        emitted=10 * k,
        executed=7 * k,
        acked=5 * k,
        failed=k,
        cpu_s=0.5 * k,
        received_from={0: k},
        latency_sum_ms=3.0 * k,
        latency_count=2 * k,
        latency_buckets=[k, 0],
    )


def test_counts_copy_the_counters_the_rates_read():
    old, new = counts(em(1, 2)), counts(em(1, 5))
    for name in COUNTED:
        assert delta(old, new, name) == pytest.approx(getattr(em(1, 5), name) - getattr(em(1, 2), name))
    assert delta(None, new, "emitted") == 0.0
    assert delta(counts(em(1, 9)), new, "acked") == 25.0  # a drop: the worker restarted from zero


class OneTopology:
    """What History.sample reads of a snapshot, for one topology of spout executors."""

    def __init__(self, ems: dict[int, M.ExecutorMetrics]) -> None:
        self.ems = ems
        self.topologies = {"t": _Rec(sorted(ems))}
        self.metrics = self

    def latest(self, name: str) -> dict[int, tuple[M.ExecutorMetrics, str, int]]:
        return {ex: (m, "n1", 6700) for ex, m in self.ems.items()}

    def rates(self, name: str) -> object:
        return None


class _Rec:
    def __init__(self, ids: list[int]) -> None:
        self.version, self.status = 1, "ACTIVE"
        self._ids = ids
        self.spec = type("Spec", (), {"components": [type("C", (), {"name": "c", "kind": "spout"})()]})()

    def executors(self) -> list[object]:
        return [type("E", (), {"id": i, "component": "c"})() for i in self._ids]


def test_a_sample_keeps_no_object_the_collector_walks(monkeypatch):
    monkeypatch.setattr("squall.nimbus.history.traffic_split", lambda rec, rates: (0.0, 0.0))
    history = History(rate_span_s=1.0)
    for k, now in enumerate((10.0, 12.0), start=1):
        history.sample(OneTopology({ex: em(ex, k) for ex in range(100)}), now)
    gc.collect()  # tuples of numbers are untracked by the collector's first look at them
    span = history.span("t")
    assert span is not None
    oldest, newest = span
    assert len(newest) == 100 and not any(gc.is_tracked(v) for v in newest.values())
    assert not any(gc.is_tracked(v) for v in oldest.values())
    point = history.series("t")[-1]
    assert point["emittedPerS"] == pytest.approx(100 * 10 / 2.0)  # 100 executors, +10 each in 2 s
    assert point["completeLatencyMs"] == pytest.approx(1.5)  # +3 ms over +2 trees per spout executor
