"""The metrics window: cumulative counters from heartbeats -> load and traffic rates."""

from __future__ import annotations

import gc
import random

import pytest

from squall import messages as M
from squall.nimbus.metrics import MetricsWindow
from squall.nimbus.views import traffic_split
from tests.nimbus.nimbus_helpers import ask, heartbeat, new_state, pushes, register, submit, workers_of

CLOCK = 1e9


def metrics(at: float, cpu_s: float, received: int, emitted: int = 0, src: int = 0, dst: int = 2) -> M.WorkerMetrics:
    return M.WorkerMetrics(
        at=at,
        clock_hz=CLOCK,
        executors=[
            M.ExecutorMetrics(executor=src, component="spout", emitted=emitted),
            M.ExecutorMetrics(executor=dst, component="stage1", cpu_s=cpu_s, received_from={src: received}),
        ],
    )


def test_rates_are_counter_differences_over_the_window():
    w = MetricsWindow()
    for k in range(3):
        w.add("t", "n1", 6700, metrics(10.0 * k, cpu_s=k * 1.0, received=1000 * k, emitted=500 * k), 10.0 * k, 30.0)
    r = w.rates("t")
    assert r.load_hz[2] == pytest.approx(0.1 * CLOCK)
    assert r.traffic == {(0, 2): pytest.approx(100.0)}
    assert r.emitted[0] == pytest.approx(50.0)


def test_a_counter_decrease_is_a_worker_restart_not_a_negative_rate():
    w = MetricsWindow()
    for at, received in ((0, 100), (10, 200), (20, 50), (30, 150)):
        w.add("t", "n1", 6700, metrics(at, cpu_s=0.0, received=received), at, 60.0)
    # +100, restart (+50 counted from zero), +100 over 30 s
    assert w.rates("t").traffic[(0, 2)] == pytest.approx(250 / 30)


def test_one_sample_gives_no_rate_and_old_samples_age_out():
    w = MetricsWindow()
    w.add("t", "n1", 6700, metrics(0, 0.0, 0), 0.0, 30.0)
    assert w.rates("t").traffic == {} and w.rates("t").load_hz == {}
    w.add("t", "n1", 6700, metrics(10, 1.0, 1000), 10.0, 30.0)
    w.add("t", "n1", 6700, metrics(35, 1.5, 1100), 35.0, 30.0)  # the sample of t=0 is gone
    assert w.rates("t").traffic[(0, 2)] == pytest.approx(100 / 25)
    w.expire(100.0, {"t": 30.0})
    assert w.rates("t").traffic == {} and w.latest("t") == {}


def test_a_repeated_sample_is_ignored_and_the_newest_worker_of_a_moved_executor_wins():
    w = MetricsWindow()
    w.add("t", "n1", 6700, metrics(0, 0.0, 0), 0.0, 30.0)
    w.add("t", "n1", 6700, metrics(0, 0.0, 0), 1.0, 30.0)
    w.add("t", "n1", 6700, metrics(10, 0.0, 100), 10.0, 30.0)
    w.add("t", "n2", 6700, metrics(100, 0.0, 0), 11.0, 30.0)
    w.add("t", "n2", 6700, metrics(110, 0.0, 500), 12.0, 30.0)
    assert w.rates("t").traffic[(0, 2)] == pytest.approx(50.0)
    assert w.latest("t")[2][1:] == ("n2", 6700)


def test_heartbeats_feed_get_assignment_load_traffic_and_pids():
    st = new_state()
    register(st, "n1", [6700, 6701], 0.0)
    push = pushes(submit(st, "chain", 0.0, workers=1))
    (((node, port), execs),) = workers_of(push, "chain").items()
    for k in range(3):
        report = M.WorkerReport(
            "chain",
            port,
            pid=4242,
            state="running",
            assignment_version=1,
            metrics=metrics(10.0 * k, cpu_s=2.0 * k, received=300 * k),
        )
        heartbeat(st, "n1", 10.0 * k, [report])
    a = ask(st, M.GetAssignment(2, "chain"), 20.0).data
    by_id = {e["id"]: e for e in a["executors"]}
    assert by_id[2]["load_hz"] == pytest.approx(0.2 * CLOCK)
    assert by_id[2]["pid"] == 4242 and by_id[2]["node"] == "n1" and by_id[2]["port"] == port
    assert a["traffic"] == [[0, 2, pytest.approx(30.0)]]
    rec = st.topologies["chain"]
    assert traffic_split(rec, st.rates("chain")) == (0.0, 0.0)  # one worker: nothing crosses


