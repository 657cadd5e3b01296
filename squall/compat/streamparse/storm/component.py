"""streamparse's ``Component``: Squall's, with the attributes pystorm gives a running
component (``storm_conf``, ``context`` as pystorm's dict, ``debug``, ``pid``) and
streamparse's ``spec`` defaults (``par`` and ``config`` may be class attributes)."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from squall.compat._adapt import adapt_initialize, normalise_par
from squall.topology.component import Component as _SquallComponent
from squall.topology.component import Context

__all__ = ["Component", "storm_context"]


def storm_context(component: Any, conf: dict, ctx: Context) -> dict[str, Any]:
    """pystorm's context dict for ``ctx``, and pystorm's instance attributes on ``component``."""
    context = {
        "taskid": ctx.task,
        "componentid": ctx.component,
        "task->component": {str(t): c for t, c in ctx.task_to_component.items()},
    }
    conf.setdefault("topology.name", ctx.topology)
    component.storm_conf = conf
    component.context = context
    component.debug = conf.get("topology.debug", False)
    component.pid = os.getpid()
    return context


class StreamparseComponent:
    """Mixin for streamparse's component classes: adapts ``initialize`` of every subclass."""

    par: ClassVar[int | None] = None
    config: ClassVar[dict[str, Any] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        adapt_initialize(cls, storm_context)

    @classmethod
    def _squall_spec_defaults(cls, par: Any, config: dict[str, Any] | None) -> dict[str, Any]:
        """``par`` and ``config`` for Squall's ``spec``: as given to streamparse's ``spec``,
        else the class attributes (``par`` checked: one integer >= 1)."""
        return {"par": normalise_par(cls, par), "config": config if config is not None else cls.config}


class Component(StreamparseComponent, _SquallComponent):
    """Base of streamparse's Spout and Bolt; subclass those."""

    def initialize(self, storm_conf: dict, context: Any) -> None:
        """Called once per task before any tuple; override to set up state."""
