"""Moving executors between two engines in one process (no sockets): remove -> snapshot ->
add with state, mid-stream, with acking on and off. A tiny in-test transfer layer plays the
workers' data plane: it copies each item across (as the wire would), and holds items for a
task that no engine runs (in transit) until its new owner adds it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import msgpack
import pytest

from squall import Bolt, Grouping, Spout, Topology
from squall.supervisor.runtime import snapshot
from squall.supervisor.runtime.engine import Engine
from squall.topology.component import Tuple
from tests.runtime.runtime_helpers import FakeClock

pytestmark = pytest.mark.timeout(60)

WORDS = [f"w{i}" for i in range(23)]


class WordSpout(Spout):
    outputs = ["word"]

    def initialize(self, conf, ctx):
        self.limit = int(conf["test.n"])
        self.tracked = conf["topology.acker.executors"] != 0
        self.i = 0
        self.acked: list[Any] = []
        self.failed: list[Any] = []

    def next_tuple(self):
        if self.i < self.limit:
            word = WORDS[self.i % len(WORDS)]
            if self.tracked:
                self.emit([word], tup_id=("t", self.i))  # a tuple id: must come back hashable
            else:
                self.emit([word])
            self.i += 1

    def ack(self, tup_id):
        self.acked.append(tup_id)

    def fail(self, tup_id):
        self.failed.append(tup_id)

    def snapshot(self):
        return json.dumps({"i": self.i}).encode()

    def restore(self, data):
        self.i = json.loads(data)["i"]


class CountBolt(Bolt):
    outputs = ["word", "count"]

    def initialize(self, conf, ctx):
        self.counts: Counter[str] = Counter()

    def process(self, tup):
        self.counts[tup["word"]] += 1
        self.emit([tup["word"], self.counts[tup["word"]]])

    def snapshot(self):
        return msgpack.packb(dict(self.counts)) if self.counts else None

    def restore(self, data):
        self.counts.update(msgpack.unpackb(data))


class Tally(Bolt):
    def initialize(self, conf, ctx):
        self.seen = 0
        self.last: dict[str, int] = {}

    def process(self, tup):
        self.seen += 1
        self.last[tup["word"]] = max(self.last.get(tup["word"], 0), tup["count"])

    def snapshot(self):
        return msgpack.packb([self.seen, self.last])

    def restore(self, data):
        self.seen, self.last = msgpack.unpackb(data)


class Counting(Topology):
    """Executors: counter 0 and 1, sink 2, words 3, ackers 4..."""

    words = WordSpout.spec()
    counter = CountBolt.spec(inputs={words: Grouping.fields("word")}, par=2)
    sink = Tally.spec(inputs=[counter])


class Pair:
    """Two engines and the transfer between them; ``held`` is what waits for a moved task."""

    def __init__(self, topology: type[Topology], conf: dict, a: list[int], b: list[int]) -> None:
        self.held: list[tuple[int, Any]] = []
        self.clock = FakeClock()
        self.engines = [
            Engine(topology.spec, topology.classes, conf, executor_ids=ids, remote_sink=self._sink, clock=self.clock)
            for ids in (a, b)
        ]
        for e in self.engines:
            e.start()

    def _sink(self, _task: int):
        return self.send

    def send(self, item: tuple[int, Any]) -> None:
        task, payload = item
        if isinstance(payload, Tuple):  # a copy, as the wire makes one
            roots = dict(payload.roots) if payload.roots else None
            payload = Tuple(
                payload.component, payload.stream, payload.task, list(payload.values), payload.fields, roots
            )
        for e in self.engines:
            if task in e.wiring.local_tasks:
                e.wiring.sinks[task]((task, payload))
                return
        self.held.append((task, payload))

    def move(self, executor: int, src: int, dst: int, between: int = 0) -> None:
        """Move ``executor`` from engine ``src`` to ``dst``; ``between`` rounds run while it
        is in transit (items for it are held), then the held items follow it."""
        state = self.engines[src].remove_executor(executor)
        self.rounds(between)
        self.engines[dst].add_executor(executor, state)
        held, self.held = self.held, []
        for item in held:
            self.send(item)

    def rounds(self, n: int) -> None:
        for _ in range(n):
            for e in self.engines:
                e.run_once()

    def settle(self, max_rounds: int = 20_000) -> None:
        for _ in range(max_rounds):
            did = sum(e.run_once() for e in self.engines)
            if not did and not any(e.queued() for e in self.engines) and not self.held:
                return
        raise AssertionError("engines still busy")

    def instances(self, component: str) -> list[Any]:
        return [
            i for e in self.engines for ex in e.executors if ex.component == component for i in ex.instances.values()
        ]


def conf(acking: bool, n: int) -> dict:
    return {
        "topology.acker.executors": 1 if acking else 0,
        "test.n": n,
        "squall.spout.batch": 16,
        "topology.max.spout.pending": 300,
    }


def test_acking_on_every_tree_completes_exactly_once_across_moves_of_a_bolt_and_the_acker():
    n = 5_000
    p = Pair(Counting, conf(True, n), a=[0, 1, 3, 4], b=[2])
    p.rounds(20)
    p.move(0, src=0, dst=1, between=3)
    p.rounds(20)
    p.move(4, src=0, dst=1, between=3)  # the acker too, with trees half acked
    p.settle()
    (spout,) = p.instances("words")
    assert spout.failed == []
    assert sorted(spout.acked) == [("t", i) for i in range(n)], "every tree once, none lost or doubled"
    (sink,) = p.instances("sink")
    assert sink.seen == n


def test_acking_off_the_sink_receives_exactly_what_was_emitted():
    n = 20_000
    p = Pair(Counting, conf(False, n), a=[0, 1, 3], b=[2])
    p.rounds(10)
    p.move(1, src=0, dst=1, between=5)
    p.rounds(10)
    p.move(1, src=1, dst=0, between=5)  # and back again
    p.rounds(10)
    p.move(2, src=1, dst=0, between=5)  # the sink itself
    p.settle()
    (sink,) = p.instances("sink")
    assert sink.seen == n


@pytest.mark.parametrize("acking", [False, True], ids=["acking off", "acking on"])
def test_a_fields_grouped_counter_keeps_its_counts_across_the_move(acking):
    n = 10_000
    p = Pair(Counting, conf(acking, n), a=[0, 1, 3] + ([4] if acking else []), b=[2])
    p.rounds(30)
    before = sum(sum(c.counts.values()) for c in p.instances("counter"))
    assert 0 < before < n, "the move happens mid-stream"
    p.move(0, src=0, dst=1, between=2)
    p.move(1, src=0, dst=1, between=2)
    p.settle()
    totals: Counter[str] = Counter()
    for c in p.instances("counter"):
        totals.update(c.counts)
    expected = Counter(WORDS[i % len(WORDS)] for i in range(n))
    assert totals == expected, "no count reset, none doubled"
    (sink,) = p.instances("sink")
    assert sink.last == dict(expected), "the last count emitted per word is the full count"


def test_a_spout_moved_with_pending_trees_gets_their_acks_on_the_new_engine():
    n = 3_000
    p = Pair(Counting, conf(True, n), a=[3], b=[0, 1, 2, 4])
    p.rounds(5)
    old = p.engines[0].spouts[0]
    assert old.pending, "trees in flight at the move"
    pending_ids = {tup_id for _task, tup_id, _at in old.pending.values()}
    (old_inst,) = old.instances.values()
    acked_before = list(old_inst.acked)
    p.move(3, src=0, dst=1, between=3)  # acks for the moved trees are held, then follow it
    p.settle()
    (new_inst,) = p.instances("words")
    assert new_inst is not old_inst and new_inst.i == n, "the spout went on from its position"
    assert pending_ids <= set(new_inst.acked), "acks of trees pending at the move reach the new spout"
    assert sorted(acked_before + new_inst.acked) == [("t", i) for i in range(n)]
    assert new_inst.failed == []
    stats = p.engines[1].spouts[0].stats
    assert stats.latency_count == len(new_inst.acked)


def test_paused_spouts_emit_nothing_but_still_get_their_acks():
    p = Pair(Counting, conf(True, 1_000), a=[0, 1, 2, 3, 4], b=[])
    p.rounds(3)
    (spout,) = p.instances("words")
    engine = p.engines[0]
    engine.paused = True
    emitted = spout.i
    p.settle()
    assert spout.i == emitted and sorted(spout.acked) == [("t", i) for i in range(emitted)]
    assert engine.active, "pausing is not a deactivation"
    engine.paused = False
    p.settle()
    assert spout.i == 1_000


def test_queued_items_travel_in_the_snapshot_in_order():
    p = Pair(Counting, conf(False, 0), a=[0, 1, 3], b=[2])
    engine = p.engines[0]
    counter = engine.by_id[0]
    task = counter.spec.first_task
    for word in ["a", "b", "c"]:
        counter.inbox.append((task, Tuple("words", "default", 4, [word], {"word": 0})))
    state = engine.remove_executor(0)
    # one data run: the three tuples share target, stream and source
    assert [i[3] for i in snapshot.decode(state)["inbox"]] == [[["a"], ["b"], ["c"]]]
    p.engines[1].add_executor(0, state)
    p.settle()
    (moved,) = p.engines[1].by_id[0].instances.values()
    assert moved.counts == {"a": 1, "b": 1, "c": 1}


def test_a_bad_snapshot_starts_the_executor_empty_instead_of_failing():
    p = Pair(Counting, conf(False, 100), a=[0, 1, 3], b=[2])
    p.engines[0].remove_executor(0)
    p.engines[1].add_executor(0, b"\x00garbage")
    p.settle()
    assert sum(sum(c.counts.values()) for c in p.instances("counter")) == 100


class Local(Topology):
    """Executors: source 0, target 1 and 2."""

    source = WordSpout.spec()
    target = Tally.spec(inputs={source: Grouping.LOCAL_OR_SHUFFLE}, par=2)


def test_local_or_shuffle_routes_follow_the_executors():
    p = Pair(Local, {"topology.acker.executors": 0, "test.n": 0}, a=[0, 1], b=[2])
    (src,) = p.engines[0].by_id[0].instances.values()
    tasks = {t for _ in range(4) for t in src.emit(["x"])}
    assert tasks == {2}, "only the local target"
    p.move(1, src=0, dst=1)
    assert {t for _ in range(4) for t in src.emit(["x"])} == {2, 3}, "none local: shuffle over all"
    p.move(2, src=1, dst=0)
    assert {t for _ in range(4) for t in src.emit(["x"])} == {3}


def test_the_stateful_wordcount_example_keeps_its_counts_across_a_move():
    from squall.topology.loader import load_topology

    # As a worker loads it: the example imports its components from wordcount.py beside it.
    path = Path(__file__).resolve().parents[2] / "examples" / "stateful_wordcount.py"
    topo = load_topology(f"{path}:StatefulWordCount")
    # Executors: count 0-2, sentences 3, split 4-5, acker 6.
    p = Pair(topo, {"topology.acker.executors": 1, "topology.max.spout.pending": 50}, a=[0, 1, 2, 3, 4, 5, 6], b=[])
    p.rounds(40)
    p.engines[0].paused = True
    p.settle()
    before = [dict(c.counts) for c in p.instances("count")]
    assert any(before)
    for executor in (0, 1, 2, 3):
        p.move(executor, src=0, dst=1)
    after = [dict(c.counts) for c in p.instances("count")]
    assert sorted(map(str, after)) == sorted(map(str, before))
    (spout,) = p.instances("sentences")
    assert spout.next_id > 0 and not spout.in_flight