def test_older_samples_cost_the_garbage_collector_nothing():
    """A full collection walks every tracked object: samples kept as objects made each one
    cost hundreds of ms at 500 boards. Once collected (a level of tuples per collection),
    forty more samples per worker add no tracked object."""
    w = MetricsWindow()

    def fill(seconds: range) -> int:
        for at in seconds:
            for port in (6700, 6701, 6702):
                m = metrics(float(at), cpu_s=0.01 * at, received=10 * at, emitted=10 * at)
                sample = M.WorkerMetrics(at=m.at, clock_hz=m.clock_hz, executors=m.executors, sent_remote=at)
                w.add("t", "n1", port, sample, float(at), 1000.0)
        for _ in range(4):
            gc.collect()
        return len(gc.get_objects())

    after_ten = fill(range(10))
    after_fifty = fill(range(10, 50))
    assert after_fifty - after_ten < 40  # 120 more samples; as objects they were 1,000+ more
    assert w.rates("t").traffic[(0, 2)] == pytest.approx(10.0)  # and they still count


def _step(a: float, b: float) -> float:
    return b - a if b >= a else b  # a drop: the worker restarted from zero


def _summed_step_by_step(kept: list[M.WorkerMetrics]) -> dict[str, dict]:
    """The rates of one worker's ``kept`` reports, summing every step (the definition)."""
    span = kept[-1].at - kept[0].at
    out: dict[str, dict] = {"emitted": {}, "executed": {}, "cpu_cores": {}, "traffic": {}}
    for ex in (1, 2, 3):
        rows = [next(e for e in m.executors if e.executor == ex) for m in kept]
        for name, counter in (("emitted", "emitted"), ("executed", "executed"), ("cpu_cores", "cpu_s")):
            out[name][ex] = sum(_step(getattr(a, counter), getattr(b, counter)) for a, b in zip(rows, rows[1:])) / span
        for src in (4, 5, 6):
            pairs = zip(rows, rows[1:])
            rate = sum(_step(a.received_from.get(src, 0), b.received_from.get(src, 0)) for a, b in pairs) / span
            if rate > 0:
                out["traffic"][(src, ex)] = rate
    out["process_cores"] = sum(_step(a.process_cpu_s, b.process_cpu_s) for a, b in zip(kept, kept[1:])) / span
    out["items_sent"] = sum(_step(a.sent_remote, b.sent_remote) for a, b in zip(kept, kept[1:])) / span
    return out


def _random_report(rng: random.Random, at: float, counts: dict, restart: bool) -> M.WorkerMetrics:
    """Cumulative counters that grow and sometimes restart from zero (the worker's all at
    once, or one source's count alone); a source is sometimes missing from a report."""
    executors = []
    for ex in (1, 2, 3):
        if restart:
            counts[ex] = 0
        counts[ex] += rng.randrange(0, 50)
        sources = {}
        for s in (4, 5, 6):
            key = (ex, s)
            counts[key] = 0 if restart or rng.random() < 0.03 else counts.get(key, 0) + rng.randrange(0, 30)
            if rng.random() < 0.95:
                sources[s] = counts[key]
        executors.append(
            M.ExecutorMetrics(
                ex, "c", emitted=counts[ex], executed=counts[ex], cpu_s=counts[ex] / 1e3, received_from=sources
            )
        )
    return M.WorkerMetrics(
        at=at, clock_hz=CLOCK, executors=executors, sent_remote=counts[1], process_cpu_s=counts[3] / 100
    )


@pytest.mark.parametrize("seed", range(20))
def test_rates_read_from_a_run_of_samples_equal_the_step_by_step_sum(seed: int) -> None:
    """A run of continuing samples is read at its two ends; any window, with restarts and
    sources that come and go, gives the rates of summing every step of it."""
    rng = random.Random(seed)
    w = MetricsWindow()
    counts: dict = {1: 0, 2: 0, 3: 0}
    reports: list[M.WorkerMetrics] = []
    for second in range(60):
        reports.append(_random_report(rng, float(second), counts, restart=rng.random() < 0.05))
        w.add("t", "n1", 6700, reports[-1], float(second), 10.0)
        kept = [m for m in reports if second - m.at <= 10.0]
        if len(kept) < 2:
            continue
        want, got = _summed_step_by_step(kept), w.rates("t")
        for name in ("emitted", "executed", "cpu_cores", "traffic"):
            assert getattr(got, name) == pytest.approx(want[name], rel=1e-9, abs=1e-9), (second, name)
        assert got.workers[("n1", 6700)].process_cores == pytest.approx(want["process_cores"], rel=1e-9, abs=1e-9)
        assert got.workers[("n1", 6700)].items_sent == pytest.approx(want["items_sent"], rel=1e-9, abs=1e-9)
