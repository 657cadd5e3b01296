"""The item layout on its own: what is written reads back the same, for every kind of item;
what does not fit its target is counted, not delivered; an executor snapshot carries its
queued items in the same layout and drops (and counts) one that does not fit on restore."""

from __future__ import annotations

import msgpack
import pytest

from squall.supervisor.runtime import snapshot
from squall.supervisor.runtime.engine import Engine
from squall.supervisor.runtime.layout import (
    ACKER_TASK,
    BOLT_TASK,
    SPOUT_TASK,
    ItemReader,
    Rows,
    decode_frame,
    encode_frame,
    task_kinds,
    write,
)
from squall.supervisor.runtime.messages import ACK_ACK, ACK_FAIL, ACK_INIT, TREE_COMPLETE, TREE_FAILED
from squall.topology.component import Tuple
from tests.worker.worker_helpers import user_module

Chain = user_module("chain_app").Chain

SPEC = Chain.spec
EXECUTORS = SPEC.executors_with_ackers(1)  # middle 1,2; sink 3; spout 4; acker 5 (tasks)
MIDDLE, SINK, SPOUT, ACKER = 1, 3, 4, 5
FIELDS = {"n": 0, "ts": 1}


def read_back(rows: list) -> tuple[list, int]:
    got: list = []
    data = {t: got.append for t in (1, 2, SINK)}
    control = {SPOUT: (SPOUT_TASK, got.append), ACKER: (ACKER_TASK, got.append)}
    delivered, bad = ItemReader(SPEC).read(rows, data, control)
    assert delivered == len(got)
    return got, bad


def test_task_kinds_follow_the_components():
    assert task_kinds(SPEC, EXECUTORS) == {1: BOLT_TASK, 2: BOLT_TASK, 3: BOLT_TASK, 4: SPOUT_TASK, 5: ACKER_TASK}


@pytest.mark.parametrize(
    "item",
    [
        (MIDDLE, Tuple("spout", "default", SPOUT, [7, 1.5], FIELDS)),
        (SINK, Tuple("middle", "default", 2, [8, "x"], FIELDS, {2**64 - 1: 2**63})),
        (ACKER, (ACK_INIT, 2**63, 2**64 - 1, SPOUT)),
        (ACKER, (ACK_ACK, 1, 99)),
        (ACKER, (ACK_FAIL, 1)),
        (SPOUT, (TREE_COMPLETE, 2**64 - 1)),
        (SPOUT, (TREE_FAILED, 3)),
    ],
    ids=["tuple", "anchored tuple", "ack init", "ack ack", "ack fail", "tree complete", "tree failed"],
)
def test_what_is_written_reads_back_the_same_through_a_frame(item):
    frame, count = encode_frame([item], on_error=pytest.fail)
    assert count == 1
    (got,), bad = read_back(decode_frame(frame))
    assert bad == 0 and got[0] == item[0]
    if isinstance(item[1], Tuple):
        a, b = item[1], got[1]
        assert (b.component, b.stream, b.task, b.values, b.roots, b.fields) == (
            a.component,
            a.stream,
            a.task,
            a.values,
            a.roots,
            a.fields,
        )
    else:
        assert got == item


def test_an_empty_roots_map_is_written_as_untracked():
    (row,) = write([(MIDDLE, Tuple("spout", "default", SPOUT, [1, 2.0], FIELDS, {}))])
    assert row[4] is None


def _mixed_items() -> list:
    def tup(source, n, roots=None):
        return Tuple("spout", "default", source, [n, 0.5], FIELDS, roots)

    return [
        (MIDDLE, tup(SPOUT, 1)),
        (MIDDLE, tup(SPOUT, 2)),
        (2, tup(SPOUT, 3)),  # another target: another run
        (2, tup(SPOUT, 4, {7: 8})),  # tracked beside untracked: the roots list says which
        (ACKER, (ACK_FAIL, 9)),
        (MIDDLE, tup(SPOUT, 5)),  # back to the first target
        (SINK, Tuple("middle", "default", 1, [6, "x"], FIELDS)),
        (SINK, Tuple("middle", "default", 2, [7, "y"], FIELDS)),  # another source: another run
    ]


