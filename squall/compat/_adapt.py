"""What the streamparse and heronpy packages share: adapting Squall's ``initialize(conf,
ctx)`` to the context each library hands its components, normalising their ``spec``
arguments, and the component kinds Squall does not have."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from squall.topology.component import Context
from squall.topology.dsl import ComponentBuilder, StreamRef
from squall.topology.errors import TopologyError

PORTING_DOC = "docs/porting.md"


def adapt_initialize(cls: type, adapt: Callable[[Any, dict, Context], Any]) -> None:
    """Wrap ``cls.initialize`` (its own or the one it inherits) so it receives ``adapt(self,
    conf, ctx)`` instead of Squall's Context. A wrapped initialize that calls ``super()``
    passes the adapted context on, which is not a Context, so it is adapted once."""
    init = getattr(cls, "initialize", None)
    if init is None or getattr(init, "_squall_adapted", False):
        return

    @functools.wraps(init)
    def initialize(self: Any, conf: dict, context: Any) -> Any:
        if isinstance(context, Context):
            context = adapt(self, conf, context)
        return init(self, conf, context)

    initialize._squall_adapted = True  # type: ignore[attr-defined]
    cls.initialize = initialize  # type: ignore[attr-defined]


def normalise_inputs(inputs: Any) -> Any:
    """streamparse and heronpy accept a single spec or stream as ``inputs``: shuffle grouping."""
    if isinstance(inputs, (ComponentBuilder, StreamRef)):
        return [inputs]
    return inputs


def normalise_par(cls: type, par: Any, default: int = 1) -> int:
    """``par`` as given, else the class's ``par`` attribute (streamparse), else ``default``."""
    if par is None:
        par = getattr(cls, "par", None) or default
    if isinstance(par, dict):
        raise TopologyError(
            f"{cls.__name__}: par given per environment ({par!r}); Squall takes one integer per component"
        )
    if isinstance(par, bool) or not isinstance(par, int) or par < 1:
        raise TopologyError(f"{cls.__name__}: par must be an integer >= 1, got {par!r}")
    return par


def not_in_squall(what: str, why: str) -> TopologyError:
    return TopologyError(f"{what} does not exist in Squall: {why} (see {PORTING_DOC})")


class ForeignComponent:
    """A component kind Squall cannot run (a JVM or multilang shell component): declaring it
    in a topology is refused with the reason."""

    kind = "component"
    why = ""

    @classmethod
    def spec(cls, *args: Any, **kwargs: Any) -> ComponentBuilder:
        raise not_in_squall(f"{cls.__name__} ({cls.kind})", cls.why)


class JvmComponent(ForeignComponent):
    """A spout or bolt written for the JVM."""

    why = "Squall runs Python components only; write it in Python"


class MultilangComponent(ForeignComponent):
    """A spout or bolt run as a subprocess speaking Storm's multilang protocol."""

    why = "Squall runs components in its own Python executors, not as subprocesses speaking Storm's multilang protocol"
