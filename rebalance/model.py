"""Input values of the schedulers: nodes and measured workloads.

Guarantees:

* every value is a frozen dataclass, equal and hashable by value;
* construction validates and canonicalises, so two workloads describing the same
  measurements compare equal whatever order their executors or traffic rows came in;
* ``to_dict``/``from_dict`` round-trip through the JSON shapes documented in
  ``docs/rebalance.md``; ``from_dict`` names the offending field in its error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from squall.rebalance.errors import InvalidInputError
from squall.rebalance.profile import BoardProfile, WorkloadProfile

TrafficRow = tuple[int, int, float]


# --- field readers used by every from_dict: they name the field on error -------------------


def _get(data: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise InvalidInputError(f"{where or 'top level'}: expected an object, got {type(data).__name__}")
    if key not in data:
        raise InvalidInputError(f"{_join(where, key)}: missing field")
    return data[key]


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _as_int(value: Any, where: str, minimum: int | None = None) -> int:
    # bool is an int subclass; `true` in a JSON file is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{where}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidInputError(f"{where}: must be >= {minimum}, got {value}")
    return value


def _as_float(value: Any, where: str, minimum: float = 0.0, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"{where}: expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInputError(f"{where}: must be finite, got {value!r}")
    if positive and number <= 0:
        raise InvalidInputError(f"{where}: must be > 0, got {value!r}")
    if number < minimum:
        raise InvalidInputError(f"{where}: must be >= {minimum:g}, got {value!r}")
    return number


def _as_str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _as_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise InvalidInputError(f"{where}: expected a list, got {type(value).__name__}")
    return list(value)


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """One board. ``slots`` is how many workers it may run; ``capacity_hz`` is its *usable*
    CPU in cycles/s, i.e. cores x clock x the configured usable share, already applied by
    whoever built the Node (the supervisor). Schedulers never scale it again."""

    id: str
    slots: int
    capacity_hz: float
    board: BoardProfile | None = None  # what the latency model needs beyond capacity

    def __post_init__(self) -> None:
        _as_str(self.id, "id")
        _as_int(self.slots, f"node {self.id!r}: slots", minimum=0)
        object.__setattr__(
            self, "capacity_hz", _as_float(self.capacity_hz, f"node {self.id!r}: capacity_hz", positive=True)
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "slots": self.slots, "capacity_hz": self.capacity_hz}
        if self.board is not None:
            out["board"] = self.board.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> Node:
        board = None
        if isinstance(data, Mapping) and "board" in data:
            board = BoardProfile.from_dict(data["board"], _join(where, "board"))
        return cls(
            id=_as_str(_get(data, "id", where), _join(where, "id")),
            slots=_as_int(_get(data, "slots", where), _join(where, "slots"), minimum=0),
            capacity_hz=_as_float(_get(data, "capacity_hz", where), _join(where, "capacity_hz"), positive=True),
            board=board,
        )


def nodes_from_list(data: Any, where: str = "") -> tuple[Node, ...]:
    """Parse a node list, rejecting duplicate ids."""
    nodes = tuple(Node.from_dict(item, f"{where}[{k}]") for k, item in enumerate(_as_list(data, where or "nodes")))
    check_unique_nodes(nodes)
    return nodes


def check_unique_nodes(nodes: Sequence[Node]) -> None:
    _check_unique((n.id for n in nodes), "duplicate node id {!r}")


def _check_unique(ids: Iterable[str], message: str) -> None:
    """Raise InvalidInputError with ``message`` formatted with the first id seen twice."""
    seen: set[str] = set()
    for key in ids:
        if key in seen:
            raise InvalidInputError(message.format(key))
        seen.add(key)


@dataclass(frozen=True)
class Executor:
    """An executor: the unit placed. ``tasks`` is its inclusive task range, or None when
    the workload did not say (then executors are ordered by id)."""

    id: int
    component: str
    tasks: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        _as_int(self.id, "executor id", minimum=0)
        _as_str(self.component, f"executor {self.id}: component")
        if self.tasks is not None:
            start, end = (_as_int(t, f"executor {self.id}: tasks", minimum=1) for t in self.tasks)
            if end < start:
                raise InvalidInputError(f"executor {self.id}: tasks [{start}, {end}] is empty")
            object.__setattr__(self, "tasks", (start, end))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "component": self.component}
        if self.tasks is not None:
            out["tasks"] = list(self.tasks)
        return out


@dataclass(frozen=True)
class Workload:
    """One topology's measured workload.

    ``traffic`` holds (src executor id, dst executor id, tuples/s); ``load_hz[k]`` is the
    load of ``executors[k]`` in cycles/s; ``edges`` is the component graph (needed by the
    offline scheduler; derived from nonzero traffic when None).

    Canonical form (applied on construction): executors sorted by start task (by id when
    tasks are absent) with their loads; traffic rows sorted by (src, dst) with duplicate
    rows summed and rows of rate 0 or from an executor to itself dropped, because neither
    can ever cross a worker; edges sorted and deduplicated.
    """

    topology: str
    workers: int
    executors: tuple[Executor, ...]
    traffic: tuple[TrafficRow, ...]
    load_hz: tuple[float, ...]
    edges: tuple[tuple[str, str], ...] | None = None
    profile: WorkloadProfile | None = None  # what the latency model needs beyond loads
    _index: dict[int, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        name = _as_str(self.topology, "topology")
        _as_int(self.workers, f"topology {name!r}: workers", minimum=1)
        executors = tuple(self.executors)
        loads = tuple(_as_float(v, f"topology {name!r}: load_hz[{k}]") for k, v in enumerate(self.load_hz))
        if not executors:
            raise InvalidInputError(f"topology {name!r}: executors is empty")
        if len(loads) != len(executors):
            raise InvalidInputError(
                f"topology {name!r}: load_hz has {len(loads)} values for {len(executors)} executors"
            )
        ids = [e.id for e in executors]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise InvalidInputError(f"topology {name!r}: duplicate executor ids {dupes}")
        with_tasks = sum(e.tasks is not None for e in executors)
        if with_tasks not in (0, len(executors)):
            raise InvalidInputError(
                f"topology {name!r}: tasks given for {with_tasks} of {len(executors)} executors; "
                "give them for all or none"
            )
        order = sorted(range(len(executors)), key=lambda k: (_start(executors[k]), executors[k].id))
        executors = tuple(executors[k] for k in order)
        loads = tuple(loads[k] for k in order)
        if with_tasks:
            for a, b in zip(executors, executors[1:]):
                assert a.tasks is not None and b.tasks is not None
                if b.tasks[0] <= a.tasks[1]:
                    raise InvalidInputError(f"topology {name!r}: task ranges of executors {a.id} and {b.id} overlap")
        index = {e.id: k for k, e in enumerate(executors)}
        object.__setattr__(self, "executors", executors)
        object.__setattr__(self, "load_hz", loads)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "traffic", _canonical_traffic(self.traffic, index, name))
        if self.edges is not None:
            edges = tuple(sorted({(_as_str(s, "edges"), _as_str(d, "edges")) for s, d in self.edges}))
            object.__setattr__(self, "edges", edges)
        if self.profile is not None:
            for e in self.profile.executors:
                if e.id not in index:
                    raise InvalidInputError(f"topology {name!r}: profile names unknown executor {e.id}")

    # --- lookups ----------------------------------------------------------------------------

    def index_of(self, executor_id: int) -> int:
        """Position of an executor in ``executors`` (the canonical order)."""
        return self._index[executor_id]

    def has_executor(self, executor_id: int) -> bool:
        return executor_id in self._index

    @property
    def executor_ids(self) -> tuple[int, ...]:
        return tuple(e.id for e in self.executors)

    @property
    def total_load_hz(self) -> float:
        return math.fsum(self.load_hz)

    def load_of(self, executor_id: int) -> float:
        return self.load_hz[self._index[executor_id]]

    def components(self) -> tuple[str, ...]:
        """Component names, sorted."""
        return tuple(sorted({e.component for e in self.executors}))

    def component_edges(self) -> tuple[tuple[str, str], ...]:
        """The component graph: ``edges`` if given, else pairs with nonzero traffic."""
        if self.edges is not None:
            return self.edges
        comp = {e.id: e.component for e in self.executors}
        return tuple(sorted({(comp[s], comp[d]) for s, d, _ in self.traffic if comp[s] != comp[d]}))

    # --- JSON -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "topology": self.topology,
            "workers": self.workers,
            "executors": [e.to_dict() for e in self.executors],
            "traffic": [[s, d, r] for s, d, r in self.traffic],
            "load_hz": list(self.load_hz),
        }
        if self.edges is not None:
            out["edges"] = [list(e) for e in self.edges]
        if self.profile is not None:
            out["profile"] = self.profile.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> Workload:
        """Parse the JSON shape; errors name the field, e.g. ``traffic[3][2]``."""
        topology = _as_str(_get(data, "topology", where), _join(where, "topology"))
        workers = _as_int(_get(data, "workers", where), _join(where, "workers"), minimum=1)
        executors = []
        raw_execs = _as_list(_get(data, "executors", where), _join(where, "executors"))
        for k, item in enumerate(raw_execs):
            at = _join(where, f"executors[{k}]")
            tasks = None
            if isinstance(item, Mapping) and "tasks" in item:
                pair = _as_list(item["tasks"], f"{at}.tasks")
                if len(pair) != 2:
                    raise InvalidInputError(f"{at}.tasks: expected [start, end], got {item['tasks']!r}")
                tasks = (
                    _as_int(pair[0], f"{at}.tasks[0]", minimum=1),
                    _as_int(pair[1], f"{at}.tasks[1]", minimum=1),
                )
            executors.append(
                Executor(
                    id=_as_int(_get(item, "id", at), f"{at}.id", minimum=0),
                    component=_as_str(_get(item, "component", at), f"{at}.component"),
                    tasks=tasks,
                )
            )
        known = {e.id for e in executors}
        traffic = []
        for k, row in enumerate(_as_list(_get(data, "traffic", where), _join(where, "traffic"))):
            at = _join(where, f"traffic[{k}]")
            row = _as_list(row, at)
            if len(row) != 3:
                raise InvalidInputError(f"{at}: expected [src, dst, tuples_per_s], got {row!r}")
            src = _as_int(row[0], f"{at}[0]")
            dst = _as_int(row[1], f"{at}[1]")
            for pos, ex in ((0, src), (1, dst)):
                if ex not in known:
                    raise InvalidInputError(f"{at}[{pos}]: unknown executor id {ex}")
            traffic.append((src, dst, _as_float(row[2], f"{at}[2]")))
        loads = [
            _as_float(v, _join(where, f"load_hz[{k}]"))
            for k, v in enumerate(_as_list(_get(data, "load_hz", where), _join(where, "load_hz")))
        ]
        if len(loads) != len(executors):
            raise InvalidInputError(
                f"{_join(where, 'load_hz')}: has {len(loads)} values for {len(executors)} executors"
            )
        edges = None
        if "edges" in data:
            edges = []
            for k, pair in enumerate(_as_list(data["edges"], _join(where, "edges"))):
                at = _join(where, f"edges[{k}]")
                pair = _as_list(pair, at)
                if len(pair) != 2:
                    raise InvalidInputError(f"{at}: expected [src_component, dst_component]")
                edges.append((_as_str(pair[0], f"{at}[0]"), _as_str(pair[1], f"{at}[1]")))
        profile = None
        if "profile" in data:
            profile = WorkloadProfile.from_dict(data["profile"], _join(where, "profile"))
        return cls(
            topology,
            workers,
            tuple(executors),
            tuple(traffic),
            tuple(loads),
            None if edges is None else tuple(edges),
            profile,
        )


def workloads_from_json(data: Any) -> tuple[Workload, ...]:
    """One workload object or a list of them; topology names must be unique."""
    if isinstance(data, Mapping):
        items: list[Any] = [data]
        paths = [""]
    else:
        items = _as_list(data, "top level")
        paths = [f"[{k}]" for k in range(len(items))]
    loads = tuple(Workload.from_dict(item, at) for item, at in zip(items, paths))
    check_unique_topologies(loads)
    return loads


def check_unique_topologies(workloads: Iterable[Workload]) -> None:
    _check_unique((w.topology for w in workloads), "topology {!r} appears twice")


def _start(executor: Executor) -> int:
    return executor.tasks[0] if executor.tasks is not None else executor.id


def _canonical_traffic(rows: Iterable[Sequence[Any]], index: Mapping[int, int], name: str) -> tuple[TrafficRow, ...]:
    merged: dict[tuple[int, int], list[float]] = {}
    for k, row in enumerate(rows):
        if len(row) != 3:
            raise InvalidInputError(f"topology {name!r}: traffic row {k} is not (src, dst, rate)")
        src, dst, rate = row
        for ex in (src, dst):
            if isinstance(ex, bool) or not isinstance(ex, int) or ex not in index:
                raise InvalidInputError(f"topology {name!r}: traffic row {k} names unknown executor {ex!r}")
        rate = _as_float(rate, f"topology {name!r}: traffic row {k} rate")
        if src != dst and rate > 0:
            merged.setdefault((src, dst), []).append(rate)
    # fsum over sorted parts: the same multiset of rows gives the same float, in any order.
    return tuple((s, d, math.fsum(sorted(parts))) for (s, d), parts in sorted(merged.items()))