def _seen(items: list) -> list:
    return [(t, p.task, p.values, p.roots) if isinstance(p, Tuple) else (t, p) for t, p in items]


def test_a_frame_writes_every_tuple_of_one_target_source_and_stream_as_one_run():
    items = _mixed_items()
    assert write(items) == [
        [MIDDLE, "default", SPOUT, [[1, 0.5], [2, 0.5], [5, 0.5]], None],
        [2, "default", SPOUT, [[3, 0.5], [4, 0.5]], [None, {7: 8}]],
        (ACKER, ACK_FAIL, 9),
        [SINK, "default", 1, [[6, "x"]], None],
        [SINK, "default", 2, [[7, "y"]], None],
    ]
    frame, count = encode_frame(items, on_error=pytest.fail)
    assert count == len(items)  # inbox items, not runs
    got, bad = read_back(decode_frame(frame))
    assert bad == 0 and len(got) == len(items)
    # the order kept is each (target, source, stream)'s, and the control items'
    for key in {(t, p.task) if isinstance(p, Tuple) else (t, None) for t, p in items}:
        assert [x for x in _seen(got) if x[:2] == key or (key[1] is None and x[0] == key[0])] == [
            x for x in _seen(items) if x[:2] == key or (key[1] is None and x[0] == key[0])
        ]


def test_a_snapshot_s_queue_is_written_as_runs_of_consecutive_tuples_in_its_exact_order():
    items = _mixed_items()
    rows = write(items, regroup=False)
    assert rows == [
        [MIDDLE, "default", SPOUT, [[1, 0.5], [2, 0.5]], None],
        [2, "default", SPOUT, [[3, 0.5], [4, 0.5]], [None, {7: 8}]],
        (ACKER, ACK_FAIL, 9),
        [MIDDLE, "default", SPOUT, [[5, 0.5]], None],
        [SINK, "default", 1, [[6, "x"]], None],
        [SINK, "default", 2, [[7, "y"]], None],
    ]
    got, bad = read_back(msgpack.unpackb(msgpack.packb(rows), strict_map_key=False))
    assert bad == 0 and _seen(got) == _seen(items)


GOOD_RUN = [MIDDLE, "default", SPOUT, [[1, 2.0], [2, 2.0]], None]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ([SPOUT, "default", SPOUT, [[1, 2.0]], None], "target"),  # a tuple for a spout
        ([99, "default", SPOUT, [[1, 2.0]], None], "target"),  # a task given no sink
        ([MIDDLE, ACK_ACK, 1, 2], "target"),  # an ack for a bolt
        ([ACKER, TREE_COMPLETE, 1], "target"),  # an outcome for the acker
        ([MIDDLE, "nostream", SPOUT, [[1, 2.0]], None], "stream"),
        ([MIDDLE, "default", 99, [[1, 2.0]], None], "source"),  # no task 99
        ([MIDDLE, "default", SPOUT, [[1, 2.0], [1]], None], "rows"),  # wrong arity in the second row
        ([MIDDLE, "default", SPOUT, [[1, 2.0], {"a": 1, "b": 2}], None], "rows"),  # a map of the right length
        ([MIDDLE, "default", SPOUT, ["ab"], None], "rows"),  # a string of the right length
        ([MIDDLE, "default", SPOUT, [], None], "rows"),  # an empty run
        ([MIDDLE, "default", SPOUT, [1, 2.0], None], "rows"),  # version 3's single data item
        ([MIDDLE, "default", SPOUT, [[1, 2.0]], [{}]], "roots"),  # empty roots: not what a writer writes
        ([MIDDLE, "default", SPOUT, [[1, 2.0]], [{1: 2}, {3: 4}]], "roots"),  # not parallel to rows
        ([MIDDLE, "default", SPOUT, [[1, 2.0]], [{1: "x"}]], "roots"),
        ([MIDDLE, "default", SPOUT, [[1, 2.0]], {1: 2}], "roots"),  # version 3's roots map
        ([MIDDLE, "default", SPOUT, [[1, 2.0]]], "item"),  # four fields
        ([ACKER, ACK_ACK, 1, 2.5], "values"),
        ([ACKER, 99, 1], "kind"),
        ("junk", "item"),
    ],
    ids=[
        "tuple for a spout",
        "no sink",
        "ack for a bolt",
        "outcome for the acker",
        "stream",
        "source",
        "arity",
        "map row",
        "string row",
        "empty run",
        "version 3 item",
        "empty roots",
        "roots not parallel",
        "float edge",
        "roots map",
        "four fields",
        "float in an ack",
        "unknown kind",
        "not a list",
    ],
)
def test_an_item_that_does_not_fit_its_target_is_counted_named_and_its_neighbours_delivered(row, field):
    good = [ACKER, ACK_FAIL, 5]
    refused: list = []
    got: list = []
    data = {t: got.append for t in (1, 2, SINK)}
    control = {SPOUT: (SPOUT_TASK, got.append), ACKER: (ACKER_TASK, got.append)}
    reader = ItemReader(SPEC)
    delivered, bad = reader.read([good, GOOD_RUN, row, good], data, control, on_bad=refused.append)
    assert bad == 1 and refused == [row], "one bad item, and nothing of a bad run delivered"
    assert delivered == len(got) == 4
    assert [t for t, _ in got] == [ACKER, MIDDLE, MIDDLE, ACKER]
    named, why = reader.why_bad(row, data, control)
    assert named == field
    assert field in why or field in ("target", "stream", "source", "kind", "item", "values")


