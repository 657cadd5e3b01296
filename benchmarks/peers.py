"""The same 3-stage chain in Squall and in its peers, in one run, with the ratios.

    python benchmarks/peers.py [--tuples 300000] [--skip-squall-workers]

The chain: a source of integers, a stage that forwards each, a sink that counts them; no work
per tuple, so the figure is the framework's cost per tuple. Squall runs it in one process
(acking off and on; ``engine_figures.py``) and over two worker processes (acking off;
``worker_figures.py``: spout on one worker, middle and sink on the other). Bytewax, when it
is installed, runs it with input batches of 1 and 1,000 items, in one process and in two
(``cluster_main``, with a ``redistribute`` between the stages so tuples cross processes as
they do in the two-worker Squall run). A peer that is not installed is skipped, saying so.

Bytewax is timed from the start of the run to its end (its startup included; the tuple counts
are chosen so startup is a small share), and each run checks that the sink counted every item.
The machine is shared: compare figures of one run, not across runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


# -- Bytewax ------------------------------------------------------------------------------------


def _bytewax_flow(n: int, batch: int, count_file: str, crossing: bool) -> Any:
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.outputs import DynamicSink, StatelessSinkPartition
    from bytewax.testing import TestingSource

    class Count(StatelessSinkPartition):
        def __init__(self, path: str) -> None:
            self.path = path
            self.seen = 0

        def write_batch(self, items: list[Any]) -> None:
            self.seen += len(items)

        def close(self) -> None:
            with open(self.path, "a") as f:
                f.write(f"{self.seen}\n")

    class CountingSink(DynamicSink):
        def build(self, step_id: str, worker_index: int, worker_count: int) -> Count:
            return Count(count_file)

    flow = Dataflow("chain3")
    stream = op.input("spout", flow, TestingSource(range(n), batch_size=batch))
    stream = op.map("middle", stream, lambda x: x)
    if crossing:
        stream = op.redistribute("cross", stream)
    stream = op.map("sink_side", stream, lambda x: x)
    op.output("sink", stream, CountingSink())
    return flow


def _bytewax_process(n: int, batch: int, count_file: str, addresses: list[str], proc_id: int) -> None:
    from bytewax.testing import cluster_main

    cluster_main(_bytewax_flow(n, batch, count_file, crossing=True), addresses, proc_id)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bytewax_rate(n: int, batch: int, processes: int) -> float:
    """Items per second through the Bytewax chain (checks the sink saw all ``n``)."""
    with tempfile.TemporaryDirectory(prefix="squall-peers-") as tmp:
        count_file = os.path.join(tmp, "count")
        started = time.perf_counter()
        if processes == 1:
            from bytewax.testing import run_main

            run_main(_bytewax_flow(n, batch, count_file, crossing=False))
        else:
            addresses = [f"127.0.0.1:{_free_port()}" for _ in range(processes)]
            ctx = mp.get_context("spawn")
            procs = [ctx.Process(target=_bytewax_process, args=(n, batch, count_file, addresses, k))
                     for k in range(processes)]
            for p in procs:
                p.start()
            for p in procs:
                p.join(600)
                if p.exitcode != 0:
                    raise RuntimeError(f"a Bytewax process exited with {p.exitcode}")
        elapsed = time.perf_counter() - started
        seen = sum(int(line) for line in Path(count_file).read_text().split())
    if seen != n:
        raise RuntimeError(f"Bytewax sink counted {seen} of {n} items")
    return n / elapsed


# -- the run ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tuples", type=int, default=300_000, help="tuples per one-process Squall round")
    parser.add_argument("--skip-squall-workers", action="store_true", help="skip the two-worker Squall run")
    args = parser.parse_args(argv)
    print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    rows: list[tuple[str, float]] = []

    from engine_figures import measure

    for acking in (False, True):
        wall, _cpu = measure(acking, args.tuples, 3)
        rows.append((f"Squall, one process, acking {'on' if acking else 'off'}", max(wall)))
        print(f"{rows[-1][0]}: {rows[-1][1]:,.0f} tuples/s", flush=True)
    if not args.skip_squall_workers:
        from worker_figures import measure_throughput

        rows.append(("Squall, 2 worker processes, acking off", measure_throughput().tuples_per_s))
        print(f"{rows[-1][0]}: {rows[-1][1]:,.0f} tuples/s", flush=True)

    if importlib.util.find_spec("bytewax") is None:
        print("Bytewax: not installed, skipped (pip install bytewax to compare)", flush=True)
    else:
        for processes in (1, 2):
            for batch in (1, 1000):
                n = (200_000 if batch == 1 else 2_000_000) // (4 if processes == 2 and batch == 1 else 1)
                rate = bytewax_rate(n, batch, processes)
                rows.append((f"Bytewax, {processes} process{'es' if processes > 1 else ''}, batch {batch}", rate))
                print(f"{rows[-1][0]}: {rate:,.0f} items/s ({n:,} items)", flush=True)

    squall_one = rows[0][1]
    print("\nratio to Squall one process, acking off:")
    for name, rate in rows:
        print(f"  {name:<45} {rate:>12,.0f} /s   x{rate / squall_one:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
