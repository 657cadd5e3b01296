"""streamparse's spouts: ``Spout``, ``ReliableSpout``; ``JavaSpout`` and ``ShellSpout`` are
refused (no JVM, no multilang subprocesses in Squall)."""

from __future__ import annotations

from typing import Any

from squall.compat._adapt import JvmComponent, MultilangComponent
from squall.compat.streamparse.storm.component import StreamparseComponent
from squall.topology.component import Spout as _SquallSpout
from squall.topology.dsl import ComponentBuilder
from squall.topology.reliable import ReliableSpout as _SquallReliableSpout

__all__ = ["JavaSpout", "ReliableSpout", "ShellSpout", "Spout"]


class Spout(StreamparseComponent, _SquallSpout):
    """A streamparse spout: ``next_tuple``, ``ack(tup_id)``, ``fail(tup_id)``,
    ``emit(tup, tup_id=None, stream=None, direct_task=None, need_task_ids=False)``."""

    def initialize(self, storm_conf: dict, context: Any) -> None:
        """Called once per task before ``next_tuple``; override to set up state."""

    @classmethod
    def spec(  # type: ignore[override]  # streamparse's signature, on purpose (its users' code calls it)
        cls, name: str | None = None, par: int | None = None, config: dict | None = None
    ) -> ComponentBuilder:
        """streamparse's ``Spout.spec(name=None, par=None, config=None)``."""
        return ComponentBuilder(cls, name=name, inputs=None, tasks=None, **cls._squall_spec_defaults(par, config))


class ReliableSpout(_SquallReliableSpout, Spout):
    """A spout that replays each failed tuple up to ``max_fails`` times (emit needs a tup_id)."""


class JavaSpout(JvmComponent):
    kind = "a JVM spout"


class ShellSpout(MultilangComponent):
    kind = "a multilang shell spout"
