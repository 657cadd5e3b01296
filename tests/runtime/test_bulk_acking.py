"""Bulk acking: a bolt's acks and fails of one drain reach each acker as one ``ACK_BULK``, a
spout task's new trees of one step as one ``ACK_INIT_BULK``, an acker's outcomes for a spout
task as one ``TREES_DONE``. A bulk must mean exactly its single messages applied in order:
a tree completes exactly when its XOR reaches zero with its init known (also in the middle of
a bulk), fails on a fail or a timeout, and is reported once."""

from __future__ import annotations

import random
from typing import Any

import pytest

from squall import Bolt, Grouping, Spout, Tuple
from squall.supervisor.runtime.acker import AckerExecutor
from squall.supervisor.runtime.engine import Wiring
from squall.supervisor.runtime.layout import ItemReader, write
from squall.supervisor.runtime.messages import (
    ACK_ACK,
    ACK_BULK,
    ACK_FAIL,
    ACK_INIT,
    ACK_INIT_BULK,
    TREE_COMPLETE,
    TREE_FAILED,
    TREES_DONE,
)
from squall.topology import TopologySpec
from squall.topology.spec import ACKER_COMPONENT, ComponentSpec, ExecutorSpec, StreamSpec
from squall.topology.testing import CollectBolt
from tests.runtime.runtime_helpers import FakeClock, instances, only, pump, start_engine
from tests.runtime.test_acking import Relay, items_spout, run_on_fake_clock, topology

SPOUT_TASK, ACKER_TASK = 1, 2
SPEC = TopologySpec("t", (ComponentSpec("s", "spout", "m:S", outputs=(StreamSpec("default", ("x",)),)),))


def _acker(clock: FakeClock | None = None, timeout_s: float = 30.0) -> tuple[AckerExecutor, list[Any]]:
    wiring = Wiring(SPEC, [ACKER_TASK], frozenset({SPOUT_TASK, ACKER_TASK}), clock or FakeClock(), 0)
    to_spout: list[Any] = []
    wiring.sinks[SPOUT_TASK] = to_spout.append
    acker = AckerExecutor(ExecutorSpec(1, ACKER_COMPONENT, ACKER_TASK, ACKER_TASK), wiring, timeout_s)
    return acker, to_spout


def _feed(acker: AckerExecutor, *messages: tuple) -> int:
    for msg in messages:
        acker.inbox.append((ACKER_TASK, msg))
    return acker.drain(1000)


def _outcomes(out: list[Any]) -> tuple[list[int], list[int]]:
    """(completed roots, failed roots) of every notice the acker sent, in order."""
    ok: list[int] = []
    bad: list[int] = []
    for task, msg in out:
        assert task == SPOUT_TASK
        if msg[0] == TREES_DONE:
            ok += msg[1]
            bad += msg[2]
        elif msg[0] == TREE_COMPLETE:
            ok.append(msg[1])
        else:
            assert msg[0] == TREE_FAILED
            bad.append(msg[1])
    return ok, bad


def test_mixed_acks_and_fails_in_one_bulk_give_one_notice_with_both() -> None:
    acker, out = _acker()
    # Trees 10 (edges 1, 2), 20 (edge 4), 30 (edge 8) started in one step: one bulk init.
    _feed(acker, (ACK_INIT_BULK, SPOUT_TASK, [10, 1 ^ 2, 20, 4, 30, 8]))
    assert out == [] and len(acker.current) == 3
    # One drain of a bolt: 10 fully acked, 20 failed, 30 half acked (a child edge 16 left).
    executed = _feed(acker, (ACK_BULK, [10, 1, 30, 8 ^ 16, 10, 2], [20]))
    assert executed == 4, "a bulk counts its acks and fails, as singles did"
    assert out == [(SPOUT_TASK, (TREES_DONE, [10], [20]))]
    assert acker.stats.acked == 1 and acker.stats.failed == 1
    assert acker.stats.sent_control[SPOUT_TASK] == 2, "counted per outcome"
    assert list(acker.current) == [30]
    _feed(acker, (ACK_BULK, [30, 16], []))
    assert out[-1] == (SPOUT_TASK, (TREE_COMPLETE, 30)), "one outcome goes in its single form"


