"""A spout starts its trees on an acker in its own engine when there is one (``AckerChoice``):
its root ids map to that acker (``root % ackers``, the rule every sender follows), so the
spout's inits and the acker's completions never cross to another worker. Two engines in one
process (``test_migration.Pair``) play two workers; the items that cross between them are
counted, and moves of the spout and of an acker mid-stream lose no tree."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from squall import Bolt, Grouping, Spout, Topology
from squall.supervisor.runtime.messages import ACK_BULK, ACK_INIT, ACK_INIT_BULK, TREE_COMPLETE, TREES_DONE
from squall.supervisor.runtime.routing import AckerChoice
from squall.topology.component import Tuple
from tests.runtime.test_migration import Counting, Pair

pytestmark = pytest.mark.timeout(60)

# Counting's executors: counter 0 and 1, sink 2, words 3; with two ackers, 4 and 5.
SPOUT, ACKER_A, ACKER_B = 3, 4, 5


class CountingPair(Pair):
    """``Pair`` that counts the control items (acker traffic) crossing between the engines,
    by kind, and which acker task each went to."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.crossed: Counter[int] = Counter()  # message kind -> items that crossed
        self.crossed_to: Counter[int] = Counter()  # destination task -> control items that crossed
        super().__init__(*args, **kwargs)

    def _sink(self, _task: int):
        return self.cross

    def cross(self, item: tuple[int, Any]) -> None:
        task, payload = item
        if not isinstance(payload, Tuple):
            self.crossed[payload[0]] += 1
            self.crossed_to[task] += 1
        self.send(item)


def conf(n: int) -> dict:
    return {
        "topology.acker.executors": 2,
        "test.n": n,
        "squall.spout.batch": 16,
        "topology.max.spout.pending": 300,
    }


def acker_index(p: Pair, executor: int) -> int:
    task = p.engines[0]._executor_specs[executor].first_task
    return p.engines[0].wiring.acker_tasks.index(task)


def acked_by(p: Pair, executor: int) -> int:
    return sum(e.by_id[executor].stats.acked for e in p.engines if executor in e.by_id)


def test_a_spout_beside_an_acker_starts_every_tree_there_and_no_init_or_completion_crosses():
    n = 2_000
    p = CountingPair(Counting, conf(n), a=[SPOUT, ACKER_A], b=[0, 1, 2, ACKER_B])
    p.settle()
    (spout,) = p.instances("words")
    assert sorted(spout.acked) == [("t", i) for i in range(n)] and spout.failed == []
    assert acked_by(p, ACKER_A) == n, "every tree completed at the acker beside the spout"
    # The bolts are on the other engine, so their acks cross: that is all that does.
    assert p.crossed[ACK_BULK] > 0
    assert p.crossed[ACK_INIT] + p.crossed[ACK_INIT_BULK] == 0
    assert p.crossed[TREE_COMPLETE] + p.crossed[TREES_DONE] == 0
    acker_b_task = p.engines[1].by_id[ACKER_B].spec.first_task
    assert p.crossed_to[acker_b_task] == 0


def test_without_an_acker_beside_the_spout_trees_spread_over_every_acker_as_before():
    n = 2_000
    p = CountingPair(Counting, conf(n), a=[SPOUT], b=[0, 1, 2, ACKER_A, ACKER_B])
    p.settle()
    (spout,) = p.instances("words")
    assert sorted(spout.acked) == [("t", i) for i in range(n)]
    a, b = acked_by(p, ACKER_A), acked_by(p, ACKER_B)
    assert a + b == n and min(a, b) > n // 3, f"both ackers used ({a} / {b})"
    assert p.crossed[ACK_INIT] + p.crossed[ACK_INIT_BULK] > 0


def test_the_acker_beside_the_spout_moving_away_loses_no_tree_and_new_trees_spread_again():
    n = 5_000
    p = CountingPair(Counting, conf(n), a=[SPOUT, ACKER_A], b=[0, 1, 2, ACKER_B])
    p.rounds(20)
    (spout,) = p.instances("words")
    assert 0 < spout.i < n, "the move happens mid-stream"
    assert acked_by(p, ACKER_B) == 0
    p.move(ACKER_A, src=0, dst=1, between=3)  # with trees half acked
    assert not p.engines[0].wiring.acker_choice.moves, "no acker left beside the spout"
    p.settle()
    assert spout.failed == []
    assert sorted(spout.acked) == [("t", i) for i in range(n)], "every tree once, none lost or doubled"
    assert acked_by(p, ACKER_B) > 0, "trees started after the move use both ackers"


def test_an_acker_moving_in_beside_the_spout_takes_its_new_trees():
    n = 5_000
    p = CountingPair(Counting, conf(n), a=[SPOUT], b=[0, 1, 2, ACKER_A, ACKER_B])
    p.rounds(20)
    p.move(ACKER_B, src=1, dst=0, between=3)
    assert p.engines[0].wiring.acker_choice.moves
    inits_before = p.crossed[ACK_INIT] + p.crossed[ACK_INIT_BULK]
    p.settle()
    (spout,) = p.instances("words")
    assert spout.failed == [] and sorted(spout.acked) == [("t", i) for i in range(n)]
    assert p.crossed[ACK_INIT] + p.crossed[ACK_INIT_BULK] == inits_before, "no init crossed after the move"


