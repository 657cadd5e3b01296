"""Backpressure: when a local inbox holds more than ``squall.backpressure.high`` items the
spouts stop emitting until it drains, so a slow bolt bounds memory instead of growing it."""

from __future__ import annotations

from squall import Bolt, Topology, Tuple
from squall.topology.testing import CollectBolt, ListSpout
from tests.runtime.runtime_helpers import only, pump, start_engine


class Many(ListSpout):
    outputs = ["n"]
    items = [[i] for i in range(2000)]
    max_replays = 0


class Fan(Bolt):
    """Emits ten tuples per input: the sink's inbox fills ten times faster than this one."""

    outputs = ["n"]

    def process(self, tup: Tuple) -> None:
        for k in range(10):
            self.emit([tup["n"] * 10 + k])


class Slow(Topology):
    config = {"topology.acker.executors": 0}
    spout = Many.spec()
    fan = Fan.spec(inputs=[spout])
    sink = CollectBolt.spec(inputs=[fan])


def test_spouts_pause_while_an_inbox_is_above_the_high_water_mark() -> None:
    high, bolt_batch, spout_batch = 100, 20, 16
    engine = start_engine(
        Slow, {"squall.backpressure.high": high, "squall.bolt.batch": bolt_batch, "squall.spout.batch": spout_batch}
    )
    longest = 0
    for _ in range(20_000):
        if engine.run_once() == 0:
            break
        longest = max(longest, max(len(ex.inbox) for ex in engine.executors))
    # Without backpressure the sink's inbox would reach ~18,000 (2,000 x 10, drained 20 a round).
    # With it, an inbox overshoots the mark by at most one round of input: a spout batch into
    # fan, or fan's output for one bolt batch into the sink.
    assert longest <= high + bolt_batch * 10
    pump(engine)
    assert len(only(engine, "sink").received) == 20_000