def test_a_tree_completes_in_the_middle_of_a_bulk_and_a_later_ack_does_not_revive_it() -> None:
    acker, out = _acker()
    _feed(acker, (ACK_INIT, 10, 1 ^ 2, SPOUT_TASK), (ACK_INIT, 20, 4, SPOUT_TASK))
    # 10 reaches zero at the second pair; pairs after it (for 20, and a stray ack for 10 that
    # a single ACK_ACK would also have turned into a new entry) still apply.
    _feed(acker, (ACK_BULK, [10, 1, 10, 2, 20, 4, 10, 64], []))
    ok, bad = _outcomes(out)
    assert ok == [10, 20] and bad == []
    assert acker.current == {10: [64, -1, False]}, "the stray ack is kept as a single ack would be"


def test_acks_beating_a_bulk_init_across_a_rotation_still_complete_it() -> None:
    clock = FakeClock()
    acker, out = _acker(clock, timeout_s=1.0)
    _feed(acker, (ACK_BULK, [10, 1, 20, 4], []))  # the acks arrive first (another worker)
    clock.advance(1.0)
    acker.rotate(clock())
    assert set(acker.previous) == {10, 20} and not acker.current
    _feed(acker, (ACK_INIT_BULK, SPOUT_TASK, [10, 1, 20, 4 ^ 8, 30, 0]))
    ok, bad = _outcomes(out)
    assert ok == [10, 30], "10 complete from the old generation; 30's init of value zero at once"
    assert bad == [] and set(acker.previous) == {20} and acker.previous[20][0] == 8


def test_a_fail_that_beat_a_bulk_init_is_reported_when_the_init_arrives() -> None:
    acker, out = _acker()
    _feed(acker, (ACK_FAIL, 10))
    assert out == []
    _feed(acker, (ACK_INIT_BULK, SPOUT_TASK, [10, 3, 20, 5]))
    assert _outcomes(out) == ([], [10])
    assert list(acker.current) == [20]


def _singles(msgs: list[tuple]) -> list[tuple]:
    """The single messages a list of (possibly bulk) messages stands for, in order."""
    out: list[tuple] = []
    for m in msgs:
        if m[0] == ACK_BULK:
            out += [(ACK_ACK, r, x) for r, x in zip(m[1][::2], m[1][1::2])] + [(ACK_FAIL, r) for r in m[2]]
        elif m[0] == ACK_INIT_BULK:
            out += [(ACK_INIT, r, x, m[1]) for r, x in zip(m[2][::2], m[2][1::2])]
        else:
            out.append(m)
    return out


@pytest.mark.parametrize("seed", range(20))
def test_bulks_mean_exactly_their_single_messages_in_any_order(seed: int) -> None:
    """Random trees (some failed), their messages shuffled (acks before inits too) and
    grouped into random bulks: the outcomes and what the acker keeps are those of the same
    messages fed one by one."""
    rng = random.Random(seed)
    msgs: list[tuple] = []
    for root in range(1, 41):
        edges = [rng.getrandbits(64) for _ in range(rng.randint(1, 4))]
        msgs.append((ACK_INIT, root, _xor(edges), SPOUT_TASK))
        for e in edges:
            if rng.random() < 0.9:  # some edges never acked: the tree stays pending
                msgs.append((ACK_ACK, root, e))
        if rng.random() < 0.15:
            msgs.append((ACK_FAIL, root))
    rng.shuffle(msgs)
    bulks: list[tuple] = []
    i = 0
    while i < len(msgs):
        size = rng.randint(1, 6)
        group = msgs[i : i + size]
        i += size
        acks = [m for m in group if m[0] != ACK_INIT]
        inits = [m for m in group if m[0] == ACK_INIT]
        # a bulk's fails apply after its acks: keep each group's order meaningful by putting
        # the acks of a group that holds a fail in singles
        if acks and not any(m[0] == ACK_FAIL for m in acks):
            bulks.append((ACK_BULK, [v for m in acks for v in m[1:]], []))
        else:
            bulks += acks
        if inits:
            bulks.append((ACK_INIT_BULK, SPOUT_TASK, [v for m in inits for v in m[1:3]]))
    one_by_one, out_single = _acker()
    for m in _singles(bulks):
        _feed(one_by_one, m)
    bulked, out_bulk = _acker()
    for m in bulks:
        _feed(bulked, m)
    assert sorted(_outcomes(out_bulk)[0]) == sorted(_outcomes(out_single)[0])
    assert sorted(_outcomes(out_bulk)[1]) == sorted(_outcomes(out_single)[1])
    assert bulked.current == one_by_one.current
    assert bulked.stats.executed == one_by_one.stats.executed == len(_singles(bulks))
    done = _outcomes(out_bulk)[0] + _outcomes(out_bulk)[1]
    assert len(done) == len(set(done)), "no tree reported twice"


