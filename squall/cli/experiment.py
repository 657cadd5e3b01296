"""``squall experiment NAME --out DIR [--quick]``: the seed paper's experiments."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="run a latency / inter-node traffic experiment")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return 1
