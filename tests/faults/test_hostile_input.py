"""Hostile input at every decoder: random and mutated frames never raise anything but the
decoder's own error, and never take a daemon's decision code down.

Covers the control-plane codec (every registered message type), the data-plane tuple codec
of workers, and the Nimbus and supervisor state machines fed whatever decodes.
"""

from __future__ import annotations

import dataclasses

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from squall import messages as m
from squall.experiments.reference import chain_topology
from squall.nimbus.state import NimbusState
from squall.nimbus.store import Store
from squall.supervisor.runtime.engine import Engine
from squall.supervisor.state import SupervisorState
from squall.supervisor.transfer import FRAME_VERSION, TupleCodec
from squall.wire import PROTOCOL_VERSION, WireError, decode, encode, registered
from tests.faults.fault_helpers import mutate

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Arbitrary msgpack-able values, nested a little: what a hostile peer can put in a frame.
msgpack_ints = st.integers(-(2**63), 2**64 - 1)
plain = st.recursive(
    st.none()
    | st.booleans()
    | msgpack_ints
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8) | msgpack_ints, inner, max_size=4),
    max_leaves=12,
)
message_names = st.sampled_from(sorted(registered()))


def _valid_examples() -> list[bytes]:
    spec = chain_topology(3, 1).spec.to_dict()
    wa = m.WorkerAssignment("t", 6700, [0, 1], {0: "h:1", 1: "h:2"}, True, 1, {}, states={1: b"s"})
    metrics = m.WorkerMetrics(1.0, 1e9, [m.ExecutorMetrics(0, "spout", emitted=1, received_from={1: 2})])
    return [
        encode(m.RegisterSupervisor("n", "h", [1, 2], 1e9, 1e9, 4, 1024, 1)),
        encode(m.Heartbeat("n", 1, [m.WorkerReport("t", 6700, 1, "running", 1, metrics=metrics)])),
        encode(m.SupervisorAssignment("n", 1, [wa])),
        encode(m.SubmitTopology(1, "t", spec, b"zip", "online", 2, {"a": 1})),
        encode(m.WorkerUpdate({0: "h:1"}, True, 2, executors=[0], paused=True)),
        encode(m.Reply(1, True, data={"x": [1, 2]})),
    ]


VALID = _valid_examples()


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_are_refused_with_a_wire_error(frame):
    with pytest.raises(WireError):
        decode(frame)


@FUZZ
@given(message_names, plain)
def test_random_fields_for_every_message_type_decode_or_are_refused(name, fields):
    frame = msgpack.packb([PROTOCOL_VERSION, name, fields], use_bin_type=True)
    try:
        msg = decode(frame)
    except WireError:
        return
    assert type(msg).__name__ == name
    assert decode(encode(msg)) == msg


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_mutated_valid_frames_decode_or_are_refused(frame, data):
    try:
        msg = decode(mutate(frame, data))
    except WireError:
        return
    assert dataclasses.is_dataclass(msg)


def test_oversized_frames_are_refused_before_parsing():
    with pytest.raises(WireError, match="exceeds"):
        decode(b"\x00" * 100, max_bytes=10)


# -- the data plane -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def codec():
    topology = chain_topology(3, 1)
    engine = Engine(topology.spec, topology.classes, {"topology.acker.executors": 1}, executor_ids=[1, 2, 3])
    codec = TupleCodec(
        topology.spec, topology.spec.executors_with_ackers(1), engine.wiring.local_tasks, engine.wiring.sinks
    )
    return codec, engine


def _frame(items: list) -> bytes:
    return msgpack.packb([FRAME_VERSION, "", 0, 0, items], use_bin_type=True)


def _is_frame(data) -> bool:
    """A frame of this version: [version, sender, link, seq, items] with every field valid."""
    if type(data) is not list or len(data) != 5 or data[0] != FRAME_VERSION:
        return False
    _, sender, link, seq, items = data
    counts = all(type(n) is int and 0 <= n < 2**63 for n in (link, seq))
    return type(sender) is str and len(sender) <= 300 and counts and type(items) is list


@FUZZ
@given(st.binary(max_size=200) | plain.map(lambda v: msgpack.packb(v, use_bin_type=True)))
def test_the_tuple_codec_never_raises_on_garbage(codec, frame):
    c, engine = codec
    before = sum(len(ex.inbox) for ex in engine.executors)
    delivered, bad = c.deliver(frame)
    after = sum(len(ex.inbox) for ex in engine.executors)
    try:
        data = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception:  # msgpack raises several unrelated types for garbage
        data = None
    if _is_frame(data):
        _every_item_delivered_or_counted_bad(c, data[4], delivered, bad)
    else:
        assert (delivered, bad) == (0, 1)  # not a frame: dropped whole, counted once
    assert after - before == delivered
    for ex in engine.executors:
        ex.inbox.clear()


