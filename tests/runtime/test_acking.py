"""Reliability: the XOR acker, ack/fail delivery to spouts, replay, timeouts, max pending,
acking off, anchoring (fan-out, joins, unanchored emits) and several ackers.

Every test runs on a fake clock: time passes only when the test says so, so timeouts and
tick-driven acks are exact and nothing sleeps.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest

from squall import Bolt, Grouping, Topology, Tuple
from squall.supervisor.runtime.engine import Engine
from squall.topology.testing import CollectBolt, ListSpout
from tests.runtime.runtime_helpers import FakeClock, by_task, instances, only, pump, start_engine, summary


def items_spout(n: int, max_replays: int = 0, fields: Sequence[str] = ("n",)) -> type[ListSpout]:
    """A ListSpout subclass emitting ``[0] .. [n-1]`` tracked by index."""
    return type(
        "Items", (ListSpout,), {"outputs": list(fields), "items": [[i] for i in range(n)], "max_replays": max_replays}
    )


def topology(name: str = "T", config: dict | None = None, **components: Any) -> type[Topology]:
    """A Topology class built from keyword component specs (declaration order kept)."""
    return type(name, (Topology,), {"config": dict(config or {}), **components})


def run_on_fake_clock(conf: dict | None = None, **components: Any) -> tuple[Engine, FakeClock]:
    """Start the topology of ``components`` (engine ``conf``) on a fake clock, on which time
    passes only when the test advances it, and pump it until idle."""
    clock = FakeClock()
    engine = start_engine(topology(**components), conf, clock=clock)
    pump(engine)
    return engine, clock


class Relay(Bolt):
    """Forwards each input (anchored by default)."""

    outputs = ["n"]

    def process(self, tup: Tuple) -> None:
        self.emit(tup.values)


class UnanchoredRelay(Relay):
    auto_anchor = False


class Split(Bolt):
    """Emits one tuple per word of the input sentence (each anchored to the sentence)."""

    outputs = ["n"]

    def process(self, tup: Tuple) -> None:
        for word in str(tup.values[0]).split():
            self.emit([word])


class FailOdd(Bolt):
    """Fails odd inputs explicitly; even ones are auto-acked."""

    def process(self, tup: Tuple) -> None:
        if tup["n"] % 2:
            self.fail(tup)


class RaiseOdd(Bolt):
    """Raises on odd inputs, forwards even ones."""

    outputs = ["n"]

    def process(self, tup: Tuple) -> None:
        if tup["n"] % 2:
            raise ValueError(f"odd {tup['n']}")
        self.emit(tup.values)


class RaiseOddNoAutoFail(RaiseOdd):
    auto_fail = False


class FailOddWord(Bolt):
    """Fails inputs whose word is an odd number."""

    def process(self, tup: Tuple) -> None:
        if int(tup["n"]) % 2:
            self.fail(tup)


class Flaky(Bolt):
    """Fails each input the first time it sees its value, acks it afterwards."""

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.seen: set[Any] = set()

    def process(self, tup: Tuple) -> None:
        if tup["n"] not in self.seen:
            self.seen.add(tup["n"])
            self.fail(tup)


class Hold(Bolt):
    """Never acks by itself: keeps its inputs in ``held``; on each tick acks the oldest
    ``release`` of them (``release = 0``: never)."""

    auto_ack = False
    release = 0

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.held: list[Tuple] = []
        self.ids: list[Any] = []

    def process(self, tup: Tuple) -> None:
        self.held.append(tup)
        self.ids.append(tup.id)

    def process_tick(self, tup: Tuple) -> None:
        for _ in range(min(self.release, len(self.held))):
            self.ack(self.held.pop(0))


class ReleaseAll(Hold):
    release = 10**9


class ReleaseOne(Hold):
    release = 1


class Join(Bolt):
    """Waits for two inputs, then emits one tuple anchored to both and acks them."""

    auto_ack = False
    outputs = ["n"]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.waiting: list[Tuple] = []

    def process(self, tup: Tuple) -> None:
        self.waiting.append(tup)
        if len(self.waiting) == 2:
            a, b = self.waiting
            self.waiting = []
            self.emit([f"{a['n']}+{b['n']}"], anchors=[a, b])
            self.ack(a)
            self.ack(b)


class AckTwiceThenFail(Bolt):
    def process(self, tup: Tuple) -> None:
        self.ack(tup)
        self.ack(tup)
        self.fail(tup)


TICK_EVERY_SECOND = {"topology.tick.tuple.freq.secs": 1.0}


# -- ack -------------------------------------------------------------------------------


def test_each_completed_tree_calls_spout_ack_once_per_tup_id() -> None:
    spout = items_spout(20).spec()
    relay = Relay.spec(inputs=[spout], par=2)
    sink = CollectBolt.spec(inputs=[relay], par=2)
    engine = start_engine(topology(spout=spout, relay=relay, sink=sink))
    pump(engine)
    s = only(engine, "spout")
    assert sorted(s.acked) == list(range(20))  # sorted: each id exactly once
    assert s.failed == []
    assert summary(engine, "spout").acked == 20
    assert summary(engine, "sink").executed == 20
    assert not engine.spouts[0].pending


def test_complete_latency_is_emit_to_tree_completion() -> None:
    spout = items_spout(4).spec()
    hold = ReleaseAll.spec(inputs=[spout], config=TICK_EVERY_SECOND)
    engine, clock = run_on_fake_clock(spout=spout, hold=hold)
    assert only(engine, "spout").acked == []
    clock.advance(1.0)
    pump(engine)
    assert sorted(only(engine, "spout").acked) == [0, 1, 2, 3]
    row = summary(engine, "spout")
    assert row.complete_latency_ms == pytest.approx(1000.0)
    assert row.p99_latency_ms == pytest.approx(1000.0)
    assert engine.spouts[0].stats.latency_count == 4


def test_acking_a_tuple_twice_or_failing_it_after_ack_counts_once() -> None:
    spout = items_spout(5).spec()
    bolt = AckTwiceThenFail.spec(inputs=[spout])
    engine = start_engine(topology(spout=spout, bolt=bolt))
    pump(engine)
    s = only(engine, "spout")
    assert sorted(s.acked) == [0, 1, 2, 3, 4]
    assert s.failed == []


# -- fail, errors, replay --------------------------------------------------------------


def test_a_bolt_calling_fail_makes_the_spout_fail_that_tup_id() -> None:
    spout = items_spout(10).spec()
    bolt = FailOdd.spec(inputs=[spout], par=2)
    engine = start_engine(topology(spout=spout, bolt=bolt))
    pump(engine)
    s = only(engine, "spout")
    assert sorted(s.failed) == [1, 3, 5, 7, 9]
    assert sorted(s.acked) == [0, 2, 4, 6, 8]
    assert summary(engine, "spout").failed == 5


def test_a_bolt_raising_fails_its_tuple_keeps_processing_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    spout = items_spout(20).spec()
    boom = RaiseOdd.spec(inputs=[spout])
    sink = CollectBolt.spec(inputs=[boom])
    engine = start_engine(topology(spout=spout, boom=boom, sink=sink))
    with caplog.at_level(logging.ERROR, logger="squall.executor"):
        pump(engine)
    s = only(engine, "spout")
    assert sorted(s.failed) == list(range(1, 20, 2))
    assert sorted(s.acked) == list(range(0, 20, 2))
    # Tuples after the first error were still processed and forwarded.
    assert sorted(v[0] for v in only(engine, "sink").received) == list(range(0, 20, 2))
    assert summary(engine, "boom").errors == 10
    records = [r for r in caplog.records if r.name == "squall.executor"]
    assert len(records) == 1, [r.getMessage() for r in records]
    assert "'boom'" in records[0].getMessage() and "ValueError" in records[0].getMessage()


def test_with_auto_fail_off_a_raising_bolt_leaves_the_tuple_to_time_out() -> None:
    spout = items_spout(4).spec()
    boom = RaiseOddNoAutoFail.spec(inputs=[spout])
    engine, clock = run_on_fake_clock({"topology.message.timeout.secs": 5}, spout=spout, boom=boom)
    s = only(engine, "spout")
    assert sorted(s.acked) == [0, 2] and s.failed == []
    clock.advance(6)
    pump(engine)
    assert sorted(s.failed) == [1, 3]


def test_failed_items_are_replayed_until_every_item_is_acked() -> None:
    spout = items_spout(12, max_replays=3).spec()
    flaky = Flaky.spec(inputs={spout: Grouping.fields("n")}, par=2)
    engine = start_engine(topology(spout=spout, flaky=flaky))
    pump(engine)
    s = only(engine, "spout")
    assert sorted(s.failed) == list(range(12))  # each failed once, the first time
    assert sorted(s.acked) == list(range(12))  # ... and acked after its replay
    assert summary(engine, "flaky").executed == 24


# -- timeout ---------------------------------------------------------------------------


def test_a_tree_not_completed_within_the_message_timeout_is_failed() -> None:
    spout = items_spout(6).spec()
    hold = Hold.spec(inputs=[spout])
    engine, clock = run_on_fake_clock({"topology.message.timeout.secs": 0.2}, spout=spout, hold=hold)
    s = only(engine, "spout")
    clock.advance(0.1)
    pump(engine)
    assert s.failed == [] and s.acked == []
    clock.advance(0.15)
    pump(engine)
    assert sorted(s.failed) == list(range(6))
    assert s.acked == []
    assert not engine.spouts[0].pending
    # An ack arriving after the timeout does not resurrect the tree.
    h = only(engine, "hold")
    for tup in h.held:
        h.ack(tup)
    pump(engine)
    assert s.acked == []
    assert sorted(s.failed) == list(range(6))


# -- max spout pending -----------------------------------------------------------------


@pytest.mark.parametrize("where", ["topology config", "engine conf"])
def test_max_spout_pending_bounds_trees_in_flight(where: str) -> None:
    clock = FakeClock()
    limit = {"topology.max.spout.pending": 3}
    spout = items_spout(20).spec()
    hold = ReleaseAll.spec(inputs=[spout], config=TICK_EVERY_SECOND)
    topo = topology(spout=spout, hold=hold, config=limit if where == "topology config" else None)
    engine = start_engine(topo, limit if where == "engine conf" else None, clock=clock)
    s = only(engine, "spout")
    pump(engine)
    assert len(only(engine, "hold").held) == 3  # the limit is reached, and not exceeded
    most = 0
    for _ in range(20):
        clock.advance(1.0)
        for _ in range(50):
            done = engine.run_once()
            most = max(most, len(engine.spouts[0].pending))
            if not done:
                break
        if len(s.acked) == 20:
            break
    assert sorted(s.acked) == list(range(20))
    assert most == 3


# -- acking off ------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["topology config", "engine conf"])
def test_zero_acker_executors_turns_tracking_off_and_acks_at_once(where: str) -> None:
    off = {"topology.acker.executors": 0}
    spout = items_spout(10).spec()
    hold = Hold.spec(inputs=[spout])  # never acks: irrelevant with tracking off
    topo = topology(spout=spout, hold=hold, config=off if where == "topology config" else None)
    engine = start_engine(topo, off if where == "engine conf" else None)
    pump(engine)
    assert engine.ackers == []
    assert sorted(only(engine, "spout").acked) == list(range(10))
    assert only(engine, "hold").ids == [None] * 10  # tuples carry no tracking ids
    assert summary(engine, "spout").complete_latency_ms is None


# -- anchoring -------------------------------------------------------------------------


def test_a_fanned_out_tree_completes_only_when_every_descendant_is_acked() -> None:
    spout = type("Sentences", (ListSpout,), {"outputs": ["n"], "items": [["a b c"]], "max_replays": 0}).spec()
    split = Split.spec(inputs=[spout])
    relay = Relay.spec(inputs=[split], par=2)
    hold = ReleaseOne.spec(inputs=[relay], config=TICK_EVERY_SECOND)
    engine, clock = run_on_fake_clock(spout=spout, split=split, relay=relay, hold=hold)
    s = only(engine, "spout")
    assert len(only(engine, "hold").held) == 3
    for still_held in (2, 1):
        clock.advance(1.0)
        pump(engine)
        assert len(only(engine, "hold").held) == still_held
        assert s.acked == [], "the tree must wait for its last descendant"
    clock.advance(1.0)
    pump(engine)
    assert s.acked == [0] and s.failed == []


def test_a_tuple_anchored_to_two_inputs_holds_both_trees_open() -> None:
    spout = items_spout(2).spec()
    join = Join.spec(inputs=[spout])
    hold = ReleaseAll.spec(inputs=[join], config=TICK_EVERY_SECOND)
    engine, clock = run_on_fake_clock(spout=spout, join=join, hold=hold)
    s = only(engine, "spout")
    assert [t.values for t in only(engine, "hold").held] == [["0+1"]]
    assert s.acked == []
    clock.advance(1.0)
    pump(engine)
    assert sorted(s.acked) == [0, 1]


def test_failing_one_descendant_fails_the_whole_tree() -> None:
    spout = type(
        "Sentences", (ListSpout,), {"outputs": ["n"], "items": [["1 2 4"], ["2 4 6"]], "max_replays": 0}
    ).spec()
    split = Split.spec(inputs=[spout])
    check = FailOddWord.spec(inputs=[split], par=2)
    engine = start_engine(topology(spout=spout, split=split, check=check))
    pump(engine)
    s = only(engine, "spout")
    assert s.failed == [0]
    assert s.acked == [1]


def test_unanchored_emits_are_not_tracked() -> None:
    spout = items_spout(5).spec()
    relay = UnanchoredRelay.spec(inputs=[spout])
    hold = Hold.spec(inputs=[relay])  # never acks what it gets
    engine = start_engine(topology(spout=spout, relay=relay, hold=hold))
    pump(engine)
    assert sorted(only(engine, "spout").acked) == list(range(5))
    assert only(engine, "hold").ids == [None] * 5


def test_anchored_emits_are_tracked_in_the_same_topology() -> None:
    # The control for the test above: with anchoring, the holder keeps every tree open.
    spout = items_spout(5).spec()
    relay = Relay.spec(inputs=[spout])
    hold = Hold.spec(inputs=[relay])
    engine = start_engine(topology(spout=spout, relay=relay, hold=hold))
    pump(engine)
    assert only(engine, "spout").acked == []
    assert all(i is not None for i in only(engine, "hold").ids)


# -- several ackers --------------------------------------------------------------------


def test_trees_are_spread_over_several_ackers_and_all_complete() -> None:
    sentences = [[" ".join(f"w{i}{j}" for j in range(3))] for i in range(60)]
    spout = type("Sentences", (ListSpout,), {"outputs": ["n"], "items": sentences, "max_replays": 0}).spec(par=2)
    split = Split.spec(inputs=[spout], par=2)
    sink = CollectBolt.spec(inputs={split: Grouping.fields("n")}, par=3)
    engine = start_engine(topology(spout=spout, split=split, sink=sink), {"topology.acker.executors": 3})
    pump(engine)
    assert len(engine.ackers) == 3
    acked = sorted(i for inst in instances(engine, "spout") for i in inst.acked)
    assert acked == list(range(60))
    per_acker = [a.stats.acked for a in engine.ackers]
    assert sum(per_acker) == 60
    assert sum(1 for n in per_acker if n) >= 2, per_acker
    assert sum(len(inst.received) for inst in by_task(engine, "sink").values()) == 180
