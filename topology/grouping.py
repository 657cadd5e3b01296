"""Groupings: how a stream's tuples pick their target tasks (Storm's semantics).

Spelled as streamparse spells them::

    Grouping.SHUFFLE, Grouping.ALL, Grouping.GLOBAL, Grouping.NONE, Grouping.DIRECT,
    Grouping.LOCAL_OR_SHUFFLE, Grouping.fields("word"), Grouping.partial_key("word")

A grouping is a frozen value (``GroupingSpec``) so it can live in the topology spec; the
runtime turns it into a chooser (``squall.supervisor.runtime.routing``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SHUFFLE = "shuffle"
FIELDS = "fields"
ALL = "all"
GLOBAL = "global"
NONE = "none"
DIRECT = "direct"
LOCAL_OR_SHUFFLE = "local_or_shuffle"
PARTIAL_KEY = "partial_key"

GROUPING_TYPES = (SHUFFLE, FIELDS, ALL, GLOBAL, NONE, DIRECT, LOCAL_OR_SHUFFLE, PARTIAL_KEY)
KEYED_TYPES = (FIELDS, PARTIAL_KEY)


@dataclass(frozen=True)
class GroupingSpec:
    """One grouping: its type and, for keyed groupings, the fields that form the key."""

    type: str
    fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in GROUPING_TYPES:
            raise ValueError(f"unknown grouping {self.type!r}; expected one of {', '.join(GROUPING_TYPES)}")
        object.__setattr__(self, "fields", tuple(self.fields))
        if self.type in KEYED_TYPES and not self.fields:
            raise ValueError(f"{self.type} grouping needs at least one field")
        if self.type not in KEYED_TYPES and self.fields:
            raise ValueError(f"{self.type} grouping takes no fields")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "fields": list(self.fields)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroupingSpec:
        return cls(type=data["type"], fields=tuple(data.get("fields", ())))

    def __str__(self) -> str:
        return f"{self.type}({', '.join(self.fields)})" if self.fields else self.type


class Grouping:
    """The groupings a bolt's ``inputs`` can name (streamparse's spelling)."""

    SHUFFLE = GroupingSpec(SHUFFLE)
    ALL = GroupingSpec(ALL)
    GLOBAL = GroupingSpec(GLOBAL)
    NONE = GroupingSpec(NONE)
    DIRECT = GroupingSpec(DIRECT)
    LOCAL_OR_SHUFFLE = GroupingSpec(LOCAL_OR_SHUFFLE)

    @staticmethod
    def fields(*fields: str | list[str] | tuple[str, ...]) -> GroupingSpec:
        """Tuples with equal values in ``fields`` go to the same task, in every process and run."""
        return GroupingSpec(FIELDS, _flatten(fields))

    @staticmethod
    def partial_key(*fields: str | list[str] | tuple[str, ...]) -> GroupingSpec:
        """Key grouping with two choices per key, picking the less loaded (Nasir et al., ICDE 2015)."""
        return GroupingSpec(PARTIAL_KEY, _flatten(fields))


def _flatten(fields: tuple[Any, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for f in fields:
        if isinstance(f, (list, tuple)):
            out.extend(f)
        else:
            out.append(f)
    for f in out:
        if not isinstance(f, str):
            raise ValueError(f"grouping field names must be strings, got {f!r}")
    return tuple(out)
