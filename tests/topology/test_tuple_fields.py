"""Field access on a received Tuple: by name, by index, ``get`` with a default, and as an
attribute; a missing field's error names the stream, the component and its fields."""

from __future__ import annotations

import pytest

from squall import Bolt, Tuple
from squall.topology.testing import ListSpout
from tests.runtime.runtime_helpers import only, pump, start_engine
from tests.runtime.test_acking import topology


def _tup() -> Tuple:
    return Tuple("count", "default", 3, ["cow", 2], {"word": 0, "count": 1})


def test_fields_read_by_name_index_get_and_attribute() -> None:
    tup = _tup()
    assert tup["word"] == "cow" and tup["count"] == 2
    assert tup[0] == "cow" and tup[1] == 2
    assert tup.get("count") == 2
    assert tup.word == "cow" and tup.count == 2
    assert len(tup) == 2


def test_get_returns_the_default_for_a_missing_field() -> None:
    assert _tup().get("nope") is None
    assert _tup().get("nope", 7) == 7


def test_a_missing_field_raises_key_error_naming_stream_component_and_fields() -> None:
    with pytest.raises(
        KeyError,
        match=r"stream 'default' of 'count' has no field 'nope' "
        r"\(fields: \['word', 'count'\]\)",
    ):
        _tup()["nope"]


def test_a_field_of_another_stream_raises_attribute_error_with_the_same_message() -> None:
    Tuple("split", "default", 1, ["x"], {"elsewhere": 0})  # a stream that declares it
    with pytest.raises(AttributeError, match=r"stream 'default' of 'count' has no field 'elsewhere'"):
        _tup().elsewhere  # noqa: B018
    with pytest.raises(AttributeError):
        _tup().no_stream_declares_this  # noqa: B018
    with pytest.raises(AttributeError):
        _tup()._private  # noqa: B018


def test_a_slot_or_method_wins_over_a_field_of_the_same_name() -> None:
    tup = Tuple("count", "default", 3, ["cow", 2, 9], {"task": 0, "get": 1, "word": 2})
    assert tup.task == 3 and tup["task"] == "cow"
    assert tup.get("word") == 9 and tup.word == 9


def test_tuple_keeps_the_generic_attribute_lookup() -> None:
    """Field attributes are class properties, not ``__getattr__``: with ``__getattr__`` this
    interpreter specialises no attribute read of a Tuple (each slot read of the hot path
    then costs about 300 instructions more, ``benchmarks/engine_instructions.py``)."""
    assert not hasattr(Tuple, "__getattr__")
    assert Tuple.__getattribute__ is object.__getattribute__


def test_fields_read_as_attributes_on_tuples_an_engine_builds() -> None:
    """The emits build Tuples without ``__init__``: the engine declares its topology's field
    names when it is built."""

    class Words(ListSpout):
        outputs = ["engine_word_field", "engine_count_field"]
        items = [["cow", 1], ["moon", 2]]

    class Reader(Bolt):
        def initialize(self, conf: dict, ctx: object) -> None:
            self.seen: list = []

        def process(self, tup: Tuple) -> None:
            self.seen.append((tup.engine_word_field, tup.engine_count_field))

    spout = Words.spec()
    engine = start_engine(topology(spout=spout, reader=Reader.spec(inputs=[spout])), {"topology.acker.executors": 1})
    pump(engine)
    assert only(engine, "reader").seen == [("cow", 1), ("moon", 2)]


def test_where_it_came_from_and_whether_it_is_tracked() -> None:
    tup = _tup()
    assert (tup.component, tup.stream, tup.task) == ("count", "default", 3)
    assert tup.id is None and not tup.is_tick
    tracked = Tuple("count", "default", 3, ["cow", 2], {"word": 0, "count": 1}, {0b1100: 0b1010})
    assert tracked.id == 0b0110
    assert "values=['cow', 2]" in repr(tup)
