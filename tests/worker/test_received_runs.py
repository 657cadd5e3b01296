"""A run received from another worker for a batch-aware bolt is queued whole (one ``Rows``
inbox item, no inbox item or ``Tuple`` per row until the drain), and the bolt sees exactly
what one item per tuple gave it: the same tuples in order, the same counts, the inbox's
length in tuples (backpressure and the worker's intake bound see the same), a drain bounded
in tuples, and a snapshot that carries the queued run."""

from __future__ import annotations

from typing import Any

import msgpack

from squall import Bolt, Spout, Topology, Tuple
from squall.supervisor.runtime.layout import FRAME_VERSION, Rows, encode_frame
from squall.supervisor.runtime.runs import RunInbox, take_runs
from squall.supervisor.transfer_codec import TupleCodec
from tests.runtime.runtime_helpers import by_task, pump, start_engine

NO_ACKERS = {"topology.acker.executors": 0}


class Numbers(Spout):
    outputs = ["n", "sq"]

    def next_tuple(self) -> None:
        pass


class Runs(Bolt):
    """Records each run it is handed and every tuple's slots."""

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.runs: list[list[tuple]] = []

    def process_many(self, tups: list[Tuple]) -> None:
        self.runs.append([(t.component, t.stream, t.task, t["n"], t["sq"], t.roots, t.done) for t in tups])


class PerTuple(Bolt):
    def initialize(self, conf: dict, ctx: Any) -> None:
        self.seen: list[int] = []

    def process(self, tup: Tuple) -> None:
        self.seen.append(tup["n"])


class Received(Topology):
    spout = Numbers.spec()
    many = Runs.spec(inputs=[spout])
    single = PerTuple.spec(inputs=[spout])


def receiving_engine(conf: dict | None = None) -> tuple[Any, TupleCodec, int, int, int]:
    """An engine running the two bolts (the spout on "another worker") and a codec feeding
    it as a worker's does: (engine, codec, spout task, batch-aware task, per-tuple task)."""
    spec = Received.spec
    executors = spec.executors_with_ackers(0)
    bolts = [e.id for e in executors if e.component != "spout"]
    engine = start_engine(Received, {**NO_ACKERS, **(conf or {})}, executor_ids=bolts, remote_sink=lambda _t: None)
    codec = TupleCodec(
        spec, executors, engine.wiring.local_tasks, engine.wiring.sinks, run_sinks=engine.wiring.inbox_run_sinks
    )
    (spout,) = spec.task_ranges()["spout"]
    (many,) = by_task(engine, "many")
    (single,) = by_task(engine, "single")
    return engine, codec, spout, many, single


def run_frame(target: int, spout: int, ns: list[int]) -> bytes:
    fields = {"n": 0, "sq": 1}
    frame, _ = encode_frame([(target, Rows("spout", "default", spout, [[n, n * n] for n in ns], fields))], _no_error)
    return frame


def _no_error(item: Any, exc: Exception) -> None:
    raise AssertionError(f"{item} could not be packed: {exc}")


def bolt(engine: Any, component: str) -> Any:
    return next(ex for ex in engine.bolts if ex.component == component)


def test_a_received_run_is_one_inbox_item_and_the_bolt_gets_every_tuple_in_order() -> None:
    engine, codec, spout, many, single = receiving_engine()
    assert codec.deliver(run_frame(many, spout, list(range(50)))) == (50, 0)
    assert codec.deliver(run_frame(single, spout, list(range(5)))) == (5, 0)
    ex = bolt(engine, "many")
    assert isinstance(ex.inbox, RunInbox)
    assert (deque_items(ex.inbox), len(ex.inbox)) == (1, 50), "one item, counted as its 50 tuples"
    assert engine.queued() == 55, "queued counts tuples, as with one item per tuple"
    assert deque_items(bolt(engine, "single").inbox) == 1, "acking off, a per-tuple bolt's run is one item too"
    pump(engine)
    (inst,) = by_task(engine, "many").values()
    assert inst.runs == [[("spout", "default", spout, n, n * n, None, False) for n in range(50)]]
    assert by_task(engine, "single")[single].seen == list(range(5))
    assert ex.stats.executed == 50
    assert ex.stats.received_from == {spout: 50}
    assert codec.received == 55


def test_a_run_of_one_row_is_queued_as_its_tuple() -> None:
    engine, codec, spout, many, _single = receiving_engine()
    codec.deliver(run_frame(many, spout, [7]))
    ex = bolt(engine, "many")
    ((task, payload),) = list(ex.inbox)
    assert (task, type(payload), payload.values, ex.inbox.extra) == (many, Tuple, [7, 49], 0)


def test_a_drain_takes_runs_up_to_its_limit_in_tuples_and_the_rest_stays_queued() -> None:
    engine, codec, spout, many, _single = receiving_engine({"squall.bolt.batch": 100})
    for start in range(0, 300, 60):
        codec.deliver(run_frame(many, spout, list(range(start, start + 60))))
    ex = bolt(engine, "many")
    assert len(ex.inbox) == 300
    assert ex.drain(100) == 120, "two runs of 60: the second passes the limit and is taken whole"
    assert (len(ex.inbox), deque_items(ex.inbox)) == (180, 3)
    assert engine.backpressured() is False
    pump(engine)
    (inst,) = by_task(engine, "many").values()
    assert [row[3] for run in inst.runs for row in run] == list(range(300))
    assert (len(ex.inbox), ex.inbox.extra) == (0, 0)


