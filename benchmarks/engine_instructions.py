"""Instructions per tuple of the one-process 3-stage chain (``test_engine_throughput.py``),
acking off and on, written per tuple and batch-aware (``emit_many``, ``process_many``):
deterministic, so it means the same on a loaded machine.

    python benchmarks/engine_instructions.py [--small 10000] [--large 60000] [--chains per-tuple batch]
    python benchmarks/against.py main benchmarks/engine_instructions.py

Runs the chain under ``valgrind --tool=cachegrind`` twice per acking mode (``--small`` and
``--large`` tuples, after the same 2,000-tuple warm-up, garbage collector off) and prints
the difference of the ``Ir`` totals divided by the difference in tuples, so start-up and
warm-up cancel. Each run checks that every tuple reached the sink (and every tree was
acked), as ``engine_figures.py`` does. Needs valgrind; says so and exits 2 without it.
``--chains per-tuple`` alone measures a checkout from before the batch-aware API.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cachegrind  # noqa: E402  (a sibling benchmark module)

CHAINS = ("per-tuple", "batch")


def _run_chain(acking: bool, tuples: int, chain: str) -> None:
    sys.path.insert(0, str(HERE))
    from test_engine_throughput import _engine, _push

    engine = _engine(acking, chain) if chain != "per-tuple" else _engine(acking)
    gc.disable()
    _push(engine, 2_000, acking)
    _push(engine, tuples, acking)


def _instructions(acking: bool, tuples: int, chain: str) -> int:
    return cachegrind.count(__file__, ["--child", "on" if acking else "off", str(tuples), chain])[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=60_000)
    parser.add_argument("--chains", nargs="+", choices=CHAINS, default=list(CHAINS))
    parser.add_argument("--child", nargs=3, metavar=("ACKING", "TUPLES", "CHAIN"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _run_chain(args.child[0] == "on", int(args.child[1]), args.child[2])
        return 0
    if not cachegrind.available():
        print("valgrind is not installed: no instruction counts", file=sys.stderr)
        return 2
    for acking in (False, True):
        for chain in args.chains:
            large, small = _instructions(acking, args.large, chain), _instructions(acking, args.small, chain)
            per_tuple = (large - small) / (args.large - args.small)
            label = "chain3" if chain == "per-tuple" else "chain3 batch"
            print(
                f"{label} one process, acking {'on ' if acking else 'off'}: {per_tuple:,.0f} instructions per tuple",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
