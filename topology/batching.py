"""Bolts that process tuples in batches: ``BatchingBolt`` (flushed by tick tuples) and
``TicklessBatchingBolt`` (flushed every ``secs_between_batches``, with no tick config).

The shape is streamparse's (pystorm's): ``process`` only files each tuple under
``group_key(tup)`` (one batch when it returns None); a flush calls ``process_batch(key,
tups)`` for each batch. Guarantees, with the class defaults:

* a tuple is acked only after the ``process_batch`` that received it returned
  (``auto_ack``); the executor does not ack on return from ``process`` (``holds_tuples``);
* an emit inside ``process_batch`` is anchored to every tuple of the batch (``auto_anchor``);
* when ``process_batch`` raises, every tuple of that batch is failed (``auto_fail``), the
  other batches are still processed, and the first error is raised again so the executor
  logs and counts it.

Unlike pystorm's TicklessBatchingBolt, no thread is started: components run on their
executor's thread only, so the tickless bolt asks for tick tuples at ``secs_between_batches``
in its own component config, and they never reach user code.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, ClassVar

from squall.topology.component import Bolt, Tuple

TICK_FREQ = "topology.tick.tuple.freq.secs"


class BatchingBolt(Bolt):
    """Batches of tuples, processed every ``ticks_between_batches`` tick tuples (configure
    ``topology.tick.tuple.freq.secs`` for this component, as in streamparse)."""

    holds_tuples: ClassVar[bool] = True
    ticks_between_batches: ClassVar[int] = 1

    def __init__(self) -> None:
        self._batches: dict[Hashable, list[Tuple]] = {}
        self._tick_counter = 0
        self._current_batch: list[Tuple] | None = None

    def initialize(self, conf: dict[str, Any], ctx: Any) -> None:
        if not conf.get(TICK_FREQ):
            self.logger.warning(
                "%s gets no tick tuples (%s is not set for it): its batches will never be processed",
                type(self).__name__,
                TICK_FREQ,
            )

    def group_key(self, tup: Tuple) -> Hashable:
        """The batch ``tup`` belongs to; None (the default) puts every tuple in one batch."""
        return None

    def process_batch(self, key: Hashable, tups: list[Tuple]) -> None:
        """Handle one batch: the tuples filed under ``key`` since the last flush."""
        raise NotImplementedError(f"{type(self).__name__} must implement process_batch(key, tups)")

    def process(self, tup: Tuple) -> None:
        self._batches.setdefault(self.group_key(tup), []).append(tup)

    def process_tick(self, tup: Tuple) -> None:
        self._tick_counter += 1
        if self._tick_counter >= self.ticks_between_batches:
            self._tick_counter = 0
            self.process_batches()

    def process_batches(self) -> None:
        """Call ``process_batch`` for every batch held now, then ack (or fail) its tuples."""
        batches, self._batches = self._batches, {}
        first_error: Exception | None = None
        for key, batch in batches.items():
            self._current_batch = batch
            try:
                self.process_batch(key, batch)
            except Exception as exc:  # one bad batch must not hold the others' tuples forever
                if self.auto_fail:
                    for t in batch:
                        self.fail(t)
                first_error = first_error or exc
                continue
            finally:
                self._current_batch = None
            if self.auto_ack:
                for t in batch:
                    self.ack(t)
        if first_error is not None:
            raise first_error

    def emit(
        self,
        values: Sequence[Any],
        stream: str | None = None,
        anchors: Any = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int]:
        if anchors is None and self.auto_anchor and self._current_batch is not None:
            anchors = self._current_batch
        return super().emit(values, stream, anchors, direct_task, need_task_ids)


class TicklessBatchingBolt(BatchingBolt):
    """Batches processed every ``secs_between_batches`` seconds, without tick configuration."""

    secs_between_batches: ClassVar[float] = 2.0
    ticks_between_batches: ClassVar[int] = 1

    @classmethod
    def spec(
        cls,
        name: str | None = None,
        inputs: Any = None,
        par: int = 1,
        tasks: int | None = None,
        config: dict[str, Any] | None = None,
    ):
        # The flush timer is a tick at the batch interval, set on this component only.
        config = {**(config or {}), TICK_FREQ: cls.secs_between_batches}
        return super().spec(name=name, inputs=inputs, par=par, tasks=tasks, config=config)

    def initialize(self, conf: dict[str, Any], ctx: Any) -> None:
        """No warning about ticks: ``spec`` configured them."""