def test_take_runs_mixes_runs_and_single_tuples_in_order() -> None:
    inbox = RunInbox()
    fields = {"n": 0}
    inbox.append((1, "a"))
    inbox.put_run(1, Rows("s", "default", 3, [[1], [2], [3]], fields))
    inbox.append((1, "b"))
    assert len(inbox) == 5
    items, n = take_runs(inbox, 2)
    assert (len(items), n, len(inbox)) == (2, 4, 1)
    assert items[0] == (1, "a") and [v for v in items[1][1].rows] == [[1], [2], [3]]


def test_put_run_copies_the_list_it_is_given() -> None:
    inbox = RunInbox()
    rows = [[1], [2]]
    inbox.put_run(4, Rows("s", "default", 3, rows, {"n": 0}))
    rows.append([3])
    assert inbox[0][1].rows == [[1], [2]]


def test_a_snapshot_carries_a_queued_run_and_the_restored_bolt_gets_its_tuples() -> None:
    engine, codec, spout, many, _single = receiving_engine()
    codec.deliver(run_frame(many, spout, list(range(20))))
    ex = bolt(engine, "many")
    state = engine.remove_executor(ex.spec.id)
    assert many not in engine.wiring.inbox_run_sinks, "a task that left takes no run here"
    assert many not in engine.wiring.run_sinks, "nor from a local emit_many"
    other, _codec, *_ = receiving_engine()
    moved = bolt(other, "many")
    other.remove_executor(moved.spec.id)
    other.add_executor(moved.spec.id, state)
    assert len(bolt(other, "many").inbox) == 20
    pump(other)
    (inst,) = by_task(other, "many").values()
    assert [row[3] for run in inst.runs for row in run] == list(range(20))


def deque_items(inbox: Any) -> int:
    """Items in a deque, whatever its ``len`` counts."""
    return sum(1 for _ in inbox)


class Keeper(Bolt):
    """Keeps every 10th tuple object, and every 3rd run's list whole; records the values
    each tuple had when it was handed over."""

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.kept: list[tuple[Tuple, list]] = []
        self.lists: list[tuple[list[Tuple], list]] = []
        self.calls = 0
        self.ids: set[int] = set()

    def process_many(self, tups: list[Tuple]) -> None:
        self.calls += 1
        self.ids.update(id(t) for t in tups)
        for t in tups:
            if t["n"] % 10 == 0:
                self.kept.append((t, list(t.values)))
        if self.calls % 3 == 0:
            self.lists.append((tups, [list(t.values) for t in tups]))


class Keeping(Topology):
    spout = Numbers.spec()
    many = Keeper.spec(inputs=[spout])
    single = PerTuple.spec(inputs=[spout])


def test_tuples_a_bolt_keeps_are_never_reused_and_the_others_are() -> None:
    spec = Keeping.spec
    executors = spec.executors_with_ackers(0)
    bolts = [e.id for e in executors if e.component != "spout"]
    engine = start_engine(Keeping, NO_ACKERS, executor_ids=bolts, remote_sink=lambda _t: None)
    codec = TupleCodec(
        spec, executors, engine.wiring.local_tasks, engine.wiring.sinks, run_sinks=engine.wiring.inbox_run_sinks
    )
    (spout,) = spec.task_ranges()["spout"]
    (many,) = by_task(engine, "many")
    for start in range(0, 3000, 100):
        codec.deliver(run_frame(many, spout, list(range(start, start + 100))))
        pump(engine)
    inst = by_task(engine, "many")[many]
    assert inst.calls == 30
    assert len(inst.kept) == 300 and all(t.values == values for t, values in inst.kept), "a kept tuple is untouched"
    assert len(inst.lists) == 10
    for tups, values in inst.lists:
        assert [t.values for t in tups] == values, "a kept list's tuples are untouched"
    reused = bolt(engine, "many").inbox.reused
    # runs 1, 2, 4, 5, ..., 29 (20 of 30) leave their 90 unkept tuples to the next run; runs
    # 3, 6, ..., 30 (whose list the bolt keeps) none
    assert reused == 90 * 20, "every tuple nobody kept was used again by the next run"


def test_a_malformed_run_for_a_batch_aware_bolt_is_refused_whole_naming_the_field() -> None:
    engine, codec, spout, many, _single = receiving_engine()
    good = [[1, 1], [2, 4]]
    items = [
        [many, "default", spout, [[1, 1], [2]], None],  # a row of the wrong arity
        [many, "default", spout, [[1, 1], "x"], None],  # a row that is not a list
        [many, "default", spout, good, [None]],  # roots of the wrong length
        [many, "default", spout, good, None],
    ]
    frame = msgpack.packb([FRAME_VERSION, "", 0, 0, items])
    assert codec.deliver(frame) == (2, 3)
    assert dict(codec.bad_fields) == {"rows": 2, "roots": 1}
    ex = bolt(engine, "many")
    assert (deque_items(ex.inbox), len(ex.inbox)) == (1, 2), "only the good run is queued"
    pump(engine)
    (inst,) = by_task(engine, "many").values()
    assert [row[3] for run in inst.runs for row in run] == [1, 2]
