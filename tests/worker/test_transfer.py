"""The transfer codec and outbox, without sockets: round trips of data tuples and acker items
through the outbox's one sink, rejection of malformed input, batching by size and by delay on
an injected clock, holding and forwarding for live migration."""

from __future__ import annotations

import msgpack
import pytest

from squall.supervisor.runtime.layout import Rows, source_of
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
    assert [len(msgpack.unpackb(f)[-1]) for _, f in wire.frames] == [3, 3]
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
    assert len(msgpack.unpackb(wire.frames[0][1])[-1]) == 2


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
    assert [msgpack.unpackb(f)[-1][0][2] for _, f in wire.frames] == [1, 2]


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
    return msgpack.packb([FRAME_VERSION, "", 0, 0, list(items)])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1garbage",
        msgpack.packb({"not": "a frame"}),
        msgpack.packb([FRAME_VERSION + 1, []]),
        msgpack.packb([FRAME_VERSION, "items"]),
        msgpack.packb([FRAME_VERSION, "", 0, 0, "items"]),
    ],
    ids=["empty", "not msgpack", "a map", "other version", "fields missing", "items not a list"],
)
def test_malformed_frames_are_counted_not_raised(data):
    codec, sinks, got = receiver()
    assert codec.deliver(data) == (0, 1)
    assert got == [] and codec.links == {}


@pytest.mark.parametrize(
    "fields, named",
    [
        ([1, [[MIDDLE, "default", SPOUT, [1, 2.0], None]]], f"field 'version' is 1, this worker reads {FRAME_VERSION}"),
        ([2, "a:1", 1, 1, []], f"field 'version' is 2, this worker reads {FRAME_VERSION}"),
        (
            [3, "a:1", 1, 1, [[MIDDLE, "default", SPOUT, [1, 2.0], None]]],
            f"field 'version' is 3, this worker reads {FRAME_VERSION}",
        ),
        ([FRAME_VERSION, 5, 1, 1, []], "field 'sender'"),
        ([FRAME_VERSION, "x" * 301, 1, 1, []], "field 'sender'"),
        ([FRAME_VERSION, "a:1", -1, 1, []], "field 'link'"),
        ([FRAME_VERSION, "a:1", True, 1, []], "field 'link'"),
        ([FRAME_VERSION, "a:1", 1, 2**64 - 1, []], "field 'seq'"),
        ([FRAME_VERSION, "a:1", 1, "1", []], "field 'seq'"),
        ([FRAME_VERSION, "a:1", 1, 1, {}], "field 'items'"),
        ([FRAME_VERSION, "a:1", 1, 1], "4 fields, expected 5"),
    ],
    ids=[
        "an older worker's frame",
        "a frame without bulk acks",
        "a frame of one item per tuple",
        "sender",
        "sender too long",
        "link",
        "link a bool",
        "seq",
        "seq",
        "items",
        "short",
    ],
)
def test_a_refused_frame_says_which_field_is_at_fault(fields, named):
    reasons: list[str] = []
    codec = TupleCodec(SPEC, EXECUTORS, (), {}, on_refused=reasons.append)
    assert codec.deliver(msgpack.packb(fields)) == (0, 1)
    assert len(reasons) == 1 and named in reasons[0], reasons
    assert codec.links == {}


