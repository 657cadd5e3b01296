"""What the hot path's shortcuts must not change: tuples built without ``Tuple.__init__``
carry every slot, emit counters kept on the routes reach the executor's stats exactly
(per stream, per grouping, from every place a component may emit), and a bolt's batch
leaves what it did not reach queued when it is interrupted."""

from __future__ import annotations

from typing import Any

import pytest

from squall import Bolt, Grouping, Spout, Stream, Topology
from squall.topology.component import Tuple
from tests.runtime.runtime_helpers import only, pump, start_engine

NO_ACKERS = {"topology.acker.executors": 0}
ONE_ACKER = {"topology.acker.executors": 1}


class Numbers(Spout):
    """Emits ``limit`` tuples on ``default`` (tracked when acking is on) and one on
    ``side`` per 10; one more on ``default`` from ``activate`` and from each ``ack``."""

    outputs = [Stream(fields=["n"]), Stream(fields=["n", "tag"], name="side")]
    limit = 50

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.i = 0
        self.acks = 0

    def activate(self) -> None:
        self.emit([-1])  # untracked, from a callback outside next_tuple

    def next_tuple(self) -> None:
        if self.i < self.limit:
            self.i += 1
            self.emit([self.i], tup_id=self.i)
            if self.i % 10 == 0:
                self.emit([self.i, "x"], stream="side")

    def ack(self, tup_id: Any) -> None:
        self.acks += 1


class Keep(Bolt):
    """Keeps every tuple it receives; forwards each on ``default``."""

    outputs = ["n"]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.seen: list[Tuple] = []

    def process(self, tup: Tuple) -> None:
        self.seen.append(tup)
        self.emit([tup.values[0]])


class Sink(Bolt):
    def initialize(self, conf: dict, ctx: Any) -> None:
        self.seen: list[Tuple] = []

    def process(self, tup: Tuple) -> None:
        self.seen.append(tup)


class Fanned(Topology):
    numbers = Numbers.spec()
    # shuffle over 2 tasks (a pick route), all over 3 tasks (fan-out 3), fields (no pick)
    keep = Keep.spec(inputs={numbers: Grouping.SHUFFLE}, par=2)
    every = Sink.spec(inputs={numbers["side"]: Grouping.ALL}, par=3)
    sink = Sink.spec(inputs={keep: Grouping.fields("n")}, par=2)


def _stats(engine: Any, component: str) -> list[Any]:
    return [ex.stats for ex in engine.executors if ex.component == component]


@pytest.mark.parametrize("conf", [NO_ACKERS, ONE_ACKER], ids=["acking off", "acking on"])
def test_route_counts_reach_the_stats_exactly(conf: dict) -> None:
    engine = start_engine(Fanned, conf)
    pump(engine)
    (spout,) = _stats(engine, "numbers")
    assert dict(spout.emitted) == {"default": 51, "side": 5}, "activate's emit is counted too"
    assert spout.transferred == 51 * 1 + 5 * 3
    keep = _stats(engine, "keep")
    assert sum(st.emitted["default"] for st in keep) == 51
    assert sum(st.transferred for st in keep) == 51, "fields grouping: one target per emit"
    assert sum(st.executed for st in keep) == 51
    assert sum(len(s.seen) for s in _instances(engine, "every")) == 15
    if conf is ONE_ACKER:
        assert only(engine, "numbers").acks == 50


def test_a_route_rebuilt_keeps_its_counts() -> None:
    """local_or_shuffle routes are rebuilt when executors move; counts taken before."""
    engine = start_engine(Fanned, NO_ACKERS)
    pump(engine)
    spout_ex = next(ex for ex in engine.executors if ex.component == "numbers")
    only(engine, "numbers").emit([7])  # an emit outside any batch, counted on its route
    spout_ex.rebind_emits()
    assert spout_ex.stats.emitted["default"] == 52


def _instances(engine: Any, component: str) -> list[Any]:
    return [inst for ex in engine.executors if ex.component == component for inst in ex.instances.values()]


@pytest.mark.parametrize("conf", [NO_ACKERS, ONE_ACKER], ids=["acking off", "acking on"])
def test_tuples_built_on_the_hot_path_carry_every_slot(conf: dict) -> None:
    engine = start_engine(Fanned, conf)
    pump(engine)
    tuples = [t for inst in _instances(engine, "keep") + _instances(engine, "sink") for t in inst.seen]
    assert tuples
    for tup in tuples:
        for slot in Tuple.__slots__:
            getattr(tup, slot)  # raises AttributeError for a slot the emit did not set
        assert tup["n"] == tup.values[0] and tup.component in ("numbers", "keep")
        tracked = conf is ONE_ACKER and tup.values[0] != -1  # activate's emit has no tup_id
        assert (tup.roots is not None) is tracked
        assert tup.done is tracked, "auto-ack marks each tracked tuple done"


class Stop(BaseException):
    """An interrupt (not an Exception: user errors are caught per tuple)."""


class Interrupting(Bolt):
    def initialize(self, conf: dict, ctx: Any) -> None:
        self.seen: list[int] = []

    def process(self, tup: Tuple) -> None:
        self.seen.append(tup.values[0])
        if tup.values[0] == 20:
            raise Stop


class Interrupted(Topology):
    numbers = Numbers.spec()
    bolt = Interrupting.spec(inputs=[numbers])


@pytest.mark.parametrize("conf", [NO_ACKERS, ONE_ACKER], ids=["acking off", "acking on"])
def test_an_interrupted_batch_leaves_the_rest_queued(conf: dict) -> None:
    engine = start_engine(Interrupted, conf)
    with pytest.raises(Stop):
        for _ in range(100):
            engine.run_once()
    bolt_ex = next(ex for ex in engine.executors if ex.component == "bolt")
    queued = [tup.values[0] for _task, tup in bolt_ex.inbox]
    assert queued[:3] == [21, 22, 23], "the tuples after the interrupted one, in order"
    pump(engine)
    assert only(engine, "bolt").seen == [-1, *range(1, 51)], "each tuple processed once, in order"
