"""Validation of a topology spec: one distinct, clear message per fault, naming the component.

Both the DSL (at class creation) and ``TopologySpec.from_dict`` (on Nimbus, for specs that
arrive over the wire) run these checks, so an invalid topology is refused with its reason
wherever it enters.
"""

from __future__ import annotations

from squall.topology.errors import TopologyError
from squall.topology.grouping import DIRECT, KEYED_TYPES
from squall.topology.spec import BOLT, SPOUT, TopologySpec


def validate(spec: TopologySpec) -> None:
    """Raise TopologyError for the first fault found; return None for a valid spec."""
    if not spec.name or not isinstance(spec.name, str):
        raise TopologyError("topology name must be a non-empty string")
    if not spec.components:
        raise TopologyError(f"topology {spec.name!r} has no components")
    seen: set[str] = set()
    for c in spec.components:
        if not isinstance(c.name, str):
            raise TopologyError(f"component name {c.name!r} is invalid: names are strings")
        if c.name in seen:
            raise TopologyError(f"duplicate component name {c.name!r}")
        seen.add(c.name)
        if not c.name or c.name.startswith("__"):
            raise TopologyError(f"component name {c.name!r} is invalid (names starting with '__' are reserved)")
        if c.kind not in (SPOUT, BOLT):
            raise TopologyError(f"component {c.name!r} is neither a spout nor a bolt (kind {c.kind!r})")
        if not isinstance(c.par, int) or c.par < 1:
            raise TopologyError(f"component {c.name!r}: par must be >= 1, got {c.par!r}")
        if not isinstance(c.tasks, int) or c.tasks < c.par:
            raise TopologyError(f"component {c.name!r}: tasks ({c.tasks!r}) must be >= par ({c.par})")
        streams: set[str] = set()
        for s in c.outputs:
            if not isinstance(s.name, str) or not all(isinstance(f, str) for f in s.fields):
                raise TopologyError(f"component {c.name!r}: stream names and fields must be strings, got {s!r}")
            if s.name in streams:
                raise TopologyError(f"component {c.name!r} declares stream {s.name!r} twice")
            streams.add(s.name)
            if len(set(s.fields)) != len(s.fields):
                raise TopologyError(f"component {c.name!r}: stream {s.name!r} repeats a field in {list(s.fields)}")
        if c.kind == SPOUT and c.inputs:
            raise TopologyError(f"spout {c.name!r} cannot have inputs")
    if not spec.spouts:
        raise TopologyError(f"topology {spec.name!r} has no spout: a topology needs at least one source")
    for c in spec.bolts:
        for i in c.inputs:
            _check_input(spec, c.name, i)


def _check_input(spec: TopologySpec, bolt: str, i) -> None:
    if not isinstance(i.component, str) or not isinstance(i.stream, str):
        raise TopologyError(f"bolt {bolt!r}: an input names its component and stream with strings, got {i!r}")
    try:
        source = spec.component(i.component)
    except KeyError:
        raise TopologyError(f"bolt {bolt!r} subscribes to unknown component {i.component!r}") from None
    stream = source.stream(i.stream)
    if stream is None:
        declared = ", ".join(repr(s.name) for s in source.outputs) or "none"
        raise TopologyError(
            f"bolt {bolt!r} subscribes to unknown stream {i.stream!r} of {source.name!r} (declared: {declared})"
        )
    if i.grouping.type in KEYED_TYPES:
        missing = [f for f in i.grouping.fields if f not in stream.fields]
        if missing:
            raise TopologyError(
                f"bolt {bolt!r}: {i.grouping.type} grouping on {missing} but stream {i.stream!r} of "
                f"{source.name!r} declares fields {list(stream.fields)}"
            )
    if (i.grouping.type == DIRECT) != stream.direct:
        if stream.direct:
            raise TopologyError(
                f"bolt {bolt!r}: stream {i.stream!r} of {source.name!r} is direct, "
                "so it must be subscribed with Grouping.DIRECT"
            )
        raise TopologyError(
            f"bolt {bolt!r}: Grouping.DIRECT needs a direct stream, "
            f"but {i.stream!r} of {source.name!r} is not declared direct"
        )
