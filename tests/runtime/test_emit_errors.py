"""Bad emits: every emit is checked against its stream's declaration and raises EmitError
naming the component, the stream and its fields; inside a running topology such an error
is a user bug that is counted and logged, and never stops the executor."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from squall import Bolt, Spout, Stream, Topology, Tuple
from squall.topology import EmitError
from squall.topology.testing import CollectBolt, ListSpout
from tests.runtime.runtime_helpers import by_task, only, pump, start_engine, summary


class Words(Spout):
    outputs = ["word"]


class Count(Bolt):
    outputs = [Stream(fields=["word", "count"]), Stream(fields=["reason"], name="errors")]

    def process(self, tup: Tuple) -> None:
        pass


class OnlyNamed(Bolt):
    outputs = [Stream(fields=["x"], name="side")]

    def process(self, tup: Tuple) -> None:
        pass


class Emits(Topology):
    words = Words.spec()
    count = Count.spec(inputs=[words])
    named = OnlyNamed.spec(inputs=[words])


def _instance(component: str) -> Any:
    engine = start_engine(Emits)
    (inst,) = by_task(engine, component).values()
    return inst


@pytest.mark.parametrize(
    ("component", "values", "stream", "message"),
    [
        pytest.param(
            "words",
            ["a", "b"],
            None,
            r"'words' emitted 2 value\(s\) on stream 'default', which declares 1 field\(s\): \['word'\]",
            id="spout, too many values",
        ),
        pytest.param(
            "count",
            ["a"],
            None,
            r"'count' emitted 1 value\(s\) on stream 'default', which declares 2 field\(s\): \['word', 'count'\]",
            id="bolt, too few values",
        ),
        pytest.param(
            "count",
            ["a", "b"],
            "errors",
            r"stream 'errors', which declares 1 field\(s\): \['reason'\]",
            id="bolt, too many values on a named stream",
        ),
        pytest.param(
            "count",
            ["a", 1],
            "nope",
            r"'count' emitted on undeclared stream 'nope' \(declared: 'default', 'errors'\)",
            id="undeclared stream: the declared ones named",
        ),
        pytest.param(
            "named",
            [1],
            None,
            r"undeclared stream 'default' \(declared: 'side'\)",
            id="no default stream: says default",
        ),
    ],
)
def test_a_bad_emit_names_the_stream_and_what_it_declares(
    component: str, values: list[Any], stream: str | None, message: str
) -> None:
    with pytest.raises(EmitError, match=message):
        _instance(component).emit(values, stream=stream)


def test_spouts_cannot_anchor_and_bolts_cannot_pass_tup_id() -> None:
    engine = start_engine(Emits)
    (spout,) = by_task(engine, "words").values()
    (bolt,) = by_task(engine, "count").values()
    with pytest.raises(EmitError, match=r"spout 'words': anchors are for bolts"):
        spout.emit(["a"], anchors=[])
    with pytest.raises(EmitError, match=r"bolt 'count': tup_id is for spouts"):
        bolt.emit(["a", 1], tup_id=3)


def test_emit_outside_a_running_executor_raises() -> None:
    with pytest.raises(RuntimeError, match="only available while the component runs"):
        Words().emit(["a"])


class BadSpout(ListSpout):
    """Emits a wrong-arity tuple for odd items, a good one for even items."""

    outputs = ["n"]
    items = [[i] for i in range(10)]
    max_replays = 0

    def next_tuple(self) -> None:
        if self.queue:
            i = self.queue.pop(0)
            values = [i, "extra"] if i % 2 else [i]
            self.emit(values, tup_id=i)


class BadBolt(Bolt):
    """Forwards multiples of 3, emits a wrong-arity tuple for the others."""

    outputs = ["n"]

    def process(self, tup: Tuple) -> None:
        n = tup["n"]
        self.emit([n] if n % 3 == 0 else [n, n])


class Faulty(Topology):
    spout = BadSpout.spec()
    bad = BadBolt.spec(inputs=[spout])
    sink = CollectBolt.spec(inputs=[bad])


def test_bad_emits_in_a_running_topology_are_counted_logged_once_and_do_not_stop_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = start_engine(Faulty)
    with caplog.at_level(logging.ERROR, logger="squall.executor"):
        pump(engine)
    s = only(engine, "spout")
    # The spout's bad emits raised before anything was sent: those items were never emitted.
    assert summary(engine, "spout").errors == 5
    # The bolt's bad emits failed their input tuples (auto_fail); the good ones went through.
    assert sorted(s.acked) == [0, 6]
    assert sorted(s.failed) == [2, 4, 8]
    assert sorted(v[0] for v in only(engine, "sink").received) == [0, 6]
    assert summary(engine, "bad").errors == 3
    messages = [r.getMessage() for r in caplog.records if r.name == "squall.executor"]
    assert len(messages) == 2, messages  # once for the spout task, once for the bolt task
    assert any("'spout'" in m and "next_tuple" in m for m in messages)
    assert any("'bad'" in m and "process" in m for m in messages)
    assert all("EmitError" in m for m in messages)
