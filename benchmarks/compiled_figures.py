"""The one-process chain with the runtime compiled by Cython, against the same tree
interpreted: instructions per tuple and tuples per CPU second, in one run.

    python benchmarks/compiled_figures.py [--rev HEAD] [--declarations] [--rounds 3] [--tuples 100000]

A measurement, not a build: the project ships no compiled module (docs/worker.md, "A compiled
hot path"). Exports ``--rev`` once per variant (laid out as ``benchmarks/against.py`` does),
compiles the runtime modules of all but the first copy in place with ``cythonize -i -3``, and
runs ``engine_instructions.py`` (once per variant, when valgrind is installed) and
``engine_figures.py`` (``--rounds`` times per variant, alternating, so the variants share the
machine's load) against each copy. The benchmark's own components stay interpreted, as a
user's would. ``--declarations`` adds a third variant that also compiles ``stats.py`` and
``topology/component.py`` with ``Tuple`` made an extension type (an augmenting ``.pxd``) and
``tup`` typed in the executor's hot loops. Needs Cython (``pip install cython``) and a C
compiler; says so and exits 2 without them.
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

RUNTIME = ["executor", "spout_executor", "engine", "batches", "acker", "routing"]
# The declarations variant: Tuple as an extension type, and the executor typed against it.
TUPLE_PXD = "cdef class Tuple:\n    cdef public object component, stream, task, values, fields, roots, ack_val, done\n"
EXECUTOR_PXD = "from squall.topology.component cimport Tuple\n"
EXECUTOR_EDITS = [
    ("new_tuple = object.__new__", "new_tuple = Tuple.__new__"),
    ("tup = new_tuple(Tuple)", "tup: Tuple = new_tuple(Tuple)"),
    ("task, tup = item\n", "task = item[0]\n                tup: Tuple = item[1]\n"),
]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if old not in text:
        raise SystemExit(f"compiled_figures: {path.name} no longer contains {old!r}; update EXECUTOR_EDITS")
    path.write_text(text.replace(old, new))


def _edit_any(paths: list[Path], old: str, new: str) -> None:
    """Apply one edit in every file of ``paths`` that has ``old``; at least one must."""
    hits = [p for p in paths if old in p.read_text()]
    if not hits:
        names = ", ".join(p.name for p in paths)
        raise SystemExit(f"compiled_figures: none of {names} contains {old!r}; update EXECUTOR_EDITS")
    for path in hits:
        _edit(path, old, new)


def prepare(rev: str, root: Path, variant: str) -> Path:
    """``rev`` exported under ``root/variant``, compiled as the variant says; returns the
    folder to put first on PYTHONPATH."""
    site = against.export(rev, root / variant)
    if variant == "interpreted":
        return site
    # A revision from before the spout executor had its own module lacks it.
    modules = [
        f"squall/supervisor/runtime/{m}.py"
        for m in RUNTIME
        if (site / "squall/supervisor/runtime" / f"{m}.py").exists()
    ]
    if variant == "declarations":
        src = site.parent / "src"
        component = src / "topology" / "component.py"
        _edit(
            component,
            '    __slots__ = ("component", "stream", "task", "values", "fields", "roots", "ack_val", "done")\n',
            "",
        )
        (src / "topology" / "component.pxd").write_text(TUPLE_PXD)
        runtime = src / "supervisor" / "runtime"
        executors = [p for p in (runtime / "executor.py", runtime / "spout_executor.py") if p.exists()]
        for old, new in EXECUTOR_EDITS:
            _edit_any(executors, old, new)
        for path in executors:
            path.with_suffix(".pxd").write_text(EXECUTOR_PXD)
        modules += ["squall/supervisor/runtime/stats.py", "squall/topology/component.py"]
    build = subprocess.run(
        [sys.executable, "-m", "Cython.Build.Cythonize", "-i", "-3", *modules],
        cwd=site,
        capture_output=True,
        text=True,
    )
    if build.returncode != 0:
        raise SystemExit(f"compiled_figures: cythonize failed for {variant}:\n{build.stderr[-2000:]}")
    return site


def run(site: Path, script: str, args: list[str]) -> str:
    """``script``'s standard output, run against the tree in ``site``."""
    return against.script_output(site, script, args, "squall.supervisor.runtime.executor")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--declarations", action="store_true", help="add the variant with Tuple as an extension type")
    parser.add_argument("--rounds", type=int, default=3, help="engine_figures.py runs per variant, alternating")
    parser.add_argument("--tuples", type=int, default=100_000)
    args = parser.parse_args(argv)
    if importlib.util.find_spec("Cython") is None:
        print("Cython is not installed (pip install cython): nothing to compare", file=sys.stderr)
        return 2
    if shutil.which(sysconfig.get_config_var("CC").split()[0] or "cc") is None:
        print("no C compiler: nothing to compare", file=sys.stderr)
        return 2
    variants = ["interpreted", "compiled", *(["declarations"] if args.declarations else [])]
    per_cpu: dict[str, dict[str, list[float]]] = {v: {"off": [], "on": []} for v in variants}
    with tempfile.TemporaryDirectory(prefix="squall-compiled-") as tmp:
        sites = {v: prepare(args.rev, Path(tmp), v) for v in variants}
        for v in variants:  # which module each variant imports, and a check that it runs
            first = run(sites[v], str(HERE / "engine_figures.py"), ["--tuples", "1000", "--runs", "1"])
            print(f"{v}: {first.splitlines()[0]}")
        if shutil.which("valgrind"):
            for v in variants:
                out = run(sites[v], str(HERE / "engine_instructions.py"), [])
                for acking, count in re.findall(r"acking (on|off)\s*: ([\d,]+) instructions", out):
                    print(f"{v:>12}, acking {acking:>3}: {count} instructions per tuple")
        else:
            print("valgrind is not installed: no instruction counts")
        for _ in range(args.rounds):
            for v in variants:
                out = run(sites[v], str(HERE / "engine_figures.py"), ["--tuples", str(args.tuples)])
                for acking, best in re.findall(r"acking (on|off)\s*:.*per CPU second: best\s+([\d,]+)", out):
                    per_cpu[v][acking].append(float(best.replace(",", "")))
    load = os.getloadavg()[0]
    for acking in ("off", "on"):
        base = statistics.median(per_cpu["interpreted"][acking])
        for v in variants:
            runs = per_cpu[v][acking]
            median = statistics.median(runs)
            print(
                f"{v:>12}, acking {acking:>3}: per CPU second median {median:>9,.0f} "
                f"(range {min(runs):,.0f} - {max(runs):,.0f}, {len(runs)} runs), {median / base:.2f}x interpreted"
            )
    print(f"load average at the end: {load:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
