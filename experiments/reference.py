"""Aniello's reference topology: a chain of ``stages`` components — a spout, then bolts
alternating shuffle and fields grouping — each with ``replication`` executors, a busy loop of
``work`` iterations per tuple, and the emit time in every tuple so the last stage measures
end-to-end latency. The input rate is per spout task (0 = as fast as it can).

``chain_topology(stages=3, replication=2, work=0, rate=0)`` returns a Topology class; the
component classes live here, at module level, so workers can import them by name.

Two more reference shapes for the experiments: ``diamond_topology`` (a spout fanning out to
``branches`` bolts that fan back in to one sink) and ``wordcount_topology`` (sentences split
into words, counted by fields grouping). Every sink records end-to-end latency in memory and,
when the conf names ``chain.latency_dir``, appends ``<wall time> <latency s>`` lines to
``<dir>/<topology>-<task>.lat`` (flushed every half second): the experiments' latency side
channel, readable from outside the workers whatever board they run on. ``chain.payload``
adds that many bytes of padding to every tuple, so link rates matter as they do on boards.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

import msgpack

from squall.topology.component import Bolt, Spout, Stream, Tuple
from squall.topology.dsl import Topology
from squall.topology.grouping import Grouping
from squall.topology.pacing import Pacer

KEYS = 1024
LATENCY_SAMPLES = 20_000
FLUSH_EVERY_S = 0.5
CATCH_UP_S = 0.01  # how far behind its schedule a paced spout still catches up


class LatencyLog:
    """Appends a sink's latency samples to ``<dir>/<topology>-<task>.lat`` every
    ``FLUSH_EVERY_S``; a no-op when the conf names no ``chain.latency_dir``."""

    def __init__(self, conf: dict, ctx: Any) -> None:
        folder = conf.get("chain.latency_dir")
        self.path = Path(folder) / f"{ctx.topology}-{ctx.task}.lat" if folder and ctx is not None else None
        self.pending: list[str] = []
        self.flushed_at = time.monotonic()

    def add(self, now: float, latency: float) -> None:
        if self.path is None:
            return
        self.pending.append(f"{now:.4f} {latency:.6f}\n")
        if time.monotonic() - self.flushed_at >= FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        self.flushed_at = time.monotonic()
        if self.path is None or not self.pending:
            return
        try:
            with open(self.path, "a", encoding="ascii") as f:
                f.write("".join(self.pending))
        except OSError:
            return  # a missing folder must not stop the topology; the samples are dropped
        self.pending.clear()


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
        # A short stall (the worker woken a few ms late on a busy board) costs no tuples, a
        # long one no big burst.
        self.pacer = Pacer(float(conf.get("chain.rate", 0)), catch_up_s=CATCH_UP_S)
        self.seq = 0
        self.pad = "x" * int(conf.get("chain.payload", 0))
        self.tracked = bool(conf.get("chain.reliable", True))
        self.in_flight: dict[int, list[Any]] = {}
        self.replayed = 0
        ledger = conf.get("chain.ledger.dir")
        self.ledger = f"{ledger}/spout-{ctx.task}.json" if ledger else None
        self.ledger_at = 0.0
        self.active = True

    def next_tuple(self) -> None:
        if not self.pacer.ready():
            return
        self.seq += 1
        values = self.make_values()
        if self.tracked:
            self.in_flight[self.seq] = values
            self.emit(values, tup_id=self.seq)
        else:
            self.emit(values)

    def next_tuple_due(self) -> float | None:
        """Paced: the next emission instant, so the worker sleeps until then. Unpaced: None
        (it always has a tuple, and is asked every round)."""
        return self.pacer.next_due()

    def make_values(self) -> list[Any]:
        """The values of tuple number ``self.seq``; subclasses emit other shapes."""
        return [self.seq % KEYS, time.time(), self.pad] if self.pad else [self.seq % KEYS, time.time()]

    def ack(self, tup_id: Any) -> None:
        self.in_flight.pop(tup_id, None)
        if self.ledger:
            self._write_ledger()

    def fail(self, tup_id: Any) -> None:
        values = self.in_flight.get(tup_id)
        if values is not None:
            self.replayed += 1
            self.emit(values, tup_id=tup_id)

    def activate(self) -> None:
        self.active = True

    def deactivate(self) -> None:
        self.active = False
        if self.ledger:
            self._write_ledger(force=True)

    def _write_ledger(self, force: bool = False) -> None:
        """The spout's own account (``chain.ledger.dir``): tuples emitted, acked, still in flight.
        Written at most twice a second while active, at every ack once deactivated, so a
        reader that waits for in_flight to reach 0 after deactivation gets the final count."""
        if self.ledger is None:  # no ledger folder in the conf
            return
        now = time.monotonic()
        if not force and self.active and now - self.ledger_at < 0.5:
            return
        self.ledger_at = now
        record = {
            "emitted": self.seq,
            "acked": self.seq - len(self.in_flight),
            "in_flight": len(self.in_flight),
            "replayed": self.replayed,
            # A reader waiting for the final count needs to know deactivation has reached
            # this spout: in_flight is 0 between trees while it still emits.
            "active": self.active,
        }
        tmp = f"{self.ledger}.tmp"
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.replace(tmp, self.ledger)

    def snapshot(self) -> bytes:
        """Sequence and in-flight tuples move with the spout, so nothing is lost or renumbered."""
        return msgpack.packb({"seq": self.seq, "in_flight": self.in_flight, "replayed": self.replayed})

    def restore(self, data: bytes) -> None:
        state = msgpack.unpackb(data, strict_map_key=False)
        self.seq, self.replayed = state["seq"], state["replayed"]
        self.in_flight = {int(k): v for k, v in state["in_flight"].items()}


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
        # Not ``self.log``: that is Component.log, which the component keeps.
        self.latency_log = LatencyLog(conf, ctx) if self.sink else None

    def process(self, tup: Tuple) -> None:
        if self.work:
            busy_loop(self.work)
        if self.sink:
            now = time.time()
            latency = now - tup.values[1]
            self.latencies.append(latency)
            self.latency_sum += latency
            self.count += 1
            if self.latency_log is not None:
                self.latency_log.add(now, latency)
        else:
            self.emit(tup.values)


class PaddedChainSpout(ChainSpout):
    """A ChainSpout whose tuples carry ``chain.payload`` bytes of padding."""

    outputs = [Stream(fields=["key", "ts", "pad"])]


class PaddedChainBolt(ChainBolt):
    """A ChainBolt forwarding padded tuples."""

    outputs = [Stream(fields=["key", "ts", "pad"])]


def stage_name(i: int) -> str:
    return "spout" if i == 0 else f"stage{i}"


def chain_topology(
    stages: int = 3,
    replication: int = 2,
    work: int = 0,
    rate: float = 0.0,
    reliable: bool = True,
    name: str | None = None,
    payload: int = 0,
) -> type[Topology]:
    """Build the chain: stage 0 is the spout; stage i >= 1 subscribes to stage i-1 with shuffle
    grouping when i is odd and fields grouping on ``key`` when i is even. ``payload`` > 0 pads
    every tuple with that many bytes."""
    if stages < 2:
        raise ValueError("a chain needs at least 2 stages (a spout and a bolt)")
    if replication < 1:
        raise ValueError("replication must be >= 1")
    if payload < 0:
        raise ValueError("payload must be >= 0")
    spout_cls, bolt_cls = (PaddedChainSpout, PaddedChainBolt) if payload else (ChainSpout, ChainBolt)
    attrs: dict[str, Any] = {
        "name": name or f"chain-{stages}x{replication}",
        "config": _config(work, rate, reliable, payload),
    }
    prev = spout_cls.spec(name=stage_name(0), par=replication)
    attrs[stage_name(0)] = prev
    for i in range(1, stages):
        grouping = Grouping.SHUFFLE if i % 2 == 1 else Grouping.fields("key")
        last = i == stages - 1
        spec = bolt_cls.spec(
            name=stage_name(i),
            inputs={prev: grouping},
            par=replication,
            config={"chain.sink": True} if last else None,
        )
        attrs[stage_name(i)] = spec
        prev = spec
    return type("Chain", (Topology,), attrs)


def _config(work: int, rate: float, reliable: bool, payload: int = 0) -> dict[str, Any]:
    return {
        "chain.work": work,
        "chain.rate": rate,
        "chain.reliable": reliable,
        **({"chain.payload": payload} if payload else {}),
        **({} if reliable else {"topology.acker.executors": 0}),
    }


def diamond_topology(
    branches: int = 2,
    replication: int = 2,
    work: int = 0,
    rate: float = 0.0,
    reliable: bool = True,
    name: str | None = None,
) -> type[Topology]:
    """A spout fanning out (shuffle) to ``branches`` bolts, which fan back in (fields on
    ``key``) to one sink: every spout tuple reaches the sink once per branch."""
    if branches < 2:
        raise ValueError("a diamond needs at least 2 branches")
    if replication < 1:
        raise ValueError("replication must be >= 1")
    spout = ChainSpout.spec(name="spout", par=replication)
    attrs: dict[str, Any] = {
        "name": name or f"diamond-{branches}x{replication}",
        "config": _config(work, rate, reliable),
        "spout": spout,
    }
    inputs = {}
    for b in range(1, branches + 1):
        branch = ChainBolt.spec(name=f"branch{b}", inputs={spout: Grouping.SHUFFLE}, par=replication)
        attrs[f"branch{b}"] = branch
        inputs[branch] = Grouping.fields("key")
    attrs["sink"] = ChainBolt.spec(name="sink", inputs=inputs, par=replication, config={"chain.sink": True})
    return type("Diamond", (Topology,), attrs)


WORDS = (
    "the quick brown fox jumps over the lazy dog while small boards count every word "
    "that streams past in a cluster of pies"
).split()


class SentenceSpout(ChainSpout):
    """Emits ``[sentence, emit_time]``: eight words drawn in turn from ``WORDS``."""

    outputs = [Stream(fields=["sentence", "ts"])]

    def make_values(self) -> list[Any]:
        start = self.seq % len(WORDS)
        return [" ".join(WORDS[(start + i) % len(WORDS)] for i in range(8)), time.time()]


class SplitBolt(Bolt):
    """Splits a sentence into ``[word, emit_time]`` tuples."""

    outputs = [Stream(fields=["word", "ts"])]

    def process(self, tup: Tuple) -> None:
        for word in tup.values[0].split():
            self.emit([word, tup.values[1]])


class CountBolt(ChainBolt):
    """Counts words (fields grouping on ``word``) and records each word's latency."""

    outputs = [Stream(fields=["word", "count"])]

    def initialize(self, conf: dict, ctx: Any) -> None:
        super().initialize({**conf, "chain.sink": True}, ctx)
        self.counts: dict[str, int] = {}

    def process(self, tup: Tuple) -> None:
        word = tup.values[0]
        self.counts[word] = self.counts.get(word, 0) + 1
        super().process(tup)


def wordcount_topology(
    replication: int = 2, rate: float = 0.0, reliable: bool = True, name: str | None = None
) -> type[Topology]:
    """Sentences -> split (shuffle) -> count (fields on ``word``), the count recording latency."""
    if replication < 1:
        raise ValueError("replication must be >= 1")
    spout = SentenceSpout.spec(name="sentences", par=replication)
    split = SplitBolt.spec(name="split", inputs={spout: Grouping.SHUFFLE}, par=replication)
    count = CountBolt.spec(name="count", inputs={split: Grouping.fields("word")}, par=replication)
    return type(
        "WordCount",
        (Topology,),
        {
            "name": name or f"wordcount-{replication}",
            "config": _config(0, rate, reliable),
            "sentences": spout,
            "split": split,
            "count": count,
        },
    )