@pytest.mark.parametrize(
    "item",
    [
        [99, "default", SPOUT, [[1, 2]], None],
        [MIDDLE, "default", SPOUT, [[1, 2]], None, "extra"],
        [SPOUT, "default", SPOUT, [[1, 2]], None],
        [MIDDLE, "nostream", SPOUT, [[1, 2]], None],
        [MIDDLE, "default", 77, [[1, 2]], None],
        [MIDDLE, "default", SPOUT, [[1]], None],
        [MIDDLE, "default", SPOUT, "12", None],
        [MIDDLE, "default", SPOUT, [[1, 2]], [{1: "x"}]],
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
    assert sum(codec.bad_fields.values()) == 1


def test_a_bad_run_is_counted_by_the_field_at_fault_and_logged_once_per_field(caplog):
    codec, sinks, got = receiver(local_tasks=(MIDDLE, SPOUT, ACKER))
    good_run = [MIDDLE, "default", SPOUT, [[1, 2.0], [2, 2.0]], None]
    short_row = [MIDDLE, "default", SPOUT, [[1, 2.0], [3]], None]  # its second row has one value
    bad_roots = [MIDDLE, "default", SPOUT, [[1, 2.0]], [{1: 2}, {3: 4}]]  # two roots for one row
    with caplog.at_level("WARNING", logger="squall.transfer"):
        assert codec.deliver(frame(good_run, short_row, short_row, bad_roots)) == (2, 3)
    assert [tup.values for _, tup in got] == [[1, 2.0], [2, 2.0]], "nothing of a bad run is delivered"
    assert codec.bad_fields == {"rows": 2, "roots": 1}
    assert codec.received == 2 + 3
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 2, logged
    assert "field 'rows' item 1" in logged[0] and "stream 'default' of 'spout' has 2 field(s)" in logged[0]
    assert "field 'roots' must be nil or a list of 1" in logged[1]


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
    ((run),) = msgpack.unpackb(data)[-1]  # one run: same target, stream and source
    assert endpoint == "c:2" and [values[0] for values in run[3]] == [0, 1, 2]
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
    data = frame(
        [MIDDLE, "default", SPOUT, [[1, 2.0]], None], [SPOUT, TREE_COMPLETE, 9], [999, "default", 4, [[1]], None]
    )
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
    bad_kind = frame([SPOUT, "default", SPOUT, [[1, 2.0]], None])  # a data run for a spout
    assert codec.deliver(bad_kind) == (0, 1)


# -- data links: what a migration's drain compares ---------------------------------------------


def linked_outbox(wire: Wire, clock: Clock) -> Outbox:
    box = Outbox(wire, clock, batch_size=2, sender="me:1")
    box.place({MIDDLE: "b:1", SINK: "b:1", SPOUT: "a:1", ACKER: "a:1"})
    return box


def test_the_receiver_s_last_frame_equals_the_sender_s_exactly_when_the_link_s_last_frame_arrived():
    wire, clock = Wire(), Clock()
    box = linked_outbox(wire, clock)
    for i in range(4):  # two frames of two to b:1
        box.put((MIDDLE, Tuple("spout", "default", SPOUT, [i, 0.0], {"n": 0, "ts": 1})))
    ((token, frames),) = box.links().values()
    assert set(box.links()) == {"b:1"} and frames == 2 and token > 0
    codec, _, _ = receiver()
    codec.deliver(wire.frames[0][1])
    assert codec.links == {"me:1": (token, 1)} != {"me:1": box.links()["b:1"]}  # one still in flight
    codec.deliver(wire.frames[1][1])
    assert codec.links == {"me:1": box.links()["b:1"]}


def test_a_frame_the_socket_refused_is_numbered_and_the_backlog_keeps_the_link_s_last_frame():
    wire, clock = Wire(), Clock()
    box = Outbox(wire, clock, batch_size=1, backlog_frames=2, sender="me:1")
    box.place({MIDDLE: "b:1"})
    wire.accept = False
    for i in range(3):
        box.put((MIDDLE, Tuple("spout", "default", SPOUT, [i, 0.0], {"n": 0, "ts": 1})))
    assert box.links()["b:1"][1] == 3 and box.pending() == 2  # the oldest dropped, counted
    wire.accept = True
    box.flush()
    codec, _, _ = receiver()
    for _, frame in wire.frames:
        codec.deliver(frame)
    assert len(wire.frames) == 2 and codec.links == {"me:1": box.links()["b:1"]}


def test_a_frame_over_the_size_limit_takes_no_number():
    from squall.supervisor import transfer

    wire, clock = Wire(), Clock()
    box = Outbox(wire, clock, batch_size=1, sender="me:1")
    box.place({MIDDLE: "b:1"})
    box.put((MIDDLE, Tuple("spout", "default", SPOUT, [1, 0.0], {"n": 0, "ts": 1})))
    limit, transfer.MAX_DATA_FRAME_BYTES = transfer.MAX_DATA_FRAME_BYTES, 10
    try:
        box.put((MIDDLE, Tuple("spout", "default", SPOUT, [2, 0.0], {"n": 0, "ts": 1})))
    finally:
        transfer.MAX_DATA_FRAME_BYTES = limit
    assert box.dropped_items == 1 and box.links()["b:1"][1] == 1  # the link's last frame is the first


def test_an_endpoint_routed_to_again_starts_a_new_link_and_an_unrouted_one_is_not_reported():
    wire, clock = Wire(), Clock()
    box = linked_outbox(wire, clock)
    box.put((SPOUT, (TREE_COMPLETE, 1)))
    box.flush(idle=True)
    first = box.links()["a:1"]
    box.place({MIDDLE: "b:1", SINK: "b:1"})  # nothing routed to a:1 any more
    assert "a:1" not in box.links()
    box.place({MIDDLE: "b:1", SINK: "b:1", SPOUT: "a:1", ACKER: "a:1"})  # maybe another worker there now
    assert "a:1" not in box.links()  # nothing handed over on the new link yet
    box.put((SPOUT, (TREE_COMPLETE, 2)))
    box.flush(idle=True)
    token, frames = box.links()["a:1"]
    assert frames == 1 and token != first[0]


def test_a_frame_on_no_link_leaves_the_receiver_s_links_alone():
    codec, _, got = receiver()
    assert codec.deliver(frame([SPOUT, TREE_COMPLETE, 9])) == (1, 0)
    assert got and codec.links == {}


# -- runs from a remote emit_many ------------------------------------------------------------


def _rows(first: int, n: int, source: int = SPOUT) -> Rows:
    return Rows("spout", "default", source, [[i, 0.5] for i in range(first, first + n)], {"n": 0, "ts": 1})


def test_a_run_from_emit_many_is_cut_into_frames_of_batch_size_tuples_and_counted_per_tuple():
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock, batch_size=4)
    box.put((MIDDLE, Tuple("spout", "default", SPOUT, [0, 0.5], {})))  # one single tuple first
    run = _rows(1, 9)
    box.put_run(MIDDLE, run)
    run.rows.clear()  # the caller may reuse its list: the outbox copied it
    assert box.pending() == 2  # tuples 8 and 9 wait; 0-7 left in two frames of four
    box.put((MIDDLE, Tuple("spout", "default", SPOUT, [10, 0.5], {})))
    box.put((MIDDLE, Tuple("spout", "default", SPOUT, [11, 0.5], {})))  # the buffer holds 4 tuples: sent
    assert box.pending() == 0 and box.sent_items == 12 and len(wire.frames) == 3
    codec, _sinks, got = receiver()
    for _, data in wire.frames:
        assert len(msgpack.unpackb(data)[-1][0][3]) == 4  # one run of four rows per frame
        codec.deliver(data)
    assert [tup.values[0] for _, tup in got] == list(range(12))
    assert codec.received == 12 and all(t == MIDDLE and tup.task == SPOUT and tup.roots is None for t, tup in got)


def test_a_run_joins_the_run_of_its_key_in_order_and_leaves_others_alone():
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock, batch_size=100)
    box.put((MIDDLE, Tuple("spout", "default", SPOUT, [0, 0.5], {})))
    box.put((ACKER, (ACK_FAIL, 7)))
    box.put_run(MIDDLE, _rows(1, 3))
    box.put((MIDDLE, Tuple("spout", "default", SPOUT, [4, 0.5], {})))
    box.put_run(SINK, _rows(5, 2, source=MIDDLE))
    box.flush(idle=True)
    frames = [msgpack.unpackb(f)[-1] for _, f in wire.frames]
    b = next(items for items in frames if items[0][0] == MIDDLE)
    assert b == [
        [MIDDLE, "default", SPOUT, [[0, 0.5], [1, 0.5], [2, 0.5], [3, 0.5], [4, 0.5]], None],
        [SINK, "default", MIDDLE, [[5, 0.5], [6, 0.5]], None],
    ]
    assert [items for items in frames if items is not b] == [[[ACKER, ACK_FAIL, 7]]]
    assert box.sent_items == 8  # seven tuples and the acker item


