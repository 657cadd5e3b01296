"""``online`` and ``latency`` with scheduler modules compiled unchanged (Cython, mypyc)
against the same tree interpreted: instructions per call and CPU seconds, in one run.

    python benchmarks/scheduler_compiled.py [--rev HEAD] [--compilers cython mypyc]
        [--modules greedy] [--sizes 10000] [--rounds 3] [--runs 3] [--no-instructions]

A measurement, not a build: the project ships no compiled module (docs/rebalancing.md,
"Eleventh pass: a compiled pair greedy"). Exports ``--rev`` once per variant (laid out as
``benchmarks/against.py`` does), compiles ``squall/rebalance/<module>.py`` for each of
``--modules`` in place in all but the first copy (``cythonize -i -3`` with annotations left
as Python objects, or ``mypyc``), then runs ``scheduler_instructions.py`` once per variant
(when valgrind is installed) and ``scheduler_figures.py`` ``--rounds`` times per variant,
alternating, so the variants share the machine's load. Every run prints its placement
digests: a variant that placed differently would show there. Needs Cython and mypyc (``pip
install cython`` and the ``lint`` extra) and a C compiler; says so and exits 2 without them.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import against  # noqa: E402  (a sibling benchmark module)

COMMANDS = {
    # Annotations stay Python objects: with annotation typing on, Cython makes a parameter
    # annotated ``float | None`` a C double, and None then raises.
    "cython": [sys.executable, "-m", "Cython.Build.Cythonize", "-i", "-3", "-X", "annotation_typing=False"],
    "mypyc": [sys.executable, "-m", "mypyc"],
}
NEEDS = {"cython": "Cython", "mypyc": "mypyc"}
SCHEDULERS = ["latency", "online"]


def prepare(rev: str, root: Path, variant: str, modules: list[str]) -> Path:
    """``rev`` exported under ``root/variant``, its ``modules`` compiled by ``variant``
    (nothing for "interpreted"); returns the folder to put first on PYTHONPATH."""
    site = against.export(rev, root / variant)
    if variant == "interpreted":
        return site
    paths = [f"squall/rebalance/{m}.py" for m in modules]
    build = subprocess.run([*COMMANDS[variant], *paths], cwd=site, capture_output=True, text=True)
    if build.returncode != 0:
        raise SystemExit(f"scheduler_compiled: {variant} failed:\n{build.stdout[-2000:]}{build.stderr[-2000:]}")
    return site


def run(site: Path, script: str, args: list[str]) -> str:
    """``script``'s standard output, run against the tree in ``site``."""
    return against.script_output(site, script, args, "squall.rebalance.greedy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--compilers", nargs="+", choices=sorted(COMMANDS), default=["cython", "mypyc"])
    parser.add_argument("--modules", nargs="+", default=["greedy"], help="squall.rebalance modules to compile")
    parser.add_argument("--sizes", nargs="+", default=["10000"])
    parser.add_argument("--rounds", type=int, default=3, help="scheduler_figures.py runs per variant, alternating")
    parser.add_argument("--runs", type=int, default=3, help="calls per scheduler_figures.py run (its best is kept)")
    parser.add_argument("--no-instructions", action="store_true", help="skip the valgrind counts")
    args = parser.parse_args(argv)
    missing = [NEEDS[c] for c in args.compilers if importlib.util.find_spec(NEEDS[c]) is None]
    if missing:
        print(f"not installed: {', '.join(missing)} (pip install cython; mypyc comes with mypy)", file=sys.stderr)
        return 2
    if shutil.which(sysconfig.get_config_var("CC").split()[0] or "cc") is None:
        print("no C compiler: nothing to compare", file=sys.stderr)
        return 2
    variants = ["interpreted", *args.compilers]
    sizes = ["--sizes", *args.sizes, "--schedulers", *SCHEDULERS]
    cpu: dict[tuple[str, str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="squall-scheduler-compiled-") as tmp:
        sites = {v: prepare(args.rev, Path(tmp), v, args.modules) for v in variants}
        if shutil.which("valgrind") and not args.no_instructions:
            for v in variants:
                out = run(sites[v], str(HERE / "scheduler_instructions.py"), sizes)
                print(f"{v}: {out.splitlines()[0]}")
                for line in out.splitlines()[1:]:
                    print(f"{v:>12}: {line}")
        for _ in range(args.rounds):
            for v in variants:
                out = run(sites[v], str(HERE / "scheduler_figures.py"), [*sizes, "--runs", str(args.runs)])
                found = re.findall(r"^(\w+)\s+([\d,]+) executors.*?best\s+[\d.]+ s wall,\s+([\d.]+) s CPU", out, re.M)
                for name, n, seconds in found:
                    cpu.setdefault((name, n, v), []).append(float(seconds))
                print(f"{v:>12}: " + "; ".join(f"{name} {n}: {s} s CPU" for name, n, s in found), flush=True)
    for name, n in sorted({(name, n) for name, n, _ in cpu}):
        base = statistics.median(cpu[(name, n, "interpreted")])
        for v in variants:
            runs = cpu[(name, n, v)]
            median = statistics.median(runs)
            print(
                f"{name} {n:>6} executors, {v:>12}: CPU median {median:.3f} s "
                f"(range {min(runs):.3f} - {max(runs):.3f}, {len(runs)} runs), {base / median:.2f}x interpreted"
            )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