def _xor(values: list[int]) -> int:
    x = 0
    for v in values:
        x ^= v
    return x


# -- through the engine --------------------------------------------------------------------


class Recorder:
    """Wraps an acker task's sink to record every message sent to it."""

    def __init__(self, engine: Any) -> None:
        (self.task,) = engine.wiring.acker_tasks
        self.inner = engine.wiring.sinks[self.task]
        self.msgs: list[tuple] = []
        engine.wiring.sinks[self.task] = self

    def __call__(self, item: tuple[int, Any]) -> None:
        self.msgs.append(item[1])
        self.inner(item)


def test_a_chain_sends_its_acks_and_inits_in_bulk_and_every_tree_completes_once() -> None:
    spout = items_spout(300).spec()
    relay = Relay.spec(inputs=[spout])
    sink = Relay.spec(inputs=[relay])
    clock = FakeClock()
    engine = start_engine(topology(spout=spout, relay=relay, sink=sink), {"squall.spout.batch": 100}, clock=clock)
    rec = Recorder(engine)
    pump(engine)
    s = only(engine, "spout")
    assert sorted(s.acked) == list(range(300)) and s.failed == []
    kinds = [m[0] for m in rec.msgs]
    assert ACK_INIT_BULK in kinds and ACK_BULK in kinds
    assert len(rec.msgs) < 300, "far fewer messages than trees"
    singles = _singles(rec.msgs)
    assert sum(1 for m in singles if m[0] == ACK_INIT) == 300
    assert sum(1 for m in singles if m[0] == ACK_ACK) == 600  # relay's and sink's acks
    (acker,) = engine.ackers
    assert acker.stats.executed == 900 and not acker.current and not acker.previous


class FailOdd(Bolt):
    """Fails odd inputs, acks even ones (auto-ack)."""

    def process(self, tup: Tuple) -> None:
        if tup.values[0] % 2:
            self.fail(tup)


def test_fails_and_acks_of_one_drain_reach_the_spout_exactly_once() -> None:
    spout = items_spout(50).spec()
    judge = FailOdd.spec(inputs=[spout])
    engine, _ = run_on_fake_clock({"squall.spout.batch": 50}, spout=spout, judge=judge)
    s = only(engine, "spout")
    assert sorted(s.acked) == list(range(0, 50, 2))
    assert sorted(s.failed) == list(range(1, 50, 2))


class HoldThenAckAll(Bolt):
    """Holds every input; acks all it holds in one go when told (one drain: one bulk)."""

    auto_ack = False

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.held: list[Tuple] = []
        self.release = False

    def process(self, tup: Tuple) -> None:
        self.held.append(tup)
        if self.release:
            for t in self.held:
                self.ack(t)
            self.held = []


def test_a_bulk_of_acks_for_trees_some_timed_out_completes_only_the_others() -> None:
    spout = items_spout(7).spec()
    hold = HoldThenAckAll.spec(inputs=[spout])
    clock = FakeClock()
    engine = start_engine(
        topology(spout=spout, hold=hold),
        {"topology.message.timeout.secs": 1.0, "squall.spout.batch": 3, "topology.max.spout.pending": 3},
        clock=clock,
    )
    rec = Recorder(engine)
    s = only(engine, "spout")
    h = only(engine, "hold")
    pump(engine)  # trees 0-2 start and are held; max pending stops the spout
    assert len(h.held) == 3
    clock.advance(1.1)
    engine.run_timers(clock())  # the spout times 0-2 out (the acker still knows them)
    assert sorted(s.failed) == [0, 1, 2] and s.acked == []
    h.release = True
    pump(engine)  # 3-5 arrive in one drain: 0-5 acked in one bulk, then 6
    bulk = next(m for m in rec.msgs if m[0] == ACK_BULK)
    assert len(bulk[1]) == 12, "the held acks of 0-2 and those of 3-5 in one message"
    assert sorted(s.failed) == [0, 1, 2], "a late completion of a timed-out tree is ignored"
    assert sorted(s.acked) == [3, 4, 5, 6]
    assert not engine.spouts[0].pending and not engine.ackers[0].current


