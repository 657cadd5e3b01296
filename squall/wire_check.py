"""Validators and encoders for the wire codec, built once per annotated type and reused
for every frame.

``validator(tp)`` returns a function that takes a plain (msgpack-decoded) value and returns
it converted to ``tp`` (message dataclasses built, tuples made, ints widened to float), or
raises :class:`Invalid` with what is wrong. The path of the fault (``.workers[0].metrics``)
is assembled only when a fault travels up, so a valid frame pays for no string formatting —
a Nimbus decodes hundreds of heartbeats a second, each with dozens of executor records.

``plainer(cls)`` turns a message into msgpack-ready data, passing through untouched every
field whose annotation holds no dataclass (lists of ints, maps of str, bytes).

The checks and their messages are the codec's (see ``squall.wire``): presence and type of
every field, no unknown fields, finite floats, no bool where a number is expected, no
negative number in a field marked ``NON_NEGATIVE``, and for ``X | None`` the fault of the X.

Speed: a dataclass's validator first tries a fast path that checks its fields of plain types
(``int``, ``str``, ``bytes``, ``bool``, finite ``float``, lists and maps of those) in one loop,
by exact type, without a call per value, and calls the nested validators only for the
other fields; at the first value it is not sure of, it hands the whole mapping to the
reference checks, which accept or name the fault as before. So it accepts exactly what they
accept and builds an equal value (``tests/wire/test_wire_fast_path.py`` compares both on
mutated frames). A heartbeat of 2 workers x 5 executors decoded in ~120-140 us instead of
~160-200 us (CPU, best of 5 x 2,000, load 5-11: noisy).
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Callable
from typing import Any, ClassVar, Union, get_args, get_origin, get_type_hints

Validator = Callable[[Any], Any]

# A dataclass's fields of plain types are checked in one loop without a call per value (see
# _dataclass); False leaves only the reference checks (tests compare the two).
FAST_PATH = True

_VALIDATORS: dict[Any, Validator] = {}


class Invalid(Exception):
    """A value that does not fit its annotation: ``detail``, at ``path()``."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self._segments: list[str] = []  # innermost first

    def at(self, segment: str) -> Invalid:
        """Prefix the path with ``segment`` (outer layers add theirs as the error passes out)."""
        self._segments.append(segment)
        return self

    def path(self) -> str:
        return "".join(reversed(self._segments))


def hints_of(cls: type) -> dict[str, Any]:
    """The annotated fields of a dataclass (ClassVars left out)."""
    return {k: v for k, v in get_type_hints(cls).items() if get_origin(v) is not ClassVar and v is not ClassVar}


def validator(tp: Any) -> Validator:
    """The validator of annotation ``tp`` (built on first use)."""
    v = _VALIDATORS.get(tp)
    if v is None:
        v = _VALIDATORS[tp] = _build(tp)
    return v


def _lazy(tp: Any) -> Validator:
    """A validator that builds ``tp``'s on first call (dataclasses may refer to each other)."""
    cell: list[Validator] = []

    def check(value: Any) -> Any:
        if not cell:
            cell.append(validator(tp))
        return cell[0](value)

    return check


def _identity(value: Any) -> Any:
    return value


def _build(tp: Any) -> Validator:
    if tp is Any:
        return _identity
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return _union(tp)
    if tp is type(None):

        def none(value: Any) -> None:
            if value is None:
                return None
            raise Invalid("expected None")

        return none
    if origin in (list, tuple) or tp in (list, tuple):
        return _sequence(tp, origin)
    if origin is dict or tp is dict:
        return _mapping(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):  # a class, not an instance
        return _dataclass(tp)
    if tp is float:
        return _float
    if tp is int:
        return _int
    if tp in (str, bool, bytes):
        return _exact(tp)
    raise TypeError(f"unsupported annotation {tp!r}")  # a bug in a message class


def _union(tp: Any) -> Validator:
    options = [_lazy(o) for o in get_args(tp)]
    not_none = [o for o in get_args(tp) if o is not type(None)]
    only = _lazy(not_none[0]) if len(not_none) == 1 else None

    def union(value: Any) -> Any:
        if only is not None:  # X | None: say what is wrong with the X
            return None if value is None else only(value)
        for option in options:
            try:
                return option(value)
            except Invalid:
                pass
        raise Invalid(f"{value!r:.60} matches none of {tp}")

    return union