def test_a_spout_moving_beside_the_other_acker_keeps_its_pending_trees_and_starts_new_ones_there():
    n = 5_000
    p = CountingPair(Counting, conf(n), a=[SPOUT, ACKER_A], b=[0, 1, 2, ACKER_B])
    p.rounds(5)
    old = p.engines[0].spouts[0]
    assert old.pending, "trees in flight at the move"
    assert {root % 2 for root in old.pending} == {acker_index(p, ACKER_A)}
    (old_inst,) = old.instances.values()
    # At most this many trees can ever complete at acker A: those it completed, and those
    # started beside it and still pending (some of them counted in both).
    at_most_a = acked_by(p, ACKER_A) + len(old.pending)
    p.move(SPOUT, src=0, dst=1, between=3)
    p.settle()
    (inst,) = p.instances("words")
    assert inst is not old_inst and inst.failed == []
    assert sorted(old_inst.acked + inst.acked) == [("t", i) for i in range(n)], "every tree once"
    assert acked_by(p, ACKER_A) + acked_by(p, ACKER_B) == n
    assert acked_by(p, ACKER_A) <= at_most_a < n // 2, "trees started after the move: all on acker B"


class RunSpout(Spout):
    """Emits ``test.n`` words in runs of 10 with ``emit_many``, every one tracked."""

    outputs = ["word"]

    def initialize(self, conf, ctx):
        self.limit = int(conf["test.n"])
        self.i = 0
        self.acked: list[Any] = []
        self.failed: list[Any] = []

    def next_tuple(self):
        if self.i < self.limit:
            ids = list(range(self.i, min(self.i + 10, self.limit)))
            self.emit_many([[f"w{i % 7}"] for i in ids], tup_ids=ids)
            self.i += len(ids)

    def ack(self, tup_id):
        self.acked.append(tup_id)

    def fail(self, tup_id):
        self.failed.append(tup_id)


class Counted(Bolt):
    def process(self, tup):
        pass


class ShuffledRuns(Topology):
    """Executors: sink 0, words 1; ackers 2 and 3. Shuffle: ``emit_many``'s one-target path."""

    words = RunSpout.spec()
    sink = Counted.spec(inputs={words: Grouping.SHUFFLE})


class FieldsRuns(Topology):
    """Executors: sink 0 and 1, words 2; ackers 3 and 4. Fields grouping: the general path."""

    words = RunSpout.spec()
    sink = Counted.spec(inputs={words: Grouping.fields("word")}, par=2)


@pytest.mark.parametrize(
    ("topology", "a", "b", "beside"),
    [(ShuffledRuns, [1, 3], [0, 2], 3), (FieldsRuns, [2, 4], [0, 1, 3], 4)],
    ids=["shuffle", "fields"],
)
def test_emit_many_starts_its_trees_beside_the_spout_too(topology, a, b, beside):
    n = 2_000
    p = CountingPair(topology, conf(n), a=a, b=b)
    p.settle()
    (spout,) = p.instances("words")
    assert spout.failed == [] and sorted(spout.acked) == list(range(n))
    assert acked_by(p, beside) == n
    assert p.crossed[ACK_INIT] + p.crossed[ACK_INIT_BULK] == 0


def test_the_choice_maps_every_draw_to_a_local_acker_within_64_bits():
    choice = AckerChoice([10, 11, 12], frozenset({10, 12}))
    assert choice.moves and choice.local == [0, 2]
    n = 3
    for r in [0, 1, 2, 3, 4, 5, 2**63 - 1, 2**63 - 2, 2**63 - 3, 12345678901234567]:
        root = r - r % n + choice.remap[r % n]
        assert 0 <= root < 2**64 and root % n in (0, 2)
    choice.update(frozenset({10, 11, 12}))
    assert not choice.moves and choice.remap == [0, 1, 2], "every acker local: roots as drawn"
    choice.update(frozenset())
    assert not choice.moves and choice.remap == [0, 1, 2], "none local: roots as drawn"
    choice.update(frozenset({11}))
    assert choice.remap == [1, 1, 1]


def test_a_tree_its_local_acker_completes_reaches_the_spouts_ack_in_the_same_round():
    p = Pair(Counting, conf(100), a=[0, 1, 2, SPOUT, ACKER_A, ACKER_B], b=[])
    engine = p.engines[0]
    engine.run_once()  # the spout emits a batch; counter, sink and the ackers drain it
    (spout,) = p.instances("words")
    assert spout.i == 16, "one spout batch (squall.spout.batch) emitted"
    assert sorted(spout.acked) == [("t", i) for i in range(16)], "acked in that round, not the next"
    assert not engine.spouts[0].pending
