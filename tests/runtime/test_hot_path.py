"""What the hot path's shortcuts must not change: tuples built without ``Tuple.__init__``
carry every slot, emit counters kept on the routes reach the executor's stats exactly
(per stream, per grouping, from every place a component may emit), the traffic counts
kept by runs (``received_from``, a spout's and an acker's ``sent_control``) are exact, and
a bolt's batch leaves what it did not reach queued when it is interrupted."""

from __future__ import annotations

from typing import Any

import pytest

from squall import Bolt, Grouping, Spout, Stream, Topology
from squall.supervisor.runtime.engine import Engine
from squall.topology.component import SYSTEM_COMPONENT, TICK_STREAM, Tuple
from tests.runtime.runtime_helpers import FakeClock, only, pump, start_engine

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


class Chained(Topology):
    """One task per component: every data route has one target task (``Route.only``), the
    emits' paths without a loop over targets."""

    numbers = Numbers.spec()
    keep = Keep.spec(inputs={numbers: Grouping.SHUFFLE})
    sink = Sink.spec(inputs={keep: Grouping.SHUFFLE})


@pytest.mark.parametrize("topology", [Fanned, Chained], ids=["fanned", "one target task"])
@pytest.mark.parametrize("conf", [NO_ACKERS, ONE_ACKER], ids=["acking off", "acking on"])
def test_tuples_built_on_the_hot_path_carry_every_slot(conf: dict, topology: type[Topology]) -> None:
    engine = start_engine(topology, conf)
    pump(engine)
    if topology is Chained:
        for component in ("numbers", "keep"):
            ex = next(ex for ex in engine.executors if ex.component == component)
            assert any(route.only is not None for route in ex._routes), "a one-target-task route"
        if conf is ONE_ACKER:
            assert only(engine, "numbers").acks == 50, "every tree completes through those paths"
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
    (spout_task,) = next(ex for ex in engine.executors if ex.component == "numbers").spec.tasks
    assert dict(bolt_ex.stats.received_from) == {spout_task: 51}, "the interrupted run counted once, the rest later"


class TwoSources(Topology):
    numbers = Numbers.spec(par=2)
    sink = Sink.spec(inputs=[numbers])


@pytest.mark.parametrize("conf", [NO_ACKERS, ONE_ACKER], ids=["acking off", "acking on"])
def test_received_from_counts_interleaved_sources_exactly(conf: dict) -> None:
    """``received_from`` is counted by runs of one source task: runs that switch back and
    forth, and a tick tuple (not traffic) inside one, still give each source its count."""
    engine = Engine(TwoSources.spec, TwoSources.classes, conf, clock=FakeClock())
    engine.start(activate=False)
    sink_ex = next(ex for ex in engine.executors if ex.component == "sink")
    (sink_task,) = sink_ex.spec.tasks
    fields = {"n": 0}
    sources = [1, 1, 2, 1, 2, 2, 0, 2, 1]  # 0: a tick tuple here
    for i, src in enumerate(sources):
        if src == 0:
            tup = Tuple(SYSTEM_COMPONENT, TICK_STREAM, -1, [1.0], {"freq": 0})
        else:
            tup = Tuple("numbers", "default", src, [i], fields)
        sink_ex.inbox.append((sink_task, tup))
    assert sink_ex.drain(100) == len(sources)
    assert dict(sink_ex.stats.received_from) == {1: 4, 2: 4}
    assert len(only(engine, "sink").seen) == 8, "the tick went to process_tick"


class TwoTasks(Topology):
    numbers = Numbers.spec(tasks=2)  # one executor, two tasks: the acker's notices switch task
    keep = Keep.spec(inputs=[numbers], par=2)
    sink = Sink.spec(inputs={keep: Grouping.fields("n")}, par=2)


def test_control_counts_are_exact() -> None:
    """A spout's ACK_INITs (counted per acker in a list) and an acker's notices (counted by
    runs of one spout task) reach ``sent_control`` exactly: every message an acker handled
    was counted by its sender."""
    engine = start_engine(TwoTasks, {"topology.acker.executors": 2})
    pump(engine)
    spout_ex = next(ex for ex in engine.executors if ex.component == "numbers")
    ackers = [ex for ex in engine.executors if ex.component == "__acker"]
    bolts = [ex for ex in engine.executors if ex.component in ("keep", "sink")]
    assert len(ackers) == 2
    tracked = Numbers.limit * 2
    assert sum(spout_ex.stats.sent_control.values()) == tracked
    for acker in ackers:
        (a,) = acker.spec.tasks
        inits = spout_ex.stats.sent_control[a]
        assert inits > 0, "random roots spread the trees over both ackers"
        acks = sum(b.stats.sent_control[a] for b in bolts)
        assert acker.stats.executed == inits + acks, "each message the acker handled was counted once"
    for task in spout_ex.spec.tasks:
        assert sum(acker.stats.sent_control[task] for acker in ackers) == Numbers.limit
    assert [inst.acks for inst in spout_ex.instances.values()] == [Numbers.limit, Numbers.limit]