def test_a_run_for_a_task_in_transit_is_held_tuple_by_tuple_and_one_placed_nowhere_dropped_per_tuple():
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock, hold_limit=10)
    box.place({MIDDLE: "", SINK: None})
    box.put_run(MIDDLE, _rows(0, 3))
    box.put_run(SINK, _rows(0, 4, source=MIDDLE))
    box.flush(idle=True)
    assert box.held() == 3 and box.dropped_items == 4 and wire.frames == []
    back = box.place({SINK: None})  # MIDDLE became local: its held tuples come back as tuples
    assert [(t, type(tup), tup.values[0]) for t, tup in back] == [(MIDDLE, Tuple, i) for i in range(3)]


def test_an_unserialisable_value_in_a_run_drops_only_its_row():
    errors = []
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock, on_error=lambda item, exc: errors.append((source_of(item), len(item[1].rows))))
    box.put_run(MIDDLE, Rows("spout", "default", SPOUT, [[1, 0.0], [Unpicklable(), 0.0], [3, 0.0]], {}))
    box.flush(idle=True)
    codec, _sinks, got = receiver()
    assert codec.deliver(wire.frames[0][1]) == (2, 0)
    assert [tup.values[0] for _, tup in got] == [1, 3]
    assert errors == [((SPOUT, "default"), 1)] and box.sent_items == 2


def _head(source: int = SPOUT, stream: str = "default") -> Rows:
    return Rows("spout", stream, source, [], {"n": 0, "ts": 1})


