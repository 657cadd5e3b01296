"""``squall keygen --out DIR``: make the cluster key pair (ZeroMQ CURVE).

Copy DIR to every member (Nimbus, each board, each user allowed to submit) and start the
daemons with ``--keys DIR`` (or set ``SQUALL_KEYS=DIR``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from squall.cli import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keygen", help="make the cluster key pair for encrypted, authenticated links")
    p.add_argument("--out", type=Path, required=True, help="folder to write cluster.key and cluster.key_secret")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from squall.security import KeyError_, generate

    try:
        keys = generate(args.out)
    except KeyError_ as exc:
        raise UsageError(str(exc)) from None
    print(f"cluster key pair written to {args.out} (public key {keys.public.decode()})")
    print(f"start every daemon with --keys {args.out}, or export SQUALL_KEYS={args.out}")
    return 0
