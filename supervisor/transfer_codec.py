"""The receiving side of the data plane: ``TupleCodec`` turns frames from other workers into
inbox items of this worker's tasks, and hands items for tasks that moved away to the
outbox (the item layout itself is ``squall.supervisor.runtime.layout``'s).

Guarantees: ``TupleCodec.deliver`` never raises on input; a frame that is not msgpack or not
the layout, and every item that is malformed, names a task of no executor (or, without
``forward``, a task not run here), or does not suit its target, is counted as bad and
dropped, and the valid items of the same frame are delivered (or forwarded), in order. A
refused frame's reason (naming the field at fault, or both versions) goes to ``on_refused``;
a refused item's is counted by the field at fault in ``bad_fields`` and logged once per
field (a hostile peer cannot flood the log).

``links`` holds, per sender, the (link, seq) of the last well-formed frame received from it
on a counted link: Nimbus compares it with what the sender reports it sent to end a
migration's drain exactly (docs/nimbus.md, "quiescent"). It keeps at most
``MAX_LINK_PEERS`` senders (a topology has far fewer workers), so junk frames naming made-up
senders cannot grow it without bound.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from squall.supervisor.runtime.layout import BOLT_TASK, FrameError, ItemReader, RunSink, Sink, open_frame, task_kinds
from squall.topology.spec import ExecutorSpec, TopologySpec

log = logging.getLogger("squall.transfer")

MAX_LINK_PEERS = 4096  # senders whose last frame is kept (a topology has far fewer workers)


class TupleCodec:
    """Turns received frames into inbox items for the local tasks of one worker.

    ``sinks`` maps each local task to its inbox's append (the engine's ``wiring.sinks``;
    entries for tasks not in ``local_tasks`` are ignored); ``run_sinks`` (the engine's
    ``wiring.inbox_run_sinks``), if given, the local tasks that take an untracked run whole
    (a batch-aware bolt's): a run of two or more rows for one of them is queued as one
    ``Rows`` item, not one inbox item per tuple (the same tuples, order and counts). ``forward``, if given, is the
    outbox's sink: a valid item for a task of the topology that is not local (its executor
    moved away) goes there, to be sent on to the owner; without it such items are counted as
    bad. ``received`` counts the inbox items of every well-formed frame, a run's tuples one
    by one (the receiving side of the senders' ``sent_items``), plus one per bad item;
    ``forwarded`` the inbox items handed to ``forward``; ``bad_fields`` the bad items by the
    field of the layout at fault (``ItemReader.why_bad``).
    """

    def __init__(
        self,
        spec: TopologySpec,
        executors: Iterable[ExecutorSpec],
        local_tasks: Iterable[int],
        sinks: dict[int, Sink],
        forward: Sink | None = None,
        on_refused: Callable[[str], None] | None = None,
        run_sinks: Mapping[int, RunSink] | None = None,
    ) -> None:
        self._sinks = sinks
        self._run_sinks = run_sinks if run_sinks is not None else {}
        self._forward = forward
        self._on_refused = on_refused
        self.links: dict[str, tuple[int, int]] = {}  # sender endpoint -> (link, seq) of its last frame
        self._reader = ItemReader(spec)
        self._kinds = task_kinds(spec, executors)
        self.received = 0
        self.forwarded = 0
        self.bad_fields: Counter[str] = Counter()
        self.set_local(local_tasks)

    def set_local(self, local_tasks: Iterable[int]) -> None:
        """The tasks this worker runs now (after executors moved in or out)."""
        local = set(local_tasks)
        data: dict[int, Sink] = {}
        control: dict[int, tuple[str, Sink]] = {}
        runs: dict[int, RunSink] = {}
        for t, kind in self._kinds.items():
            if t in local:
                sink = self._sinks[t]
            elif self._forward is not None:
                sink = self._forward_one
            else:
                continue
            if kind == BOLT_TASK:
                data[t] = sink
                run_sink = self._run_sinks.get(t) if t in local else None
                if run_sink is not None:
                    runs[t] = run_sink
            else:
                control[t] = (kind, sink)
        self._data, self._control, self._runs = data, control, runs

    def deliver(self, frame: bytes) -> tuple[int, int]:
        """Decode ``frame`` and hand each valid item to its task's sink (local, or forward).

        Returns (items delivered or forwarded, items or frames dropped as bad). Never raises
        on bad input.
        """
        try:
            header, items = open_frame(frame)
        except FrameError as exc:
            if self._on_refused is not None:
                self._on_refused(str(exc))
            return 0, 1
        if header.seq:
            links = self.links
            if header.sender in links or len(links) < MAX_LINK_PEERS:
                links[header.sender] = (header.link, header.seq)
        delivered, bad = self._reader.read(items, self._data, self._control, self._on_bad, self._runs)
        self.received += delivered + bad
        return delivered, bad

    def _on_bad(self, item: Any) -> None:
        field, why = self._reader.why_bad(item, self._data, self._control)
        self.bad_fields[field] += 1
        if self.bad_fields[field] == 1:
            log.warning("dropped a data item: %s (further ones at field %r are counted, not logged)", why, field)

    def deliver_local(self, items: Iterable[tuple[int, Any]]) -> int:
        """Hand inbox items this worker held itself (so trusted) to their tasks: local ones to
        their inbox, the others forwarded (or dropped, without ``forward``). Returns how many
        were delivered or forwarded."""
        n = 0
        data, control = self._data, self._control
        for item in items:
            sink = data.get(item[0]) or control.get(item[0], (None, None))[1]
            if sink is not None:
                sink(item)
                n += 1
        return n

    def _forward_one(self, item: tuple[int, Any]) -> None:
        self.forwarded += 1
        self._forward(item)  # type: ignore[misc]  # set_local routes here only with a forward