@FUZZ
@given(st.lists(st.lists(plain, max_size=6), max_size=6))
def test_the_tuple_codec_counts_every_bad_item(codec, items):
    c, engine = codec
    before = sum(len(ex.inbox) for ex in engine.executors)
    delivered, bad = c.deliver(_frame(items))
    after = sum(len(ex.inbox) for ex in engine.executors)
    _every_item_delivered_or_counted_bad(c, items, delivered, bad)
    assert after - before == delivered
    for ex in engine.executors:
        ex.inbox.clear()


def _every_item_delivered_or_counted_bad(c: TupleCodec, items: list, delivered: int, bad: int) -> None:
    """A good item delivers at least one inbox item (a run one per row, never an empty run),
    a bad one none, and every bad one is named by a field of the layout (``bad_fields`` is
    cleared after each frame)."""
    assert 0 <= bad <= len(items)
    assert (
        len(items) - bad
        <= delivered
        <= len(items)
        - bad
        + sum(len(i[3]) - 1 for i in items if type(i) is list and len(i) == 5 and type(i[3]) is list and i[3])
    )
    assert set(c.bad_fields) <= ITEM_FIELDS
    assert sum(c.bad_fields.values()) == bad, "every bad item is named by its field"
    c.bad_fields.clear()


ITEM_FIELDS = {"item", "target", "stream", "source", "rows", "roots", "kind", "values"}


def _near_run_items():
    """Data run items near the valid ones of the codec's topology (bolt tasks 2 and 3, every
    task emitting "default" with two fields): each field valid or hostile, rows valid, with
    one hostile row, or hostile as a whole, roots nil, parallel maps, or anything."""
    row = st.lists(msgpack_ints | st.text(max_size=4), min_size=2, max_size=2)
    rows = st.lists(row, min_size=1, max_size=5)
    rows_one_bad = st.tuples(rows, st.lists(plain, max_size=3) | plain).map(lambda r: [*r[0], r[1]])
    roots = st.none() | st.dictionaries(msgpack_ints, msgpack_ints, min_size=1, max_size=2) | plain
    return st.tuples(
        st.sampled_from([2, 3]) | st.sampled_from([1, 4, 999]) | plain,
        st.just("default") | st.text(max_size=6),
        st.sampled_from([1, 2, 3]) | plain,
        rows | rows_one_bad | plain,
        st.none() | st.lists(roots, max_size=5) | plain,
    ).map(list)


GOOD_RUN = [2, "default", 1, [["good", 1], ["good", 2]], None]


@FUZZ
@given(st.lists(_near_run_items() | st.lists(plain, max_size=6), max_size=6))
def test_the_tuple_codec_refuses_malformed_run_items_and_delivers_the_rest(codec, items):
    c, engine = codec
    before = sum(len(ex.inbox) for ex in engine.executors)
    delivered, bad = c.deliver(_frame([*items, GOOD_RUN]))
    after = sum(len(ex.inbox) for ex in engine.executors)
    _every_item_delivered_or_counted_bad(c, [*items, GOOD_RUN], delivered, bad)
    assert after - before == delivered
    (stage1,) = [ex for ex in engine.executors if 2 in ex.spec.tasks]
    assert [tup.values for _, tup in list(stage1.inbox)[-2:]] == GOOD_RUN[3], "a good run after hostile items"
    for ex in engine.executors:
        ex.inbox.clear()


# -- decision code fed whatever decodes ----------------------------------------------------


@FUZZ
@given(message_names, plain, st.binary(max_size=8))
def test_nimbus_state_never_raises_on_any_decodable_message(name, fields, peer):
    try:
        msg = decode(msgpack.packb([PROTOCOL_VERSION, name, fields], use_bin_type=True))
    except WireError:
        return
    state = NimbusState(Store(":memory:"), {})
    state.handle(peer, msg, 0.0)
    state.tick(10.0)


@FUZZ
@given(st.sampled_from(VALID), message_names, plain)
def test_supervisor_state_ignores_what_is_not_for_it(frame, name, fields):
    reg = m.RegisterSupervisor("pi-1", "127.0.0.1", [6700], 1e9, 1e9, 1, 1024, 1)
    state = SupervisorState(reg)
    state.on_register_reply(m.RegisterReply(ok=True), 0.0)
    try:
        msg = decode(msgpack.packb([PROTOCOL_VERSION, name, fields], use_bin_type=True))
    except WireError:
        return
    if isinstance(msg, m.SupervisorAssignment):
        state.on_assignment(msg, 1.0)
    elif isinstance(msg, m.RegisterReply):
        state.on_register_reply(msg, 1.0)
    elif isinstance(msg, m.WorkerHeartbeat):
        state.on_worker_heartbeat(msg, 1.0)
    state.tick(2.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused(bad):
    frame = msgpack.packb(
        [
            PROTOCOL_VERSION,
            "RegisterSupervisor",
            {
                "supervisor_id": "n",
                "host": "h",
                "ports": [1],
                "capacity_hz": bad,
                "clock_hz": 1.0,
                "cores": 1,
                "memory_mb": 1,
                "pid": 1,
            },
        ]
    )
    with pytest.raises(WireError, match="capacity_hz"):
        decode(frame)
