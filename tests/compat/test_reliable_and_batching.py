"""ReliableSpout replays failed tuples up to max_fails; BatchingBolt and TicklessBatchingBolt
hold tuples until their batch is processed, ack them after it, anchor its emits to the whole
batch and fail the batch when process_batch raises."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from squall import BatchingBolt, Bolt, ReliableSpout, TicklessBatchingBolt, Topology, Tuple
from squall.topology.testing import CollectBolt, ListSpout
from tests.runtime.runtime_helpers import FakeClock, by_task, pump, start_engine

TICK = "topology.tick.tuple.freq.secs"


class Three(ReliableSpout):
    outputs = ["n"]
    max_fails = 2

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.left = [1, 2, 3]
        self.outcomes: list[tuple[str, Any]] = []

    def next_tuple(self) -> None:
        if self.left:
            n = self.left.pop(0)
            self.emit([n], f"id{n}")

    def ack(self, tup_id: Any) -> None:
        self.outcomes.append(("ack", tup_id))
        super().ack(tup_id)


class FailsTwos(Bolt):
    """Fails every delivery of 2 and the first delivery of 3."""

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.seen: list[int] = []

    def process(self, tup: Tuple) -> None:
        self.seen.append(tup["n"])
        if tup["n"] == 2 or (tup["n"] == 3 and self.seen.count(3) == 1):
            self.fail(tup)


class Replays(Topology):
    spout = Three.spec()
    sink = FailsTwos.spec(inputs=[spout])


def test_reliable_spout_replays_a_failed_tuple_and_gives_up_after_max_fails() -> None:
    engine = start_engine(Replays)
    pump(engine)
    (spout,) = by_task(engine, "spout").values()
    (sink,) = by_task(engine, "sink").values()
    assert sorted(sink.seen) == [1, 2, 2, 2, 3, 3], "2 delivered once plus max_fails=2 replays; 3 replayed once"
    assert sorted(spout.outcomes) == [("ack", "id1"), ("ack", "id2"), ("ack", "id3")], "2 given up, as if acked"
    assert spout.unacked_tuples == {} and not spout.failed_tuples


def test_reliable_spout_refuses_an_emit_without_tup_id() -> None:
    class NoId(ReliableSpout):
        outputs = ["n"]

    with pytest.raises(ValueError, match="NoId: a ReliableSpout emit needs a tup_id"):
        NoId().emit([1])


class Words(ListSpout):
    outputs = ["word"]
    items = [["a"], ["b"], ["a"], ["c"], ["a"]]


class CountPerBatch(BatchingBolt):
    outputs = ["word", "count"]

    def group_key(self, tup: Tuple) -> str:
        return tup["word"]

    def process_batch(self, key: str, tups: list[Tuple]) -> None:
        if key == "c":
            raise RuntimeError("c is bad")
        self.emit([key, len(tups)])


class Sink(CollectBolt):
    pass


def _batched(bolt: type[Bolt], config: dict | None = None) -> type[Topology]:
    words = Words.spec()
    counts = bolt.spec(inputs=[words], config=config)
    sink = Sink.spec(inputs=[counts])
    return type("Batched", (Topology,), {"words": words, "counts": counts, "sink": sink})


def test_batching_bolt_holds_tuples_until_a_tick_then_acks_or_fails_each_batch(caplog) -> None:
    clock = FakeClock()
    engine = start_engine(_batched(CountPerBatch, {TICK: 1.0}), clock=clock)
    pump(engine)
    (spout,) = by_task(engine, "words").values()
    assert spout.acked == [] and spout.failed == [], "nothing acked before the batch is processed"
    assert [v for i in by_task(engine, "sink").values() for v in i.received] == []
    with caplog.at_level(logging.ERROR, logger="squall.executor"):
        clock.advance(1.0)
        pump(engine)
    assert sorted(v for i in by_task(engine, "sink").values() for v in i.received) == [["a", 3], ["b", 1]]
    # "a" trees complete through the anchored count; "c" failed and is replayed (ListSpout).
    assert sorted(spout.acked) == [0, 1, 2, 4]
    assert spout.failed == [3]
    assert "c is bad" in caplog.text, "the batch's error reaches the executor's error log"


def test_batching_bolt_without_ticks_warns_that_its_batches_never_run(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="squall.task"):
        start_engine(_batched(CountPerBatch))
    assert "its batches will never be processed" in caplog.text


class CountAll(TicklessBatchingBolt):
    outputs = ["word", "count"]
    secs_between_batches = 0.5

    def process_batch(self, key: Any, tups: list[Tuple]) -> None:
        self.emit(["*", len(tups)])


def test_tickless_batching_bolt_flushes_on_its_own_interval_without_tick_config() -> None:
    topology = _batched(CountAll)
    assert topology.spec.component("counts").config[TICK] == 0.5
    clock = FakeClock()
    engine = start_engine(topology, clock=clock)
    pump(engine)
    (spout,) = by_task(engine, "words").values()
    assert spout.acked == []
    clock.advance(0.5)
    pump(engine)
    assert [v for i in by_task(engine, "sink").values() for v in i.received] == [["*", 5]]
    assert sorted(spout.acked) == [0, 1, 2, 3, 4]
