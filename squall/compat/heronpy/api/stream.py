"""heronpy's ``Stream`` and ``Grouping``: ``SHUFFLE``, ``ALL``, ``LOWEST`` (= ``GLOBAL``),
``NONE``, ``DIRECT``, ``fields(...)``; custom groupings are refused."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from squall.compat._adapt import not_in_squall
from squall.topology.component import Stream as _SquallStream
from squall.topology.grouping import Grouping as _SquallGrouping
from squall.topology.grouping import GroupingSpec
from squall.topology.spec import DEFAULT_STREAM

__all__ = ["Grouping", "Stream"]


class Stream(_SquallStream):
    """``Stream(fields=None, name="default", direct=False)``, as heronpy spells it."""

    DEFAULT_STREAM_ID = DEFAULT_STREAM

    def __init__(self, fields: Sequence[str] | None = None, name: str = DEFAULT_STREAM, direct: bool = False) -> None:
        if not isinstance(name, str):
            raise TypeError(f"stream name must be a string, got {name!r}")
        super().__init__(fields=tuple(fields or ()), name=name, direct=direct)

    @property
    def stream_id(self) -> str:
        return self.name


class Grouping:
    SHUFFLE = _SquallGrouping.SHUFFLE
    ALL = _SquallGrouping.ALL
    LOWEST = _SquallGrouping.GLOBAL
    GLOBAL = LOWEST
    NONE = _SquallGrouping.NONE
    DIRECT = _SquallGrouping.DIRECT
    LOCAL_OR_SHUFFLE = _SquallGrouping.LOCAL_OR_SHUFFLE

    @classmethod
    def fields(cls, *fields: Any) -> GroupingSpec:
        """``fields("word")`` or ``fields(["word", "n"])``."""
        return _SquallGrouping.fields(*fields)

    @classmethod
    def is_grouping_sane(cls, gtype: Any) -> bool:
        return isinstance(gtype, GroupingSpec)

    @classmethod
    def custom(cls, customgrouper: Any) -> GroupingSpec:
        raise not_in_squall("a custom grouping", "Squall's groupings are Storm's built-in ones")

    @classmethod
    def custom_serialized(cls, serialized: bytes, is_java: bool = True) -> GroupingSpec:
        raise not_in_squall("a custom serialized grouping", "Squall's groupings are Storm's built-in ones")

    @classmethod
    def custom_object(cls, java_class_name: str, arg_list: Any) -> GroupingSpec:
        raise not_in_squall(f"a custom grouping ({java_class_name})", "groupings run in Python, not in a JVM")
