"""The wire codec: typed message dataclasses, msgpack-encoded, versioned, validated on decode.

A frame is ``msgpack([PROTOCOL_VERSION, type_name, {field: value}])``. ``decode`` checks the
version, the type, every field's presence and type (nested message dataclasses, lists and
dicts included) and the frame size, and raises ``WireError`` naming what is wrong — so a
daemon counts, logs and drops a bad frame instead of dying of it. ``encode(decode(f))``
round-trips every valid frame.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

import msgpack

from squall.wire_check import Invalid, plainer, validator

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024 * 1024  # bundles travel on the control plane; tuples never do

_REGISTRY: dict[str, type] = {}

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
    return msgpack.packb([PROTOCOL_VERSION, name, plainer(type(msg))(msg)], use_bin_type=True)


def decode(frame: bytes, max_bytes: int = MAX_FRAME_BYTES) -> Any:
    """Decode and validate one frame; raise WireError on anything malformed."""
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise WireError(f"frame must be bytes, got {type(frame).__name__}")
    if len(frame) > max_bytes:
        raise WireError(f"frame of {len(frame)} bytes exceeds the limit of {max_bytes}")
    try:
        data = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise WireError(f"not a msgpack frame: {type(exc).__name__}") from None
    if not isinstance(data, list) or len(data) != 3:
        raise WireError("frame must be [version, type, fields]")
    version, name, fields = data
    if version != PROTOCOL_VERSION:
        raise WireError(f"protocol version {version!r} not supported (expected {PROTOCOL_VERSION})")
    if not isinstance(name, str):
        raise WireError("message type must be a string")
    cls = _REGISTRY.get(name)
    if cls is None:
        raise WireError(f"unknown message type {name[:64]!r}")
    try:
        return validator(cls)(fields)
    except Invalid as exc:  # the path is built only now: valid frames pay for no formatting
        raise WireError(f"{name}{exc.path()}: {exc.detail}") from None


def registered() -> dict[str, type]:
    """Every message type by name (for tests that fuzz every decoder)."""
    return dict(_REGISTRY)


__all__ = ["NON_NEGATIVE", "PROTOCOL_VERSION", "WireError", "decode", "encode", "message", "record", "registered"]
_ = typing  # keep typing imported for forward references evaluated by get_type_hints