def test_a_snapshot_drops_and_counts_a_queued_item_that_does_not_fit_on_restore():
    engine = Engine(SPEC, Chain.classes, {"topology.acker.executors": 1})
    engine.start(activate=False)
    middle = engine.by_id[0]  # task 1
    middle.inbox.append((MIDDLE, Tuple("spout", "default", SPOUT, [1, 2.0], FIELDS)))
    data = engine.remove_executor(0)
    doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
    assert doc["inbox"] == [[MIDDLE, "default", SPOUT, [[1, 2.0]], None]], "the frame's item layout"
    doc["inbox"].insert(0, [MIDDLE, "default", SPOUT, [[1]], None])  # wrong arity
    engine.add_executor(0, msgpack.packb(doc, use_bin_type=True))
    restored = engine.by_id[0]
    assert [(t, tup.values) for t, tup in restored.inbox] == [(MIDDLE, [1, 2.0])]
    assert restored.stats.errors == 1


def test_a_snapshot_that_does_not_decode_is_refused_before_anything_is_applied():
    with pytest.raises(snapshot.SnapshotError):
        snapshot.decode(b"\x00not a snapshot")


def test_a_rows_item_is_written_into_the_run_of_its_key_and_counted_as_its_tuples():
    def tup(n):
        return (MIDDLE, Tuple("spout", "default", SPOUT, [n, 0.5], FIELDS))

    def rows(*ns):
        return (MIDDLE, Rows("spout", "default", SPOUT, [[n, 0.5] for n in ns], FIELDS))

    items = [tup(1), rows(2, 3), (ACKER, (ACK_FAIL, 9)), tup(4), rows(5)]
    assert write(items) == [[MIDDLE, "default", SPOUT, [[n, 0.5] for n in range(1, 6)], None], (ACKER, ACK_FAIL, 9)]
    assert write(items, regroup=False) == [
        [MIDDLE, "default", SPOUT, [[1, 0.5], [2, 0.5], [3, 0.5]], None],
        (ACKER, ACK_FAIL, 9),
        [MIDDLE, "default", SPOUT, [[4, 0.5], [5, 0.5]], None],
    ]
    assert write([rows(7, 8)]) == [[MIDDLE, "default", SPOUT, [[7, 0.5], [8, 0.5]], None]]
    frame, count = encode_frame(items, on_error=pytest.fail)
    assert count == 6  # five tuples and the acker item
    got, bad = read_back(decode_frame(frame))
    assert bad == 0 and [p.values[0] for _, p in got if isinstance(p, Tuple)] == [1, 2, 3, 4, 5]
    assert [p.values for p in rows(1, 2)[1].tuples()] == [[1, 0.5], [2, 0.5]]
