"""Engine throughput: the reference 3-stage chain (spout -> bolt -> bolt, shuffle, one small
field, no work per tuple) in one process, acking off and on; written per tuple
(``next_tuple`` emits one, ``process``) and batch-aware (the spout emits runs of ``RUN``
with ``emit_many``, the bolts define ``process_many``).

Measure:  pytest benchmarks/test_engine_throughput.py --benchmark-enable
Each round pushes N tuples through the whole chain; tuples/s = N / mean round time. The
assertions inside the measured call check that every tuple reached the sink (and, acking
on, that every tree was acked), so a fast wrong engine cannot pass.
"""

from __future__ import annotations

import pytest

from squall import Bolt, Spout, Topology
from squall.supervisor.runtime.engine import Engine

N = 50_000


class CountingSpout(Spout):
    outputs = ["n"]

    def initialize(self, conf, ctx):
        self.left = 0
        self.acked = 0
        self.tracked = conf.get("topology.acker.executors", 1) != 0

    def next_tuple(self):
        if self.left:
            self.left -= 1
            if self.tracked:
                self.emit([self.left], tup_id=self.left)
            else:
                self.emit([self.left])

    def ack(self, tup_id):
        self.acked += 1


class Forward(Bolt):
    outputs = ["n"]

    def process(self, tup):
        self.emit(tup.values)


class Sink(Bolt):
    def initialize(self, conf, ctx):
        self.seen = 0

    def process(self, tup):
        self.seen += 1


class Chain3(Topology):
    spout = CountingSpout.spec()
    middle = Forward.spec(inputs=[spout])
    sink = Sink.spec(inputs=[middle])


RUN = 100  # tuples per emit_many of the batch chain's spout


class RunSpout(CountingSpout):
    """CountingSpout's tuples, ``RUN`` per ``next_tuple`` call, with one ``emit_many``."""

    def next_tuple(self):
        left = self.left
        if left:
            low = max(left - RUN, 0)
            self.left = low
            ns = range(left - 1, low - 1, -1)
            if self.tracked:
                self.emit_many([[n] for n in ns], tup_ids=list(ns))
            else:
                self.emit_many([[n] for n in ns])


class ForwardMany(Bolt):
    outputs = ["n"]

    def process_many(self, tups):
        self.emit_many([t.values for t in tups], anchors_each=tups)


class SinkMany(Sink):
    def process_many(self, tups):
        self.seen += len(tups)


class BatchChain3(Topology):
    spout = RunSpout.spec()
    middle = ForwardMany.spec(inputs=[spout])
    sink = SinkMany.spec(inputs=[middle])


CHAINS = {"per-tuple": Chain3, "batch": BatchChain3}


def _engine(acking: bool, chain: str = "per-tuple") -> Engine:
    conf = {"topology.acker.executors": 1 if acking else 0, "topology.max.spout.pending": 5_000}
    topology = CHAINS[chain]
    engine = Engine(topology.spec, topology.classes, conf)
    engine.start()
    return engine


def _push(engine: Engine, n: int, acking: bool) -> None:
    (spout,) = engine.spouts[0].instances.values()
    (sink,) = next(b for b in engine.bolts if b.component == "sink").instances.values()
    spout.left, spout.acked, sink.seen = n, 0, 0
    while spout.left or not engine.idle():
        engine.run_once()
    assert sink.seen == n
    if acking:
        assert spout.acked == n


@pytest.mark.parametrize("chain", list(CHAINS))
@pytest.mark.parametrize("acking", [False, True], ids=["acking off", "acking on"])
def test_chain3_throughput(benchmark, acking, chain):
    engine = _engine(acking, chain)
    n = N if not benchmark.disabled else 2_000
    benchmark.extra_info["tuples_per_round"] = n
    benchmark.pedantic(_push, args=(engine, n, acking), rounds=5, warmup_rounds=1)
    if not benchmark.disabled:
        tps = n / benchmark.stats.stats.mean
        benchmark.extra_info["tuples_per_s"] = round(tps)
        print(f"\nchain3 {chain}, acking {'on' if acking else 'off'}: {tps:,.0f} tuples/s")
