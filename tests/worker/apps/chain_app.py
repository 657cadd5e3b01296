"""A user's code for the worker tests: a 3-stage chain (spout -> middle -> sink) whose classes
live in a module of the bundle folder, as a submitted topology's do.

Config keys (topology conf): ``app.rate`` tuples/s per spout task (0 = as fast as it can),
``app.limit`` stop after this many tuples (0 = never), ``app.reliable`` emit with a tup_id,
``app.bad_every`` every Nth tuple carries a value msgpack cannot serialise (0 = never),
``app.report`` a file the spout writes its complete latencies to (ms, JSON list) once
``app.limit`` trees have completed or failed.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from squall import Bolt, Grouping, Spout, Topology
from squall.topology.pacing import Pacer


class Unpicklable:
    """A value the data plane cannot send to another worker."""


class NumberSpout(Spout):
    outputs = ["n", "ts"]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.pacer = Pacer(float(conf.get("app.rate", 0)))
        self.limit = int(conf.get("app.limit", 0))
        self.reliable = bool(conf.get("app.reliable", True))
        self.bad_every = int(conf.get("app.bad_every", 0))
        self.seq = 0
        self.report = conf.get("app.report")
        self.emitted_at: dict[int, float] = {}
        self.latencies_ms: list[float] = []
        self.failed = 0

    def next_tuple(self) -> None:
        if self.limit and self.seq >= self.limit:
            return
        if not self.pacer.ready():
            return
        self.seq += 1
        bad = self.bad_every and self.seq % self.bad_every == 0
        values = [self.seq, Unpicklable() if bad else time.time()]
        if self.reliable:
            if self.report:
                self.emitted_at[self.seq] = time.monotonic()
            self.emit(values, tup_id=self.seq)
        else:
            self.emit(values)

    def ack(self, tup_id: Any) -> None:
        if self.report:
            self.latencies_ms.append((time.monotonic() - self.emitted_at.pop(tup_id)) * 1e3)
            self._maybe_report()

    def fail(self, tup_id: Any) -> None:
        if self.report:
            self.emitted_at.pop(tup_id, None)
            self.failed += 1
            self._maybe_report()

    def _maybe_report(self) -> None:
        if len(self.latencies_ms) + self.failed == self.limit:
            tmp = f"{self.report}.tmp"
            with open(tmp, "w") as f:
                json.dump({"latencies_ms": self.latencies_ms, "failed": self.failed}, f)
            os.replace(tmp, self.report)  # readers see the whole report or none


class Forward(Bolt):
    outputs = ["n", "ts"]

    def process(self, tup: Any) -> None:
        self.emit(tup.values)


class Sink(Bolt):
    def initialize(self, conf: dict, ctx: Any) -> None:
        self.seen = 0

    def process(self, tup: Any) -> None:
        self.seen += 1


class Chain(Topology):
    """Executors (components sorted by name): middle 0 and 1, sink 2, spout 3, ackers 4...."""

    name = "chain"
    spout = NumberSpout.spec()
    middle = Forward.spec(inputs={spout: Grouping.SHUFFLE}, par=2)
    sink = Sink.spec(inputs={middle: Grouping.fields("n")})


class Chain3(Topology):
    """One executor per stage. Executors: middle 0, sink 1, spout 2, ackers 3...."""

    name = "chain3"
    spout = NumberSpout.spec()
    middle = Forward.spec(inputs={spout: Grouping.SHUFFLE})
    sink = Sink.spec(inputs={middle: Grouping.SHUFFLE})
