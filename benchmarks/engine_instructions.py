"""Instructions per tuple of the one-process 3-stage chain (``test_engine_throughput.py``),
acking off and on: deterministic, so it means the same on a loaded machine.

    python benchmarks/engine_instructions.py [--small 10000] [--large 60000]
    python benchmarks/against.py main benchmarks/engine_instructions.py

Runs the chain under ``valgrind --tool=cachegrind`` twice per acking mode (``--small`` and
``--large`` tuples, after the same 2,000-tuple warm-up, garbage collector off) and prints
the difference of the ``Ir`` totals divided by the difference in tuples, so start-up and
warm-up cancel. Each run checks that every tuple reached the sink (and every tree was
acked), as ``engine_figures.py`` does. Needs valgrind; says so and exits 2 without it.
"""

from __future__ import annotations

import argparse
import gc
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Under against.py the parent dropped the editable install's finder so that the older
# revision on PYTHONPATH is imported; the child must do the same.
DROP_EDITABLE = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path "
    "if not getattr(f, '__module__', '').startswith('__editable__')]; "
)


def _run_chain(acking: bool, tuples: int) -> None:
    sys.path.insert(0, str(HERE))
    from test_engine_throughput import _engine, _push

    engine = _engine(acking)
    gc.disable()
    _push(engine, 2_000, acking)
    _push(engine, tuples, acking)


def _instructions(acking: bool, tuples: int) -> int:
    editable = any(getattr(f, "__module__", "").startswith("__editable__") for f in sys.meta_path)
    code = ("" if editable else DROP_EDITABLE) + (
        f"import runpy, sys; sys.argv = [{str(Path(__file__))!r}, '--child', "
        f"'{'on' if acking else 'off'}', '{tuples}']; runpy.run_path({str(Path(__file__))!r}, run_name='__main__')"
    )
    out = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output: {out.stderr[-500:]}")
    return int(match.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=60_000)
    parser.add_argument("--child", nargs=2, metavar=("ACKING", "TUPLES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _run_chain(args.child[0] == "on", int(args.child[1]))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: no instruction counts", file=sys.stderr)
        return 2
    for acking in (False, True):
        per_tuple = (_instructions(acking, args.large) - _instructions(acking, args.small)) / (args.large - args.small)
        print(f"chain3 one process, acking {'on ' if acking else 'off'}: {per_tuple:,.0f} instructions per tuple")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
