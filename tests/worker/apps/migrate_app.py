"""A user's code for the migration tests: a finite spout, a fields-grouped counter that keeps
its counts across a move (the snapshot/restore hooks), and a sink that writes its tally.

Config keys: ``app.limit`` tuples the spout emits in all, ``app.rate`` tuples/s (0 = as fast
as it can), ``app.keys`` distinct words, ``app.report`` the file the sink writes
``{"seen": n, "last": {word: count}}`` to once it has seen ``app.limit`` tuples (after every
tuple if ``app.report_each``).
"""

from __future__ import annotations

import json
import os
from typing import Any

import msgpack

from squall import Bolt, Grouping, Spout, Topology
from squall.topology.pacing import Pacer


class Numbers(Spout):
    outputs = ["word"]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.limit = int(conf.get("app.limit", 0))
        self.pacer = Pacer(float(conf.get("app.rate", 0)))
        self.keys = int(conf.get("app.keys", 50))
        self.seq = 0

    def next_tuple(self) -> None:
        if self.seq >= self.limit:
            return
        if not self.pacer.ready():
            return
        self.emit([f"k{self.seq % self.keys}"])
        self.seq += 1


class Counter(Bolt):
    outputs = ["word", "count"]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.counts: dict[str, int] = {}

    def process(self, tup: Any) -> None:
        word = tup["word"]
        self.counts[word] = self.counts.get(word, 0) + 1
        self.emit([word, self.counts[word]])

    def snapshot(self) -> bytes | None:
        return msgpack.packb(self.counts) if self.counts else None

    def restore(self, data: bytes) -> None:
        self.counts.update(msgpack.unpackb(data))


class Tally(Bolt):
    def initialize(self, conf: dict, ctx: Any) -> None:
        self.limit = int(conf.get("app.limit", 0))
        self.report = conf.get("app.report")
        self.report_each = bool(conf.get("app.report_each", False))
        self.seen = 0
        self.last: dict[str, int] = {}

    def process(self, tup: Any) -> None:
        self.seen += 1
        word = tup["word"]
        self.last[word] = max(self.last.get(word, 0), tup["count"])
        if self.report and (self.seen == self.limit or self.report_each):
            tmp = f"{self.report}.tmp"
            with open(tmp, "w") as f:
                json.dump({"seen": self.seen, "last": self.last}, f)
            os.replace(tmp, self.report)


class Counting(Topology):
    """Executors (components sorted by name): counter 0 (task 1) and 1 (task 2), numbers 2
    (task 3), sink 3 (task 4); ackers after."""

    name = "counting"
    numbers = Numbers.spec()
    counter = Counter.spec(inputs={numbers: Grouping.fields("word")}, par=2)
    sink = Tally.spec(inputs=[counter])
