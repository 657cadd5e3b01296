"""heronpy's ``BaseBolt``: ``spec(name=None, inputs=None, par=1, config=None,
optional_outputs=None)``, ``emit(tup, stream="default", anchors=None, direct_task=None,
need_task_ids=False)``, ``ack``, ``fail``, ``is_tick``.

As in Heron, a bolt acks and anchors only when told to: ``auto_ack`` and ``auto_anchor``
are off (a tuple never acked times out, an emit without ``anchors`` is not tracked). A bolt
that raises in ``process`` fails its tuple (``auto_fail``) and keeps running, where Heron
would restart the instance.
"""

from __future__ import annotations

from typing import Any, ClassVar

from squall.compat.heronpy.api.component.base_component import BaseComponent, heron_builder
from squall.topology.component import Bolt as _SquallBolt
from squall.topology.dsl import ComponentBuilder

__all__ = ["BaseBolt"]


class BaseBolt(BaseComponent, _SquallBolt):
    auto_ack: ClassVar[bool] = False
    auto_anchor: ClassVar[bool] = False
    auto_fail: ClassVar[bool] = True

    @classmethod
    def spec(  # type: ignore[override]  # heronpy's signature, on purpose (its users' code calls it)
        cls,
        name: str | None = None,
        inputs: Any = None,
        par: int = 1,
        config: dict | None = None,
        optional_outputs: Any = None,
    ) -> ComponentBuilder:
        return heron_builder(cls, name, inputs, par, config, optional_outputs)
