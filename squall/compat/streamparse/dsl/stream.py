"""streamparse's ``Stream`` and ``Grouping``: Squall's, with streamparse's extra spellings
(``Grouping.fields()`` with no field is global grouping) and its Java groupings refused."""

from __future__ import annotations

from typing import Any

from squall.compat._adapt import not_in_squall
from squall.topology.component import Stream
from squall.topology.grouping import Grouping as _SquallGrouping
from squall.topology.grouping import GroupingSpec

__all__ = ["Grouping", "Stream"]


class Grouping(_SquallGrouping):
    """``SHUFFLE``, ``ALL``, ``GLOBAL``, ``NONE``, ``DIRECT``, ``LOCAL_OR_SHUFFLE``, ``fields(...)``."""

    @staticmethod
    def fields(*fields: Any) -> GroupingSpec:
        """Tuples with equal values in ``fields`` go to the same task; no field: global."""
        if not fields or fields == ([],) or fields == ((),):
            return _SquallGrouping.GLOBAL
        return _SquallGrouping.fields(*fields)

    @staticmethod
    def custom_object(java_class_name: str, arg_list: Any) -> GroupingSpec:
        raise not_in_squall(
            f"a custom grouping ({java_class_name})", "groupings run in Squall's Python runtime, not in a JVM"
        )

    @staticmethod
    def custom_serialized(java_serialized: bytes) -> GroupingSpec:
        raise not_in_squall("a custom serialized grouping", "groupings run in Squall's Python runtime, not in a JVM")
