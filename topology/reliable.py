"""``ReliableSpout``: a spout that replays a failed tuple itself, up to ``max_fails`` times.

The shape is streamparse's (pystorm's): emit every tuple with a ``tup_id``; the spout keeps
what it emitted under that id until the tree is acked, re-emits it with the same id when the
tree fails, and gives up (logs, then treats it as acked) after ``max_fails`` replays.
Subclasses that override ``ack`` or ``fail`` call ``super()`` to keep the bookkeeping.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

from squall.topology.component import Spout


class ReliableSpout(Spout):
    """A spout whose failed tuples are re-emitted, each at most ``max_fails`` times."""

    max_fails: ClassVar[int] = 3

    def __init__(self) -> None:
        # tup_id -> (values, stream, direct_task): what to emit again if the tree fails
        self.unacked_tuples: dict[Any, tuple[list[Any], str | None, int | None]] = {}
        self.failed_tuples: Counter = Counter()  # tup_id -> replays so far

    def emit(
        self,
        values: Sequence[Any],
        tup_id: Any = None,
        stream: str | None = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int]:
        if tup_id is None:
            raise ValueError(
                f"{type(self).__name__}: a ReliableSpout emit needs a tup_id (it is how a failed tuple is replayed)"
            )
        self.unacked_tuples[tup_id] = (list(values), stream, direct_task)
        return super().emit(values, tup_id, stream, direct_task, need_task_ids)

    def ack(self, tup_id: Any) -> None:
        self.failed_tuples.pop(tup_id, None)
        if self.unacked_tuples.pop(tup_id, None) is None:
            self.logger.error("ack for a tuple id this spout did not emit: %r", tup_id)

    def fail(self, tup_id: Any) -> None:
        saved = self.unacked_tuples.get(tup_id)
        if saved is None:
            self.logger.error("fail for a tuple id this spout did not emit: %r", tup_id)
            return
        if self.failed_tuples[tup_id] >= self.max_fails:
            self.logger.warning("giving up on tuple %r after %d replays", tup_id, self.max_fails)
            self.ack(tup_id)
            return
        self.failed_tuples[tup_id] += 1
        values, stream, direct_task = saved
        self.emit(values, tup_id, stream, direct_task)
