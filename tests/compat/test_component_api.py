"""The component API streamparse and heronpy code relies on: the positional order of emit
(tup_id second for spouts), need_task_ids, emit_many, the per-task logger and log levels by
name, raise_exception, identity attributes, and classes that override emit."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from squall import Bolt, Spout, Stream, Topology, Tuple
from squall.topology.testing import CollectBolt
from tests.runtime.runtime_helpers import by_task, pump, start_engine


class Numbers(Spout):
    outputs = [Stream(fields=["n"]), Stream(fields=["n"], name="odd")]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.left = 6
        self.acked: list[Any] = []

    def next_tuple(self) -> None:
        if self.left:
            self.left -= 1
            n = self.left
            self.emit([n], n, "odd" if n % 2 else None)  # tup_id second, stream third

    def ack(self, tup_id: Any) -> None:
        self.acked.append(tup_id)


class Sink(CollectBolt):
    pass


class Positional(Topology):
    numbers = Numbers.spec()
    evens = Sink.spec(inputs=[numbers])
    odds = Sink.spec(inputs=[numbers["odd"]])


def test_a_spout_emit_takes_tup_id_second_and_stream_third() -> None:
    engine = start_engine(Positional)
    pump(engine)
    (spout,) = by_task(engine, "numbers").values()
    assert sorted(spout.acked) == [0, 1, 2, 3, 4, 5], "every positional tup_id was tracked and acked"
    evens = [v for i in by_task(engine, "evens").values() for v in i.received]
    odds = [v for i in by_task(engine, "odds").values() for v in i.received]
    assert sorted(evens) == [[0], [2], [4]]
    assert sorted(odds) == [[1], [3], [5]]


class Fan(Bolt):
    outputs = ["n"]

    def process(self, tup: Tuple) -> None:
        self.returned = self.emit_many([[tup["n"]], [tup["n"] + 100]], None, None, None, True)


class Many(Topology):
    numbers = Numbers.spec()
    fan = Fan.spec(inputs=[numbers])
    sink = Sink.spec(inputs=[fan], par=1, tasks=2)


def test_emit_many_emits_each_tuple_and_returns_each_emits_task_ids() -> None:
    engine = start_engine(Many)
    pump(engine)
    (fan,) = by_task(engine, "fan").values()
    assert len(fan.returned) == 2 and all(set(ids) <= {3, 4} and len(ids) == 1 for ids in fan.returned)
    received = sorted(v for i in by_task(engine, "sink").values() for v in i.received)
    assert received == sorted([[n] for n in (0, 2, 4)] + [[n + 100] for n in (0, 2, 4)])
    (spout,) = by_task(engine, "numbers").values()
    assert sorted(spout.acked) == [0, 1, 2, 3, 4, 5], (
        "odd trees have no subscriber; even ones complete through both emits"
    )


def test_spout_emit_many_pairs_each_tuple_with_its_id() -> None:
    class Pairs(Spout):
        outputs = ["n"]

        def initialize(self, conf: dict, ctx: Any) -> None:
            self.done = False
            self.acked: list[Any] = []

        def next_tuple(self) -> None:
            if not self.done:
                self.done = True
                self.emit_many([[1], [2]], tup_ids=["a", "b"])

        def ack(self, tup_id: Any) -> None:
            self.acked.append(tup_id)

    class T(Topology):
        pairs = Pairs.spec()
        sink = Sink.spec(inputs=[pairs])

    engine = start_engine(T)
    pump(engine)
    (spout,) = by_task(engine, "pairs").values()
    assert sorted(spout.acked) == ["a", "b"]
    with pytest.raises(ValueError, match="2 tuples but 1 tup_ids"):
        spout.emit_many([[1], [2]], tup_ids=["a"])


class Talker(Bolt):
    outputs = ["n"]

    def process(self, tup: Tuple) -> None:
        self.log(f"got {tup['n']}", level="warning")
        self.logger.info("info from %s task %d of %s", self.component_name, self.task_id, self.topology_name)
        if tup["n"] == 4:
            self.raise_exception(ValueError("four is reported"), tup)


class Talk(Topology):
    numbers = Numbers.spec()
    talker = Talker.spec(inputs=[numbers], par=1, tasks=2)


def test_logger_is_named_after_component_and_task_and_log_takes_level_names(caplog) -> None:
    caplog.set_level(logging.INFO, logger="squall.task")
    engine = start_engine(Talk)
    pump(engine)
    records = [r for r in caplog.records if r.name.startswith("squall.task.talker.")]
    assert {r.name for r in records} <= {"squall.task.talker.2", "squall.task.talker.3"}
    assert any(r.levelno == logging.WARNING and r.getMessage() == "got 0" for r in records)
    assert any(
        r.getMessage().startswith("info from talker task ") and r.getMessage().endswith(" of Talk") for r in records
    )
    reported = [r for r in records if r.levelno == logging.ERROR]
    assert len(reported) == 1 and "four is reported" in reported[0].getMessage() and reported[0].exc_info
    (summary,) = [s for s in engine.summary() if s.component == "talker"]
    assert summary.errors == 1, "raise_exception counts as an error"
    assert summary.failed == 0, "and fails nothing by itself"


def test_log_refuses_an_unknown_level_name() -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        Talker().log("x", level="loud")


class Recording(Spout):
    """Overrides emit and calls super().emit, as ReliableSpout and users' own classes do."""

    outputs = ["n"]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.seen: list[Any] = []
        self.sent = False

    def emit(self, values, tup_id=None, stream=None, direct_task=None, need_task_ids=False):
        self.seen.append((list(values), tup_id))
        return super().emit(values, tup_id, stream, direct_task, need_task_ids)

    def next_tuple(self) -> None:
        if not self.sent:
            self.sent = True
            self.emit([7], "seven")


class Overrides(Topology):
    rec = Recording.spec()
    sink = Sink.spec(inputs=[rec])


def test_a_class_that_overrides_emit_keeps_its_method_and_reaches_the_runtime() -> None:
    engine = start_engine(Overrides)
    pump(engine)
    (spout,) = by_task(engine, "rec").values()
    assert spout.seen == [([7], "seven")]
    assert [v for i in by_task(engine, "sink").values() for v in i.received] == [[7]]


class OwnHelpers(Spout):
    """Users' own private helpers named like Squall's plumbing must keep working."""

    outputs = ["n"]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.sent = False

    def _emit(self, n: int) -> None:
        self.emit([n], n)

    def _report_error(self, exc: Exception) -> None:
        raise AssertionError("never called by Squall")

    def next_tuple(self) -> None:
        if not self.sent:
            self.sent = True
            self._emit(5)
            self.raise_exception(ValueError("reported"))


class Helpers(Topology):
    helpers = OwnHelpers.spec()
    sink = Sink.spec(inputs=[helpers])


def test_a_components_own_underscore_helpers_are_not_overwritten() -> None:
    engine = start_engine(Helpers)
    pump(engine)
    assert [v for i in by_task(engine, "sink").values() for v in i.received] == [[5]]
    (summary,) = [s for s in engine.summary() if s.component == "helpers"]
    assert summary.errors == 1
