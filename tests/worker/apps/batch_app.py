"""A user's code for the worker tests: the 3-stage chain of ``chain_app`` written batch-aware:
the spout emits runs with ``emit_many`` (a tup_id per tuple), the middle and the sink define
``process_many`` and the middle pairs each output with its input (``anchors_each``).

Config keys (topology conf): ``app.limit`` tuples in all, ``app.run`` tuples per call.
"""

from __future__ import annotations

from typing import Any

from squall import Bolt, Grouping, Spout, Topology


class RunSpout(Spout):
    outputs = ["n"]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.limit = int(conf.get("app.limit", 1000))
        self.run = int(conf.get("app.run", 10))
        self.seq = 0

    def next_tuple(self) -> None:
        if self.seq >= self.limit:
            return
        ns = list(range(self.seq, min(self.seq + self.run, self.limit)))
        self.seq = ns[-1] + 1
        self.emit_many([[n] for n in ns], tup_ids=ns)


class ForwardMany(Bolt):
    outputs = ["n"]

    def process_many(self, tups: list[Any]) -> None:
        self.emit_many([t.values for t in tups], anchors_each=tups)


class SinkMany(Bolt):
    def initialize(self, conf: dict, ctx: Any) -> None:
        self.seen = 0

    def process_many(self, tups: list[Any]) -> None:
        self.seen += len(tups)


class BatchChain(Topology):
    """Executors (components sorted by name): middle 0 and 1, sink 2, spout 3, ackers 4...."""

    name = "batchchain"
    spout = RunSpout.spec()
    middle = ForwardMany.spec(inputs={spout: Grouping.SHUFFLE}, par=2)
    sink = SinkMany.spec(inputs={middle: Grouping.fields("n")})


class BatchChain3(Topology):
    """``chain_app.Chain3`` written batch-aware, one executor each (executors: middle 0,
    sink 1, spout 2, ackers 3...): what ``benchmarks/worker_figures.py`` runs beside it."""

    name = "batchchain3"
    spout = RunSpout.spec()
    middle = ForwardMany.spec(inputs=[spout])
    sink = SinkMany.spec(inputs=[middle])
