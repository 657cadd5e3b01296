"""Aniello's reference topology: a chain of ``stages`` components — a spout, then bolts
alternating shuffle and fields grouping — each with ``replication`` executors, a busy loop of
``work`` iterations per tuple, and the emit time in every tuple so the last stage measures
end-to-end latency. The input rate is per spout task (0 = as fast as it can).

``chain_topology(stages=3, replication=2, work=0, rate=0)`` returns a Topology class; the
component classes live here, at module level, so workers can import them by name.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from squall.topology.component import Bolt, Spout, Stream, Tuple
from squall.topology.dsl import Topology
from squall.topology.grouping import Grouping

KEYS = 1024
LATENCY_SAMPLES = 20_000


def busy_loop(iterations: int) -> int:
    """Burn CPU in proportion to ``iterations`` (the per-tuple work of the experiments)."""
    acc = 0
    for i in range(iterations):
        acc = (acc * 31 + i) & 0xFFFF
    return acc


class ChainSpout(Spout):
    """Emits ``[key, emit_time]`` at ``chain.rate`` tuples/s per task, each tracked."""

    outputs = [Stream(fields=["key", "ts"])]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.rate = float(conf.get("chain.rate", 0))
        self.interval = 1.0 / self.rate if self.rate > 0 else 0.0
        self.next_at = time.monotonic()
        self.seq = 0
        self.tracked = bool(conf.get("chain.reliable", True))
        self.in_flight: dict[int, list[Any]] = {}
        self.replayed = 0

    def next_tuple(self) -> None:
        if self.interval:
            now = time.monotonic()
            if now < self.next_at:
                return
            # Catch up at most one interval behind, so a stall does not cause a burst.
            self.next_at = max(self.next_at + self.interval, now - self.interval)
        self.seq += 1
        values = [self.seq % KEYS, time.time()]
        if self.tracked:
            self.in_flight[self.seq] = values
            self.emit(values, tup_id=self.seq)
        else:
            self.emit(values)

    def ack(self, tup_id: Any) -> None:
        self.in_flight.pop(tup_id, None)

    def fail(self, tup_id: Any) -> None:
        values = self.in_flight.get(tup_id)
        if values is not None:
            self.replayed += 1
            self.emit(values, tup_id=tup_id)


class ChainBolt(Bolt):
    """Does ``chain.work`` busy-loop iterations per tuple and forwards it; the last stage
    (``chain.sink``) records end-to-end latency instead of forwarding."""

    outputs = [Stream(fields=["key", "ts"])]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.work = int(conf.get("chain.work", 0))
        self.sink = bool(conf.get("chain.sink", False))
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.latency_sum = 0.0
        self.count = 0

    def process(self, tup: Tuple) -> None:
        if self.work:
            busy_loop(self.work)
        if self.sink:
            latency = time.time() - tup.values[1]
            self.latencies.append(latency)
            self.latency_sum += latency
            self.count += 1
        else:
            self.emit(tup.values)


def stage_name(i: int) -> str:
    return "spout" if i == 0 else f"stage{i}"


def chain_topology(
    stages: int = 3,
    replication: int = 2,
    work: int = 0,
    rate: float = 0.0,
    reliable: bool = True,
    name: str | None = None,
) -> type[Topology]:
    """Build the chain: stage 0 is the spout; stage i >= 1 subscribes to stage i-1 with shuffle
    grouping when i is odd and fields grouping on ``key`` when i is even."""
    if stages < 2:
        raise ValueError("a chain needs at least 2 stages (a spout and a bolt)")
    if replication < 1:
        raise ValueError("replication must be >= 1")
    attrs: dict[str, Any] = {
        "name": name or f"chain-{stages}x{replication}",
        "config": {
            "chain.work": work,
            "chain.rate": rate,
            "chain.reliable": reliable,
            **({} if reliable else {"topology.acker.executors": 0}),
        },
    }
    prev = ChainSpout.spec(name=stage_name(0), par=replication)
    attrs[stage_name(0)] = prev
    for i in range(1, stages):
        grouping = Grouping.SHUFFLE if i % 2 == 1 else Grouping.fields("key")
        last = i == stages - 1
        spec = ChainBolt.spec(
            name=stage_name(i),
            inputs={prev: grouping},
            par=replication,
            config={"chain.sink": True} if last else None,
        )
        attrs[stage_name(i)] = spec
        prev = spec
    return type("Chain", (Topology,), attrs)
