"""heronpy's ``BaseSpout``: ``spec(name=None, par=1, config=None, optional_outputs=None)`` and
``emit(tup, tup_id=None, stream="default", direct_task=None, need_task_ids=False)``."""

from __future__ import annotations

from typing import Any

from squall.compat.heronpy.api.component.base_component import BaseComponent, heron_builder
from squall.topology.component import Spout as _SquallSpout
from squall.topology.dsl import ComponentBuilder

__all__ = ["BaseSpout"]


class BaseSpout(BaseComponent, _SquallSpout):
    @classmethod
    def spec(  # type: ignore[override]  # heronpy's signature, on purpose (its users' code calls it)
        cls, name: str | None = None, par: int = 1, config: dict | None = None, optional_outputs: Any = None
    ) -> ComponentBuilder:
        return heron_builder(cls, name, None, par, config, optional_outputs)
