"""``Engine.next_due``: when an idle worker must next run the engine. Nothing at all for a
deactivated or paused topology with nothing in flight; a spout's own ``next_tuple_due``; 1 ms
for a spout that cannot say; the timers only while they have work."""

from __future__ import annotations

from typing import Any

import pytest

from squall import Bolt, Grouping, Spout, Topology
from squall.supervisor.runtime.spout_executor import SPOUT_WAIT_S
from tests.runtime.runtime_helpers import FakeClock, pump, start_engine


class Paced(Spout):
    """Emits one reliable tuple at ``next_at``, then waits ``interval`` (a fake clock)."""

    outputs = ["n"]
    clock: Any = None
    interval = 0.5

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.next_at = self.clock()
        self.n = 0

    def next_tuple(self) -> None:
        if self.clock() >= self.next_at:
            self.n += 1
            self.next_at += self.interval
            self.emit([self.n], tup_id=self.n)

    def next_tuple_due(self) -> float | None:
        return self.next_at


class Unknowing(Paced):
    def next_tuple_due(self) -> float | None:
        return None


class Raising(Paced):
    def next_tuple_due(self) -> float | None:
        raise RuntimeError("bug in the hook")


class Hold(Bolt):
    """Never acks: its trees stay pending."""

    auto_ack = False

    def process(self, tup: Any) -> None:
        pass


class Pass(Bolt):
    def process(self, tup: Any) -> None:
        pass


def topology(spout: type, bolt: type = Pass, tick_s: float | None = None) -> type[Topology]:
    bolt_conf = {"topology.tick.tuple.freq.secs": tick_s} if tick_s else {}

    class T(Topology):
        name = "t"
        source = spout.spec()
        sink = bolt.spec(inputs={source: Grouping.SHUFFLE}, config=bolt_conf)

    return T


@pytest.fixture
def clock() -> FakeClock:
    Paced.clock = clock = FakeClock()
    yield clock
    Paced.clock = None


def test_a_deactivated_topology_with_nothing_in_flight_needs_no_wake_up(clock):
    engine = start_engine(topology(Paced), clock=clock)
    pump(engine)
    engine.deactivate()
    clock.advance(1.0)  # past the acker's rotation: nothing is kept there either
    pump(engine)
    assert engine.next_due(clock()) is None


def test_a_paused_topology_with_nothing_in_flight_needs_no_wake_up(clock):
    engine = start_engine(topology(Paced), clock=clock)
    pump(engine)
    engine.paused = True
    assert engine.next_due(clock()) is None


def test_a_paced_spout_is_due_when_it_says(clock):
    engine = start_engine(topology(Paced), clock=clock)
    pump(engine)  # emits one tuple, whose tree completes
    assert engine.next_due(clock()) == pytest.approx(clock() + Paced.interval)


def test_a_spout_that_cannot_say_is_asked_again_after_the_spout_wait(clock):
    engine = start_engine(topology(Unknowing), clock=clock)
    pump(engine)
    assert engine.next_due(clock()) == pytest.approx(clock() + SPOUT_WAIT_S)


def test_a_bug_in_the_hook_costs_the_spout_wait_and_counts_an_error(clock):
    engine = start_engine(topology(Raising), clock=clock)
    pump(engine)
    assert engine.next_due(clock()) == pytest.approx(clock() + SPOUT_WAIT_S)
    spout = next(ex for ex in engine.executors if ex.component == "source")
    assert spout.stats.errors == 1


def test_queued_items_are_due_now(clock):
    engine = start_engine(topology(Paced), clock=clock)
    engine.spouts[0].step()  # one tuple queued for the bolt, not yet drained
    assert engine.next_due(clock()) == clock()


def test_a_pending_tree_makes_its_timeout_due(clock):
    engine = start_engine(topology(Paced, Hold), {"topology.message.timeout.secs": 5}, clock=clock)
    pump(engine)
    engine.deactivate()
    emitted_at = clock()
    clock.advance(1.0)
    pump(engine)
    assert engine.next_due(clock()) == pytest.approx(emitted_at + 5)
    clock.advance(5.0)
    pump(engine)  # the tree timed out and failed; only the acker entry is left to forget
    spout = engine.spouts[0]
    assert spout.stats.failed == 1 and not spout.pending
    clock.advance(20.0)
    pump(engine)
    assert engine.next_due(clock()) is None


def test_a_spout_at_max_pending_waits_for_acks_not_for_time(clock):
    conf = {"topology.max.spout.pending": 1, "topology.message.timeout.secs": 30}
    engine = start_engine(topology(Unknowing, Hold), conf, clock=clock)
    started = clock()
    pump(engine)
    assert len(engine.spouts[0].pending) == 1
    # Not 1 ms from now: the spout can emit nothing before an ack; only the timeout is due.
    assert engine.next_due(clock()) == pytest.approx(started + 30)


def test_tick_tuples_are_due_at_their_period_even_when_deactivated(clock):
    engine = start_engine(topology(Paced, tick_s=2.0), clock=clock)
    engine.deactivate()
    clock.advance(1.0)
    pump(engine)
    assert engine.next_due(clock()) == pytest.approx(clock() + 1.0)
