"""The wire codec: typed message dataclasses, msgpack-encoded, versioned, validated on decode.

A frame is ``msgpack([PROTOCOL_VERSION, type_name, {field: value}])``. ``decode`` checks the
version, the type, every field's presence and type (nested message dataclasses, lists and
dicts included) and the frame size, and raises ``WireError`` naming what is wrong — so a
daemon counts, logs and drops a bad frame instead of dying of it. ``encode(decode(f))``
round-trips every valid frame.

Bounded decoding: a frame's type is read before its fields, and the fields are decoded
under that kind's :class:`Limit` (``limit_of``): its frame size, and a budget of decoded
objects (every array and map, plus each of their items), enforced while msgpack builds
them, besides msgpack's own caps on each string, binary, array and map length and on
nesting (1024 levels). The budget is what bounds memory: one byte of msgpack can become a
Python container of 50-250 bytes, so a size limit alone let a 2.9 MiB frame cost 207 MiB.
Only the kinds that carry a code bundle (``SubmitTopology``, ``Reply``) or executor
snapshots (heartbeats, assignments, updates) get big frames; every other kind gets
``SMALL``. Peak memory of one decode stays under ``frame bytes x 2 + objects x
BYTES_PER_OBJECT`` (measured by ``tests/faults/test_decode_bounds.py``).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

import msgpack

from squall.bundle import MAX_BUNDLE_BYTES

PROTOCOL_VERSION = 1
MiB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Limit:
    """What one frame of a kind may cost: its size, and decoded objects (containers + items)."""

    frame_bytes: int
    objects: int


SMALL = Limit(1 * MiB, 20_000)  # requests and registrations
SNAPSHOTS = Limit(16 * MiB, 100_000)  # may carry executor snapshots of a migration (~40 objects per executor)
BUNDLE = Limit(MAX_BUNDLE_BYTES + 1 * MiB, 500_000)  # a code bundle, or a large query answer
KIND_LIMITS: dict[str, Limit] = {
    "SubmitTopology": BUNDLE, "Reply": BUNDLE,
    "Heartbeat": SNAPSHOTS, "WorkerHeartbeat": SNAPSHOTS, "SupervisorAssignment": SNAPSHOTS,
    "WorkerUpdate": SNAPSHOTS, "WorkerLaunch": SNAPSHOTS,
}
MAX_FRAME_BYTES = max(limit.frame_bytes for limit in (SMALL, *KIND_LIMITS.values()))  # the largest kind
MAX_STRING_BYTES = 1 * MiB  # any one string (names, errors, conf values)
BYTES_PER_OBJECT = 250  # a generous size of one decoded Python object (a small dict is ~230)
HEADER_OBJECTS = 16  # the budget before the kind is known: version and type are scalars

_REGISTRY: dict[str, type] = {}
_HINTS: dict[type, dict[str, Any]] = {}

M = TypeVar("M")


class WireError(ValueError):
    """A frame that cannot be decoded into a valid message; the message says why."""


# Field metadata: every number in the field (a number, or the values of a list or mapping) must
# be >= 0. Counters and CPU seconds are never negative; a negative one would poison the model.
NON_NEGATIVE: types.MappingProxyType[str, bool] = types.MappingProxyType({"non_negative": True})


def message(cls: type[M]) -> type[M]:
    """Class decorator: a frozen dataclass registered under its class name."""
    dc = dataclasses.dataclass(frozen=True)(cls)
    name = cls.__name__
    if name in _REGISTRY:
        raise TypeError(f"message type {name} registered twice")
    _REGISTRY[name] = dc
    return dc


def record(cls: type[M]) -> type[M]:
    """Class decorator for a frozen dataclass nested inside messages (not sent on its own)."""
    return dataclasses.dataclass(frozen=True)(cls)


def encode(msg: Any) -> bytes:
    name = type(msg).__name__
    if _REGISTRY.get(name) is not type(msg):
        raise TypeError(f"{name} is not a registered message type")
    return msgpack.packb([PROTOCOL_VERSION, name, _to_plain(msg)], use_bin_type=True)


def limit_of(kind: str) -> Limit:
    """The limits a frame of message type ``kind`` is decoded under."""
    return KIND_LIMITS.get(kind, SMALL)


class _Budget:
    """Counts decoded objects as msgpack builds them and stops it past the budget."""

    def __init__(self, left: int) -> None:
        self.left = left

    def spend(self, container: Any) -> Any:
        self.left -= 1 + len(container)
        if self.left < 0:
            raise _OverBudget
        return container


class _OverBudget(Exception):
    pass


def decode(frame: bytes, max_bytes: int = MAX_FRAME_BYTES) -> Any:
    """Decode and validate one frame; raise WireError on anything malformed or over its
    kind's limits (or over ``max_bytes``, a socket's own cap)."""
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise WireError(f"frame must be bytes, got {type(frame).__name__}")
    size = len(frame)
    if size > min(max_bytes, MAX_FRAME_BYTES):
        raise WireError(f"frame of {size} bytes exceeds the limit of {min(max_bytes, MAX_FRAME_BYTES)}")
    name: Any = None
    try:
        head = _unpacker(frame, Limit(size, HEADER_OBJECTS), _Budget(HEADER_OBJECTS))
        if head.read_array_header() != 3:
            raise WireError("frame must be [version, type, fields]")
        version, name = head.unpack(), head.unpack()
        if version != PROTOCOL_VERSION:
            raise WireError(f"protocol version {version!r:.40} not supported (expected {PROTOCOL_VERSION})")
        if not isinstance(name, str):
            raise WireError("message type must be a string")
        cls = _REGISTRY.get(name)
        if cls is None:
            raise WireError(f"unknown message type {name[:64]!r}")
        limit = limit_of(name)
        if size > limit.frame_bytes:
            raise WireError(f"{name} frame of {size} bytes exceeds its limit of {limit.frame_bytes}")
        start = head.tell()
        body = _unpacker(memoryview(frame)[start:], limit, _Budget(limit.objects))
        fields = body.unpack()
        if start + body.tell() != size:
            raise WireError(f"{size - start - body.tell()} bytes after the frame's end")
    except WireError:
        raise
    except _OverBudget:
        raise WireError(f"{name} frame decodes to more than {limit_of(str(name)).objects} objects") from None
    except Exception as exc:  # msgpack raises several unrelated types for garbage (and StackError for nesting)
        detail = f": {str(exc)[:100]}" if type(exc) is ValueError and str(exc) else ""  # e.g. a length cap
        raise WireError(f"not a msgpack frame: {type(exc).__name__}{detail}") from None
    return _from_plain(cls, fields, name)


def _unpacker(data: Any, limit: Limit, budget: _Budget) -> msgpack.Unpacker:
    """An unpacker over ``data`` whose every length cap follows ``limit`` (an array or map
    longer than the whole budget is refused before it is built)."""
    unpacker = msgpack.Unpacker(
        raw=False, strict_map_key=False, max_buffer_size=max(len(data), 1), list_hook=budget.spend,
        object_hook=budget.spend, max_str_len=min(MAX_STRING_BYTES, limit.frame_bytes),
        max_bin_len=limit.frame_bytes, max_array_len=limit.objects, max_map_len=limit.objects, max_ext_len=0,
    )
    unpacker.feed(data)
    return unpacker


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = {
            k: v for k, v in get_type_hints(cls).items() if get_origin(v) is not ClassVar and v is not ClassVar
        }
    return hints


def _from_plain(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise WireError(f"{where}: expected a mapping of fields, got {type(data).__name__}")
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = value = _check(hints[f.name], data[f.name], f"{where}.{f.name}")
            if f.metadata.get("non_negative"):
                _refuse_negative(value, f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise WireError(f"{where}: missing field {f.name!r}")
    unknown = set(data) - set(hints)
    if unknown:
        raise WireError(f"{where}: unknown field(s) {sorted(map(str, unknown))[:5]}")
    return cls(**kwargs)


def _refuse_negative(value: Any, where: str) -> None:
    """Raise WireError if the number, or any number among a list's items or a mapping's
    values, is negative (non-finite floats were already refused by ``_check``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise WireError(f"{where}: must not be negative, got {value!r}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _refuse_negative(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            _refuse_negative(v, f"{where}[{k!r:.30}]")


def _check(tp: Any, value: Any, where: str) -> Any:
    if tp is Any:
        return value
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [o for o in get_args(tp) if o is not type(None)]
        if value is not None and len(options) == 1:  # X | None: say what is wrong with the X
            return _check(options[0], value, where)
        errors = []
        for option in get_args(tp):
            try:
                return _check(option, value, where)
            except WireError as exc:
                errors.append(str(exc))
        raise WireError(f"{where}: {value!r:.60} matches none of {tp}")
    if tp is type(None):
        if value is None:
            return None
        raise WireError(f"{where}: expected None")
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise WireError(f"{where}: expected a list, got {type(value).__name__}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise WireError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(_check(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_check(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or tp is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise WireError(f"{where}: expected a mapping, got {type(value).__name__}")
        kt, vt = get_args(tp) or (Any, Any)
        return {_check(kt, k, f"{where} key"): _check(vt, v, f"{where}[{k!r:.30}]") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _from_plain(tp, value, where)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
            if not math.isfinite(number):  # no field means infinity; NaN would poison the schedulers
                raise WireError(f"{where}: expected a finite number, got {value!r}")
            return number
        raise WireError(f"{where}: expected a number, got {type(value).__name__}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise WireError(f"{where}: expected an integer, got {type(value).__name__}")
    if tp in (str, bool, bytes):
        if isinstance(value, tp) and not (tp is not bool and isinstance(value, bool)):
            return value
        raise WireError(f"{where}: expected {tp.__name__}, got {type(value).__name__}")
    raise TypeError(f"{where}: unsupported annotation {tp!r}")  # a bug in a message class


def registered() -> dict[str, type]:
    """Every message type by name (for tests that fuzz every decoder)."""
    return dict(_REGISTRY)


__all__ = ["BUNDLE", "KIND_LIMITS", "MAX_FRAME_BYTES", "NON_NEGATIVE", "PROTOCOL_VERSION", "SMALL", "SNAPSHOTS",
           "Limit", "WireError", "decode", "encode", "limit_of", "message", "record", "registered"]
_ = typing  # keep typing imported for forward references evaluated by get_type_hints