def test_rows_put_one_by_one_join_one_run_cut_into_frames_of_batch_size_tuples():
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock, batch_size=4)
    head = _head()
    box.put((MIDDLE, Tuple("spout", "default", SPOUT, [0, 0.5], {})))  # a Tuple first
    for i in range(1, 10):
        box.put_row(MIDDLE, [i, 0.5], head)
    assert box.pending() == 2 and len(wire.frames) == 2, "0-7 left in two frames of four; 8 and 9 wait"
    box.put_row(MIDDLE, [10, 0.5], head)
    box.put_row(MIDDLE, [11, 0.5], head)
    assert box.pending() == 0 and box.sent_items == 12 and len(wire.frames) == 3
    codec, _sinks, got = receiver()
    for _, data in wire.frames:
        (run,) = msgpack.unpackb(data)[-1]
        assert len(run[3]) == 4, "one run of four rows per frame"
        codec.deliver(data)
    assert [tup.values[0] for _, tup in got] == list(range(12))
    assert codec.received == 12 and all(t == MIDDLE and tup.task == SPOUT and tup.roots is None for t, tup in got)


def test_a_row_starts_a_new_run_after_another_item_and_for_another_task_or_head():
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock, batch_size=100)
    spout_head, middle_head = _head(), _head(source=MIDDLE)
    box.put_row(MIDDLE, [0, 0.5], spout_head)
    box.put_row(MIDDLE, [1, 0.5], spout_head)
    box.put((ACKER, (ACK_FAIL, 7)))
    box.put_row(MIDDLE, [2, 0.5], spout_head)  # its run again, after the acker's item
    box.put_row(SINK, [3, 0.5], middle_head)
    box.put_row(MIDDLE, [4, 0.5], spout_head)
    box.flush(idle=True)
    frames = [msgpack.unpackb(f)[-1] for _, f in wire.frames]
    b = next(items for items in frames if items[0][0] == MIDDLE)
    assert b == [
        [MIDDLE, "default", SPOUT, [[0, 0.5], [1, 0.5], [2, 0.5], [4, 0.5]], None],
        [SINK, "default", MIDDLE, [[3, 0.5]], None],
    ]
    assert [items for items in frames if items is not b] == [[[ACKER, ACK_FAIL, 7]]]
    assert box.sent_items == 6
    box.put_row(MIDDLE, [5, 0.5], spout_head)  # after a flush: a run of its own
    box.flush(idle=True)
    assert msgpack.unpackb(wire.frames[-1][1])[-1] == [[MIDDLE, "default", SPOUT, [[5, 0.5]], None]]


def test_rows_keep_their_order_with_tuples_runs_and_released_items_of_the_same_key_between_them():
    # The frame writer regroups by (target, source, stream): a row joining the run it
    # started before another item of the same key would overtake that item.
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock, batch_size=100)
    head = _head()
    box.put_row(MIDDLE, [0, 0.5], head)
    box.put((MIDDLE, Tuple("spout", "default", SPOUT, [1, 0.5], {})))
    box.put_row(MIDDLE, [2, 0.5], head)
    box.put_run(MIDDLE, _rows(3, 2))
    box.put_row(MIDDLE, [5, 0.5], head)
    box.place({MIDDLE: ""})  # in transit: the next rows are held, as tuples
    box.put_row(MIDDLE, [6, 0.5], head)
    box.put_row(MIDDLE, [7, 0.5], head)
    assert box.place({MIDDLE: "b:1"}) == [] and box.held() == 0  # released behind row 5
    box.put_row(MIDDLE, [8, 0.5], head)
    assert box.pending() == 9
    box.flush(idle=True)
    codec, _sinks, got = receiver()
    for _, data in wire.frames:
        codec.deliver(data)
    assert [tup.values[0] for _, tup in got] == list(range(9))


def test_a_row_for_a_task_in_transit_is_held_as_its_tuple_and_one_placed_nowhere_dropped():
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock, hold_limit=10)
    box.place({MIDDLE: "", SINK: None})
    for i in range(3):
        box.put_row(MIDDLE, [i, 0.5], _head())
        box.put_row(SINK, [i, 0.5], _head(source=MIDDLE))
    box.flush(idle=True)
    assert box.held() == 3 and box.dropped_items == 3 and wire.frames == []
    back = box.place({SINK: None})  # MIDDLE became local: its held tuples come back as tuples
    assert [(t, type(tup), tup.values[0], tup.task, tup.fields) for t, tup in back] == [
        (MIDDLE, Tuple, i, SPOUT, {"n": 0, "ts": 1}) for i in range(3)
    ]
