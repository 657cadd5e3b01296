"""Executor snapshots: what an executor carries when it moves from one engine to another.

A snapshot is one msgpack map (``SNAPSHOT_VERSION`` 2)::

    {"v": 2, "id": executor id, "component": name, "kind": "spout" | "bolt" | "acker",
     "tasks":   {task: user bytes or nil},          # Component.snapshot() per task
     "inbox":   [item, ...],                        # queued, not yet processed, in order
     "pending": [[root, task, tup_id, age_s], ...], # spouts: trees not yet complete
     "acker":   [[root, xor, spout_task, failed, old], ...]}   # ackers: their entries

Guarantees:

* nothing queued is lost by a move: inbox items travel in the snapshot in their order, in the
  data plane's item layout (``squall.supervisor.runtime.layout``, read back with its
  validation), and are queued again, ahead of anything newer, on the new owner; tick tuples
  are not carried (the new owner schedules its own);
* a spout's pending trees keep their root ids and their *age* (monotonic clocks differ
  between processes), so an ack arriving after the move completes the tree on the new owner,
  which calls ``spout.ack(tup_id)`` there and records the right complete latency; tuple ids
  travel as their own msgpack value and come back with tuples for arrays (hashable);
* an acker's entries (both rotation generations) move as they are, so trees whose acks are
  split across the move still complete exactly once;
* a value msgpack cannot serialise (in a queued tuple or a tuple id) drops only its own item
  or tree, counted in the executor's ``errors``, as does a queued item that does not fit the
  executor on restore; a snapshot that does not decode is refused with ``SnapshotError``
  before anything of it is applied;
* a version-1 snapshot (taken by a worker of frame version 3, which wrote one data item per
  tuple, ``[target, stream, source, values, roots]``) is read with each data item turned into
  a run of one tuple, so a worker upgraded while a move is in flight loses nothing queued;
  version 2 is the frame's version-4 layout (data runs). Read as runs unconverted, an old item
  whose values are lists would have been taken for several tuples.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgpack

from squall.supervisor.runtime import layout
from squall.topology.component import TICK_STREAM, Tuple
from squall.topology.spec import ExecutorKind

if TYPE_CHECKING:
    from squall.supervisor.runtime.executor import Executor

log = logging.getLogger("squall.snapshot")

# 1: the queue in frame version 3's item layout (one data item per tuple); 2: in frame
# version 4's (data tuples as runs). ``decode`` reads both and gives version 2.
SNAPSHOT_VERSION = 2
_READABLE_VERSIONS = (1, SNAPSHOT_VERSION)
_PACK_ERRORS = (TypeError, ValueError, OverflowError)


class SnapshotError(ValueError):
    """A snapshot that is not this format (or not for this executor)."""


def take(ex: Any, now: float) -> bytes:
    """The snapshot of executor ``ex`` (spout, bolt or acker): user state, queue, trees."""
    tasks: dict[int, bytes | None] = {}
    for task, inst in getattr(ex, "instances", {}).items():
        tasks[task] = _user_snapshot(ex, task, inst)
    doc: dict[str, Any] = {
        "v": SNAPSHOT_VERSION,
        "id": ex.spec.id,
        "component": ex.component,
        "kind": ex.kind,
        "tasks": tasks,
        "inbox": layout.packable(
            [item for item in ex.inbox if not _is_tick(item)],
            lambda item, exc: ex.log_error_once(item[0], exc, "snapshot (a queued tuple msgpack cannot serialise)"),
        ),
    }
    if ex.kind == ExecutorKind.SPOUT:
        pending = []
        for root, (task, tup_id, emitted_at) in ex.pending.items():
            try:
                packed_id = msgpack.packb(tup_id, use_bin_type=True)
            except _PACK_ERRORS as exc:
                ex.log_error_once(task, exc, "snapshot (a tuple id msgpack cannot serialise)")
                continue
            pending.append([root, task, packed_id, max(0.0, now - emitted_at)])
        doc["pending"] = pending
    elif ex.kind == ExecutorKind.ACKER:
        doc["acker"] = [[root, e[0], e[1], e[2], 0] for root, e in ex.current.items()] + [
            [root, e[0], e[1], e[2], 1] for root, e in ex.previous.items()
        ]
    return msgpack.packb(doc, use_bin_type=True)


def restore(ex: Any, data: bytes, now: float) -> None:
    """Apply a snapshot taken by ``take`` to a freshly built and initialized executor."""
    doc = decode(data)
    if doc["id"] != ex.spec.id or doc["kind"] != ex.kind:
        raise SnapshotError(
            f"snapshot of executor {doc['id']} ({doc['kind']}) given to executor {ex.spec.id} ({ex.kind})"
        )
    for task, blob in doc["tasks"].items():
        inst = getattr(ex, "instances", {}).get(task)
        if inst is None or blob is None:
            continue
        try:
            inst.restore(blob)
        except Exception as exc:  # a user bug in restore must not stop the executor
            ex.log_error_once(task, exc, "restore")
    if ex.kind == ExecutorKind.SPOUT:
        for root, task, packed_id, age in doc.get("pending", []):
            if task not in ex.pending_by_task:
                continue
            tup_id = msgpack.unpackb(packed_id, raw=False, use_list=False, strict_map_key=False)
            ex.pending[root] = (task, tup_id, now - float(age))
            ex.pending_by_task[task] += 1
    elif ex.kind == ExecutorKind.ACKER:
        for root, xor, spout_task, failed, old in doc.get("acker", []):
            (ex.previous if old else ex.current)[root] = [xor, spout_task, bool(failed)]
        ex.rotated_at = now
    ex.inbox.extendleft(reversed(_read_inbox(ex, doc["inbox"])))  # ahead of anything that arrived since the move


def decode(data: bytes) -> dict[str, Any]:
    """The snapshot as a map, validated for shape; raises ``SnapshotError``."""
    try:
        doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise SnapshotError(f"not a snapshot: {exc}") from None
    if type(doc) is not dict:
        raise SnapshotError("not a snapshot: not a map")
    if doc.get("v") not in _READABLE_VERSIONS:
        raise SnapshotError(
            f"snapshot field 'v' is {doc.get('v')!r:.20}, this worker reads versions "
            f"{', '.join(map(str, _READABLE_VERSIONS))}"
        )
    for key, kind in (("id", int), ("kind", str), ("tasks", dict), ("inbox", list)):
        if not isinstance(doc.get(key), kind):
            raise SnapshotError(f"snapshot field {key!r} missing or not {kind.__name__}")
    if doc["v"] == 1:
        doc["inbox"] = [_as_run(item) for item in doc["inbox"]]
        doc["v"] = SNAPSHOT_VERSION
    return doc


def _as_run(item: Any) -> Any:
    """A version-1 queue item in the version-2 layout: a data item (its second field a stream
    name) becomes a run of one tuple; control items and anything malformed stay as they are
    (the reader refuses and counts what does not fit)."""
    if type(item) is list and len(item) == 5 and type(item[1]) is str:
        target, stream, source, values, roots = item
        return [target, stream, source, [values], None if roots is None else [roots]]
    return item


def _user_snapshot(ex: Executor, task: int, inst: Any) -> bytes | None:
    try:
        blob = inst.snapshot()
    except Exception as exc:  # a user bug in snapshot loses that task's state, not the move
        ex.log_error_once(task, exc, "snapshot")
        return None
    if blob is not None and not isinstance(blob, (bytes, bytearray)):
        ex.log_error_once(task, TypeError(f"snapshot() returned {type(blob).__name__}, not bytes"), "snapshot")
        return None
    return bytes(blob) if blob is not None else None


def _is_tick(item: tuple[int, Any]) -> bool:
    payload = item[1]
    return isinstance(payload, Tuple) and payload.stream == TICK_STREAM


def _read_inbox(ex: Any, items: list) -> list[tuple[int, Any]]:
    """The queued items back as inbox items of ``ex``'s tasks; one that does not fit (not
    the layout, another task, a stream or arity the spec does not have) is counted as an
    error of the executor and left out."""
    queued: list[tuple[int, Any]] = []
    tasks = ex.spec.tasks
    if ex.kind == layout.BOLT_TASK:
        data, control = {t: queued.append for t in tasks if t in ex.instances}, {}
    else:
        data, control = {}, {t: (ex.kind, queued.append) for t in tasks}

    def misfit(item: Any) -> None:
        exc = ValueError(f"queued item {item!r:.80} does not fit {ex.component!r}")
        if hasattr(ex, "log_error_once"):  # spouts and bolts; an acker has no user code to blame
            ex.log_error_once(ex.spec.first_task, exc, "restore (a queued item that does not fit)")
        else:
            ex.stats.errors += 1
            log.error("executor %d (%s): %s; dropped", ex.spec.id, ex.component, exc)

    layout.ItemReader(ex.wiring.spec).read(items, data, control, on_bad=misfit)
    return queued
