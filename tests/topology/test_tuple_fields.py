"""Field access on a received Tuple: by name, by index, ``get`` with a default, and as an
attribute; a missing field's error names the stream, the component and its fields."""

from __future__ import annotations

import pytest

from squall import Tuple


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


def test_a_missing_attribute_raises_attribute_error_with_the_same_message() -> None:
    with pytest.raises(AttributeError, match=r"stream 'default' of 'count' has no field 'nope'"):
        _tup().nope  # noqa: B018
    with pytest.raises(AttributeError):
        _tup()._private  # noqa: B018


def test_where_it_came_from_and_whether_it_is_tracked() -> None:
    tup = _tup()
    assert (tup.component, tup.stream, tup.task) == ("count", "default", 3)
    assert tup.id is None and not tup.is_tick
    tracked = Tuple("count", "default", 3, ["cow", 2], {"word": 0, "count": 1}, {0b1100: 0b1010})
    assert tracked.id == 0b0110
    assert "values=['cow', 2]" in repr(tup)
