"""heronpy's ``BaseComponent``: what heron's spouts and bolts share here — a spec with
heronpy's arguments and ``initialize`` receiving heronpy's ``TopologyContext``. ``logger``
and ``log(message, level=None)`` are Squall's (levels by name, as heronpy takes them)."""

from __future__ import annotations

from typing import Any

from squall.compat._adapt import adapt_initialize
from squall.compat.heronpy.api.topology_context import heron_context
from squall.topology.component import Component
from squall.topology.dsl import ComponentBuilder

__all__ = ["BaseComponent", "heron_builder"]


class BaseComponent:
    """Mixin for heron's component classes: adapts ``initialize`` of every subclass."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        adapt_initialize(cls, heron_context)


def heron_builder(
    cls: type[Component], name: str | None, inputs: Any, par: int, config: dict | None, optional_outputs: Any
) -> ComponentBuilder:
    """A Squall component builder from heronpy's spec arguments."""
    from squall.compat._adapt import normalise_inputs, normalise_par

    builder = ComponentBuilder(
        cls, name=name, inputs=normalise_inputs(inputs), par=normalise_par(cls, par), tasks=None, config=config
    )
    if optional_outputs:
        builder.extra_outputs = tuple(optional_outputs)
    return builder
