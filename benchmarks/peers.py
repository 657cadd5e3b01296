"""The same 3-stage chain in Squall and in its peers, in one run, with the ratios.

    python benchmarks/peers.py [--tuples 300000] [--skip-squall-workers]

The chain: a source of integers, a stage that forwards each, a sink that counts them; no work
per tuple, so the figure is the framework's cost per tuple. Squall runs it in one process
(acking off and on; ``engine_figures.py``), written per tuple and batch-aware
(``emit_many`` runs of 100, ``process_many``), and over two worker processes (acking off;
``worker_figures.py``: spout on one worker, middle and sink on the other). Bytewax, when it
is installed, runs it with input batches of 1 and 1,000 items, in one process and in two
(``cluster_main``, with a ``redistribute`` between the stages so tuples cross processes as
they do in the two-worker Squall run). A peer that is not installed is skipped, saying so.

Bytewax is timed from the start of the run to its end (its startup included; the tuple counts
are chosen so startup is a small share), and each run checks that the sink counted every item.
Besides items per wall second, it prints items per CPU second of every process of the run
(this one, and the spawned ones through their rusage), which a shared machine disturbs
less. Compare figures of one run, not across runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
import os
import resource
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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bytewax_rate(n: int, batch: int, processes: int) -> tuple[float, float]:
    """(items per wall second, items per CPU second of every process of the run) through the
    Bytewax chain; checks the sink saw all ``n``."""
    with tempfile.TemporaryDirectory(prefix="squall-peers-") as tmp:
        count_file = os.path.join(tmp, "count")
        started = time.perf_counter()
        started_cpu = time.process_time() + _children_cpu()
        if processes == 1:
            from bytewax.testing import run_main

            run_main(_bytewax_flow(n, batch, count_file, crossing=False))
        else:
            addresses = [f"127.0.0.1:{_free_port()}" for _ in range(processes)]
            ctx = mp.get_context("spawn")
            procs = [
                ctx.Process(target=_bytewax_process, args=(n, batch, count_file, addresses, k))
                for k in range(processes)
            ]
            for p in procs:
                p.start()
            for p in procs:
                p.join(600)
                if p.exitcode != 0:
                    raise RuntimeError(f"a Bytewax process exited with {p.exitcode}")
        elapsed = time.perf_counter() - started
        cpu = time.process_time() + _children_cpu() - started_cpu
        seen = sum(int(line) for line in Path(count_file).read_text().split())
    if seen != n:
        raise RuntimeError(f"Bytewax sink counted {seen} of {n} items")
    return n / elapsed, n / max(cpu, 1e-9)


# -- the run ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tuples", type=int, default=300_000, help="tuples per one-process Squall round")
    parser.add_argument("--skip-squall-workers", action="store_true", help="skip the two-worker Squall run")
    args = parser.parse_args(argv)
    print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    # (name, per wall second, per CPU second or None when not measured)
    rows: list[tuple[str, float, float | None]] = []

    from engine_figures import measure

    for chain in ("per-tuple", "batch"):  # batch: emit_many runs of 100 and process_many
        for acking in (False, True):
            wall, cpu = measure(acking, args.tuples, 3, chain)
            label = "" if chain == "per-tuple" else " batch-aware"
            rows.append((f"Squall{label}, one process, acking {'on' if acking else 'off'}", max(wall), max(cpu)))
            print(f"{rows[-1][0]}: {rows[-1][1]:,.0f} tuples/s, {rows[-1][2]:,.0f} per CPU s", flush=True)
    if not args.skip_squall_workers:
        from worker_figures import measure_throughput

        rows.append(("Squall, 2 worker processes, acking off", measure_throughput().tuples_per_s, None))
        print(f"{rows[-1][0]}: {rows[-1][1]:,.0f} tuples/s (wall only)", flush=True)

    if importlib.util.find_spec("bytewax") is None:
        print("Bytewax: not installed, skipped (pip install bytewax to compare)", flush=True)
    else:
        for processes in (1, 2):
            for batch in (1, 1000):
                n = (200_000 if batch == 1 else 2_000_000) // (4 if processes == 2 and batch == 1 else 1)
                wall, cpu = bytewax_rate(n, batch, processes)
                rows.append((f"Bytewax, {processes} process{'es' if processes > 1 else ''}, batch {batch}", wall, cpu))
                print(f"{rows[-1][0]}: {wall:,.0f} items/s, {cpu:,.0f} per CPU s ({n:,} items)", flush=True)

    _, base_wall, base_cpu = rows[0]
    print("\nratio to Squall one process, acking off (per CPU second is the steadier on a shared machine):")
    for name, wall, cpu in rows:
        per_cpu = (
            f"{cpu:>12,.0f} /CPU s  x{cpu / base_cpu:.2f}" if cpu is not None and base_cpu else "     (not measured)"
        )
        print(f"  {name:<45} {wall:>12,.0f} /s  x{wall / base_wall:.2f}   {per_cpu}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
