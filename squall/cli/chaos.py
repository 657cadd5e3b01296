"""``squall chaos [--seconds N] [--seed S] [--boards B] [--json]``: a bounded chaos run on a
local cluster (see :mod:`squall.chaos`): the reference chain with a replayable spout while
workers and boards are killed at random, then the books — ids never acked (must be 0),
duplicates, and the worst latency spike.

Exit codes: 0 nothing lost, 1 tuples lost (or the drain timed out), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chaos", help="kill workers and boards at random on a local cluster; count what was lost")
    p.add_argument("--seconds", type=float, default=60.0, help="seconds of faults (at most 120; default 60)")
    p.add_argument("--seed", type=int, default=1, help="random seed of the faults (default 1)")
    p.add_argument("--boards", type=int, default=4, help="supervisors of the local cluster (default 4, at least 3)")
    p.add_argument("--interval", type=float, default=4.0, help="mean seconds between faults (default 4)")
    p.add_argument("--workdir", type=Path, help="keep the ledger and daemon logs here (default: a temporary folder)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from squall.chaos import MAX_SECONDS, ChaosConfig, run_chaos

    if not 0 < args.seconds <= MAX_SECONDS or args.boards < 3 or args.interval <= 0:
        print(f"squall chaos: --seconds must be in (0, {MAX_SECONDS:g}], --boards >= 3, --interval > 0")
        return 2
    config = ChaosConfig(
        seconds=args.seconds, seed=args.seed, boards=args.boards, interval_s=args.interval, workers=args.boards
    )
    report = run_chaos(config, args.workdir, say=(lambda s: None) if args.json else print)
    print(json.dumps({**report.summary(), "faults_injected": report.faults}, indent=2) if args.json else report.text())
    return 0 if report.ok else 1
