"""The topology DSL: a class body of component declarations becomes a TopologySpec.

::

    class WordCount(Topology):
        config = {"topology.workers": 2}
        words = Words.spec(par=2)
        count = Count.spec(inputs={words: Grouping.fields("word")}, par=3)

``inputs`` maps a component (or one of its named streams, ``words["errors"]``) to a
grouping; a list of inputs means shuffle grouping for each. The spec is built and validated
when the class is created, so an invalid topology fails at import with its reason.
"""

from __future__ import annotations

from typing import Any, ClassVar

from squall.topology.component import Bolt, Component, Spout
from squall.topology.errors import TopologyError
from squall.topology.grouping import Grouping, GroupingSpec
from squall.topology.spec import BOLT, DEFAULT_STREAM, SPOUT, ComponentSpec, InputSpec, TopologySpec
from squall.topology.validate import validate


class StreamRef:
    """A named stream of a declared component: ``words["errors"]``."""

    def __init__(self, builder: ComponentBuilder, stream: str) -> None:
        self.builder = builder
        self.stream = stream

    def __repr__(self) -> str:
        return f"{self.builder!r}[{self.stream!r}]"


class ComponentBuilder:
    """What ``Component.spec(...)`` returns inside a Topology class body."""

    def __init__(
        self,
        cls: type[Component],
        name: str | None,
        inputs: Any,
        par: int,
        tasks: int | None,
        config: dict[str, Any] | None,
    ) -> None:
        self.cls = cls
        self.name = name
        self.inputs = inputs
        self.par = par
        self.tasks = par if tasks is None else tasks
        self.config = dict(config or {})
        self.extra_outputs: tuple[Any, ...] = ()  # heronpy's optional_outputs

    def __getitem__(self, stream: str) -> StreamRef:
        return StreamRef(self, stream)

    def __repr__(self) -> str:
        return f"<{self.cls.__name__} spec {self.name or '(unnamed)'}>"

    def _kind(self, label: str) -> str:
        if isinstance(self.cls, type) and issubclass(self.cls, Spout):
            return SPOUT
        if isinstance(self.cls, type) and issubclass(self.cls, Bolt):
            return BOLT
        raise TopologyError(
            f"component {label!r}: {getattr(self.cls, '__name__', self.cls)!r} is neither a Spout nor a Bolt"
        )

    def _inputs(self, label: str) -> tuple[InputSpec, ...]:
        raw = self.inputs
        if raw is None:
            return ()
        if isinstance(raw, (list, tuple)):
            raw = {src: Grouping.SHUFFLE for src in raw}
        if not isinstance(raw, dict):
            raise TopologyError(f"component {label!r}: inputs must be a dict or a list, got {type(raw).__name__}")
        out = []
        for src, grouping in raw.items():
            if isinstance(src, StreamRef):
                builder, stream = src.builder, src.stream
            elif isinstance(src, ComponentBuilder):
                builder, stream = src, DEFAULT_STREAM
            else:
                raise TopologyError(
                    f"component {label!r}: input {src!r} is not a spout or bolt spec "
                    '(use Component.spec(...) in the topology body, or spec["stream"])'
                )
            if not isinstance(grouping, GroupingSpec):
                raise TopologyError(
                    f"component {label!r}: grouping for input {src!r} must be a Grouping, got {grouping!r}"
                )
            if builder.name is None:
                raise TopologyError(
                    f"component {label!r} subscribes to a component that is not part of this topology ({builder!r})"
                )
            out.append(InputSpec(builder.name, stream, grouping))
        return tuple(out)

    def build(self, label: str) -> ComponentSpec:
        kind = self._kind(label)
        try:
            outputs = self.cls.output_streams(self.extra_outputs)
        except TypeError as exc:
            raise TopologyError(f"component {label!r}: {exc}") from None
        return ComponentSpec(
            name=label,
            kind=kind,
            class_ref=f"{self.cls.__module__}:{self.cls.__qualname__}",
            par=self.par,
            tasks=self.tasks,
            inputs=self._inputs(label),
            outputs=outputs,
            config_items=tuple(sorted(self.config.items())),
        )


class Topology:
    """Subclass and declare components as class attributes; ``spec`` is the built value."""

    name: ClassVar[str | None] = None
    config: ClassVar[dict[str, Any]] = {}
    spec: ClassVar[TopologySpec]
    classes: ClassVar[dict[str, type[Component]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        builders = [(attr, v) for attr, v in vars(cls).items() if isinstance(v, ComponentBuilder)]
        topo_name = cls.__dict__.get("name") or cls.__name__
        owners: dict[int, str] = {}
        named: list[tuple[str, str, ComponentBuilder]] = []  # (component name, attribute, builder)
        for attr, b in builders:
            if id(b) in owners:
                raise TopologyError(
                    f"component {attr!r} is the same spec as {owners[id(b)]!r}: declare each component once"
                )
            owners[id(b)] = attr
            if b.name is None:
                b.name = attr
            named.append((b.name, attr, b))
        seen: dict[str, str] = {}
        for name, attr, _ in named:
            if name in seen:
                raise TopologyError(f"duplicate component name {name!r} (attributes {seen[name]!r} and {attr!r})")
            seen[name] = attr
        known = {id(b) for _, b in builders}
        for name, _, b in named:
            for src in b.inputs or ():
                src_b = src.builder if isinstance(src, StreamRef) else src
                if isinstance(src_b, ComponentBuilder) and id(src_b) not in known:
                    raise TopologyError(
                        f"component {name!r} subscribes to unknown component {src_b!r}: "
                        f"it is not declared in {topo_name}"
                    )
        spec = TopologySpec(
            name=topo_name,
            components=tuple(b.build(name) for name, _, b in named),
            config_items=tuple(sorted(dict(cls.config).items())),
        )
        if builders or not cls.__dict__.get("__abstract__", False):
            validate(spec)
        cls.spec = spec
        cls.classes = {name: b.cls for name, _, b in named}
