"""The data plane between workers: a compact msgpack codec for tuple batches and the outbox
that batches items per destination worker.

Frame layout (one ZeroMQ message, PUSH -> the destination worker's PULL)::

    msgpack([FRAME_VERSION, [item, item, ...]])

    data item     [target_task, stream, source_task, values, roots]
                  stream: str; values: list; roots: {root: edge} (uint64s) or nil (untracked)
    control item  [target_task, kind, root, ...]      (kind: int, see runtime/messages.py)
                  ACK_INIT [t, 0, root, xor, spout_task]  ACK_ACK [t, 1, root, xor]
                  ACK_FAIL [t, 2, root]  TREE_COMPLETE [t, 3, root]  TREE_FAILED [t, 4, root]

The second element tells the two apart (a string is a stream name, an int a control kind).
The component and field names are not sent: the receiver knows them from the spec.

Guarantees:

* ``TupleCodec.deliver`` never raises on input: a frame that is not msgpack or not the layout
  above, and every item that is malformed, names a task this worker does not run, or does not
  suit its target (a data tuple for a spout, an ack for a bolt, a wrong arity) is counted as
  bad and dropped; the valid items of the same frame are delivered.
* ``Outbox`` sends a destination's buffer as one frame when it holds ``batch_size`` items, or
  at ``flush(idle=False)`` once its oldest item is ``flush_s`` old, or at ``flush(idle=True)``
  at once (nothing else is coming this round, so waiting would only add latency).
* A value msgpack cannot serialise drops only its own item; ``on_error`` names the source
  task and stream. A frame the socket cannot take now (peer slow or not up yet) waits in a
  bounded backlog and is retried first; beyond the bound the oldest frames are dropped and
  counted (the acker, when on, times those trees out and the spout may replay them).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Callable, Iterable

import msgpack

from squall.supervisor.runtime.messages import ACK_ACK, ACK_FAIL, ACK_INIT, TREE_COMPLETE, TREE_FAILED
from squall.topology.component import Tuple
from squall.topology.spec import ACKER_COMPONENT, SPOUT, ExecutorSpec, TopologySpec

log = logging.getLogger("squall.transfer")

FRAME_VERSION = 1
DEFAULT_BATCH_SIZE = 256
DEFAULT_FLUSH_MS = 1.0
DEFAULT_BACKLOG_FRAMES = 256

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
    entries for tasks not in ``local_tasks`` are ignored)."""

    def __init__(
        self,
        spec: TopologySpec,
        executors: Iterable[ExecutorSpec],
        local_tasks: Iterable[int],
        sinks: dict[int, Sink],
    ) -> None:
        local = set(local_tasks)
        self._bolt_sinks: dict[int, Sink] = {}
        self._control_sinks: dict[int, tuple[str, Sink]] = {}
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
                if t not in local:
                    continue
                if kind is _BOLT:
                    self._bolt_sinks[t] = sinks[t]
                else:
                    self._control_sinks[t] = (kind, sinks[t])

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
                bad += 1
                continue
            delivered += 1
        return delivered, bad

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


class _Buffer:
    __slots__ = ("endpoint", "items", "first_at")

    def __init__(self, endpoint: str | None) -> None:
        self.endpoint = endpoint
        self.items: list[tuple] = []
        self.first_at = 0.0


