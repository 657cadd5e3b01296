"""One-process engine throughput: the 3-stage chain of ``test_engine_throughput.py``
(spout -> bolt -> bolt, shuffle, one small field, no work per tuple), acking off and on.

    python benchmarks/engine_figures.py [--tuples 200000] [--runs 5]

Prints the best and median tuples/s over ``--runs`` rounds of ``--tuples`` tuples each (after
one warm-up round). Every round checks that each tuple reached the sink and, acking on, that
every tree was acked, so a fast wrong engine cannot print a figure. It uses only the engine's
public constructor, so the same file measures an older checkout for comparison
(``PYTHONPATH`` or its own install).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_engine_throughput import _engine, _push  # noqa: E402


def measure(acking: bool, tuples: int, runs: int) -> list[float]:
    """tuples/s of each round (warm-up excluded)."""
    engine = _engine(acking)
    _push(engine, min(tuples, 10_000), acking)
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        _push(engine, tuples, acking)
        rates.append(tuples / (time.perf_counter() - started))
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tuples", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    for acking in (False, True):
        rates = measure(acking, args.tuples, args.runs)
        print(
            f"chain3 one process, acking {'on ' if acking else 'off'}: best {max(rates):>11,.0f} "
            f"median {statistics.median(rates):>11,.0f} tuples/s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
