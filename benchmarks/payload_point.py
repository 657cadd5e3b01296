"""One point of the payload sweep alone (full-mode windows): ``squall experiment payload``
with ``PAYLOADS_FULL`` narrowed to the given tuple padding.

    python benchmarks/payload_point.py --payload 16384 --out DIR --reps 1 --prefix P --subnet 10.239.N

Every argument after ``--payload N`` goes to ``squall experiment payload``. Before and after
in one session: ``python benchmarks/against.py REV benchmarks/payload_point.py ...`` (the
testbed's daemons inherit the environment, so they run REV's code too). Needs root for the
emulated boards, like the experiment itself.
"""

from __future__ import annotations

import argparse
import sys

from squall.experiments import suites


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--payload", type=int, required=True, help="tuple padding in bytes (e.g. 16384)")
    args, rest = ap.parse_known_args(argv)
    suites.PAYLOADS_FULL = (args.payload,)
    from squall.cli import main as squall_main

    return int(squall_main(["experiment", "payload", *rest]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