class Outbox:
    """Items for tasks of other workers, batched per destination endpoint ("host:port").

    ``send(endpoint, frame)`` returns False when the socket cannot take the frame now.
    ``place(task_endpoints)`` re-routes tasks live: a sink looks its task's buffer up on every
    item, so sinks handed to the engine stay valid across placement changes.
    """

    def __init__(
        self,
        send: Callable[[str, bytes], bool],
        clock: Callable[[], float],
        batch_size: int = DEFAULT_BATCH_SIZE,
        flush_ms: float = DEFAULT_FLUSH_MS,
        backlog_frames: int = DEFAULT_BACKLOG_FRAMES,
        on_error: Callable[[tuple, Exception], None] | None = None,
    ) -> None:
        self._send = send
        self._clock = clock
        self.batch_size = max(1, int(batch_size))
        self.flush_s = max(0.0, float(flush_ms) / 1e3)
        self.backlog_frames = max(1, int(backlog_frames))
        self.on_error = on_error or _log_encode_error
        self._buffers: dict[str, _Buffer] = {}
        self._task_buffer: dict[int, _Buffer] = {}
        self._backlog: dict[str, deque[tuple[bytes, int]]] = {}
        self.sent_items = 0  # data tuples and control items that left in frames
        self.sent_frames = 0
        self.dropped_items = 0  # items in frames dropped from a full backlog

    # -- placement ---------------------------------------------------------------------

    def place(self, task_endpoints: dict[int, str | None]) -> None:
        """Route each remote task to its worker's endpoint. A task placed nowhere (None) gets
        its items dropped and counted, not an error in the emitting component. Items buffered
        for a worker that no longer runs them still go there (it drops what it does not run)."""
        for task, endpoint in task_endpoints.items():
            buf = self._buffers.get(endpoint)
            if buf is None:
                buf = self._buffers[endpoint] = _Buffer(endpoint)
            self._task_buffer[task] = buf
        for task in set(self._task_buffer) - set(task_endpoints):
            del self._task_buffer[task]
        # Frames refused by a worker that no longer runs any task would keep the spouts
        # paused forever (``congested``): drop and count them.
        routed = self.endpoints()
        for endpoint in [e for e in self._backlog if e not in routed]:
            self.dropped_items += sum(n for _, n in self._backlog.pop(endpoint))

    def endpoints(self) -> set[str]:
        """The endpoints some task is currently routed to."""
        return {b.endpoint for b in self._task_buffer.values() if b.endpoint is not None}

    # -- sinks (the engine's view of a remote task) --------------------------------------

    def data_sink(self, task: int) -> Sink:
        """A sink for a bolt task of another worker: takes ``(task, Tuple)``."""
        task_buffer = self._task_buffer
        clock = self._clock
        batch = self.batch_size
        flush_buffer = self._flush_buffer

        def sink(item: tuple[int, Any]) -> None:
            t, tup = item
            buf = task_buffer[t]
            items = buf.items
            if not items:
                buf.first_at = clock()
            items.append((t, tup.stream, tup.task, tup.values, tup.roots or None))
            if len(items) >= batch:
                flush_buffer(buf)

        return sink

    def control_sink(self, task: int) -> Sink:
        """A sink for an acker or spout task of another worker: takes ``(task, (kind, ...))``."""
        task_buffer = self._task_buffer
        clock = self._clock
        batch = self.batch_size
        flush_buffer = self._flush_buffer

        def sink(item: tuple[int, Any]) -> None:
            t, msg = item
            buf = task_buffer[t]
            items = buf.items
            if not items:
                buf.first_at = clock()
            items.append((t, *msg))
            if len(items) >= batch:
                flush_buffer(buf)

        return sink

    # -- flushing ----------------------------------------------------------------------

    def flush(self, idle: bool = False) -> int:
        """Retry the backlog, then send every buffer that is due (all of them when ``idle``).
        Returns the number of frames sent."""
        before = self.sent_frames
        if self._backlog:
            self._retry_backlog()
        now = self._clock() if not idle else 0.0
        for buf in self._buffers.values():
            if buf.items and (idle or now - buf.first_at >= self.flush_s):
                self._flush_buffer(buf)
        return self.sent_frames - before

    def pending(self) -> int:
        """Items buffered or in the backlog, not yet handed to a socket."""
        return sum(len(b.items) for b in self._buffers.values()) + sum(
            n for q in self._backlog.values() for _, n in q
        )

    def congested(self) -> bool:
        """True while some destination has refused frames: spouts should pause."""
        return bool(self._backlog)

    def _flush_buffer(self, buf: _Buffer) -> None:
        items, buf.items = buf.items, []
        if buf.endpoint is None:
            self.dropped_items += len(items)
            return
        frame, count = encode_frame(items, self.on_error)
        if not count:
            return
        queue = self._backlog.get(buf.endpoint)
        if queue is not None:  # keep order behind what is already waiting
            self._enqueue(buf.endpoint, queue, frame, count)
        elif self._send(buf.endpoint, frame):
            self.sent_frames += 1
            self.sent_items += count
        else:
            self._enqueue(buf.endpoint, self._backlog.setdefault(buf.endpoint, deque()), frame, count)

    def _enqueue(self, endpoint: str, queue: deque, frame: bytes, count: int) -> None:
        queue.append((frame, count))
        while len(queue) > self.backlog_frames:
            _, lost = queue.popleft()
            if not self.dropped_items:
                log.warning("worker %s is not taking frames; dropping the oldest (counted)", endpoint)
            self.dropped_items += lost

    def _retry_backlog(self) -> None:
        for endpoint in list(self._backlog):
            queue = self._backlog[endpoint]
            while queue:
                frame, count = queue[0]
                if not self._send(endpoint, frame):
                    break
                queue.popleft()
                self.sent_frames += 1
                self.sent_items += count
            if not queue:
                del self._backlog[endpoint]


def _log_encode_error(item: tuple, exc: Exception) -> None:
    log.error("dropped an item msgpack cannot serialise (task %s): %s", item[0], exc)