def _sequence(tp: Any, origin: Any) -> Validator:
    args = get_args(tp)
    if origin is tuple and args and args[-1] is not Ellipsis:
        positions = [_lazy(a) for a in args]

        def fixed(value: Any) -> tuple:
            if not isinstance(value, (list, tuple)):
                raise Invalid(f"expected a list, got {type(value).__name__}")
            if len(positions) != len(value):
                raise Invalid(f"expected {len(positions)} items, got {len(value)}")
            out = []
            for i, (check, v) in enumerate(zip(positions, value)):
                try:
                    out.append(check(v))
                except Invalid as exc:
                    exc.at(f"[{i}]")
                    raise
            return tuple(out)

        return fixed
    item = _lazy(args[0]) if args else _identity
    as_tuple = origin is tuple or tp is tuple

    def sequence(value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise Invalid(f"expected a list, got {type(value).__name__}")
        out: list[Any] = []
        append = out.append
        i = 0
        try:
            for v in value:
                append(item(v))
                i += 1
        except Invalid as exc:
            exc.at(f"[{i}]")
            raise
        return tuple(out) if as_tuple else out

    return sequence


def _mapping(tp: Any) -> Validator:
    kt, vt = get_args(tp) or (Any, Any)
    key_check, value_check = _lazy(kt), _lazy(vt)

    def mapping(value: Any) -> dict:
        if not isinstance(value, dict):
            raise Invalid(f"expected a mapping, got {type(value).__name__}")
        out = {}
        for k, v in value.items():
            try:
                ck = key_check(k)
            except Invalid as exc:
                exc.at(" key")
                raise
            try:
                out[ck] = value_check(v)
            except Invalid as exc:
                exc.at(f"[{k!r:.30}]")
                raise
        return out

    return mapping


def _dataclass(cls: type) -> Validator:
    hints = hints_of(cls)
    known = frozenset(hints)
    fields = [
        (
            f.name,
            _lazy(hints[f.name]),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            bool(f.metadata.get("non_negative")),
        )
        for f in dataclasses.fields(cls)
    ]

    def checked(value: Any) -> Any:
        """Every check, with the fault's path: the reference the fast path defers to."""
        if not isinstance(value, dict):
            raise Invalid(f"expected a mapping of fields, got {type(value).__name__}")
        kwargs = {}
        for name, check, required, non_negative in fields:
            if name in value:
                try:
                    kwargs[name] = checked_value = check(value[name])
                    if non_negative:
                        _refuse_negative(checked_value)
                except Invalid as exc:
                    exc.at(f".{name}")
                    raise
            elif required:
                raise Invalid(f"missing field {name!r}")
        if not known.issuperset(value):
            unknown = set(value) - known
            raise Invalid(f"unknown field(s) {sorted(map(str, unknown))[:5]}")
        return cls(**kwargs)

    plan: list[tuple[str, int, Any, Any, bool, bool]] = []  # filled on first use (see _fast_plan)

    def build(value: Any) -> Any:
        # The fast path accepts only what ``checked`` accepts, and builds the same value; on
        # anything else (a fault, a form it does not know) ``checked`` decides, so faults
        # and their messages are the reference's.
        if not FAST_PATH or type(value) is not dict or not known.issuperset(value):
            return checked(value)
        if not plan:
            plan.extend(_fast_plan(cls, hints))
        kwargs = {}
        for name, kind, of, check, required, non_negative in plan:
            v = value.get(name, _ABSENT)
            if v is _ABSENT:
                if required:
                    return checked(value)
                continue
            if kind == _SAME:
                if type(v) is not of or (non_negative and v < 0):
                    return checked(value)
            elif kind == _FLOAT:
                if type(v) is int:
                    v = float(v)  # as _float widens it (msgpack's ints are 64-bit: always finite)
                elif type(v) is not float or not math.isfinite(v):
                    return checked(value)
                if non_negative and v < 0:
                    return checked(value)
            elif kind == _LIST:
                if type(v) is not list:
                    return checked(value)
                for x in v:
                    if type(x) is not of or (non_negative and x < 0):
                        return checked(value)
            elif kind == _MAP:
                if type(v) is not dict:
                    return checked(value)
                key_type, value_type = of
                for k, x in v.items():
                    if type(k) is not key_type or type(x) is not value_type or (non_negative and x < 0):
                        return checked(value)
            else:
                try:
                    v = check(v)
                    if non_negative:
                        _refuse_negative(v)
                except Invalid:
                    return checked(value)
            kwargs[name] = v
        return cls(**kwargs)

    return build


# The fast path's kinds of field (see _fast_plan).
_SAME, _FLOAT, _LIST, _MAP, _CALL = range(5)
_ABSENT = object()
_EXACT = (int, str, bytes, bool)  # accepted as they are when of exactly this type


def _fast_plan(cls: type, hints: dict[str, Any]) -> list[tuple[str, int, Any, Any, bool, bool]]:
    """Per field of ``cls``: (name, kind, type(s) of its values, validator, required,
    non_negative). A value of exactly the annotated plain type (``int``, ``str``, ``bytes``,
    ``bool``; a finite ``float``; a list or map of plain values) is what ``_build``'s
    validators return unchanged (or as an equal new list or dict), so the fast path takes it
    as it is, without a call per value; any other annotation is ``_CALL``: its validator."""
    out = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        origin, args = get_origin(tp), get_args(tp)
        kind: int = _CALL
        of: Any = None
        if tp in _EXACT:
            kind, of = _SAME, tp
        elif tp is float:
            kind = _FLOAT
        elif origin is list and len(args) == 1 and args[0] in _EXACT:
            kind, of = _LIST, args[0]
        elif origin is dict and len(args) == 2 and args[0] in _EXACT and args[1] in _EXACT:
            kind, of = _MAP, args
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        non_negative = bool(f.metadata.get("non_negative"))
        if non_negative and of is not None and (of if kind != _MAP else of[1]) is not int:
            kind = _CALL  # a sign check on anything but numbers: the reference's business
        out.append((f.name, kind, of, validator(tp), required, non_negative))
    return out


def _refuse_negative(value: Any) -> None:
    """Raise Invalid if the number, or any number among a list's items or a mapping's values,
    is negative (fields with ``non_negative`` metadata: counters, CPU seconds)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise Invalid(f"must not be negative, got {value!r}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            try:
                _refuse_negative(v)
            except Invalid as exc:
                exc.at(f"[{i}]")
                raise
    elif isinstance(value, dict):
        for k, v in value.items():
            try:
                _refuse_negative(v)
            except Invalid as exc:
                exc.at(f"[{k!r:.30}]")
                raise


def _float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if not math.isfinite(number):  # no field means infinity; NaN would poison the schedulers
            raise Invalid(f"expected a finite number, got {value!r}")
        return number
    raise Invalid(f"expected a number, got {type(value).__name__}")


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise Invalid(f"expected an integer, got {type(value).__name__}")


def _exact(tp: type) -> Validator:
    def exact(value: Any) -> Any:
        if isinstance(value, tp) and not (tp is not bool and isinstance(value, bool)):
            return value
        raise Invalid(f"expected {tp.__name__}, got {type(value).__name__}")

    return exact


# -- encoding ------------------------------------------------------------------------------

Plainer = Callable[[Any], Any]
_PLAINERS: dict[Any, Plainer | None] = {}


def to_plain(value: Any) -> Any:
    """Any value made of dataclasses, lists, tuples and dicts as msgpack-ready plain data
    (the generic walk, for values annotated ``Any``)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plainer(type(value))(value)
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    return value


def plainer(cls: type) -> Plainer:
    """The encoder of message dataclass ``cls``: a dict of its fields, where a field whose
    annotation holds no dataclass and no ``Any`` is passed to msgpack as it is (a placement
    map of thousands of entries is not walked in Python once per board)."""
    p = _PLAINERS.get(cls)
    if p is None:
        p = _PLAINERS[cls] = _field_plainer(cls)
    return p


def _field_plainer(cls: type) -> Plainer:
    hints = hints_of(cls)
    fields = [(f.name, _value_plainer(hints[f.name])) for f in dataclasses.fields(cls)]

    def plain(value: Any) -> dict:
        out = {}
        for name, convert in fields:
            v = getattr(value, name)
            out[name] = v if convert is None else convert(v)
        return out

    return plain


def _value_plainer(tp: Any) -> Plainer | None:
    """None when values of ``tp`` are already plain, else their converter."""
    if tp is Any:
        return to_plain
    if dataclasses.is_dataclass(tp):
        return lambda v: plainer(type(v))(v) if v is not None else None
    origin = get_origin(tp)
    args = [a for a in get_args(tp) if a is not Ellipsis]
    if origin in (Union, types.UnionType):
        return to_plain if any(_value_plainer(a) is not None for a in args) else None
    if origin in (list, tuple) or tp in (list, tuple):
        if not args:
            return to_plain
        item = [_value_plainer(a) for a in args]
        if all(i is None for i in item):
            return None
        return lambda v: [to_plain(x) for x in v]
    if origin is dict or tp is dict:
        if not args:
            return to_plain
        if all(_value_plainer(a) is None for a in args):
            return None
        return lambda v: {to_plain(k): to_plain(x) for k, x in v.items()}
    return None