def test_an_ack_outside_a_drain_is_sent_at_once() -> None:
    spout = items_spout(2).spec()
    hold = HoldThenAckAll.spec(inputs=[spout])
    engine, _ = run_on_fake_clock({}, spout=spout, hold=hold)
    h = only(engine, "hold")
    assert len(h.held) == 2
    for t in h.held:
        h.ack(t)  # from outside the engine's round: no drain to send them at its end
    (acker,) = engine.ackers
    assert len(acker.inbox) == 2
    pump(engine)
    assert sorted(only(engine, "spout").acked) == [0, 1]


# -- on the wire ---------------------------------------------------------------------------

BULKS = [
    (ACKER_TASK, (ACK_BULK, [2**64 - 1, 5, 7, 9], [3])),
    (ACKER_TASK, (ACK_INIT_BULK, SPOUT_TASK, [1, 2, 3, 4])),
    (SPOUT_TASK, (TREES_DONE, [1, 2], [3])),
    (SPOUT_TASK, (TREES_DONE, [], [])),
]


def _read(rows: list) -> tuple[list, int]:
    got: list = []
    control = {SPOUT_TASK: ("spout", got.append), ACKER_TASK: ("acker", got.append)}
    delivered, bad = ItemReader(SPEC).read(rows, {}, control)
    assert delivered == len(got)
    return got, bad


def test_bulk_items_read_back_as_written() -> None:
    assert _read([list(r) for r in write(BULKS)]) == (BULKS, 0)


@pytest.mark.parametrize(
    "row",
    [
        [ACKER_TASK, ACK_BULK, [1, 2, 3], []],  # an odd number of pair values
        [ACKER_TASK, ACK_BULK, [1, 2.5], []],
        [ACKER_TASK, ACK_BULK, [1, 2]],  # no fails list
        [ACKER_TASK, ACK_INIT_BULK, "1", [1, 2]],
        [ACKER_TASK, ACK_INIT_BULK, SPOUT_TASK, [1]],
        [SPOUT_TASK, ACK_BULK, [1, 2], []],  # acks for a spout
        [ACKER_TASK, TREES_DONE, [1], []],  # outcomes for the acker
        [SPOUT_TASK, TREES_DONE, [1], "x"],
        [SPOUT_TASK, 99, [1], []],  # no such kind
    ],
)
def test_malformed_bulk_items_are_counted_bad(row: list) -> None:
    good = [SPOUT_TASK, TREES_DONE, [5], []]
    got, bad = _read([row, good])
    assert bad == 1 and got == [(SPOUT_TASK, (TREES_DONE, [5], []))]


class MixedRunSpout(Spout):
    """Emits one list of 10 with ``emit_many``: even tuples tracked, odd ones untracked."""

    outputs = ["n"]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.done = False
        self.acked: list[int] = []

    def next_tuple(self) -> None:
        if not self.done:
            self.done = True
            self.emit_many([[i] for i in range(10)], tup_ids=[i if i % 2 == 0 else None for i in range(10)])

    def ack(self, tup_id: Any) -> None:
        self.acked.append(tup_id)


@pytest.mark.parametrize("grouping", ["shuffle", "fields"])
def test_a_list_of_tracked_and_untracked_tuples_starts_only_the_tracked_trees(grouping: str) -> None:
    spout = MixedRunSpout.spec()
    relay = RelayMany.spec(inputs={spout: Grouping.SHUFFLE if grouping == "shuffle" else Grouping.fields("n")})
    sink = CollectBolt.spec(inputs=[relay], par=2)
    engine, _ = run_on_fake_clock({}, spout=spout, relay=relay, sink=sink)
    assert sorted(v for inst in instances(engine, "sink") for (v,) in inst.received) == list(range(10))
    assert sorted(only(engine, "spout").acked) == [0, 2, 4, 6, 8]
    (acker,) = engine.ackers
    assert acker.stats.acked == 5 and not acker.current and not engine.spouts[0].pending


class RelayMany(Bolt):
    """Forwards its run with ``emit_many``, each output anchored to its input."""

    outputs = ["n"]

    def process_many(self, tups: list[Tuple]) -> None:
        self.emit_many([t.values for t in tups], anchors_each=tups)
