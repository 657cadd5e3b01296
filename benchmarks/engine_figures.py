"""One-process engine throughput: the 3-stage chain of ``test_engine_throughput.py``
(spout -> bolt -> bolt, shuffle, one small field, no work per tuple), acking off and on,
written per tuple and batch-aware (``emit_many`` runs of 100, ``process_many``).

    python benchmarks/engine_figures.py [--tuples 200000] [--runs 5] [--chains per-tuple batch]

Prints the best and median tuples/s (wall clock), and the best per CPU second of the
process, over ``--runs`` rounds of ``--tuples`` tuples each (after one warm-up round), and
the load average at the start and end (the machine may be shared).
``--chains per-tuple`` alone measures a checkout from before the batch-aware API.
Every round checks that each tuple reached the sink and, acking on, that every tree was
acked, so a fast wrong engine cannot print a figure. It uses only the engine's
public constructor, so the same file measures an older checkout for comparison
(``PYTHONPATH`` or its own install).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_engine_throughput import _engine, _push  # noqa: E402

CHAINS = ("per-tuple", "batch")


def measure(acking: bool, tuples: int, runs: int, chain: str = "per-tuple") -> tuple[list[float], list[float]]:
    """tuples per wall second and per CPU second of this process, for each round (warm-up
    excluded). On a shared machine the CPU figure is the steadier one: it does not count
    the time other processes held the core."""
    engine = _engine(acking, chain) if chain != "per-tuple" else _engine(acking)
    _push(engine, min(tuples, 10_000), acking)
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        _push(engine, tuples, acking)
        wall.append(tuples / (time.perf_counter() - started))
        cpu.append(tuples / max(time.process_time() - started_cpu, 1e-9))
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tuples", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chains", nargs="+", choices=CHAINS, default=list(CHAINS))
    args = parser.parse_args(argv)
    print(f"# load average {os.getloadavg()[0]:.1f} at start", flush=True)
    for acking in (False, True):
        for chain in args.chains:
            wall, cpu = measure(acking, args.tuples, args.runs, chain)
            label = "chain3" if chain == "per-tuple" else "chain3 batch"
            print(
                f"{label + ' one process, acking ' + ('on ' if acking else 'off') + ':':<40} best {max(wall):>11,.0f} "
                f"median {statistics.median(wall):>11,.0f} tuples/s; per CPU second: best {max(cpu):>11,.0f}",
                flush=True,
            )
    print(f"# load average {os.getloadavg()[0]:.1f} at end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
