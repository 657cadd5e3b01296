"""The item layout of the data plane, in one place: how an inbox item ``(task, payload)`` is
written as plain values — in a frame between workers, and in an executor's snapshot — and
read back, and which kind each task is (the kind decides which payloads suit it).

An inbox item is ``(target_task, payload)``: for a bolt task the payload is a ``Tuple``, for
a spout or acker task one of the control tuples of ``runtime/messages.py``. Written::

    data item     [target_task, stream, source_task, values, roots]
                  stream: str; values: list; roots: {root: edge} (uint64s) or nil (untracked)
    control item  [target_task, kind, root, ...]      (kind: int, see runtime/messages.py)
                  ACK_INIT [t, 0, root, xor, spout_task]  ACK_ACK [t, 1, root, xor]
                  ACK_FAIL [t, 2, root]  TREE_COMPLETE [t, 3, root]  TREE_FAILED [t, 4, root]
    bulk control  ACK_BULK [t, 5, [root, xor, root, xor, ...], [failed root, ...]]
                  ACK_INIT_BULK [t, 6, spout_task, [root, xor, root, xor, ...]]
                  TREES_DONE [t, 7, [completed root, ...], [failed root, ...]]

    frame         msgpack([FRAME_VERSION, sender, link, seq, [item, item, ...]])
                  sender: the sending worker's data endpoint "host:port"; link: the sender's
                  token for its link to this receiver (new each time the link opens); seq:
                  the frame's number on that link (1, 2, ...). A receiver keeps the last
                  (link, seq) per sender, so Nimbus can tell that a link's last frame arrived
                  (docs/nimbus.md, "quiescent"). link = seq = 0: a frame on no counted link.

The second element tells the two apart (a string is a stream name, an int a control kind).
The component and field names are not written: the reader knows them from the spec.

Guarantees:

* ``write`` and ``ItemReader.read`` are inverses for every item a topology's executors emit:
  reading what was written gives back equal payloads (a tuple's ``values`` as a list);
* ``ItemReader.read`` never raises on input: an item that is malformed, names a task it was
  given no sink for, or does not suit its target (a data tuple for a spout, an ack for a bolt,
  a wrong arity, an unknown source or stream) is counted as bad (and passed to ``on_bad``);
  the valid items are delivered in order;
* ``encode_frame`` drops only the items msgpack cannot serialise (each passed to
  ``on_error``); ``open_frame`` raises ``FrameError`` naming the field at fault for anything
  that is not a frame of this version (a frame of another version says both versions);
  ``decode_frame`` returns None for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from squall.supervisor.runtime.messages import (
    ACK_ACK,
    ACK_BULK,
    ACK_FAIL,
    ACK_INIT,
    ACK_INIT_BULK,
    TREE_COMPLETE,
    TREE_FAILED,
    TREES_DONE,
)
from squall.topology.component import Tuple
from squall.topology.spec import ACKER_COMPONENT, SPOUT, ExecutorKind, ExecutorSpec, TopologySpec

# 2: the header names the sender, its link and the frame's number on it; 3: the bulk control
# items (a receiver of version 2 would count them as bad and lose their acks)
FRAME_VERSION = 3
FRAME_FIELDS = ("version", "sender", "link", "seq", "items")
MAX_SENDER_CHARS = 300  # "host:port": a host name is at most 253 characters
MAX_LINK = 2**63 - 1  # link tokens and sequence numbers are unsigned 63-bit integers

Sink = Callable[[tuple[int, Any]], None]

# The kinds of task, by what their inbox takes: a bolt takes tuples; a spout, the outcomes of
# its trees; an acker, the ack messages. A task's kind is its executor's.
BOLT_TASK = ExecutorKind.BOLT
SPOUT_TASK = ExecutorKind.SPOUT
ACKER_TASK = ExecutorKind.ACKER

# control kind -> (item length with the target, the task kind it is for)
CONTROL_SHAPES: dict[int, tuple[int, ExecutorKind]] = {
    ACK_INIT: (5, ACKER_TASK),
    ACK_ACK: (4, ACKER_TASK),
    ACK_FAIL: (3, ACKER_TASK),
    TREE_COMPLETE: (3, SPOUT_TASK),
    TREE_FAILED: (3, SPOUT_TASK),
}
# bulk control kind -> the task kind it is for (shapes: ``_bulk_payload``)
BULK_KINDS: dict[int, ExecutorKind] = {ACK_BULK: ACKER_TASK, ACK_INIT_BULK: ACKER_TASK, TREES_DONE: SPOUT_TASK}
_PACK_ERRORS = (TypeError, ValueError, OverflowError)
new_tuple = object.__new__  # builds a Tuple without running its __init__ (the reader sets every slot)


def task_kinds(spec: TopologySpec, executors: Iterable[ExecutorSpec]) -> dict[int, ExecutorKind]:
    """Every task of ``executors`` (ackers included) -> its kind."""
    kinds: dict[int, ExecutorKind] = {}
    for e in executors:
        if e.component == ACKER_COMPONENT:
            kind = ACKER_TASK
        else:
            kind = SPOUT_TASK if spec.component(e.component).kind == SPOUT else BOLT_TASK
        for t in e.tasks:
            kinds[t] = kind
    return kinds


# -- writing ---------------------------------------------------------------------------------


def write(items: Iterable[tuple[int, Any]]) -> list[tuple]:
    """Inbox items in the item layout, in order (the only place the layout is written)."""
    return [
        # type(p), not p.__class__: measured cheaper here (instructions per item, cachegrind)
        (t, p.stream, p.task, p.values, p.roots or None) if type(p) is Tuple else (t, *p)
        for t, p in items
    ]


def source_of(item: tuple[int, Any]) -> tuple[int | None, str]:
    """(source task, stream) of an inbox item, for error reports: a control item has no
    source task and is reported on stream "control"."""
    payload = item[1]
    if type(payload) is Tuple:
        return payload.task, payload.stream
    return None, "control"


def packable(items: list[tuple[int, Any]], on_error: Callable[[tuple[int, Any], Exception], None]) -> list[tuple]:
    """``items`` written in the layout, less those msgpack cannot serialise: each of those is
    passed (as the inbox item) to ``on_error`` and left out, so one bad value never costs its
    neighbours."""
    rows = write(items)
    try:
        msgpack.packb(rows, use_bin_type=True)
        return rows
    except _PACK_ERRORS:
        pass  # find the culprits one by one; the common case above stays one C call
    good: list[tuple] = []
    for item, row in zip(items, rows):
        try:
            msgpack.packb(row, use_bin_type=True)
        except _PACK_ERRORS as exc:
            on_error(item, exc)
            continue
        good.append(row)
    return good


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """Who sent a frame, on which of its links, as which frame of that link (see the layout)."""

    sender: str = ""
    link: int = 0
    seq: int = 0


NO_LINK = FrameHeader()  # a frame counted on no link (tests, tools)


class FrameError(ValueError):
    """A data frame that is not a frame of this version; the message names the field at fault."""


def encode_frame(
    items: list[tuple[int, Any]],
    on_error: Callable[[tuple[int, Any], Exception], None],
    header: FrameHeader = NO_LINK,
) -> tuple[bytes, int]:
    """One frame for the inbox items ``items`` under ``header``; returns (frame, items in it).
    An item msgpack cannot pack is passed to ``on_error`` and left out (``packable``)."""
    rows = write(items)
    head = (FRAME_VERSION, header.sender, header.link, header.seq)
    try:
        return msgpack.packb((*head, rows), use_bin_type=True), len(rows)
    except _PACK_ERRORS:
        rows = packable(items, on_error)  # rare: a value the user emitted that cannot be sent
        return msgpack.packb((*head, rows), use_bin_type=True), len(rows)


def open_frame(frame: bytes) -> tuple[FrameHeader, list]:
    """The header and items (not yet validated) of a frame of this version; ``FrameError``
    naming the field at fault otherwise."""
    try:
        data = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise FrameError(f"not msgpack ({type(exc).__name__})") from None
    if type(data) is not list or not data:
        raise FrameError("not a list [version, sender, link, seq, items]")
    if data[0] != FRAME_VERSION:
        raise FrameError(
            f"field 'version' is {data[0]!r:.20}, this worker reads {FRAME_VERSION} "
            "(the sending worker runs another Squall version)"
        )
    if len(data) != len(FRAME_FIELDS):
        raise FrameError(f"{len(data)} fields, expected {len(FRAME_FIELDS)} {list(FRAME_FIELDS)}")
    _, sender, link, seq, items = data
    if type(sender) is not str or len(sender) > MAX_SENDER_CHARS:
        raise FrameError(f"field 'sender' must be a \"host:port\" string of at most {MAX_SENDER_CHARS} characters")
    if type(link) is not int or not 0 <= link <= MAX_LINK:
        raise FrameError("field 'link' must be an integer in [0, 2**63)")
    if type(seq) is not int or not 0 <= seq <= MAX_LINK:
        raise FrameError("field 'seq' must be an integer in [0, 2**63)")
    if type(items) is not list:
        raise FrameError("field 'items' must be a list")
    return FrameHeader(sender, link, seq), items


def decode_frame(frame: bytes) -> list | None:
    """The items of a frame (not yet validated), or None if ``frame`` is not a frame of this
    version."""
    try:
        return open_frame(frame)[1]
    except FrameError:
        return None


# -- reading ---------------------------------------------------------------------------------


class ItemReader:
    """Reads items in the layout back into inbox items of one topology, validating each.

    The sinks say where each item goes and, by the map it is in, which items suit it:
    ``data_sinks`` for bolt tasks, ``control_sinks`` (task -> (task kind, sink)) for spout
    and acker tasks. A task in neither is not deliverable: its items are bad.
    """

    def __init__(self, spec: TopologySpec) -> None:
        # stream -> source task -> (component, fields index, arity); one fields dict per
        # stream, shared by every tuple of it, as the engine does locally. Keyed by stream
        # first: two plain lookups cost less than building and hashing a (source, stream) key
        # for every item (measured: about 6% of the receiving side's instructions).
        self.streams: dict[str, dict[int, tuple[str, dict[str, int], int]]] = {}
        ranges = spec.task_ranges()
        for comp in spec.components:
            for stream in comp.outputs:
                fields = {f: i for i, f in enumerate(stream.fields)}
                by_source = self.streams.setdefault(stream.name, {})
                for t in ranges[comp.name]:
                    by_source[t] = (comp.name, fields, len(stream.fields))

    def read(
        self,
        items: Iterable[Any],
        data_sinks: Mapping[int, Sink],
        control_sinks: Mapping[int, tuple[str, Sink]],
        on_bad: Callable[[Any], None] | None = None,
    ) -> tuple[int, int]:
        """Hand each valid item to its task's sink as an inbox item; returns (delivered, bad).
        Never raises on bad input (a sink's own exceptions of the kinds below count the item
        as bad too)."""
        streams = self.streams
        delivered = bad = 0
        # The checks lean on the lookups raising for anything of the wrong shape or type (an
        # unhashable target, a short item, an unknown task or stream): a frame of valid items,
        # the only common case, then pays for no explicit test it does not need.
        for item in items:
            try:
                if item[1].__class__ is str:
                    target, stream, source, values, roots = item
                    sink = data_sinks[target]
                    component, fields, arity = streams[stream][source]
                    if (
                        values.__class__ is not list
                        or len(values) != arity
                        or (roots is not None and not _valid_roots(roots))
                    ):
                        raise ValueError
                    # Tuple(component, stream, source, values, fields, roots) without the
                    # __init__ frame (as the engine's emits build it): every slot set here.
                    tup = new_tuple(Tuple)
                    tup.component = component
                    tup.stream = stream
                    tup.task = source
                    tup.values = values
                    tup.fields = fields
                    tup.roots = roots
                    tup.ack_val = 0
                    tup.done = False
                    sink((target, tup))
                else:
                    kind, sink = control_sinks[item[0]]
                    shape = CONTROL_SHAPES.get(item[1])
                    if shape is None:
                        sink((item[0], _bulk_payload(item, kind)))
                    else:
                        if shape[1] != kind or len(item) != shape[0] or not _all_ints(item):
                            raise ValueError
                        sink((item[0], tuple(item[1:])))
            except (TypeError, ValueError, KeyError, IndexError):
                bad += 1
                if on_bad is not None:
                    on_bad(item)
                continue
            delivered += 1
        return delivered, bad


def _valid_roots(roots: Any) -> bool:
    if type(roots) is not dict or not roots:
        return False
    for k, v in roots.items():
        if type(k) is not int or type(v) is not int:
            return False
    return True


def _bulk_payload(item: list, task_kind: str) -> tuple:
    """The payload of a bulk control item for a task of ``task_kind``; ValueError (or a
    lookup error) if it is not one:
    ``[t, ACK_BULK, [root, xor, ...], [root, ...]]``, ``[t, ACK_INIT_BULK, spout_task,
    [root, xor, ...]]``, ``[t, TREES_DONE, [root, ...], [root, ...]]``; every value an int."""
    kind = item[1]
    if BULK_KINDS[kind] != task_kind or len(item) != 4:
        raise ValueError
    if kind == ACK_INIT_BULK:
        _, _, spout_task, pairs = item
        if type(spout_task) is not int or type(pairs) is not list or len(pairs) & 1 or not _all_ints(pairs):
            raise ValueError
        return (kind, spout_task, pairs)
    _, _, first, second = item
    if type(first) is not list or type(second) is not list or not _all_ints(first) or not _all_ints(second):
        raise ValueError
    if kind == ACK_BULK and len(first) & 1:
        raise ValueError
    return (kind, first, second)


def _all_ints(item: list) -> bool:
    for v in item:
        if type(v) is not int:
            return False
    return True
