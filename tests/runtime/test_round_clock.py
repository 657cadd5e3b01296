"""The executors' batches of one engine round share its thread CPU (``stats.RoundClock``):
two readings of the thread clock per round, shared among the batches by their spans on the
monotonic clock, with the same total and nothing counted twice. The spout's delivery finds a tree's latency
bucket from the one before it, exactly as ``bisect_left`` would."""

from __future__ import annotations

import random
from bisect import bisect_left
from typing import Any

import pytest

from squall import Bolt, Tuple
from squall.supervisor.runtime import stats
from squall.supervisor.runtime.messages import TREES_DONE
from squall.supervisor.runtime.stats import LATENCY_BOUNDS_S
from tests.runtime.runtime_helpers import FakeClock, start_engine
from tests.runtime.test_acking import Relay, items_spout, topology


class Sink(Bolt):
    def process(self, tup: Tuple) -> None:
        pass


class CountingThreadClock:
    """``time`` for the stats module whose ``thread_time`` counts its calls and returns
    1, 2, 3, ... (so a round's thread CPU is the number of readings it spans) and whose
    ``perf_counter`` returns ``wall``, which a test advances, plus one per call."""

    def __init__(self) -> None:
        self.reads = 0
        self.wall = 0.0
        self.wall_reads = 0

    def thread_time(self) -> float:
        self.reads += 1
        return float(self.reads)

    def perf_counter(self) -> float:
        self.wall_reads += 1
        self.wall += 1.0
        return self.wall


@pytest.fixture
def thread_clock(monkeypatch: pytest.MonkeyPatch) -> CountingThreadClock:
    fake = CountingThreadClock()
    monkeypatch.setattr(stats, "time", fake)
    return fake


def _chain(acking: bool) -> Any:
    conf = {"topology.acker.executors": 1 if acking else 0}
    spout = items_spout(10).spec()
    middle = Relay.spec(inputs=[spout])
    return start_engine(topology(spout=spout, middle=middle, sink=Sink.spec(inputs=[middle])), conf)


def _busy(engine: Any) -> float:
    return sum(ex.stats.busy_s for ex in engine.executors)


@pytest.mark.parametrize("acking", [False, True], ids=["acking off", "acking on"])
def test_a_round_reads_the_thread_clock_twice_and_its_batches_share_it(
    thread_clock: CountingThreadClock, acking: bool
) -> None:
    engine = _chain(acking)
    timed = {"n": 0}
    for ex in engine.executors:  # count the batches that time themselves, whatever the order
        for name in ("step", "drain"):
            method = getattr(ex, name, None)
            if method is None:
                continue

            def counted(*args: Any, _method: Any = method, **kwargs: Any) -> int:
                before = thread_clock.reads + thread_clock.wall_reads
                out = _method(*args, **kwargs)
                timed["n"] += thread_clock.reads + thread_clock.wall_reads != before
                return out

            setattr(ex, name, counted)
    rounds_of_several = 0
    for _ in range(6):  # the items reach the sink and, acking on, their outcomes the spout
        busy_before, reads_before, timed_before = _busy(engine), thread_clock.reads, timed["n"]
        engine.run_once()
        batches = timed["n"] - timed_before
        reads = thread_clock.reads - reads_before
        if batches:
            assert reads == 2, "the thread clock: at the first batch's start and at the round's close"
            rounds_of_several += batches > 2
            # readings n, n + 1: the round's batches share exactly the one unit between them
            assert _busy(engine) - busy_before == pytest.approx(1.0)
        else:
            assert reads == 0
    assert engine.idle()
    assert timed["n"] >= 4 and rounds_of_several, "the round shapes above were exercised"


def _batch(clock: stats.RoundClock, meter: stats.CpuMeter, fake: CountingThreadClock, span: float, transfer: float):
    """One batch of ``span`` on the monotonic clock (plus the one its end reading adds),
    ``transfer`` of it counted as transfer CPU; its stats."""
    st = stats.ExecutorStats("c")
    before = meter.cpu_s
    started = clock.start()
    fake.wall += span
    meter.cpu_s += transfer
    clock.charge(st, started, meter.cpu_s - before)
    return st


