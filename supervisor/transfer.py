"""The sending side of the data plane: the outbox that batches items per destination worker
and hands each batch, encoded as one frame (``squall.supervisor.runtime.layout``), to the
sockets' ``send``.

The path of an item reads one way: an executor's emit calls the outbox's one sink (``put``)
with the inbox item, as it would a local inbox; the outbox buffers it for its task's worker
and, when the batch is due, encodes the batch and sends the frame. Untracked tuples may
come without a ``Tuple``: a remote ``emit_many``'s rows whole (``put_run``), a spout's one
tuple as a row of the run it joins (``put_row``); each is written as its tuples would be.

Guarantees:

* ``Outbox`` sends a destination's buffer as one frame when it holds ``batch_size`` items
  (inbox items; the rows ``put_run`` takes from a remote ``emit_many``, and those
  ``put_row`` takes from a spout's ``emit``, count one each), or
  at ``flush(idle=False)`` once its oldest item is ``flush_s`` old, or at ``flush(idle=True)``
  at once (nothing else is coming this round, so waiting would only add latency).
* A value msgpack cannot serialise drops only its own item; ``on_error`` gets that inbox item
  (``layout.source_of`` names its source task and stream). A frame the socket cannot take now
  (peer slow or not up yet) waits in a bounded backlog and is retried first; beyond the bound
  the oldest frames are dropped and counted (the acker, when on, times those trees out and
  the spout may replay them).
* Live migration: a task placed at ``""`` is *in transit*. Items for it (emitted here or
  forwarded) are held in order, up to ``hold_limit`` items (beyond that the newest are
  dropped and counted in ``held_dropped``), and released by the ``place`` that names its new
  owner: into that worker's buffer, or back to the caller when the task became local. An
  item that arrives for a task this worker no longer runs goes through ``put`` too
  (``TupleCodec`` with ``forward``), so it is sent on to its owner, not dropped.
* Links: every destination endpoint is one *link*, with a random token drawn when it is
  first routed to (and again when it is routed to after a spell with no task routed there)
  and a count of the frames handed over on it; each frame carries (sender, link, its number
  on the link). ``links()`` reports (token, frames) of the routed links: the receiver's last
  (token, number) from this sender equals it exactly when the link's last frame arrived.
  A frame dropped before the socket took it (over the size limit) takes no number; one
  dropped from a full backlog keeps its number, but the backlog keeps the newest frames, so
  the link's last frame is still queued (``pending``) or sent.
* The receiving side, ``TupleCodec``, is re-exported here: ``deliver`` never raises on input
  (see ``squall.supervisor.transfer_codec``).
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable
from typing import Any

from squall import config
from squall.supervisor.runtime.layout import FRAME_VERSION, FrameHeader, Rows, RowSink, Sink, encode_frame
from squall.supervisor.runtime.stats import CpuMeter
from squall.supervisor.transfer_codec import TupleCodec
from squall.topology.component import Tuple

__all__ = ["FRAME_VERSION", "IN_TRANSIT", "MAX_DATA_FRAME_BYTES", "Outbox", "TupleCodec", "encode_frame"]

log = logging.getLogger("squall.transfer")

DEFAULT_BATCH_SIZE = 256
DEFAULT_FLUSH_MS = config.DEFAULT_TRANSFER_FLUSH_MS
DEFAULT_BACKLOG_FRAMES = 256
DEFAULT_HOLD_LIMIT = 200_000
# The largest tuple batch: receivers set it as their PULL socket's MAXMSGSIZE (ZeroMQ drops a
# peer that sends more), so one junk frame cannot take a worker's memory; senders drop and
# count a bigger batch rather than break the link.
MAX_DATA_FRAME_BYTES = 32 * 1024 * 1024
BACKLOG_RETRY_S = 0.001  # how soon a worker that idles retries frames a peer refused
IN_TRANSIT = ""  # the placement of an executor between its old and its new worker


def new_link_token() -> int:
    """A fresh link token: random (so a restarted worker's links never repeat an old one's),
    non-zero (0 means "no link"), below 2**63."""
    return (int.from_bytes(os.urandom(8), "big") >> 1) or 1


class _Buffer:
    __slots__ = (
        "endpoint",
        "items",
        "_batch_size",
        "limit",
        "first_at",
        "link",
        "frames",
        "open_rows",
        "open_head",
    )

    def __init__(self, endpoint: str | None, batch_size: int) -> None:
        self.endpoint = endpoint
        self.items: list[tuple[int, Any]] = []  # inbox items, in order
        # The item count at which the buffer holds batch_size tuples: batch_size less the
        # tuples of its ``Rows`` items beyond one per item (``extra``). ``put`` compares
        # with one slot on every tuple, not with a sum.
        self._batch_size = batch_size
        self.limit = batch_size
        self.first_at = 0.0
        # The rows of the run ``put_row`` last started here, with its head (which names its
        # target task too): the next row of the same head joins it. ``open_head`` is not
        # None only while that run is the buffer's last item: every other append clears it
        # (one store), so ``put_row`` tells "still open" by one compare, not by looking at
        # the items.
        self.open_rows: list | None = None
        self.open_head: Rows | None = None
        self.new_link()

    @property
    def extra(self) -> int:
        """Tuples of the ``Rows`` items in ``items`` beyond one per item."""
        return self._batch_size - self.limit

    def new_link(self) -> None:
        self.link = new_link_token()
        self.frames = 0  # frames handed over (sent or queued in the backlog) on this link


class Outbox:
    """Items for tasks of other workers, batched per destination endpoint ("host:port").

    ``put((task, payload))`` is the one sink for every task of another worker (the engine's
    ``remote_sink`` for any task; the codec's ``forward``): it takes the inbox item as is, so
    the item layout is written once per batch, by ``layout.encode_frame`` (consecutive tuples
    for one task from one source and stream as one run item, whichever emit sent them). It
    looks its
    task's buffer up on every item, so it stays valid across placement changes.
    ``send(endpoint, frame)`` (the sockets) returns False when it cannot take the frame now.
    ``place(task_endpoints)`` re-routes tasks live.

    ``meter`` measures the CPU of encoding and sending frames (once per frame, wherever the
    flush happens, including from inside a sink during an executor's call); ``sent_frames``
    and ``sent_bytes`` count what the sockets took.
    """

    def __init__(
        self,
        send: Callable[[str, bytes], bool],
        clock: Callable[[], float],
        batch_size: int = DEFAULT_BATCH_SIZE,
        flush_ms: float = DEFAULT_FLUSH_MS,
        backlog_frames: int = DEFAULT_BACKLOG_FRAMES,
        on_error: Callable[[tuple[int, Any], Exception], None] | None = None,
        hold_limit: int = DEFAULT_HOLD_LIMIT,
        meter: CpuMeter | None = None,
        sender: str = "",
    ) -> None:
        self._send = send
        self.sender = sender  # this worker's data endpoint, written in every frame's header
        self._clock = clock
        self.batch_size = max(1, int(batch_size))
        self.flush_s = max(0.0, float(flush_ms) / 1e3)
        self.backlog_frames = max(1, int(backlog_frames))
        self.on_error = on_error or _log_encode_error
        self._buffers: dict[str | None, _Buffer] = {}  # None: tasks placed nowhere (dropped at flush)
        self._task_buffer: dict[int, _Buffer] = {}
        self._backlog: dict[str, deque[tuple[bytes, int]]] = {}
        self.sent_items = 0  # inbox items (data tuples, control items) that left in frames
        self.sent_frames = 0
        self.sent_bytes = 0
        self.meter = meter if meter is not None else CpuMeter()
        self.dropped_items = 0  # items in frames dropped from a full backlog
        # Items for tasks in transit (placed at IN_TRANSIT), in arrival order.
        self._hold = _Buffer(IN_TRANSIT, self.batch_size)
        self.hold_limit = max(0, int(hold_limit))
        self.held_dropped = 0  # items refused because the hold was full
        self.put: Sink = self._make_put()
        self.put_row: RowSink = self._make_put_row()

    # -- placement ---------------------------------------------------------------------

    def place(self, task_endpoints: dict[int, str | None]) -> list[tuple[int, Any]]:
        """Route each remote task to its worker's endpoint. A task placed nowhere (None) gets
        its items dropped and counted, not an error in the emitting component; a task placed
        at ``IN_TRANSIT`` has its items held. Items buffered for a worker that no longer runs
        them still go there (it forwards them to the new owner).

        Held items whose task now has an endpoint join that endpoint's buffer, in order;
        those whose task is no longer remote (it became local) are returned, in order, for
        the caller to deliver locally; the rest stay held."""
        hold = self._hold
        before = self.endpoints()
        for task, endpoint in task_endpoints.items():
            if endpoint == IN_TRANSIT:
                self._task_buffer[task] = hold
                continue
            buf = self._buffers.get(endpoint)
            if buf is None:
                buf = self._buffers[endpoint] = _Buffer(endpoint, self.batch_size)
            elif endpoint not in before and buf.endpoint and buf.frames:
                # Routed to again: maybe another worker (a new one on a reused port), which
                # never saw the old link's frames. A new link starts from nothing sent.
                buf.new_link()
            self._task_buffer[task] = buf
        for task in set(self._task_buffer) - set(task_endpoints):
            del self._task_buffer[task]
        back: list[tuple[int, Any]] = []
        if hold.items:
            still: list[tuple[int, Any]] = []
            for item in hold.items:
                buf = self._task_buffer.get(item[0])
                if buf is hold:
                    still.append(item)
                elif buf is None:
                    back.append(item)
                else:
                    if not buf.items:
                        buf.first_at = self._clock()
                    buf.items.append(item)
                    buf.open_head = None  # as in ``put``
            hold.items = still
        # Frames refused by a worker that no longer runs any task would keep the spouts
        # paused forever (``congested``): drop and count them.
        routed = self.endpoints()
        for endpoint in [e for e in self._backlog if e not in routed]:
            self.dropped_items += sum(n for _, n in self._backlog.pop(endpoint))
        return back

    def held(self) -> int:
        """Items held for tasks in transit."""
        return len(self._hold.items)

    def endpoints(self) -> set[str]:
        """The endpoints some task is currently routed to."""
        return {b.endpoint for b in self._task_buffer.values() if b.endpoint}

    def links(self) -> dict[str, tuple[int, int]]:
        """Routed endpoint -> (link token, frames handed over on it), for the links that
        carried a frame."""
        routed = self.endpoints()
        return {e: (b.link, b.frames) for e, b in self._buffers.items() if e in routed and e and b.frames}

    # -- the sink -----------------------------------------------------------------------

    def _make_put(self) -> Sink:
        """The sink, as a closure: it reads its state from cells, not attributes (this is the
        hot path of every tuple that leaves the worker)."""
        task_buffer = self._task_buffer
        clock = self._clock
        flush_buffer = self._flush_buffer

        def put(item: tuple[int, Any]) -> None:
            buf = task_buffer[item[0]]
            items = buf.items
            if not items:
                buf.first_at = clock()
            items.append(item)
            if buf.open_head is not None:  # an open run of ``put_row`` is no longer the last item
                buf.open_head = None
            if len(items) >= buf.limit:
                flush_buffer(buf)

        return put

    def _make_put_row(self) -> RowSink:
        """The sink of a spout's per-tuple emit to a task of another worker, untracked:
        ``put_row(task, values, head)`` is ``put((task, Tuple(head.component, head.stream,
        head.task, values, head.fields)))`` (the same order, batches and frames) without the
        ``Tuple``: consecutive rows of one head join one ``Rows`` item, the run the frame
        carries them in. A head is a ``Rows`` with no rows naming the emitting task and its
        stream, and the caller passes one head object per (emitting task, stream, target
        task): the open run is told by the head alone (a spout's route with one target task
        has one head per stream). For a task in transit or placed nowhere the row goes
        through ``put`` as its ``Tuple`` (held or dropped and counted per tuple)."""
        task_buffer = self._task_buffer
        clock = self._clock
        flush_buffer = self._flush_buffer
        hold = self._hold
        put = self.put

        def put_row(task: int, values: Any, head: Rows) -> None:
            buf = task_buffer[task]
            if buf.open_head is head:  # its run (of this task: one head per target) is the last item
                buf.open_rows.append(values)  # type: ignore[union-attr]  # set with open_head
                limit = buf.limit - 1  # one tuple more in the same item
                buf.limit = limit
                if len(buf.items) >= limit:
                    flush_buffer(buf)
                return
            if buf is hold or buf.endpoint is None:
                put((task, Tuple(head.component, head.stream, head.task, values, head.fields)))
                return
            items = buf.items
            if not items:
                buf.first_at = clock()
            rows = [values]
            items.append((task, Rows(head.component, head.stream, head.task, rows, head.fields)))
            buf.open_rows = rows
            buf.open_head = head
            if len(items) >= buf.limit:
                flush_buffer(buf)

        return put_row

    def put_run(self, task: int, run: Rows) -> None:
        """The sink of a remote ``emit_many``: the untracked tuples of ``run`` for ``task``,
        as ``put`` would take them one by one (the same order, batches and frames), without
        a ``Tuple`` per row. The rows join the task's buffer as ``Rows`` items, cut so that
        a frame holds at most ``batch_size`` tuples; the list is copied (the caller may reuse
        it), its values lists are not (as a ``Tuple`` keeps its ``values``). For a task
        in transit or placed nowhere, the tuples go through ``put`` one by one (held or
        dropped and counted per tuple)."""
        buf = self._task_buffer[task]
        rows = run.rows
        if buf is self._hold or buf.endpoint is None:
            put = self.put
            for tup in run.tuples():
                put((task, tup))
            return
        start, end = 0, len(rows)
        while start < end:
            items = buf.items
            room = buf.limit - len(items)  # at least 1: a full buffer was sent at once
            part = rows[start : start + room]
            if not items:
                buf.first_at = self._clock()
            items.append((task, Rows(run.component, run.stream, run.task, part, run.fields)))
            buf.open_head = None  # as in ``put``
            buf.limit -= len(part) - 1
            start += len(part)
            if len(part) == room:
                self._flush_buffer(buf)

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

    def next_due(self, now: float) -> float | None:
        """When ``flush`` next has something to send if nothing more is buffered: the oldest
        buffered item's flush time, or ``BACKLOG_RETRY_S`` from now while a peer refuses
        frames; None when nothing waits (held items wait for a ``place``, not for time)."""
        due = now + BACKLOG_RETRY_S if self._backlog else None
        flush_s = self.flush_s
        for buf in self._buffers.values():
            if buf.items and (due is None or buf.first_at + flush_s < due):
                due = buf.first_at + flush_s
        return due

    def pending(self) -> int:
        """Items buffered, held or in the backlog, not yet handed to a socket."""
        return (
            len(self._hold.items)
            + sum(len(b.items) + b.extra for b in self._buffers.values())
            + sum(n for q in self._backlog.values() for _, n in q)
        )

    def congested(self) -> bool:
        """True while some destination has refused frames: spouts should pause."""
        return bool(self._backlog)

    def _flush_buffer(self, buf: _Buffer) -> None:
        if buf is self._hold:  # never sent; only kept within its bound
            over = len(buf.items) - self.hold_limit
            if over > 0:
                if not self.held_dropped:
                    log.warning("more than %d items held for executors in transit; dropping (counted)", self.hold_limit)
                del buf.items[self.hold_limit :]
                self.held_dropped += over
            return
        items, buf.items = buf.items, []
        buf.open_rows = buf.open_head = None
        buf.limit = self.batch_size
        if buf.endpoint is None:
            self.dropped_items += len(items)
            return
        meter = self.meter
        meter.start()
        try:
            header = FrameHeader(self.sender, buf.link, buf.frames + 1)
            frame, count = encode_frame(items, self.on_error, header)
            if not count:
                return
            if len(frame) > MAX_DATA_FRAME_BYTES:
                if not self.dropped_items:
                    log.warning(
                        "a batch of %d bytes to %s is over the %d-byte frame limit; dropped (counted)",
                        len(frame),
                        buf.endpoint,
                        MAX_DATA_FRAME_BYTES,
                    )
                self.dropped_items += count
                return
            buf.frames += 1  # the frame is handed over: sent now, or queued behind the backlog
            queue = self._backlog.get(buf.endpoint)
            if queue is not None:  # keep order behind what is already waiting
                self._enqueue(buf.endpoint, queue, frame, count)
            elif self._send(buf.endpoint, frame):
                self.sent_frames += 1
                self.sent_items += count
                self.sent_bytes += len(frame)
            else:
                self._enqueue(buf.endpoint, self._backlog.setdefault(buf.endpoint, deque()), frame, count)
        finally:
            meter.stop()

    def _enqueue(self, endpoint: str, queue: deque, frame: bytes, count: int) -> None:
        queue.append((frame, count))
        while len(queue) > self.backlog_frames:
            _, lost = queue.popleft()
            if not self.dropped_items:
                log.warning("worker %s is not taking frames; dropping the oldest (counted)", endpoint)
            self.dropped_items += lost

    def _retry_backlog(self) -> None:
        self.meter.start()
        try:
            for endpoint in list(self._backlog):
                queue = self._backlog[endpoint]
                while queue:
                    frame, count = queue[0]
                    if not self._send(endpoint, frame):
                        break
                    queue.popleft()
                    self.sent_frames += 1
                    self.sent_items += count
                    self.sent_bytes += len(frame)
                if not queue:
                    del self._backlog[endpoint]
        finally:
            self.meter.stop()


def _log_encode_error(item: tuple[int, Any], exc: Exception) -> None:
    log.error("dropped an item msgpack cannot serialise (task %s): %s", item[0], exc)
