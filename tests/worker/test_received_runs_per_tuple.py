"""Acking off, a run received from another worker for a per-tuple bolt is queued whole (one
``Rows`` inbox item) and its rows reach ``process`` one by one as they did with one item per
tuple: the same tuples in order with every slot, the same counts, ticks and single tuples in
their places, an interrupted drain that puts back exactly the rows not handed over, and one
``Tuple`` per run reused from row to row unless the bolt keeps it."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest

from squall import Bolt, Spout, Topology, Tuple
from squall.supervisor.runtime.layout import Rows, encode_frame
from squall.supervisor.runtime.runs import RunInbox
from squall.supervisor.transfer import Outbox
from squall.supervisor.transfer_codec import TupleCodec
from squall.topology.component import TICK_SOURCE_TASK, TICK_STREAM
from tests.runtime.runtime_helpers import by_task, pump, start_engine

NO_ACKERS = {"topology.acker.executors": 0}
FIELDS = {"n": 0, "sq": 1}


class Numbers(Spout):
    outputs = ["n", "sq"]

    def next_tuple(self) -> None:
        pass


class Recorder(Bolt):
    """Records every tuple's slots as ``process`` sees them; keeps every tuple whose n is a
    multiple of ``keep_every`` (0: none); raises on ``fail_on``; ``stop_on`` raises
    KeyboardInterrupt (not a user error) once."""

    keep_every = 0
    fail_on: int | None = None
    stop_on: int | None = None

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.seen: list[tuple] = []
        self.kept: list[tuple[Tuple, list]] = []
        self.ticks = 0

    def process(self, tup: Tuple) -> None:
        n = tup["n"]
        if n == self.stop_on:
            type(self).stop_on = None
            raise KeyboardInterrupt
        self.seen.append((tup.component, tup.stream, tup.task, n, tup["sq"], tup.roots, tup.ack_val, tup.done))
        # what a careless bolt may do to a tuple it does not keep: the next row must not see it
        tup.stream = "scribbled"
        tup.done = True
        if self.keep_every and n % self.keep_every == 0:
            self.kept.append((tup, list(tup.values)))
        if n == self.fail_on:
            raise ValueError(f"bad row {n}")

    def process_tick(self, tup: Tuple) -> None:
        self.ticks += 1


class Chain(Topology):
    spout = Numbers.spec()
    single = Recorder.spec(inputs=[spout])


def receiving_engine(conf: dict | None = None) -> tuple[Any, TupleCodec, int, int]:
    """An engine running the bolt (the spout on "another worker") fed by a codec as a
    worker's is: (engine, codec, spout task, bolt task)."""
    spec = Chain.spec
    executors = spec.executors_with_ackers(0)
    bolts = [e.id for e in executors if e.component != "spout"]
    engine = start_engine(Chain, {**NO_ACKERS, **(conf or {})}, executor_ids=bolts, remote_sink=lambda _t: None)
    codec = TupleCodec(
        spec, executors, engine.wiring.local_tasks, engine.wiring.sinks, run_sinks=engine.wiring.inbox_run_sinks
    )
    (spout,) = spec.task_ranges()["spout"]
    (task,) = by_task(engine, "single")
    return engine, codec, spout, task


def run_frame(target: int, spout: int, ns: list[int]) -> bytes:
    frame, _ = encode_frame([(target, Rows("spout", "default", spout, [[n, n * n] for n in ns], FIELDS))], _no_error)
    return frame


def _no_error(item: Any, exc: Exception) -> None:
    raise AssertionError(f"{item} could not be packed: {exc}")


def executor(engine: Any) -> Any:
    return next(ex for ex in engine.bolts if ex.component == "single")


def expected(spout: int, ns: range | list[int]) -> list[tuple]:
    return [("spout", "default", spout, n, n * n, None, 0, False) for n in ns]


@pytest.fixture(autouse=True)
def _reset_recorder() -> Any:
    yield
    Recorder.keep_every = 0
    Recorder.fail_on = None
    Recorder.stop_on = None


