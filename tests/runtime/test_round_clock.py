"""The executors' batches of one engine round share their thread CPU readings
(``stats.RoundClock``): one reading per boundary between batches instead of two per batch,
with the same total and nothing counted twice. The spout's delivery finds a tree's latency
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
    1, 2, 3, ...: each batch's busy time is then the number of readings it spans."""

    def __init__(self) -> None:
        self.reads = 0

    def thread_time(self) -> float:
        self.reads += 1
        return float(self.reads)


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
def test_a_rounds_batches_read_the_clock_once_per_boundary(thread_clock: CountingThreadClock, acking: bool) -> None:
    engine = _chain(acking)
    timed = {"n": 0}
    for ex in engine.executors:  # count the batches that time themselves, whatever the order
        for name in ("step", "drain"):
            method = getattr(ex, name, None)
            if method is None:
                continue

            def counted(*args: Any, _method: Any = method, **kwargs: Any) -> int:
                before = thread_clock.reads
                out = _method(*args, **kwargs)
                timed["n"] += thread_clock.reads != before
                return out

            setattr(ex, name, counted)
    for _ in range(6):  # the items reach the sink and, acking on, their outcomes the spout
        busy_before, reads_before, timed_before = _busy(engine), thread_clock.reads, timed["n"]
        engine.run_once()
        batches = timed["n"] - timed_before
        reads = thread_clock.reads - reads_before
        if batches:
            assert reads == batches + 1, "one reading per boundary: the first start, then each end"
            # readings 1, 2, 3, ... : the round's batches span exactly its readings, end to end
            assert _busy(engine) - busy_before == reads - 1
        else:
            assert reads == 0
    assert engine.idle()
    assert timed["n"] >= 4, "the round shapes above were exercised"


def test_a_batch_outside_a_round_reads_the_clock_twice(thread_clock: CountingThreadClock) -> None:
    engine = _chain(True)
    (spout,) = engine.spouts
    spout.step()
    assert thread_clock.reads == 2
    middle = next(ex for ex in engine.bolts if ex.component == "middle")
    middle.drain(100)
    assert thread_clock.reads == 4, "no reading carried over from the spout's batch"
    assert spout.stats.busy_s == 1.0 and middle.stats.busy_s == 1.0


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
