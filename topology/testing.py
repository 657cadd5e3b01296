"""Test helpers for users' own components: a spout that emits a list, a bolt that collects,
and ``run_local`` to run a topology in this process until its input is consumed.

::

    from squall.topology.testing import ListSpout, CollectBolt, run_local

    class Words(ListSpout):
        outputs = ["word"]
        items = [["a"], ["b"], ["a"]]

    class Sink(CollectBolt):
        pass

    class T(Topology):
        words = Words.spec()
        count = MyCount.spec(inputs={words: Grouping.fields("word")})
        sink = Sink.spec(inputs=[count])

    result = run_local(T)
    assert result.collected("sink") == [...]
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from squall.topology.component import Bolt, Spout, Tuple
from squall.topology.dsl import Topology


class ListSpout(Spout):
    """Emits each of ``items`` once (split over the spout's tasks), tracked by its index.

    Failed items are replayed up to ``max_replays`` times each; ``acked`` and ``failed``
    record the outcome per task instance.
    """

    items: ClassVar[Sequence[Sequence[Any]]] = ()
    max_replays: ClassVar[int] = 3

    def initialize(self, conf: dict, ctx) -> None:
        n = len(ctx.component_tasks)
        k = ctx.task_index
        self.queue = [i for i in range(len(self.items)) if i % n == k]
        self.acked: list[int] = []
        self.failed: list[int] = []
        self.replays: dict[int, int] = {}

    def next_tuple(self) -> None:
        if self.queue:
            i = self.queue.pop(0)
            self.emit(list(self.items[i]), tup_id=i)

    def ack(self, tup_id: Any) -> None:
        self.acked.append(tup_id)

    def fail(self, tup_id: Any) -> None:
        self.failed.append(tup_id)
        if self.replays.get(tup_id, 0) < self.max_replays:
            self.replays[tup_id] = self.replays.get(tup_id, 0) + 1
            self.queue.append(tup_id)


class CollectBolt(Bolt):
    """Keeps every tuple it receives in ``self.received`` (values lists)."""

    def initialize(self, conf: dict, ctx) -> None:
        self.received: list[list[Any]] = []
        self.ticks = 0

    def process(self, tup: Tuple) -> None:
        self.received.append(list(tup.values))

    def process_tick(self, tup: Tuple) -> None:
        self.ticks += 1


@dataclass
class LocalResult:
    """What ``run_local`` returns: the engine (for stats) and helpers to read the instances."""

    engine: Any

    def instances(self, component: str) -> list[Any]:
        return [inst for ex in self.engine.executors if ex.component == component for inst in ex.instances.values()]

    def collected(self, component: str) -> list[list[Any]]:
        return [v for inst in self.instances(component) for v in inst.received]

    def summary(self, component: str):
        for s in self.engine.summary():
            if s.component == component:
                return s
        raise KeyError(component)


def run_local(
    topology: type[Topology],
    conf: Mapping[str, Any] | None = None,
    seconds: float | None = None,
    until_idle: bool = True,
    max_seconds: float = 30.0,
) -> LocalResult:
    """Run ``topology`` in this process.

    With ``seconds``, run that long then drain. Otherwise run until nothing is queued or
    pending and spouts emit nothing more (or ``max_seconds`` pass).
    """
    from squall.supervisor.runtime.engine import Engine

    engine = Engine(topology.spec, topology.classes, conf)
    engine.start()
    if seconds is not None:
        engine.run(seconds)
        engine.drain(timeout_s=max_seconds)
        return LocalResult(engine)
    deadline = time.monotonic() + max_seconds
    quiet_rounds = 0
    while time.monotonic() < deadline:
        if engine.run_once() == 0 and engine.idle():
            quiet_rounds += 1
            if until_idle and quiet_rounds > 3:
                break
            time.sleep(0.001)
        else:
            quiet_rounds = 0
    engine.deactivate()
    return LocalResult(engine)
