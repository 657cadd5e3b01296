"""The item layout of the data plane, in one place: how an inbox item ``(task, payload)`` is
written as plain values — in a frame between workers, and in an executor's snapshot — and
read back, and which kind each task is (the kind decides which payloads suit it).

An inbox item is ``(target_task, payload)``: for a bolt task the payload is a ``Tuple``, for
a spout or acker task one of the control tuples of ``runtime/messages.py``. The data tuples
of a frame that share target task, stream and source task are written as one *run* item
(in a snapshot's queue, each stretch of consecutive ones)::

    data run      [target_task, stream, source_task, rows, roots]
                  stream: str; rows: [values, values, ...] (at least one; each a list of the
                  stream's arity); roots: nil when every tuple of the run is untracked, else
                  a list parallel to rows, each {root: edge} (uint64s) or nil
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
The component and field names are not written: the reader knows them from the spec. A run
puts the target, stream and source on the wire once for all its tuples, and the reader looks
them up and checks them once (frame version 4; version 3 wrote one five-element item per
tuple, ``[target, stream, source, values, roots]``, and a version-3 worker refuses a
version-4 frame whole, and the other way round, naming both versions).

Guarantees:

* ``write`` and ``ItemReader.read`` are inverses for every item a topology's executors emit:
  reading what was written gives back equal payloads (a tuple's ``values`` as a list), in
  the order written for each (target, source, stream) and for the control items (exactly
  the order written with ``regroup=False``);
* ``ItemReader.read`` never raises on input: an item that is malformed, names a task it was
  given no sink for, or does not suit its target (a data run for a spout, an ack for a bolt,
  a row of the wrong arity, an unknown source or stream) is counted as one bad item (and
  passed to ``on_bad``) and none of a bad run's tuples is delivered; the valid items are
  delivered in order; ``why_bad`` names the field at fault of an item ``read`` refused;
* ``encode_frame`` drops only the inbox items msgpack cannot serialise (each passed to
  ``on_error``); ``open_frame`` raises ``FrameError`` naming the field at fault for anything
  that is not a frame of this version (a frame of another version says both versions);
  ``decode_frame`` returns None for it.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
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
# items (a receiver of version 2 would count them as bad and lose their acks); 4: data tuples
# as runs (a receiver of version 3 would read a run as one tuple of the wrong arity)
FRAME_VERSION = 4
FRAME_FIELDS = ("version", "sender", "link", "seq", "items")
MAX_SENDER_CHARS = 300  # "host:port": a host name is at most 253 characters
MAX_LINK = 2**63 - 1  # link tokens and sequence numbers are unsigned 63-bit integers

Sink = Callable[[tuple[int, Any]], None]
RunSink = Callable[[int, "Rows"], None]  # (target task, rows): a run of untracked tuples whole
# (target task, values, head): one untracked tuple as a row of the run of ``head``, a ``Rows``
# with no rows that names its source component, stream, task and fields, one object per
# (source task, stream, target task) (``Outbox.put_row`` tells its open run by the head)
RowSink = Callable[[int, Any, "Rows"], None]
_NO_RUN_SINKS: dict[int, RunSink] = {}

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


class Rows:
    """Untracked data tuples of one stream from one source task, already as the layout's
    rows: what a remote ``emit_many`` hands the outbox as one inbox item ``(target, Rows)``
    in place of one ``Tuple`` per row, so the sending side builds no ``Tuple`` only for the
    writer to take it apart. ``write`` writes it as (part of) a data run; ``tuples`` gives
    the ``Tuple``s it stands for, for a path that delivers locally or tuple by tuple."""

    __slots__ = ("component", "stream", "task", "rows", "fields")

    def __init__(self, component: str, stream: str, task: int, rows: list, fields: dict[str, int]) -> None:
        self.component = component
        self.stream = stream
        self.task = task  # the source task, as a Tuple's
        self.rows = rows  # [values, values, ...]: at least one, each of the stream's arity
        self.fields = fields

    def tuples(self) -> list[Tuple]:
        """One untracked ``Tuple`` per row, in order."""
        return [Tuple(self.component, self.stream, self.task, values, self.fields) for values in self.rows]


def write(items: Sequence[tuple[int, Any]], regroup: bool = True) -> list:
    """Inbox items in the item layout (the only place the layout is written): the data
    tuples as runs, each at the place of its first tuple, the control items in their order.

    With ``regroup`` (a frame), a run holds every tuple of the batch with its target, stream
    and source, so two tasks fed in turn (a shuffle) make two long runs, not runs of one:
    the order is kept per (target, source, stream), as between Storm's tasks, not across
    sources. Without it (a snapshot's queue), a run is a stretch of consecutive tuples and
    reading gives back the exact order. A ``Rows`` item joins the run of its key as its
    tuples would, one by one."""
    return write_counted(items, regroup)[0]


def write_counted(items: Sequence[tuple[int, Any]], regroup: bool = True) -> tuple[list, int]:
    """``write``, and the number of inbox items written, a ``Rows`` item counted as its
    tuples (a frame's count: the receiver's ``received`` counts them one by one)."""
    if len(items) == 1:  # a frame of a quiet link: no run bookkeeping
        ((t, p),) = items
        if type(p) is Tuple:
            return [[t, p.stream, p.task, [p.values], [p.roots] if p.roots else None]], 1
        if type(p) is Rows:
            return [[t, p.stream, p.task, list(p.rows), None]], len(p.rows)
        return [(t, *p)], 1
    rows: list = []
    append = rows.append
    runs: list[list[Any]] = []
    by_key: dict[tuple[int, int, str], list[Any]] = {}  # (target, source, stream) -> its run
    # the last tuple's key: the common case, the same again, costs three compares
    run_target = run_stream = run_source = None
    values: list = []
    roots: list = []
    extra = 0  # tuples of Rows items beyond one per item
    for t, p in items:
        # type(p), not p.__class__: measured cheaper here (instructions per item, cachegrind)
        if type(p) is Tuple:
            if t == run_target and p.task == run_source and p.stream == run_stream:
                values.append(p.values)
                roots.append(p.roots)
                continue
            run_target, run_stream, run_source = t, p.stream, p.task
            if regroup:
                key = (t, run_source, run_stream)
                run = by_key.get(key)
            else:
                run = None
            if run is None:
                values = [p.values]
                roots = [p.roots]
                run = [t, run_stream, run_source, values, roots]
                append(run)
                runs.append(run)
                if regroup:
                    by_key[key] = run
            else:
                values = run[3]
                roots = run[4]
                values.append(p.values)
                roots.append(p.roots)
        elif type(p) is Rows:
            n = len(p.rows)
            extra += n - 1
            if not (t == run_target and p.task == run_source and p.stream == run_stream):
                run_target, run_stream, run_source = t, p.stream, p.task
                if regroup:
                    key = (t, run_source, run_stream)
                    run = by_key.get(key)
                else:
                    run = None
                if run is None:
                    values = []
                    roots = []
                    run = [t, run_stream, run_source, values, roots]
                    append(run)
                    runs.append(run)
                    if regroup:
                        by_key[key] = run
                else:
                    values = run[3]
                    roots = run[4]
            values.extend(p.rows)
            roots.extend(repeat(None, n))
        else:
            if not regroup:
                run_target = None  # a control item ends the stretch
            append((t, *p))
    for run in runs:
        run_roots = run[4]
        if not any(run_roots):
            run[4] = None  # untracked (acking off): one nil for the run
        elif not all(run_roots):
            run[4] = [r or None for r in run_roots]  # an empty map is written as nil
    return rows, len(items) + extra


def source_of(item: tuple[int, Any]) -> tuple[int | None, str]:
    """(source task, stream) of an inbox item, for error reports: a control item has no
    source task and is reported on stream "control"."""
    payload = item[1]
    if type(payload) is Tuple or type(payload) is Rows:
        return payload.task, payload.stream
    return None, "control"


def packable(items: list[tuple[int, Any]], on_error: Callable[[tuple[int, Any], Exception], None]) -> list:
    """``items`` written in the layout in their exact order (``write`` without regrouping: a
    snapshot's queue), less those msgpack cannot serialise: each of those is passed (as the
    inbox item) to ``on_error`` and left out, so one bad value never costs its neighbours."""
    rows = write(items, regroup=False)
    try:
        msgpack.packb(rows, use_bin_type=True)
        return rows
    except _PACK_ERRORS:
        pass  # find the culprits one by one; the common case above stays one C call
    return write(_packable_items(items, on_error), regroup=False)


def _packable_items(
    items: list[tuple[int, Any]], on_error: Callable[[tuple[int, Any], Exception], None]
) -> list[tuple[int, Any]]:
    """The inbox items of ``items`` msgpack can serialise; each other one goes to ``on_error``."""
    good: list[tuple[int, Any]] = []
    for item in items:
        try:
            msgpack.packb(write((item,)), use_bin_type=True)
        except _PACK_ERRORS as exc:
            p = item[1]
            if type(p) is Rows and len(p.rows) > 1:  # only the rows at fault are dropped
                ones = [(item[0], Rows(p.component, p.stream, p.task, [v], p.fields)) for v in p.rows]
                good.extend(_packable_items(ones, on_error))
                continue
            on_error(item, exc)
            continue
        good.append(item)
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
    """One frame for the inbox items ``items`` under ``header``; returns (frame, inbox items
    in it, a ``Rows`` item counted as its tuples). An item msgpack cannot pack is passed to
    ``on_error`` and left out (``packable``; of a ``Rows`` item, only the rows at fault, each
    as a ``Rows`` item of one)."""
    rows, count = write_counted(items)
    head = (FRAME_VERSION, header.sender, header.link, header.seq)
    try:
        return msgpack.packb((*head, rows), use_bin_type=True), count
    except _PACK_ERRORS:
        good = _packable_items(items, on_error)  # rare: a value the user emitted that cannot be sent
        rows, count = write_counted(good)
        return msgpack.packb((*head, rows), use_bin_type=True), count


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
        run_sinks: Mapping[int, RunSink] = _NO_RUN_SINKS,
    ) -> tuple[int, int]:
        """Hand each valid item to its task's sink as inbox items (a run as one per tuple, in
        order; an untracked run of two or more rows for a task in ``run_sinks`` to that sink
        whole, as one ``Rows``, checked as a run for the data sink is); returns (inbox items
        delivered, a run counted as its tuples, and items bad). Never raises on bad input (a
        sink's own exceptions of the kinds below count the item as bad too; the tuples of a
        run it had taken before stay delivered, uncounted)."""
        streams = self.streams
        delivered = bad = 0
        # The checks lean on the lookups raising for anything of the wrong shape or type (an
        # unhashable target, a short item, an unknown task or stream): a frame of valid items,
        # the only common case, then pays for no explicit test it does not need. A run's rows
        # are checked by C-level passes (``map``) before any of its tuples is built, so a bad
        # run delivers nothing.
        for item in items:
            try:
                if item[1].__class__ is str:
                    target, stream, source, rows, roots = item
                    sink = data_sinks[target]
                    component, fields, arity = streams[stream][source]
                    if rows.__class__ is not list:
                        raise ValueError
                    if len(rows) == 1:  # a run of one (a quiet link): no sets to build
                        first = rows[0]
                        if first.__class__ is not list or len(first) != arity:
                            raise ValueError
                    elif not rows or set(map(type, rows)) != _LIST_ONLY or set(map(len, rows)) != {arity}:
                        raise ValueError
                    if roots is None:
                        if len(rows) > 1:
                            run_sink = run_sinks.get(target)
                            if run_sink is not None:
                                run_sink(target, Rows(component, stream, source, rows, fields))
                                delivered += len(rows)
                                continue
                        # Tuple(component, stream, source, values, fields) without the
                        # __init__ frame (as the engine's emits build it): every slot set.
                        for values in rows:
                            tup = new_tuple(Tuple)
                            tup.component = component
                            tup.stream = stream
                            tup.task = source
                            tup.values = values
                            tup.fields = fields
                            tup.roots = None
                            tup.ack_val = 0
                            tup.done = False
                            sink((target, tup))
                        delivered += len(rows)
                        continue
                    if roots.__class__ is not list or len(roots) != len(rows) or not _valid_roots_list(roots):
                        raise ValueError
                    for values, tup_roots in zip(rows, roots):
                        tup = new_tuple(Tuple)
                        tup.component = component
                        tup.stream = stream
                        tup.task = source
                        tup.values = values
                        tup.fields = fields
                        tup.roots = tup_roots
                        tup.ack_val = 0
                        tup.done = False
                        sink((target, tup))
                    delivered += len(rows)
                else:
                    kind, sink = control_sinks[item[0]]
                    shape = CONTROL_SHAPES.get(item[1])
                    if shape is None:
                        sink((item[0], _bulk_payload(item, kind)))
                    else:
                        if shape[1] != kind or len(item) != shape[0] or not _all_ints(item):
                            raise ValueError
                        sink((item[0], tuple(item[1:])))
                    delivered += 1
            except (TypeError, ValueError, KeyError, IndexError):
                bad += 1
                if on_bad is not None:
                    on_bad(item)
        return delivered, bad

    def why_bad(
        self, item: Any, data_sinks: Mapping[int, Sink], control_sinks: Mapping[int, tuple[str, Sink]]
    ) -> tuple[str, str]:
        """(field, reason) for an item ``read`` refused with these sinks: the field of the
        layout at fault ("item", "target", "stream", "source", "rows", "roots", "kind", or a
        control item's values) and a sentence naming it. Explicit checks, for the rare bad
        item only (``read`` keeps its fast path)."""
        if type(item) is not list or len(item) < 2:
            return "item", f"an item must be a list [target, stream or kind, ...], got {_brief(item)}"
        target = item[0]
        if type(item[1]) is str:
            if len(item) != 5:
                return "item", f"a data run has 5 fields [target, stream, source, rows, roots], got {len(item)}"
            _, stream, source, rows, roots = item
            if type(target) is not int or target not in data_sinks:
                spout_or_acker = type(target) is int and target in control_sinks
                where = "a spout or acker task" if spout_or_acker else "no bolt task run or forwarded here"
                return "target", f"data run for task {_brief(target)}: {where}"
            by_source = self.streams.get(stream)
            if by_source is None:
                return "stream", f"data run for task {target}: no component declares stream {stream!r:.60}"
            if type(source) is not int or source not in by_source:
                return "source", f"data run for task {target}: task {_brief(source)} does not emit on stream {stream!r}"
            component, _, arity = by_source[source]
            if type(rows) is not list or not rows:
                return "rows", f"data run for task {target}: field 'rows' must be a non-empty list of value lists"
            for i, values in enumerate(rows):
                if type(values) is not list or len(values) != arity:
                    return "rows", (
                        f"data run for task {target}: field 'rows' item {i} is {_brief(values)}, "
                        f"stream {stream!r} of {component!r} has {arity} field(s)"
                    )
            if roots is not None:
                if type(roots) is not list or len(roots) != len(rows):
                    return "roots", (
                        f"data run for task {target}: field 'roots' must be nil or a list of {len(rows)} (one per row)"
                    )
                for i, r in enumerate(roots):
                    if r is not None and not _valid_roots(r):
                        return "roots", (
                            f"data run for task {target}: field 'roots' item {i} must be nil or a non-empty "
                            "map of unsigned 64-bit root -> edge"
                        )
            return "target", f"data run for task {target}: its task's sink refused it"
        kind = item[1]
        if type(kind) is not int or (kind not in CONTROL_SHAPES and kind not in BULK_KINDS):
            return "kind", f"control item for task {_brief(target)}: unknown kind {_brief(kind)}"
        entry = control_sinks.get(target) if type(target) is int else None
        wanted = CONTROL_SHAPES[kind][1] if kind in CONTROL_SHAPES else BULK_KINDS[kind]
        if entry is None or entry[0] != wanted:
            return "target", f"control item of kind {kind} for task {_brief(target)}: not a {wanted} task here"
        return "values", f"control item of kind {kind} for task {target}: wrong length or a value of the wrong type"


_LIST_ONLY = {list}


def _brief(value: Any) -> str:
    """A short description of a value from the wire, for a log line (never its whole text,
    and never a walk over all of a large value: ``reprlib`` stops after a few elements)."""
    text = reprlib.repr(value)
    return text if len(text) <= 40 else f"{type(value).__name__} {text[:37]}..."


def _valid_roots_list(roots: list) -> bool:
    for r in roots:
        if r is not None and not _valid_roots(r):
            return False
    return True


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
