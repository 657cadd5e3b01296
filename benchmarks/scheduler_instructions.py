"""Instructions of one ``online`` or ``latency`` call on the speed workloads of
``scheduler_figures.py``: deterministic, so it means the same on a loaded machine.

    python benchmarks/scheduler_instructions.py [--sizes 1000] [--schedulers online latency]
    python benchmarks/against.py REV benchmarks/scheduler_instructions.py

Runs each case under ``valgrind --tool=cachegrind`` twice — building the workload and
calling the scheduler once, then building the workload only — and prints the difference of
the ``Ir`` totals, so start-up, imports and building cancel, with a digest of the placement
(``scheduler_figures.py`` prints the same digest and checks the result). Hash randomisation
is fixed in the child (``PYTHONHASHSEED=0``) so set and dict orders, and with them the
count, repeat; identical runs still differ by up to ~25 M instructions (start-up), so
small cases say little. Valgrind runs the code ~50x slower: 10,000 executors take minutes. Needs
valgrind; says so and exits 2 without it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cachegrind  # noqa: E402  (a sibling benchmark module)


def _child(name: str, executors: int, call: bool) -> None:
    sys.path.insert(0, str(HERE))
    from scheduler_figures import digest
    from test_latency_speed import boards, profiled
    from test_rebalance_speed import case

    from squall.rebalance import SchedulerParams, get_scheduler

    if name == "online":
        workload, nodes = case(executors)
    else:
        workers = executors // 10
        n_boards = -(-executors // 40)
        workload = profiled(executors, workers)
        nodes = boards(n_boards, -(-workers // n_boards))
    if call:
        print(digest(get_scheduler(name).schedule([workload], nodes, SchedulerParams())))


def _instructions(name: str, executors: int, call: bool) -> tuple[int, str]:
    """(instructions, the child's output) of one child run."""
    args = ["--child", name, str(executors), str(int(call))]
    return cachegrind.count(__file__, args, env={"PYTHONHASHSEED": "0"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000])
    parser.add_argument("--schedulers", nargs="+", choices=["online", "latency"], default=["online", "latency"])
    parser.add_argument("--child", nargs=3, metavar=("SCHEDULER", "EXECUTORS", "CALL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], int(args.child[1]), args.child[2] == "1")
        return 0
    if not cachegrind.available():
        print("valgrind is not installed: no instruction counts", file=sys.stderr)
        return 2
    for name in args.schedulers:
        for n in args.sizes:
            (called, placement), (built, _) = _instructions(name, n, True), _instructions(name, n, False)
            print(
                f"{name:8} {n:>6,} executors: {(called - built) / 1e6:,.1f} M instructions per call; "
                f"placement {placement}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
