"""A component's ``emit``, bound by its executor, is a method of a class made for its task
(``executor.task_class``), not an attribute of the instance: the interpreter specialises
``self.emit(...)`` on it. Each task emits as itself; a class that overrides ``emit`` keeps
its own class and sees every tuple."""

from __future__ import annotations

import dis
import sys
from typing import Any

import pytest

from squall import Bolt, Spout, Tuple
from tests.runtime.runtime_helpers import instances, pump, start_engine
from tests.runtime.test_acking import topology


class TaskSpout(Spout):
    """Emits its own task id, ``count`` times, tracked or not."""

    outputs = ["task"]
    count = 200
    tracked = False

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.left = self.count

    def next_tuple(self) -> None:
        if self.left:
            self.left -= 1
            self.emit([self.task_id], tup_id=self.left if self.tracked else None)


class TrackedTaskSpout(TaskSpout):
    tracked = True


class Forward(Bolt):
    outputs = ["task", "via"]

    def process(self, tup: Tuple) -> None:
        self.emit([tup.values[0], self.task_id])


class Record(Bolt):
    seen: list[tuple[int, list]]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.seen = []

    def process(self, tup: Tuple) -> None:
        self.seen.append((tup.task, list(tup.values)))


class CountingEmit(Forward):
    """Overrides ``emit``: it must see every tuple, through its own method."""

    calls = 0

    def emit(self, values: Any, *args: Any, **kwargs: Any) -> list[int]:
        type(self).calls += 1
        return super().emit(values, *args, **kwargs)


def _chain(spout: type, middle: type, acking: bool, par: int = 2, tasks_each: int = 2) -> Any:
    conf = {"topology.acker.executors": 1 if acking else 0}
    s = spout.spec(par=par, tasks=tasks_each * par)
    m = middle.spec(inputs=[s], par=par, tasks=tasks_each * par)
    engine = start_engine(topology(spout=s, middle=m, sink=Record.spec(inputs=[m])), conf)
    pump(engine)
    return engine


@pytest.mark.parametrize("acking", [False, True], ids=["acking off", "acking on"])
def test_each_task_emits_as_itself_through_a_method_of_its_own_class(acking: bool) -> None:
    spout = TrackedTaskSpout if acking else TaskSpout
    engine = _chain(spout, Forward, acking)
    seen = [item for sink in instances(engine, "sink") for item in sink.seen]
    assert len(seen) == 4 * TaskSpout.count, "every tuple of the four spout tasks arrived"
    for source, (_, via) in seen:
        assert source == via, "the middle task that emitted it is its source"
    sources = {spout_task for _, (spout_task, _) in seen}
    assert sources == {inst.task_id for inst in instances(engine, "spout")}
    for name, cls in (("spout", spout), ("middle", Forward)):
        insts = instances(engine, name)
        assert len({type(i) for i in insts}) == len(insts) == 4, "a class per task"
        for inst in insts:
            assert isinstance(inst, cls) and type(inst).__mro__[1] is cls
            assert (type(inst).__name__, type(inst).__qualname__, type(inst).__module__) == (
                cls.__name__,
                cls.__qualname__,
                cls.__module__,
            )
            assert "emit" not in vars(inst), "emit is the class's method, not the instance's"
            assert "emit" in vars(type(inst))
    if acking:
        assert sum(ex.stats.acked for ex in engine.spouts) == 4 * TaskSpout.count
        assert not any(ex.pending for ex in engine.spouts)


def test_an_overridden_emit_keeps_the_users_class_and_sees_every_tuple() -> None:
    CountingEmit.calls = 0
    engine = _chain(TaskSpout, CountingEmit, acking=False)
    assert CountingEmit.calls == 4 * TaskSpout.count
    for inst in instances(engine, "middle"):
        assert type(inst) is CountingEmit


@pytest.mark.skipif(
    sys.implementation.name != "cpython" or sys.version_info < (3, 11), reason="CPython's specialising interpreter"
)
def test_the_components_emit_call_is_specialised() -> None:
    """A positive signal from the interpreter: after the run, the ``self.emit`` site of the
    spout's ``next_tuple`` holds a specialised method load (``LOAD_METHOD_WITH_VALUES`` on
    3.11), not the adaptive instruction an instance attribute leaves there."""

    class SiteSpout(TaskSpout):
        def next_tuple(self) -> None:
            if self.left:
                self.left -= 1
                self.emit([self.task_id])

    # one task: two classes calling through one site would take turns in its cache
    _chain(SiteSpout, Forward, acking=False, par=1, tasks_each=1)
    loads = [
        i.opname
        for i in dis.get_instructions(SiteSpout.next_tuple, adaptive=True)  # type: ignore[call-arg]
        if i.argval == "emit"
    ]
    assert len(loads) == 1
    (load,) = loads
    assert "METHOD" in load and load not in ("LOAD_METHOD", "LOAD_ATTR") and "ADAPTIVE" not in load, load


class NeedsAnArgument(TrackedTaskSpout):
    """A class whose subclasses must pass an argument: no plain subclass can be made."""

    def __init_subclass__(cls, *, flavour: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)


def test_a_class_that_refuses_a_subclass_gets_emit_as_an_instance_attribute() -> None:
    engine = _chain(NeedsAnArgument, Forward, acking=True)
    seen = [item for sink in instances(engine, "sink") for item in sink.seen]
    assert len(seen) == 4 * TaskSpout.count
    assert sum(ex.stats.acked for ex in engine.spouts) == 4 * TaskSpout.count
    for inst in instances(engine, "spout"):
        assert type(inst) is NeedsAnArgument
        assert "emit" in vars(inst), "bound per instance, as before"
    assert {type(i).__mro__[1] for i in instances(engine, "middle")} == {Forward}, "the others get their class"