def test_a_received_run_is_one_item_and_process_sees_every_tuple_in_order_with_its_slots() -> None:
    engine, codec, spout, task = receiving_engine()
    assert codec.deliver(run_frame(task, spout, list(range(40)))) == (40, 0)
    assert codec.deliver(run_frame(task, spout, list(range(40, 100)))) == (60, 0)
    ex = executor(engine)
    assert isinstance(ex.inbox, RunInbox)
    assert (deque.__len__(ex.inbox), len(ex.inbox), engine.queued()) == (2, 100, 100), "two items, 100 tuples"
    pump(engine)
    inst = by_task(engine, "single")[task]
    assert inst.seen == expected(spout, range(100)), "each row with fresh slots, whatever process did to the last"
    assert (ex.stats.executed, dict(ex.stats.received_from)) == (100, {spout: 100})
    assert ex.run_tuples_made == 1, "one Tuple for both runs of the drain: nobody kept it"
    assert (len(ex.inbox), ex.inbox.extra) == (0, 0)


def test_runs_single_tuples_and_ticks_keep_their_order() -> None:
    engine, codec, spout, task = receiving_engine()
    ex = executor(engine)
    codec.deliver(run_frame(task, spout, [0, 1, 2]))
    codec.deliver(run_frame(task, spout, [3]))  # a run of one row: queued as its Tuple
    tick = Tuple("__system", TICK_STREAM, TICK_SOURCE_TASK, [1], {"seconds": 0})
    ex.inbox.append((task, tick))
    codec.deliver(run_frame(task, spout, [4, 5]))
    other = Tuple("spout", "default", spout + 100, [6, 36], FIELDS)  # another source task
    ex.inbox.append((task, other))
    assert len(ex.inbox) == 8
    pump(engine)
    inst = by_task(engine, "single")[task]
    assert [row[3] for row in inst.seen] == [0, 1, 2, 3, 4, 5, 6]
    assert inst.ticks == 1
    assert dict(ex.stats.received_from) == {spout: 6, spout + 100: 1}
    assert ex.stats.executed == 8


def test_tuples_the_bolt_keeps_are_never_reused_and_the_others_are() -> None:
    Recorder.keep_every = 7
    engine, codec, spout, task = receiving_engine()
    codec.deliver(run_frame(task, spout, list(range(100))))
    pump(engine)
    inst = by_task(engine, "single")[task]
    assert len(inst.kept) == 15
    assert all(t.values == values for t, values in inst.kept), "a kept tuple keeps its row"
    assert len({id(t) for t, _ in inst.kept}) == 15, "each kept tuple is its own object"
    assert executor(engine).run_tuples_made == 1 + 15, "one to start, one after each kept row"
    assert inst.seen == expected(spout, range(100))


def test_a_user_error_fails_its_row_only_and_the_tuple_its_traceback_holds_is_not_reused() -> None:
    Recorder.fail_on = 5
    engine, codec, spout, task = receiving_engine()
    codec.deliver(run_frame(task, spout, list(range(10))))
    pump(engine)
    ex = executor(engine)
    inst = by_task(engine, "single")[task]
    assert inst.seen == expected(spout, range(10))
    assert ex.stats.errors == 1 and ex.first_error is not None
    # the kept error's traceback refers to row 5's Tuple: it must still be row 5
    frame = ex.first_error[2].__traceback__
    while frame.tb_next is not None:
        frame = frame.tb_next
    assert frame.tb_frame.f_locals["tup"].values == [5, 25]
    assert ex.run_tuples_made == 2


def test_an_interrupted_drain_puts_back_the_rows_not_handed_over_then_the_rest_in_order() -> None:
    Recorder.stop_on = 13
    engine, codec, spout, task = receiving_engine()
    ex = executor(engine)
    codec.deliver(run_frame(task, spout, list(range(20))))
    codec.deliver(run_frame(task, spout, list(range(20, 30))))
    with pytest.raises(KeyboardInterrupt):
        ex.drain(1000)
    inst = by_task(engine, "single")[task]
    assert [row[3] for row in inst.seen] == list(range(13))
    # row 13 reached process (as a tuple item does, it is not put back); 14..29 wait
    assert len(ex.inbox) == 16
    assert dict(ex.stats.received_from) == {spout: 14}
    pump(engine)
    assert [row[3] for row in inst.seen] == [n for n in range(30) if n != 13]
    assert dict(ex.stats.received_from) == {spout: 30}
    assert (len(ex.inbox), ex.inbox.extra) == (0, 0)


