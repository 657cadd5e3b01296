"""Decoding names the exact place of a fault (built only when there is one) and converts
what it accepts, through the validators built once per type (squall/wire_check.py)."""

from __future__ import annotations

import msgpack
import pytest

from squall import messages as M
from squall.wire import PROTOCOL_VERSION, WireError, decode, encode


def heartbeat() -> M.Heartbeat:
    metrics = M.WorkerMetrics(at=1.0, clock_hz=2, executors=[M.ExecutorMetrics(1, "c", received_from={2: 3})])
    return M.Heartbeat("b1", 3, [M.WorkerReport("t", 7000, 5, "running", 2, metrics=metrics)])


def fields_of(msg) -> dict:
    return msgpack.unpackb(encode(msg), raw=False, strict_map_key=False)[2]


def frame(name: str, fields) -> bytes:
    return msgpack.packb([PROTOCOL_VERSION, name, fields], use_bin_type=True)


def test_a_valid_frame_round_trips_with_ints_widened_to_float():
    msg = decode(encode(heartbeat()))
    assert msg == heartbeat()
    assert isinstance(msg.workers[0].metrics.clock_hz, float)


def assignment() -> M.SupervisorAssignment:
    wa = M.WorkerAssignment("t", 7000, [1, 2], {1: "h:7000", 2: "h:7000"}, True, 4, {"k": 1})
    return M.SupervisorAssignment("b1", 9, [wa])


@pytest.mark.parametrize(
    ("msg", "change", "expected"),
    [
        (
            assignment,
            lambda f: f["workers"][0]["executors"].__setitem__(1, "x"),
            "SupervisorAssignment.workers[0].executors[1]: expected an integer, got str",
        ),
        (
            assignment,
            lambda f: f["workers"][0]["placement"].update({2: True}),
            "SupervisorAssignment.workers[0].placement[2]: expected str, got bool",
        ),
        (
            assignment,
            lambda f: f["workers"][0]["placement"].update({"k": "h:1"}),
            "SupervisorAssignment.workers[0].placement key: expected an integer, got str",
        ),
        (heartbeat, lambda f: f["workers"][0].pop("state"), "Heartbeat.workers[0]: missing field 'state'"),
        (heartbeat, lambda f: f.update(extra=1), "Heartbeat: unknown field(s) ['extra']"),
        (
            heartbeat,
            lambda f: f["workers"][0]["metrics"].update(at=float("inf")),
            "Heartbeat.workers[0].metrics.at: expected a finite number, got inf",
        ),  # inside X | None
        (heartbeat, lambda f: f.update(seq=float("inf")), "Heartbeat.seq: expected an integer, got float"),
    ],
    ids=[
        "wrong type deep inside",
        "bool is no str",
        "bad key",
        "missing field",
        "unknown field",
        "inside an optional",
        "float is no int",
    ],
)
def test_a_fault_is_named_by_its_path(msg, change, expected):
    m = msg()
    fields = fields_of(m)
    change(fields)
    with pytest.raises(WireError) as err:
        decode(frame(type(m).__name__, fields))
    assert str(err.value).startswith(expected)


def _walk(value):
    """The plain form by a generic walk of every dataclass, list and dict."""
    import dataclasses

    if dataclasses.is_dataclass(value):
        return {f.name: _walk(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_walk(v) for v in value]
    if isinstance(value, dict):
        return {k: _walk(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("make", [heartbeat, assignment], ids=["heartbeat", "assignment"])
def test_the_per_type_encoder_writes_the_bytes_of_a_generic_walk(make):
    msg = make()
    on_wire = msg.to_wire() if hasattr(msg, "to_wire") else msg  # an assignment names its placement once
    assert encode(msg) == msgpack.packb([PROTOCOL_VERSION, type(msg).__name__, _walk(on_wire)], use_bin_type=True)
    assert decode(encode(msg)) == msg
