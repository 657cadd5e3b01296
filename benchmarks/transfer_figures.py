"""The data plane's cost per item, without sockets: a worker's sending side (the outbox's sink,
batching, encoding a frame) and its receiving side (decoding a frame, validating each item,
building the tuple, handing it to the inbox), for data tuples (acking off and on, to one task
and to two tasks in turn) and acker items.

    python benchmarks/transfer_figures.py [--items 200000] [--runs 7]
    python benchmarks/against.py REV benchmarks/transfer_figures.py   # the same at REV

Instructions per item, deterministic on a loaded machine: run it under ``valgrind
--tool=cachegrind`` with ``--runs 1 --kind K`` at two ``--items`` counts (say 60000 and
10000) and divide the difference of the ``Ir`` totals by the difference of the items
processed (warm-up included: ``min(items, 20000)`` more per run of the script).

Prints, per kind of item, the best and median CPU nanoseconds per item (``time.process_time``
over ``--items`` items, ``--runs`` rounds after a warm-up; the best is the steadier figure on a
shared machine). Every round checks that each item came out of the receiver as it went in, so
a fast wrong data plane cannot print a figure. It uses only what both the old and the new
transfer API offer (see ``remote_sink``), so ``against.py`` measures either revision.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from squall.supervisor.runtime.messages import ACK_ACK
from squall.supervisor.transfer import Outbox, TupleCodec
from squall.topology.component import Tuple

# The repo root, for tests.worker's user code; appended, so that ``squall`` stays the one
# installed (or, under against.py, the older revision's).
sys.path.append(str(Path(__file__).resolve().parents[1]))
from tests.worker.worker_helpers import user_module  # noqa: E402

Chain = user_module("chain_app").Chain

SPEC = Chain.spec
EXECUTORS = SPEC.executors_with_ackers(1)  # tasks: middle 1, 2; sink 3; spout 4; acker 5
MIDDLE, SPOUT, ACKER = 1, 4, 5
FIELDS = {"n": 0, "ts": 1}


# "data, acking off" sends every tuple to one task (one run per frame: a chain's link, the
# best case of frame version 4's runs); "data, two targets" alternates between two tasks of
# the receiving worker (runs of one tuple: its worst case).
# "data, emit_many" is the sending side of a remote ``emit_many`` of RUN untracked tuples to
# one task: one ``Rows`` per call through ``Outbox.put_run`` where the revision has it, else
# (before it) one ``Tuple`` built and put per tuple, as its ``emit_many`` did.
KINDS = ("data, acking off", "data, acking on", "data, two targets", "data, emit_many", "acker items")
MIDDLE_2 = 2
RUN = 100


def remote_sink(box: Outbox, task: int) -> Callable[[tuple[int, Any]], None]:
    """The outbox's sink for ``task``: one sink for every task (``put``), or, in revisions
    before it, a data sink for bolt tasks and a control sink for the others."""
    put = getattr(box, "put", None)
    if put is not None:
        return put
    return box.data_sink(task) if task in (MIDDLE, MIDDLE_2) else box.control_sink(task)


def items(kind: str, n: int) -> list[tuple[int, Any]]:
    if kind in ("data, acking off", "data, emit_many"):
        return [(MIDDLE, Tuple("spout", "default", SPOUT, [i, 1.5], FIELDS)) for i in range(n)]
    if kind == "data, two targets":
        return [(MIDDLE + (i & 1), Tuple("spout", "default", SPOUT, [i, 1.5], FIELDS)) for i in range(n)]
    if kind == "data, acking on":
        return [(MIDDLE, Tuple("spout", "default", SPOUT, [i, 1.5], FIELDS, {2**63 + i: i + 1})) for i in range(n)]
    return [(ACKER, (ACK_ACK, 2**63 + i, i + 1)) for i in range(n)]


def one_round(kind: str, batch: list[tuple[int, Any]]) -> tuple[float, float]:
    """CPU seconds of sending ``batch`` and of receiving what was sent."""
    frames: list[bytes] = []
    box = Outbox(lambda _endpoint, frame: frames.append(frame) or True, time.monotonic, batch_size=256)
    box.place({MIDDLE: "b:1", 2: "b:1", 3: "b:1", SPOUT: "a:1", ACKER: "a:1"})
    sink = remote_sink(box, batch[0][0])  # the same for both middle tasks (a bolt's)
    if kind == "data, emit_many":  # the lists the spout would emit, not yet tuples
        lists = [[tup.values for _, tup in batch[i : i + RUN]] for i in range(0, len(batch), RUN)]
    started = time.process_time()
    if kind == "data, emit_many":
        send_lists(box, sink, lists)
    else:
        for item in batch:
            sink(item)
    box.flush(idle=True)
    send_s = time.process_time() - started
    got: list[tuple[int, Any]] = []
    codec = TupleCodec(
        SPEC, EXECUTORS, (MIDDLE, MIDDLE_2, ACKER), {MIDDLE: got.append, MIDDLE_2: got.append, ACKER: got.append}
    )
    started = time.process_time()
    for frame in frames:
        codec.deliver(frame)
    receive_s = time.process_time() - started
    check(kind, batch, got)
    return send_s, receive_s


def send_lists(box: Outbox, sink: Callable[[tuple[int, Any]], None], lists: list[list[list[Any]]]) -> None:
    """What a remote ``emit_many`` of each list hands the outbox: one ``Rows`` per list, or,
    in revisions without ``put_run``, a ``Tuple`` per values list (built as the emit did)."""
    put_run = getattr(box, "put_run", None)
    if put_run is not None:
        from squall.supervisor.runtime.layout import Rows

        for rows in lists:
            put_run(MIDDLE, Rows("spout", "default", SPOUT, rows, FIELDS))
        return
    new_tuple = object.__new__
    for rows in lists:
        for values in rows:
            tup = new_tuple(Tuple)
            tup.component = "spout"
            tup.stream = "default"
            tup.task = SPOUT
            tup.values = values
            tup.fields = FIELDS
            tup.roots = None
            tup.ack_val = 0
            tup.done = False
            sink((MIDDLE, tup))


def check(kind: str, sent: list[tuple[int, Any]], got: list[tuple[int, Any]]) -> None:
    if len(got) != len(sent):
        raise AssertionError(f"{kind}: {len(sent)} items sent, {len(got)} received")
    for (t1, a), (t2, b) in ((sent[0], got[0]), (sent[-1], got[-1])):
        same = (t1 == t2) and (
            (a.values, a.roots or None, a.stream, a.task) == (list(b.values), b.roots, b.stream, b.task)
            if isinstance(a, Tuple)
            else tuple(a) == tuple(b)
        )
        if not same:
            raise AssertionError(f"{kind}: sent {(t1, a)!r}, received {(t2, b)!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--kind", choices=KINDS, action="append", help="measure only these kinds of item")
    args = parser.parse_args(argv)
    for kind in args.kind or KINDS:
        batch = items(kind, args.items)
        one_round(kind, batch[: min(len(batch), 20_000)])  # warm-up
        send, receive = [], []
        for _ in range(args.runs):
            s, r = one_round(kind, batch)
            send.append(s / len(batch) * 1e9)
            receive.append(r / len(batch) * 1e9)
        print(
            f"{kind:<17} send: best {min(send):6.0f} median {statistics.median(send):6.0f} ns/item;"
            f"  receive: best {min(receive):6.0f} median {statistics.median(receive):6.0f} ns/item"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