def test_without_transfer_a_rounds_cpu_is_shared_by_span(thread_clock: CountingThreadClock) -> None:
    clock, meter = stats.RoundClock(), stats.CpuMeter()
    clock.open_round()
    spans = [_batch(clock, meter, thread_clock, span, 0.0) for span in (0.0, 2.0, 4.0)]  # 1, 3, 5
    clock.close_round()
    assert thread_clock.reads == 2
    assert [st.busy_s for st in spans] == pytest.approx([1 / 9, 3 / 9, 5 / 9])


def test_a_rounds_cpu_is_shared_by_span_less_each_batchs_transfer(thread_clock: CountingThreadClock) -> None:
    clock, meter = stats.RoundClock(), stats.CpuMeter()
    thread_clock.reads = 10  # the round's readings: 11 at the first start, 12 at the close
    clock.open_round()
    first = _batch(clock, meter, thread_clock, 0.0, 0.0)  # spans 1 (its end reading)
    second = _batch(clock, meter, thread_clock, 2.0, 0.25)  # spans 3
    assert first.busy_s == second.busy_s == 0.0, "counted at the round's close, not before"
    clock.close_round()
    assert thread_clock.reads == 12
    # the round's 1.0 of CPU: 1/4 and 3/4 by span, the second less its transfer
    assert first.busy_s == pytest.approx(0.25)
    assert second.busy_s == pytest.approx(0.75 - 0.25)


def test_a_batch_whose_transfer_exceeds_its_share_counts_zero_and_the_round_still_adds_up(
    thread_clock: CountingThreadClock,
) -> None:
    clock, meter = stats.RoundClock(), stats.CpuMeter()
    thread_clock.reads = 10
    clock.open_round()
    first = _batch(clock, meter, thread_clock, 0.0, 0.5)  # share 0.25, transfer 0.5
    second = _batch(clock, meter, thread_clock, 2.0, 0.0)  # share 0.75
    clock.close_round()
    assert first.busy_s == 0.0
    assert second.busy_s == pytest.approx(1.0 - 0.5), "the round's CPU less its transfer, all of it"


def test_a_round_without_batches_reads_no_clock(thread_clock: CountingThreadClock) -> None:
    clock = stats.RoundClock()
    clock.open_round()
    clock.close_round()
    assert thread_clock.reads == 0 and thread_clock.wall_reads == 0


def test_a_batch_outside_a_round_reads_the_clock_twice(thread_clock: CountingThreadClock) -> None:
    engine = _chain(True)
    (spout,) = engine.spouts
    spout.step()
    assert thread_clock.reads == 2
    middle = next(ex for ex in engine.bolts if ex.component == "middle")
    middle.drain(100)
    assert thread_clock.reads == 4, "no reading carried over from the spout's batch"
    assert spout.stats.busy_s == 1.0 and middle.stats.busy_s == 1.0
    assert thread_clock.wall_reads == 0


# -- the spout's latency buckets ------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_each_tree_is_counted_in_the_bucket_bisect_gives(seed: int) -> None:
    """Trees of distinct instants completing in one message, their latencies on both sides
    of bucket bounds, on them, repeated and out of order: the bucket found from the one
    before (``_deliver_outcomes``) is ``bisect_left``'s for each."""
    rng = random.Random(seed)
    clock = FakeClock()
    engine = start_engine(topology(spout=items_spout(0).spec()), {"topology.acker.executors": 1}, clock=clock)
    (spout,) = engine.spouts
    (task,) = spout.instances
    now = clock()
    bounds = LATENCY_BOUNDS_S
    latencies = []
    for _ in range(60):
        i = rng.randrange(len(bounds))
        pick = rng.random()
        if pick < 0.3:
            latencies.append(bounds[i])
        elif pick < 0.5 and latencies:
            latencies.append(latencies[-1])
        elif pick < 0.6:
            latencies.append(bounds[-1] * (1 + rng.random()))
        else:
            latencies.append(bounds[i] * rng.uniform(0.5, 1.5))
    expected = [0] * (len(bounds) + 1)
    roots = []
    for k, latency in enumerate(latencies):
        emitted_at = now - latency
        root = 1000 + k
        spout.pending[root] = (task, k, emitted_at)
        spout.pending_by_task[task] += 1
        roots.append(root)
        expected[bisect_left(bounds, now - emitted_at)] += 1
    before = list(spout.stats.latency_buckets)
    spout.inbox.append((task, (TREES_DONE, roots, [])))
    spout.step(False)
    added = [after - b for after, b in zip(spout.stats.latency_buckets, before)]
    assert added == expected
    assert not spout.pending
