"""Tracing and profiling for ``benchmarks/worker_trace.py``, loaded into each worker process
(through a ``sitecustomize`` the benchmark writes); never imported by Squall itself.

``profile(out_dir)`` (``SQUALL_PROFILE_DIR``) runs the whole worker under cProfile and writes
``<pid>.prof`` at exit. ``install(out_dir)`` (``SQUALL_TRACE_DIR``) wraps, in the worker
process only, the calls that mark where a tuple's time goes, and writes what it saw to
``$SQUALL_TRACE_DIR/<pid>.json`` at exit. Times are
``time.monotonic_ns()`` (CLOCK_MONOTONIC: comparable between processes of one machine).

* ``send``: [start, end, frame checksum] for every frame a PUSH socket took;
* ``recv``: [start, end of decode and delivery, frame checksum] for every frame read;
* ``flush``: [oldest item buffered at, sent at, items] for every batch sent;
* ``round``: [start, end, did work] for every loop round;
* ``wait``: [start, end, timeout asked] for every block in ``select``;
* ``spin``: [start, end, 1 if a frame ended it] for every poll before blocking
  (``squall.worker.spin.us``; none from a revision without it);
* ``beat``: [start, end] for every heartbeat built and sent;
* ``zmq``: [EVENTS queries, receives that raised ``zmq.Again``] over the whole run;
* ``gc``: [start, end, generation, objects it found unreachable, CPU ns of the loop thread
  (``time.thread_time_ns``: what the collection cost, whatever else ran)] for every garbage
  collection.

The wrappers cost about a microsecond per event; the figures include that. Events are kept
in ``array``s of integers, which the garbage collector does not track: lists of lists
would add tens of thousands of long-lived objects and lengthen the very collections traced.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import time
import zlib
from array import array
from typing import Any

now_ns = time.monotonic_ns


def profile(out_dir: str) -> None:
    import cProfile

    prof = cProfile.Profile()
    prof.enable()

    def dump() -> None:
        prof.disable()
        prof.dump_stats(os.path.join(out_dir, f"{os.getpid()}.prof"))

    atexit.register(dump)


def install(out_dir: str) -> None:
    import sys

    from squall.supervisor import transfer, worker_io

    widths = {"send": 3, "recv": 3, "flush": 3, "round": 3, "wait": 3, "spin": 3, "beat": 2, "gc": 5}
    ev: dict[str, array] = {k: array("q") for k in widths}

    sockets = worker_io.WorkerSockets
    orig_send, orig_receive, orig_wait = sockets.send, sockets.receive_data, sockets.wait

    def send(self: Any, endpoint: str, frame: bytes) -> bool:
        t0 = now_ns()
        ok = orig_send(self, endpoint, frame)
        if ok:
            ev["send"].extend((t0, now_ns(), zlib.crc32(frame)))
        return ok

    def receive_data(self: Any, deliver: Any, *limits: int) -> Any:
        def traced(frame: bytes) -> Any:
            t0 = now_ns()
            out = deliver(frame)
            ev["recv"].extend((t0, now_ns(), zlib.crc32(frame)))
            return out

        return orig_receive(self, traced, *limits)

    def wait(self: Any, seconds: float) -> None:
        t0 = now_ns()
        orig_wait(self, seconds)
        ev["wait"].extend((t0, now_ns(), int(seconds * 1e9)))

    sockets.send, sockets.receive_data, sockets.wait = send, receive_data, wait  # type: ignore[method-assign]

    import zmq

    asked = [0, 0]  # EVENTS queries, receives that found nothing
    zsock = zmq.Socket
    orig_get, orig_recv, orig_recv_multipart = zsock.getsockopt, zsock.recv, zsock.recv_multipart
    events = zmq.EVENTS

    def getsockopt(self: Any, option: int) -> Any:
        if option == events:
            asked[0] += 1
        return orig_get(self, option)

    def counted(orig: Any) -> Any:
        def recv(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return orig(self, *args, **kwargs)
            except zmq.Again:
                asked[1] += 1
                raise

        return recv

    zsock.getsockopt = getsockopt  # type: ignore[method-assign]
    zsock.recv, zsock.recv_multipart = counted(orig_recv), counted(orig_recv_multipart)  # type: ignore[method-assign]

    outbox = transfer.Outbox
    orig_flush = outbox._flush_buffer

    def flush_buffer(self: Any, buf: Any) -> None:
        if buf.items and buf.endpoint:
            ev["flush"].extend((int(buf.first_at * 1e9), now_ns(), len(buf.items)))
        orig_flush(self, buf)

    outbox._flush_buffer = flush_buffer  # type: ignore[method-assign]

    def patch_worker() -> None:
        # The worker runs as ``python -m squall.supervisor.worker``: its class is
        # ``__main__.Worker``, which exists once ``main()`` opens the sockets.
        w = sys.modules["__main__"].Worker
        orig_round, orig_beat = w.round, w.heartbeat

        def round_(self: Any) -> bool:
            t0 = now_ns()
            did = orig_round(self)
            ev["round"].extend((t0, now_ns(), int(bool(did))))
            return did

        def heartbeat(self: Any) -> None:
            t0 = now_ns()
            orig_beat(self)
            ev["beat"].extend((t0, now_ns()))

        w.round, w.heartbeat = round_, heartbeat
        orig_spin = getattr(w, "_spin", None)
        if orig_spin is not None:

            def spin(self: Any, end: float) -> bool:
                t0 = now_ns()
                hit = orig_spin(self, end)
                ev["spin"].extend((t0, now_ns(), int(hit)))
                return hit

            w._spin = spin

    orig_init = sockets.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        patch_worker()
        orig_init(self, *args, **kwargs)

    sockets.__init__ = init  # type: ignore[method-assign]

    gc_start = [0, 0]
    cpu_ns = time.thread_time_ns

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_start[0], gc_start[1] = now_ns(), cpu_ns()
        else:
            cpu = cpu_ns() - gc_start[1]
            ev["gc"].extend((gc_start[0], now_ns(), info["generation"], info["collected"], cpu))

    gc.callbacks.append(on_gc)

    def dump() -> None:
        rows = {k: [list(a[i : i + widths[k]]) for i in range(0, len(a), widths[k])] for k, a in ev.items()}
        rows["zmq"] = [asked]
        with open(os.path.join(out_dir, f"{os.getpid()}.json"), "w") as f:
            json.dump(rows, f)

    atexit.register(dump)
