"""The tuple-batch codec of the data plane (the frame layout is described in
``squall.supervisor.transfer``): ``TupleCodec`` turns received frames into inbox items, and
forwards items for tasks that moved away; ``encode_frame`` packs a batch.

Guarantees: ``TupleCodec.deliver`` never raises on input; a frame that is not msgpack or not
the layout, and every item that is malformed, names a task of no executor, or does not suit
its target, is counted as bad and dropped, and the valid items of the same frame are
delivered (or forwarded). A value msgpack cannot serialise drops only its own item.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import msgpack

from squall.supervisor.runtime.messages import ACK_ACK, ACK_FAIL, ACK_INIT, TREE_COMPLETE, TREE_FAILED
from squall.topology.component import Tuple
from squall.topology.spec import ACKER_COMPONENT, SPOUT, ExecutorSpec, TopologySpec

FRAME_VERSION = 1

Sink = Callable[[tuple[int, Any]], None]
# control kind -> item length (target, kind, root, ...) and the receiving task kind
_CONTROL = {
    ACK_INIT: (5, ACKER_COMPONENT),
    ACK_ACK: (4, ACKER_COMPONENT),
    ACK_FAIL: (3, ACKER_COMPONENT),
    TREE_COMPLETE: (3, SPOUT),
    TREE_FAILED: (3, SPOUT),
}
_BOLT = "bolt"
_ARRAY2 = b"\x92"  # msgpack fixarray header of length 2: [FRAME_VERSION, items]


class TupleCodec:
    """Turns received frames into inbox items for the local tasks of one worker.

    ``sinks`` maps each local task to its inbox's append (the engine's ``wiring.sinks``;
    entries for tasks not in ``local_tasks`` are ignored). ``forward(item)``, if given, takes
    a valid item for a task of the topology that is not local (its executor moved away) and
    sends it on to the owner; without it such items are counted as bad. ``received`` counts
    the items of every well-formed frame (the receiving side of the senders' ``sent_items``).
    """

    def __init__(
        self,
        spec: TopologySpec,
        executors: Iterable[ExecutorSpec],
        local_tasks: Iterable[int],
        sinks: dict[int, Sink],
        forward: Callable[[list], None] | None = None,
    ) -> None:
        self._sinks = sinks
        self.forward = forward
        self.received = 0
        self.forwarded = 0
        self._kinds: dict[int, str] = {}
        # (source task, stream) -> (component, fields index, arity); the fields dict is shared
        # by every tuple of the stream, as the engine does locally.
        self._streams: dict[tuple[int, str], tuple[str, dict[str, int], int]] = {}
        for e in executors:
            if e.component == ACKER_COMPONENT:
                kind = ACKER_COMPONENT
            else:
                comp = spec.component(e.component)
                kind = SPOUT if comp.kind == SPOUT else _BOLT
                for stream in comp.outputs:
                    fields = {f: i for i, f in enumerate(stream.fields)}
                    for t in e.tasks:
                        self._streams[(t, stream.name)] = (comp.name, fields, len(stream.fields))
            for t in e.tasks:
                self._kinds[t] = kind
        self.set_local(local_tasks)

    def set_local(self, local_tasks: Iterable[int]) -> None:
        """The tasks this worker runs now (after executors moved in or out)."""
        local = set(local_tasks)
        bolt_sinks: dict[int, Sink] = {}
        control_sinks: dict[int, tuple[str, Sink]] = {}
        for t, kind in self._kinds.items():
            if t not in local:
                continue
            if kind is _BOLT:
                bolt_sinks[t] = self._sinks[t]
            else:
                control_sinks[t] = (kind, self._sinks[t])
        self._bolt_sinks, self._control_sinks = bolt_sinks, control_sinks

    def deliver_local(self, items: Iterable[tuple]) -> int:
        """Hand items this worker held or buffered itself (wire item layout, so trusted) to
        their local tasks; items for tasks not local are forwarded, or dropped if that is
        off. Returns how many were delivered or forwarded."""
        n = 0
        for item in items:
            target = item[0]
            if isinstance(item[1], str) and target in self._bolt_sinks:
                _t, stream, source, values, roots = item
                component, fields, _arity = self._streams[source, stream]
                self._bolt_sinks[target]((target, Tuple(component, stream, source, list(values), fields, roots)))
            elif not isinstance(item[1], str) and target in self._control_sinks:
                self._control_sinks[target][1]((target, tuple(item[1:])))
            elif self.forward is not None:
                self.forward(list(item))
                self.forwarded += 1
            else:
                continue
            n += 1
        return n

    def deliver(self, frame: bytes) -> tuple[int, int]:
        """Decode ``frame`` and hand each valid item to its local task's sink.

        Returns (items delivered, items or frames dropped as bad). Never raises on bad input.
        """
        try:
            data = msgpack.unpackb(frame, raw=False, strict_map_key=False)
        except Exception:  # msgpack raises several unrelated types for garbage
            return 0, 1
        if type(data) is not list or len(data) != 2 or data[0] != FRAME_VERSION or type(data[1]) is not list:
            return 0, 1
        self.received += len(data[1])
        bolt_sinks = self._bolt_sinks
        streams = self._streams
        delivered = bad = 0
        # The checks lean on the lookups raising for anything of the wrong shape or type (an
        # unhashable target, a short item, an unknown task or stream): a frame of valid items,
        # the only common case, then pays for no explicit test it does not need.
        for item in data[1]:
            try:
                if item[1].__class__ is str:
                    target, stream, source, values, roots = item
                    sink = bolt_sinks[target]
                    component, fields, arity = streams[source, stream]
                    if values.__class__ is not list or len(values) != arity or (
                        roots is not None and not _valid_roots(roots)
                    ):
                        bad += 1
                        continue
                    sink((target, Tuple(component, stream, source, values, fields, roots)))
                elif self._control(item):
                    bad += 1
                    continue
            except (TypeError, ValueError, KeyError, IndexError):
                # Off the hot path: an item for a task that moved away is handed over.
                if self.forward is None or not self._forward(item):
                    bad += 1
                    continue
            delivered += 1
        return delivered, bad

    def _forward(self, item: Any) -> bool:
        """Forward a valid item for a task of the topology that is not local; False if the
        item is bad (malformed, unknown task, or a local task it does not suit)."""
        try:
            target = item[0]
            kind = self._kinds.get(target)
            if kind is None or target in self._bolt_sinks or target in self._control_sinks:
                return False
            if item[1].__class__ is str:
                _t, stream, source, values, roots = item
                _component, _fields, arity = self._streams[source, stream]
                if kind is not _BOLT or values.__class__ is not list or len(values) != arity or (
                    roots is not None and not _valid_roots(roots)
                ):
                    return False
            else:
                shape = _CONTROL.get(item[1])
                if shape is None or shape[1] != kind or len(item) != shape[0] or not _all_ints(item):
                    return False
        except (TypeError, ValueError, KeyError, IndexError):
            return False
        if self.forward is None:  # nowhere to send it (the caller checks first)
            return False
        self.forward(item)
        self.forwarded += 1
        return True

    def _control(self, item: list) -> bool:
        """Deliver one acker or spout item; True if it is bad."""
        kind, sink = self._control_sinks[item[0]]
        shape = _CONTROL.get(item[1])
        if shape is None or shape[1] != kind or len(item) != shape[0] or not _all_ints(item):
            return True
        sink((item[0], tuple(item[1:])))
        return False


def _valid_roots(roots: Any) -> bool:
    if type(roots) is not dict or not roots:
        return False
    for k, v in roots.items():
        if type(k) is not int or type(v) is not int:
            return False
    return True


def _all_ints(item: list) -> bool:
    for v in item:
        if type(v) is not int:
            return False
    return True


def encode_frame(items: list[tuple], on_error: Callable[[tuple, Exception], None]) -> tuple[bytes, int]:
    """One frame for ``items``; returns (frame, items in it). An item msgpack cannot pack is
    passed to ``on_error`` and left out, so one bad value never costs its neighbours."""
    try:
        return msgpack.packb((FRAME_VERSION, items), use_bin_type=True), len(items)
    except (TypeError, ValueError, OverflowError):
        pass  # find the culprits one by one; the common case above stays one C call
    packer = msgpack.Packer(use_bin_type=True)
    good: list[bytes] = []
    for item in items:
        try:
            good.append(packer.pack(item))
        except (TypeError, ValueError, OverflowError) as exc:
            packer.reset()
            on_error(item, exc)
    head = _ARRAY2 + packer.pack(FRAME_VERSION) + packer.pack_array_header(len(good))
    return head + b"".join(good), len(good)
