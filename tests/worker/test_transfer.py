"""The transfer codec and outbox, without sockets: round trips of data tuples and acker items
through the outbox's one sink, rejection of malformed input, batching by size and by delay on
an injected clock, holding and forwarding for live migration."""

from __future__ import annotations

import msgpack
import pytest

from squall.supervisor.runtime.layout import source_of
from squall.supervisor.runtime.messages import ACK_ACK, ACK_FAIL, ACK_INIT, TREE_COMPLETE, TREE_FAILED
from squall.supervisor.transfer import FRAME_VERSION, Outbox, TupleCodec, encode_frame
from squall.topology.component import Tuple
from tests.worker.worker_helpers import user_module

_app = user_module("chain_app")
Chain, Unpicklable = _app.Chain, _app.Unpicklable


SPEC = Chain.spec
EXECUTORS = SPEC.executors_with_ackers(1)  # middle 1,2; sink 3; spout 4; acker 5 (tasks)
MIDDLE, SINK, SPOUT, ACKER = 1, 3, 4, 5


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Wire:
    """Collects sent frames; refuses them while ``accept`` is False."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, bytes]] = []
        self.accept = True

    def __call__(self, endpoint: str, frame: bytes) -> bool:
        if self.accept:
            self.frames.append((endpoint, frame))
        return self.accept


def receiver(local_tasks=(MIDDLE, SINK, SPOUT, ACKER)):
    got: list[tuple[int, object]] = []
    sinks = {t: got.append for t in local_tasks}
    return TupleCodec(SPEC, EXECUTORS, local_tasks, sinks), sinks, got


def outbox(wire: Wire, clock: Clock, **kw) -> Outbox:
    box = Outbox(wire, clock, **kw)
    box.place({MIDDLE: "b:1", SINK: "b:1", SPOUT: "a:1", ACKER: "a:1"})
    return box


def test_data_tuples_round_trip_with_and_without_roots():
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock)
    sink = box.put
    fields = {"n": 0, "ts": 1}
    sink((MIDDLE, Tuple("spout", "default", SPOUT, [7, 1.5], fields)))
    sink((MIDDLE, Tuple("spout", "default", SPOUT, (8, "x"), fields, {2**64 - 1: 12345})))
    box.flush(idle=True)
    codec, sinks, got = receiver()
    ((endpoint, frame),) = wire.frames
    assert endpoint == "b:1"
    assert codec.deliver(frame) == (2, 0)
    (t1, a), (t2, b) = got
    assert (t1, a.component, a.stream, a.task, a.values, a.roots) == (MIDDLE, "spout", "default", SPOUT, [7, 1.5], None)
    assert (t2, b.values, b.roots, b["ts"]) == (MIDDLE, [8, "x"], {2**64 - 1: 12345}, "x")


@pytest.mark.parametrize(
    "target,msg",
    [
        (ACKER, (ACK_INIT, 2**63, 2**64 - 1, SPOUT)),
        (ACKER, (ACK_ACK, 1, 99)),
        (ACKER, (ACK_FAIL, 1)),
        (SPOUT, (TREE_COMPLETE, 2**64 - 1)),
        (SPOUT, (TREE_FAILED, 3)),
    ],
    ids=["ack init", "ack ack", "ack fail", "tree complete", "tree failed"],
)
def test_acker_items_round_trip(target, msg):
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock)
    box.put((target, msg))
    box.flush(idle=True)
    codec, sinks, got = receiver()
    assert codec.deliver(wire.frames[0][1]) == (1, 0)
    assert got == [(target, msg)]


def test_batches_flush_at_batch_size():
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock, batch_size=3)
    sink = box.put
    for i in range(7):
        sink((ACKER, (ACK_FAIL, i)))
    assert [len(msgpack.unpackb(f)[1]) for _, f in wire.frames] == [3, 3]
    assert box.pending() == 1


def test_batches_flush_after_delay_on_the_injected_clock():
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock, batch_size=100, flush_ms=2.0)
    sink = box.put
    sink((ACKER, (ACK_FAIL, 1)))
    clock.now += 0.001
    sink((ACKER, (ACK_FAIL, 2)))
    assert box.flush() == 0, "oldest item is 1 ms old, below 2 ms"
    clock.now += 0.0015
    assert box.flush() == 1
    assert len(msgpack.unpackb(wire.frames[0][1])[1]) == 2


def test_idle_flush_sends_at_once_one_frame_per_destination():
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock, batch_size=100, flush_ms=1000)
    box.put((ACKER, (ACK_FAIL, 1)))
    box.put((SPOUT, (TREE_FAILED, 1)))
    box.put((ACKER, (ACK_FAIL, 2)))
    assert box.flush(idle=True) == 1  # both acker and spout tasks live on a:1
    box.put((MIDDLE, Tuple("spout", "default", SPOUT, [1, 2], {})))
    assert box.flush(idle=True) == 1
    assert [e for e, _ in wire.frames] == ["a:1", "b:1"]


def test_placement_change_reroutes_and_unplaced_tasks_are_dropped_and_counted():
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock)
    sink = box.put
    box.place({ACKER: "c:9"})
    sink((ACKER, (ACK_FAIL, 1)))
    box.flush(idle=True)
    assert [e for e, _ in wire.frames] == ["c:9"]
    box.place({ACKER: None})
    sink((ACKER, (ACK_FAIL, 2)))
    box.flush(idle=True)
    assert len(wire.frames) == 1 and box.dropped_items == 1


def test_a_refused_frame_waits_in_the_backlog_in_order_then_the_oldest_are_dropped():
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock, batch_size=1, backlog_frames=2)
    sink = box.put
    wire.accept = False
    for i in range(3):
        sink((ACKER, (ACK_FAIL, i)))
    assert box.congested() and box.dropped_items == 1
    wire.accept = True
    box.flush()
    assert not box.congested()
    assert [msgpack.unpackb(f)[1][0][2] for _, f in wire.frames] == [1, 2]


def test_re_routing_away_from_a_refusing_worker_ends_the_congestion():
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock, batch_size=1)
    wire.accept = False
    box.put((ACKER, (ACK_FAIL, 1)))
    assert box.congested()
    box.place({MIDDLE: "b:1", SINK: "b:1", SPOUT: "c:1", ACKER: "c:1"})
    assert not box.congested() and box.dropped_items == 1


def test_an_unserialisable_value_drops_only_its_item_and_names_its_source():
    errors = []
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock, on_error=lambda item, exc: errors.append(source_of(item)))
    sink = box.put
    for v in (1, Unpicklable(), 3):
        sink((MIDDLE, Tuple("spout", "default", SPOUT, [v, 0.0], {})))
    box.flush(idle=True)
    codec, sinks, got = receiver()
    assert codec.deliver(wire.frames[0][1]) == (2, 0)
    assert [tup.values[0] for _, tup in got] == [1, 3]
    assert errors == [(SPOUT, "default")]
    assert encode_frame([], errors.append)[1] == 0


def frame(*items) -> bytes:
    return msgpack.packb([FRAME_VERSION, list(items)])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1garbage",
        msgpack.packb({"not": "a frame"}),
        msgpack.packb([FRAME_VERSION + 1, []]),
        msgpack.packb([FRAME_VERSION, "items"]),
    ],
    ids=["empty", "not msgpack", "a map", "other version", "items not a list"],
)
def test_malformed_frames_are_counted_not_raised(data):
    codec, sinks, got = receiver()
    assert codec.deliver(data) == (0, 1)
    assert got == []


@pytest.mark.parametrize(
    "item",
    [
        [99, "default", SPOUT, [1, 2], None],
        [MIDDLE, "default", SPOUT, [1, 2], None, "extra"],
        [SPOUT, "default", SPOUT, [1, 2], None],
        [MIDDLE, "nostream", SPOUT, [1, 2], None],
        [MIDDLE, "default", 77, [1, 2], None],
        [MIDDLE, "default", SPOUT, [1], None],
        [MIDDLE, "default", SPOUT, "12", None],
        [MIDDLE, "default", SPOUT, [1, 2], {1: "x"}],
        [MIDDLE, ACK_ACK, 1, 2],
        [ACKER, TREE_COMPLETE, 1],
        [ACKER, ACK_INIT, 1, 2],
        [ACKER, ACK_ACK, 1, "x"],
        [SPOUT, 42, 1],
        "not a list",
        [MIDDLE],
    ],
    ids=[
        "task not here",
        "data arity",
        "data for a spout",
        "unknown stream",
        "unknown source",
        "wrong value count",
        "values not a list",
        "bad roots",
        "ack for a bolt",
        "outcome for the acker",
        "short init",
        "non-int ack",
        "unknown kind",
        "not a list",
        "too short",
    ],
)
def test_bad_items_are_dropped_and_good_neighbours_delivered(item):
    codec, sinks, got = receiver(local_tasks=(MIDDLE, SPOUT, ACKER))
    good = [ACKER, ACK_FAIL, 5]
    assert codec.deliver(frame(good, item, good)) == (2, 1)
    assert got == [(ACKER, (ACK_FAIL, 5))] * 2


# -- live migration: hold and forward ------------------------------------------------------


def test_items_for_a_task_in_transit_are_held_in_order_then_follow_it():
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock)
    sink = box.put
    box.place({MIDDLE: "", SINK: "b:1"})
    for n in range(3):
        sink((MIDDLE, Tuple("spout", "default", SPOUT, [n, 0.0], {})))
    box.flush(idle=True)
    assert wire.frames == [] and box.held() == 3 and box.pending() == 3
    assert box.place({MIDDLE: "c:2", SINK: "b:1"}) == []
    box.flush(idle=True)
    ((endpoint, data),) = wire.frames
    assert endpoint == "c:2" and [i[3][0] for i in msgpack.unpackb(data)[1]] == [0, 1, 2]
    assert box.held() == 0 and box.sent_items == 3


def test_held_items_for_a_task_that_became_local_come_back_to_the_caller():
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock)
    box.place({MIDDLE: "", SINK: "b:1"})
    box.put((MIDDLE, Tuple("spout", "default", SPOUT, [5, 0.0], {})))
    back = box.place({SINK: "b:1"})  # MIDDLE is local now: no route
    assert [(t, tup.stream, tup.task, tup.values) for t, tup in back] == [(MIDDLE, "default", SPOUT, [5, 0.0])]
    codec, _sinks, got = receiver()
    assert codec.deliver_local(back) == 1 and got[0][1].values == [5, 0.0]


def test_the_hold_is_bounded_and_counts_what_it_refuses():
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock, batch_size=4, hold_limit=10)
    box.place({MIDDLE: ""})
    sink = box.put
    for n in range(25):
        sink((MIDDLE, Tuple("spout", "default", SPOUT, [n, 0.0], {})))
    box.flush(idle=True)
    assert box.held() == 10 and box.held_dropped == 15 and wire.frames == []


def test_an_item_for_a_task_not_local_is_forwarded_not_counted_bad():
    forwarded: list = []
    got: list = []
    codec = TupleCodec(SPEC, EXECUTORS, (SINK,), {SINK: got.append}, forward=forwarded.append)
    data = frame([MIDDLE, "default", SPOUT, [1, 2.0], None], [SPOUT, TREE_COMPLETE, 9], [999, "default", 4, [1], None])
    assert codec.deliver(data) == (2, 1), "two forwarded, the unknown task is bad"
    (t1, tup), control = forwarded
    assert (t1, tup.component, tup.stream, tup.task, tup.values, tup.roots) == (
        MIDDLE,
        "spout",
        "default",
        SPOUT,
        [1, 2.0],
        None,
    )
    assert control == (SPOUT, (TREE_COMPLETE, 9))
    assert codec.received == 3 and codec.forwarded == 2 and got == []
    bad_kind = frame([SPOUT, "default", SPOUT, [1, 2.0], None])  # a data tuple for a spout
    assert codec.deliver(bad_kind) == (0, 1)
