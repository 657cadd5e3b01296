"""streamparse's bolts: ``Bolt``, ``BatchingBolt``, ``TicklessBatchingBolt``; ``JavaBolt`` and
``ShellBolt`` are refused (no JVM, no multilang subprocesses in Squall)."""

from __future__ import annotations

from typing import Any

from squall.compat._adapt import JvmComponent, MultilangComponent, normalise_inputs
from squall.compat.streamparse.storm.component import StreamparseComponent
from squall.topology.batching import BatchingBolt as _SquallBatchingBolt
from squall.topology.batching import TicklessBatchingBolt as _SquallTicklessBatchingBolt
from squall.topology.component import Bolt as _SquallBolt
from squall.topology.dsl import ComponentBuilder

__all__ = ["BatchingBolt", "Bolt", "JavaBolt", "ShellBolt", "TicklessBatchingBolt"]


class Bolt(StreamparseComponent, _SquallBolt):
    """A streamparse bolt: ``process(tup)``, ``process_tick(tup)``, ``auto_ack``,
    ``auto_anchor``, ``auto_fail``, ``emit(tup, stream=None, anchors=None, direct_task=None,
    need_task_ids=False)``."""

    def initialize(self, storm_conf: dict, context: Any) -> None:
        """Called once per task before any tuple; override to set up state."""

    @classmethod
    def spec(  # type: ignore[override]  # streamparse's signature, on purpose (its users' code calls it)
        cls, name: str | None = None, inputs: Any = None, par: int | None = None, config: dict | None = None
    ) -> ComponentBuilder:
        """streamparse's ``Bolt.spec(name=None, inputs=None, par=None, config=None)``."""
        return cls._squall_spec(name=name, inputs=normalise_inputs(inputs), **cls._squall_spec_defaults(par, config))

    @classmethod
    def _squall_spec(cls, **kwargs: Any) -> ComponentBuilder:
        return _SquallBolt.spec.__func__(cls, **kwargs)  # type: ignore[attr-defined]


class BatchingBolt(_SquallBatchingBolt, Bolt):
    """Tuples batched by ``group_key`` and handed to ``process_batch(key, tups)`` every
    ``ticks_between_batches`` tick tuples."""


class TicklessBatchingBolt(_SquallTicklessBatchingBolt, Bolt):
    """Tuples batched and handed to ``process_batch`` every ``secs_between_batches`` seconds."""

    spec = Bolt.__dict__["spec"]  # streamparse's argument order, not Squall's

    @classmethod
    def _squall_spec(cls, **kwargs: Any) -> ComponentBuilder:
        # Squall's tickless spec adds the tick that flushes batches.
        return _SquallTicklessBatchingBolt.spec.__func__(cls, **kwargs)  # type: ignore[attr-defined]


class JavaBolt(JvmComponent):
    kind = "a JVM bolt"


class ShellBolt(MultilangComponent):
    kind = "a multilang shell bolt"