def test_a_snapshot_carries_a_queued_run_for_a_per_tuple_bolt() -> None:
    engine, codec, spout, task = receiving_engine()
    codec.deliver(run_frame(task, spout, list(range(25))))
    state = engine.remove_executor(_bolt_id())
    other, *_ = receiving_engine()
    other.remove_executor(executor(other).spec.id)
    other.add_executor(_bolt_id(), state)
    assert len(executor(other).inbox) == 25
    pump(other)
    assert by_task(other, "single")[task].seen == expected(spout, range(25))


def _bolt_id() -> int:
    (e,) = [e for e in Chain.spec.executors_with_ackers(0) if e.component == "single"]
    return e.id


def test_with_acking_on_a_per_tuple_bolt_gets_one_item_per_tuple() -> None:
    spec = Chain.spec
    executors = spec.executors_with_ackers(1)
    local = [e.id for e in executors if e.component != "spout"]
    engine = start_engine(Chain, {"topology.acker.executors": 1}, executor_ids=local, remote_sink=lambda _t: None)
    ex = executor(engine)
    assert type(ex.inbox) is deque, "tracked runs come tuple by tuple; the acking drain takes no Rows"
    assert not any(t in engine.wiring.inbox_run_sinks for t in ex.spec.tasks)


def test_a_drain_takes_exactly_its_limit_cutting_the_run_that_crosses_it() -> None:
    engine, codec, spout, task = receiving_engine({"squall.bolt.batch": 250})
    for start in range(0, 500, 100):
        codec.deliver(run_frame(task, spout, list(range(start, start + 100))))
    ex = executor(engine)
    assert ex.drain(250) == 250, "two runs and half of the third"
    assert (len(ex.inbox), deque.__len__(ex.inbox)) == (250, 3), "the third run's rest first, then two runs"
    assert ex.drain(49) == 49
    assert ex.drain(1) == 1, "the third run's last row, left as its Tuple"
    assert (len(ex.inbox), ex.inbox.extra) == (200, 198)
    pump(engine)
    inst = by_task(engine, "single")[task]
    assert inst.seen == expected(spout, range(500))
    assert ex.stats.executed == 500


def test_a_spout_s_untracked_emit_to_another_worker_s_task_leaves_as_a_row_and_arrives_the_same() -> None:
    spec = Chain.spec
    executors = spec.executors_with_ackers(0)
    (spout_id,) = [e.id for e in executors if e.component == "spout"]
    frames: list[bytes] = []
    box = Outbox(lambda _endpoint, frame: frames.append(frame) or True, lambda: 0.0, batch_size=8)
    engine, codec, spout, task = receiving_engine()
    box.place({task: "b:1"})
    items: list[Any] = []

    def counted_put(item: Any) -> None:
        items.append(item)
        box.put(item)

    sender = start_engine(
        Chain,
        NO_ACKERS,
        executor_ids=[spout_id],
        remote_sink=lambda _t: counted_put,
        remote_row_sink=lambda _t: box.put_row,
    )
    inst = by_task(sender, "spout")[spout]
    for n in range(20):
        assert inst.emit([n, n * n], tup_id=n if n % 2 else None) == [task]
    box.flush(idle=True)
    assert items == [], "no Tuple and no inbox item on the sending side"
    assert box.sent_items == 20 and len(frames) == 3, "frames of 8 tuples: 8, 8 and 4"
    for frame in frames:
        codec.deliver(frame)
    pump(engine)
    assert by_task(engine, "single")[task].seen == expected(spout, range(20))
    ex = sender.by_id[spout_id]
    ex.add_route_counts()
    assert (ex.stats.emitted["default"], ex.emit_count) == (20, 20)
