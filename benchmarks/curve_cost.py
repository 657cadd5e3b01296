"""The cost of CURVE on the data plane: the 3-stage chain (spout on worker A; middle and sink
on worker B, every tuple crossing once, acking off) with and without the cluster keys.

    python benchmarks/curve_cost.py [--seconds 5] [--rounds 3]

Throughput is the growth of the sink's ``executed`` between two heartbeats after a warm-up,
as in ``worker_figures.py``; plain and CURVE runs alternate so drift on a shared machine
hits both alike. Prints each run and the median of each mode.

For scale it also measures the bare link: one PUSH -> PULL pair in one process sending
4 KiB frames (about the size of a 100-tuple batch of the chain), plain and CURVE — the
ceiling encryption puts on a link, far above what a Python worker produces.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zmq  # noqa: E402

from squall import security  # noqa: E402
from tests.security.keyed_workers import SINK, TwoKeyedWorkers  # noqa: E402


def throughput(keys: security.ClusterKeys | None, seconds: float, warmup: float = 1.0) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        w = TwoKeyedWorkers(Path(tmp), keys, {"app.rate": 0})
        try:
            w.sup.collect(warmup)
            first = w.sup.last(w.b)
            w.sup.collect(seconds)
            last = w.sup.last(w.b)
            done = w.metric(w.b, SINK).executed - {m.executor: m for m in first.metrics.executors}[SINK].executed
            return done / (last.metrics.at - first.metrics.at)
        finally:
            w.close()


def link_mb_per_s(keys: security.ClusterKeys | None, size: int = 4096, frames: int = 20_000) -> float:
    ctx = zmq.Context()
    try:
        pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
        security.secure_server(pull, keys)
        port = pull.bind_to_random_port("tcp://127.0.0.1")
        security.secure_client(push, keys)
        push.connect(f"tcp://127.0.0.1:{port}")
        frame = b"x" * size
        push.send(frame)
        pull.recv()  # handshake done
        started = time.perf_counter()
        sender = threading.Thread(target=lambda: [push.send(frame) for _ in range(frames)])
        sender.start()
        for _ in range(frames):
            pull.recv()
        elapsed = time.perf_counter() - started
        sender.join()
        push.close(0)
        pull.close(0)
    finally:
        security.release(ctx)
        ctx.term()
    return frames * size / elapsed / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as kdir:
        keys = security.generate(Path(kdir) / "keys")
        runs: dict[str, list[float]] = {"plain": [], "curve": [], "link plain": [], "link curve": []}
        for r in range(args.rounds):
            for mode, k in (("plain", None), ("curve", keys)):
                tps = throughput(k, args.seconds)
                runs[mode].append(tps)
                print(f"round {r + 1} {mode:5s}: {tps:,.0f} tuples/s", flush=True)
            for mode, k in (("plain", None), ("curve", keys)):
                runs[f"link {mode}"].append(link_mb_per_s(k))
    plain, curve = statistics.median(runs["plain"]), statistics.median(runs["curve"])
    print(
        f"chain, median of {args.rounds}: plain {plain:,.0f} tuples/s, CURVE {curve:,.0f} tuples/s "
        f"({100 * (curve / plain - 1):+.1f}%)"
    )
    plain, curve = statistics.median(runs["link plain"]), statistics.median(runs["link curve"])
    print(
        f"bare link, 4 KiB frames: plain {plain:,.0f} MB/s, CURVE {curve:,.0f} MB/s ({100 * (curve / plain - 1):+.1f}%)"
    )


if __name__ == "__main__":
    main()
