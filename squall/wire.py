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
import types
from collections import OrderedDict
from typing import Any, TypeVar, dataclass_transform

import msgpack

from squall.bundle import MAX_BUNDLE_BYTES
from squall.wire_check import Invalid, plainer, validator

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
    "SubmitTopology": BUNDLE,
    "Reply": BUNDLE,
    "Heartbeat": SNAPSHOTS,
    "WorkerHeartbeat": SNAPSHOTS,
    "SupervisorAssignment": SNAPSHOTS,
    "WorkerUpdate": SNAPSHOTS,
    "WorkerLaunch": SNAPSHOTS,
}
MAX_FRAME_BYTES = max(limit.frame_bytes for limit in (SMALL, *KIND_LIMITS.values()))  # the largest kind
MAX_STRING_BYTES = 1 * MiB  # any one string (names, errors, conf values)
BYTES_PER_OBJECT = 250  # a generous size of one decoded Python object (a small dict is ~230)
HEADER_OBJECTS = 16  # the budget before the kind is known: version and type are scalars

_REGISTRY: dict[str, type] = {}

M = TypeVar("M")


class WireError(ValueError):
    """A frame that cannot be decoded into a valid message; the message says why."""


# Field metadata: every number in the field (a number, or the values of a list or mapping) must
# be >= 0. Counters and CPU seconds are never negative; a negative one would poison the model.
NON_NEGATIVE: types.MappingProxyType[str, bool] = types.MappingProxyType({"non_negative": True})
# Field metadata: a mapping whose values are maps that many frames carry as the same object,
# which never changes once sent (a change is a new map): an Encoder packs each one once.
SHARED_MAPS: types.MappingProxyType[str, bool] = types.MappingProxyType({"shared_maps": True})


# dataclass_transform: type checkers see the fields of a decorated class as a frozen
# dataclass's (its constructor, its immutability), as they do for @dataclass itself.
@dataclass_transform(frozen_default=True)
def message(cls: type[M]) -> type[M]:
    """Class decorator: a frozen dataclass registered under its class name."""
    dc = dataclasses.dataclass(frozen=True)(cls)
    name = cls.__name__
    if name in _REGISTRY:
        raise TypeError(f"message type {name} registered twice")
    _REGISTRY[name] = dc
    return dc


@dataclass_transform(frozen_default=True)
def record(cls: type[M]) -> type[M]:
    """Class decorator for a frozen dataclass nested inside messages (not sent on its own)."""
    return dataclasses.dataclass(frozen=True)(cls)


def encode(msg: Any) -> bytes:
    name = _registered_name(msg)
    return msgpack.packb([PROTOCOL_VERSION, name, plainer(type(msg))(_to_wire(msg))], use_bin_type=True)


def _registered_name(msg: Any) -> str:
    name = type(msg).__name__
    if _REGISTRY.get(name) is not type(msg):
        raise TypeError(f"{name} is not a registered message type")
    return name


def _to_wire(msg: Any) -> Any:
    to_wire = getattr(msg, "to_wire", None)
    return msg if to_wire is None else to_wire()


class Encoder:
    """``encode`` for a sender of many frames that carry the same big maps (Nimbus pushing
    one placement to hundreds of boards): the maps of a ``SHARED_MAPS`` field are packed once
    per map object, kept for the ``keep`` most recent ones, and their bytes reused. The
    frames are byte for byte those of ``encode``. A cached map must not change after it was
    first encoded (the field's contract); a new map object is packed anew. Memory: at most
    ``keep`` maps and their bytes are held beyond their users; a push holds one map per
    topology, so up to ``keep`` topologies are packed once per push, more would be repacked."""

    def __init__(self, keep: int = 32) -> None:
        self.keep = keep
        self._packer = msgpack.Packer(use_bin_type=True)
        self._packed: OrderedDict[int, tuple[Any, bytes]] = OrderedDict()  # id -> (the map, its bytes)
        self.packed_maps = 0  # maps packed (not reused): for tests and benchmarks

    def encode(self, msg: Any) -> bytes:
        name = _registered_name(msg)
        shared = _shared_fields(type(msg))
        if not shared:
            return encode(msg)
        pack = self._packer.pack
        fields = plainer(type(msg))(_to_wire(msg))
        parts = [
            self._packer.pack_array_header(3),
            pack(PROTOCOL_VERSION),
            pack(name),
            self._packer.pack_map_header(len(fields)),
        ]
        for key, value in fields.items():
            parts.append(pack(key))
            if key not in shared:
                parts.append(pack(value))
                continue
            parts.append(self._packer.pack_map_header(len(value)))
            for inner_key, inner in value.items():
                parts.append(pack(inner_key))
                parts.append(self._once(inner))
        return b"".join(parts)

    def _once(self, value: Any) -> bytes:
        hit = self._packed.get(id(value))
        if hit is not None and hit[0] is value:  # held here, so its id cannot be another's
            self._packed.move_to_end(id(value))
            return hit[1]
        packed = self._packer.pack(value)
        self.packed_maps += 1
        self._packed[id(value)] = (value, packed)
        while len(self._packed) > self.keep:
            self._packed.popitem(last=False)
        return packed


_SHARED_FIELDS: dict[type, frozenset[str]] = {}


def _shared_fields(cls: type) -> frozenset[str]:
    got = _SHARED_FIELDS.get(cls)
    if got is None:
        got = _SHARED_FIELDS[cls] = frozenset(f.name for f in dataclasses.fields(cls) if f.metadata.get("shared_maps"))
    return got


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
    try:
        msg = validator(cls)(fields)
    except Invalid as exc:  # the path is built only now: valid frames pay for no formatting
        raise WireError(f"{name}{exc.path()}: {exc.detail}") from None
    from_wire = getattr(msg, "from_wire", None)
    return msg if from_wire is None else from_wire()


def _unpacker(data: Any, limit: Limit, budget: _Budget) -> msgpack.Unpacker:
    """An unpacker over ``data`` whose every length cap follows ``limit`` (an array or map
    longer than the whole budget is refused before it is built)."""
    unpacker = msgpack.Unpacker(
        raw=False,
        strict_map_key=False,
        max_buffer_size=max(len(data), 1),
        list_hook=budget.spend,
        object_hook=budget.spend,
        max_str_len=min(MAX_STRING_BYTES, limit.frame_bytes),
        max_bin_len=limit.frame_bytes,
        max_array_len=limit.objects,
        max_map_len=limit.objects,
        max_ext_len=0,
    )
    unpacker.feed(data)
    return unpacker


def registered() -> dict[str, type]:
    """Every message type by name (for tests that fuzz every decoder)."""
    return dict(_REGISTRY)


__all__ = [
    "BUNDLE",
    "Encoder",
    "KIND_LIMITS",
    "MAX_FRAME_BYTES",
    "NON_NEGATIVE",
    "PROTOCOL_VERSION",
    "SHARED_MAPS",
    "SMALL",
    "SNAPSHOTS",
    "Limit",
    "WireError",
    "decode",
    "encode",
    "limit_of",
    "message",
    "record",
    "registered",
]
