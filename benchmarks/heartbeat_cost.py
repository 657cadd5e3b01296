"""What one board's heartbeat costs Nimbus's loop, part by part, at the scale of hundreds of boards.

    python benchmarks/heartbeat_cost.py --boards 500 --executors 5000

Builds a Nimbus state in process (a real SQLite file, no sockets) as
``benchmarks/history_sample.py`` does: ``--boards`` boards register, a chain topology of
``--executors`` executors over two workers per board is placed, and every board heartbeats
once a second with the metrics ``scale.py``'s simulated boards send. The heartbeats are
encoded as the boards send them, then handled as the server's loop handles a frame
(``NimbusServer._on_frames_of``, without the socket): decode, the state's step, the store's
``carry_out``, the ack's encoding. After ``--warm`` seconds it measures ``--seconds`` seconds
of heartbeats (a tick each second) and prints, per heartbeat, the thread's CPU time of each
part, and with ``--profile`` the functions the step spends it in (cProfile, which slows
what it measures: read its shares, not its times).

CPU time of this thread: less sensitive to a loaded machine than wall time, not insensitive
(caches are shared). Nothing here is timed by a test.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also through benchmarks/against.py
from history_sample import placed_state, worker_metrics  # noqa: E402

from squall import messages as M  # noqa: E402
from squall.nimbus.events import Received, Tick
from squall.nimbus.state import NimbusState
from squall.wire import Encoder, decode, encode


def frames(st: NimbusState, nodes: list[str], executors: list[int], at: float, seq: int) -> list[tuple[bytes, bytes]]:
    """(peer, frame) of every board's heartbeat at ``at``, as the boards encode them."""
    out = []
    for node in nodes:
        reports = [
            M.WorkerReport(
                w.topology,
                w.port,
                1000 + w.port,
                "running",
                w.assignment_version,
                metrics=worker_metrics(w, executors, at),
            )
            for w in st.declared(node)
        ]
        out.append((node.encode(), encode(M.Heartbeat(node, seq, reports, rss_bytes=40 << 20))))
    return out


class Parts:
    """CPU seconds of this thread per part of handling a frame, summed."""

    def __init__(self) -> None:
        self.decode = self.step = self.store = self.encode = 0.0
        self.count = 0

    def handle(self, st: NimbusState, encoder: Encoder, peer: bytes, frame: bytes, now: float) -> None:
        clock = time.thread_time
        t0 = clock()
        msg = decode(frame)
        t1 = clock()
        commands = st.step(Received(peer, msg, now))
        t2 = clock()
        sends = st.carry_out(commands)
        t3 = clock()
        for send in sends:
            encoder.encode(send.msg)
        t4 = clock()
        self.decode += t1 - t0
        self.step += t2 - t1
        self.store += t3 - t2
        self.encode += t4 - t3
        self.count += 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", type=int, default=500)
    ap.add_argument("--executors", type=int, default=5000)
    ap.add_argument("--warm", type=int, default=10, help="seconds of heartbeats before measuring")
    ap.add_argument("--seconds", type=int, default=10, help="seconds of heartbeats measured")
    ap.add_argument("--profile", action="store_true", help="then profile the state's step (cProfile)")
    args = ap.parse_args(argv)
    print(
        f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.boards} boards, "
        f"{args.executors} executors; CPU time of the handling thread, per heartbeat",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        st, nodes, executors = placed_state(tmp, args.boards, args.executors)
        encoder = Encoder()
        seconds: list[list[tuple[bytes, bytes]]] = [
            frames(st, nodes, executors, float(s), s) for s in range(1, args.warm + args.seconds + 1)
        ]
        parts = Parts()
        profile = cProfile.Profile() if args.profile else None
        for s, batch in enumerate(seconds, start=1):
            measured = s > args.warm
            for peer, frame in batch:
                if measured:
                    parts.handle(st, encoder, peer, frame, float(s))
                else:
                    st.apply(Received(peer, decode(frame), float(s)))
            st.apply(Tick(float(s)))
        if profile is not None:  # one more second, profiled
            batch = frames(st, nodes, executors, float(len(seconds) + 1), len(seconds) + 1)
            profile.enable()
            for peer, frame in batch:
                msg: Any = decode(frame)
                for send in st.carry_out(st.step(Received(peer, msg, float(len(seconds) + 1)))):
                    encoder.encode(send.msg)
            profile.disable()
        n = parts.count
        total = parts.decode + parts.step + parts.store + parts.encode
        print("part | CPU us per heartbeat | share")
        for label, spent in (
            ("decode the frame", parts.decode),
            ("the state's step", parts.step),
            ("store carry_out", parts.store),
            ("encode the ack", parts.encode),
            ("all", total),
        ):
            print(f"{label} | {spent / n * 1e6:.1f} | {spent / total:.0%}", flush=True)
        print(f"# {n} heartbeats of {len(frames(st, nodes[:1], executors, 1.0, 1)[0][1])} bytes each measured")
        if profile is not None:
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
