"""The validators' fast path (squall/wire_check.py) accepts exactly what the reference checks
accept, builds an equal value, and leaves every fault and its message to them: frames of the
hot messages, mutated at every field with values of every wrong kind, decode the same way
with the fast path on and off."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgpack
import pytest

from squall import messages as M
from squall import wire_check
from squall.wire import PROTOCOL_VERSION, WireError, decode, encode

ODD_VALUES = [
    None,
    -1,
    0,
    7,
    2**63 - 1,
    -2.5,
    1.5,
    float("inf"),
    float("nan"),
    True,
    "x",
    b"x",
    [],
    [1, -1],
    {},
    {1: -1},
    {"k": 1},
]


DELETE = object()  # the field or item removed


def heartbeat() -> M.Heartbeat:
    ems = [
        M.ExecutorMetrics(
            ex, "c", 5, 5, 5, 1, 0, 0, 0.5, received_from={1: 2, 3: 4}, latency_buckets=[1, 2], sent_control={9: 1}
        )
        for ex in (1, 2)
    ]
    links = M.DataLinks("h:7000", sent={"h:7001": M.LinkMark(1, 2)})
    metrics = M.WorkerMetrics(at=1.5, clock_hz=2e9, executors=ems, sent_remote=3, loop_cpu_s=0.25, links=links)
    report = M.WorkerReport("t", 7000, 5, "running", 2, metrics=metrics, released={3: b"s"})
    return M.Heartbeat("b1", 3, [report], rss_bytes=10)


def assignment() -> M.SupervisorAssignment:
    wa = M.WorkerAssignment("t", 7000, [1, 2], {1: "h:7000", 2: "h:7001"}, True, 4, {"k": 1}, states={1: b"s"})
    return M.SupervisorAssignment("b1", 9, [wa], term=2)


def places(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """Every path to a value inside the plain fields (map keys and list indexes)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*path, k)
            yield from places(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield (*path, i)
            yield from places(v, (*path, i))


def mutated(fields: Any, path: tuple, new: Any) -> Any:
    out = msgpack.unpackb(msgpack.packb(fields, use_bin_type=True), raw=False, strict_map_key=False)
    target = out
    for step in path[:-1]:
        target = target[step]
    if new is DELETE:
        target.pop(path[-1])
    else:
        target[path[-1]] = new
    return out


def outcome(frame: bytes, fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Any]:
    monkeypatch.setattr(wire_check, "FAST_PATH", fast)
    try:
        return "ok", decode(frame)
    except WireError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("make", [heartbeat, assignment], ids=["heartbeat", "assignment"])
def test_every_mutation_decodes_the_same_with_and_without_the_fast_path(make, monkeypatch):
    msg = make()
    name, fields = type(msg).__name__, msgpack.unpackb(encode(msg), raw=False, strict_map_key=False)[2]
    compared = accepted = 0
    for path in places(fields):
        for new in [*ODD_VALUES, DELETE]:
            frame = msgpack.packb([PROTOCOL_VERSION, name, mutated(fields, path, new)], use_bin_type=True)
            fast, reference = outcome(frame, True, monkeypatch), outcome(frame, False, monkeypatch)
            if fast[0] == "ok" and reference[0] == "ok":
                assert repr(fast[1]) == repr(reference[1]), (path, new)  # repr: NaN is not equal to itself
                accepted += 1
            else:
                assert fast == reference, (path, new)
            compared += 1
    assert compared > 300 and 0 < accepted < compared  # both outcomes were exercised


def test_the_fast_path_builds_the_reference_value_of_a_valid_frame(monkeypatch):
    for msg in (heartbeat(), assignment()):
        frame = encode(msg)
        assert outcome(frame, True, monkeypatch) == outcome(frame, False, monkeypatch) == ("ok", msg)
