"""The topology spec: the plain, versioned value a topology serialises to.

The DSL builds it, ``squall submit`` sends it, Nimbus stores it and supervisors read it.
``to_dict()`` returns only dicts, lists, strings, numbers, booleans and None, so the same
value is valid msgpack and JSON; ``from_dict(to_dict(s)) == s`` holds for every valid spec.

Task and executor numbering follows Storm: tasks are numbered 1..N over the components
sorted by name; each component's tasks are split over its ``par`` executors in contiguous
ranges, the first ``tasks % par`` executors holding one task more.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

from squall.topology.errors import TopologyError
from squall.topology.grouping import GroupingSpec

SPEC_VERSION = 1
DEFAULT_STREAM = "default"
ACKER_COMPONENT = "__acker"


class ExecutorKind(StrEnum):
    """What an executor runs. A component is a SPOUT or a BOLT (``ComponentSpec.kind``);
    the executors of ``ACKER_COMPONENT`` are ACKERs. Members are ``str``: they compare
    equal to, and serialise as, "spout", "bolt" and "acker"."""

    SPOUT = "spout"
    BOLT = "bolt"
    ACKER = "acker"


SPOUT = ExecutorKind.SPOUT  # the two kinds a user component can have
BOLT = ExecutorKind.BOLT


@dataclass(frozen=True)
class StreamSpec:
    """A declared output stream: its name, its fields and whether it is a direct stream."""

    name: str
    fields: tuple[str, ...]
    direct: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fields": list(self.fields), "direct": self.direct}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamSpec:
        return cls(name=data["name"], fields=tuple(data["fields"]), direct=bool(data.get("direct", False)))


@dataclass(frozen=True)
class InputSpec:
    """A subscription: ``component``'s ``stream``, grouped by ``grouping``."""

    component: str
    stream: str
    grouping: GroupingSpec

    def to_dict(self) -> dict[str, Any]:
        return {"component": self.component, "stream": self.stream, "grouping": self.grouping.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        return cls(
            component=data["component"],
            stream=data.get("stream", DEFAULT_STREAM),
            grouping=GroupingSpec.from_dict(data["grouping"]),
        )


def _freeze_config(config: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((config or {}).items()))


@dataclass(frozen=True)
class ComponentSpec:
    """One spout or bolt: where its class lives, its parallelism and its wiring."""

    name: str
    kind: str  # SPOUT or BOLT
    class_ref: str  # "module:QualifiedName", resolved by the worker's loader
    par: int = 1
    tasks: int = 1
    inputs: tuple[InputSpec, ...] = ()
    outputs: tuple[StreamSpec, ...] = ()
    config_items: tuple[tuple[str, Any], ...] = ()

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.config_items)

    def stream(self, name: str) -> StreamSpec | None:
        return next((s for s in self.outputs if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": str(self.kind),  # a plain str, not the ExecutorKind member the DSL sets
            "class": self.class_ref,
            "par": self.par,
            "tasks": self.tasks,
            "inputs": [i.to_dict() for i in self.inputs],
            "outputs": [o.to_dict() for o in self.outputs],
            "config": dict(self.config_items),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ComponentSpec:
        return cls(
            name=data["name"],
            kind=data["kind"],
            class_ref=data["class"],
            par=int(data.get("par", 1)),
            tasks=int(data.get("tasks", data.get("par", 1))),
            inputs=tuple(InputSpec.from_dict(i) for i in data.get("inputs", ())),
            outputs=tuple(StreamSpec.from_dict(o) for o in data.get("outputs", ())),
            config_items=_freeze_config(data.get("config")),
        )


@dataclass(frozen=True)
class ExecutorSpec:
    """An executor: an index over the topology, its component and its task range (inclusive)."""

    id: int
    component: str
    first_task: int
    last_task: int

    @property
    def tasks(self) -> range:
        return range(self.first_task, self.last_task + 1)


@dataclass(frozen=True)
class TopologySpec:
    """A whole topology: its name, topology-wide config and components (sorted by name)."""

    name: str
    components: tuple[ComponentSpec, ...]
    config_items: tuple[tuple[str, Any], ...] = ()
    version: int = SPEC_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "components", tuple(sorted(self.components, key=lambda c: c.name)))

    @cached_property
    def _index(self) -> dict[str, ComponentSpec]:
        return {c.name: c for c in self.components}

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.config_items)

    def component(self, name: str) -> ComponentSpec:
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"topology {self.name!r} has no component {name!r}") from None

    def component_config(self, name: str) -> dict[str, Any]:
        """The config a component sees: the topology's, overridden by the component's own."""
        conf = self.config
        conf.update(self.component(name).config)
        return conf

    def kind_of(self, component: str) -> ExecutorKind:
        """The kind of ``component``'s executors: ACKER for ``ACKER_COMPONENT``, else the
        component's own kind (KeyError for an unknown name)."""
        if component == ACKER_COMPONENT:
            return ExecutorKind.ACKER
        return ExecutorKind(self.component(component).kind)

    def component_edges(self) -> tuple[tuple[str, str], ...]:
        """(source component, consuming component) for every subscription, sorted, each once."""
        return tuple(sorted({(i.component, c.name) for c in self.components for i in c.inputs}))

    @property
    def spouts(self) -> tuple[ComponentSpec, ...]:
        return tuple(c for c in self.components if c.kind == SPOUT)

    @property
    def bolts(self) -> tuple[ComponentSpec, ...]:
        return tuple(c for c in self.components if c.kind == BOLT)

    def task_ranges(self) -> dict[str, range]:
        """Storm's numbering: tasks 1..N over components sorted by name."""
        ranges: dict[str, range] = {}
        next_task = 1
        for c in self.components:
            ranges[c.name] = range(next_task, next_task + c.tasks)
            next_task += c.tasks
        return ranges

    def executors(self) -> tuple[ExecutorSpec, ...]:
        """All executors in task order, each holding a contiguous task range."""
        return self._executors

    @cached_property
    def _executors(self) -> tuple[ExecutorSpec, ...]:
        # Once per spec (it is frozen): Nimbus asks on every listing and placement.
        out: list[ExecutorSpec] = []
        ranges = self.task_ranges()
        for c in self.components:
            out.extend(_split_tasks(c.name, ranges[c.name], c.par, start_id=len(out)))
        return tuple(out)

    def executors_with_ackers(self, ackers: int) -> tuple[ExecutorSpec, ...]:
        """User executors, then ``ackers`` acker executors holding one task each.

        Acker tasks are numbered after every user task, so user task ids do not depend on
        the acker count (a deliberate difference from Storm, which sorts system components
        in with the rest).
        """
        users = self.executors()
        next_task = sum(c.tasks for c in self.components) + 1
        ackers_ = tuple(
            ExecutorSpec(len(users) + k, ACKER_COMPONENT, next_task + k, next_task + k) for k in range(ackers)
        )
        return users + ackers_

    def subscribers(self, component: str, stream: str) -> list[tuple[ComponentSpec, InputSpec]]:
        """The bolts subscribed to ``component``'s ``stream``, with their subscription."""
        subs = []
        for c in self.components:
            for i in c.inputs:
                if i.component == component and i.stream == stream:
                    subs.append((c, i))
        return subs

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "name": self.name,
            "config": dict(self.config_items),
            "components": [c.to_dict() for c in self.components],
        }

    @classmethod
    def from_dict(cls, data: Any) -> TopologySpec:
        """Parse and validate; raises TopologyError naming the field or component at fault."""
        if not isinstance(data, dict):
            raise TopologyError(f"topology spec must be a mapping, got {type(data).__name__}")
        version = data.get("version")
        if version != SPEC_VERSION:
            raise TopologyError(f"topology spec version {version!r} is not supported (expected {SPEC_VERSION})")
        try:
            spec = cls(
                name=str(data["name"]),
                components=tuple(ComponentSpec.from_dict(c) for c in data["components"]),
                config_items=_freeze_config(data.get("config")),
                version=version,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, TopologyError):
                raise
            raise TopologyError(f"malformed topology spec: {exc!r}") from None
        from squall.topology.validate import validate

        validate(spec)
        return spec


def _split_tasks(component: str, tasks: range, par: int, start_id: int) -> list[ExecutorSpec]:
    base, extra = divmod(len(tasks), par)
    out = []
    first = tasks.start
    for k in range(par):
        size = base + (1 if k < extra else 0)
        out.append(ExecutorSpec(start_id + k, component, first, first + size - 1))
        first += size
    return out
