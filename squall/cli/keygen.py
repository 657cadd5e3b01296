"""``squall keygen --out DIR``: make the cluster key pair (ZeroMQ CURVE).

Copy DIR to every member (Nimbus, each board, each user allowed to submit) and start the
daemons with ``--keys DIR`` (or set ``SQUALL_KEYS=DIR``). ``squall keygen --print-token
[DIR]`` prints the token REST API clients send as ``X-Squall-Key`` (DIR defaults to
``$SQUALL_KEYS``).

Every verb that opens a socket takes ``--keys`` through :func:`add_keys_option` and loads
the keys with :func:`keys_from_args`, so the option and its errors read the same everywhere.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from squall.cli import UsageError

if TYPE_CHECKING:
    from squall.security import ClusterKeys

KEYS_HELP = (
    "cluster keys folder from `squall keygen` (default $SQUALL_KEYS); "
    "with keys every link is encrypted and only key holders get in"
)


def add_keys_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keys", metavar="DIR", help=KEYS_HELP)


def keys_from_args(args: argparse.Namespace) -> ClusterKeys | None:
    """The keys named by ``--keys`` or ``$SQUALL_KEYS``; None for neither; bad ones are a
    usage error (exit 2) naming the file."""
    from squall.security import KeyError_, from_env

    try:
        return from_env(getattr(args, "keys", None))
    except KeyError_ as exc:
        raise UsageError(str(exc)) from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keygen", help="make the cluster key pair for encrypted, authenticated links")
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--out", type=Path, help="folder to write cluster.key and cluster.key_secret")
    action.add_argument(
        "--print-token",
        nargs="?",
        const="",
        metavar="DIR",
        help="print the REST API token (X-Squall-Key) of the keys in DIR (default $SQUALL_KEYS)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from squall.security import KEYS_ENV, KeyError_, generate, load

    if args.print_token is not None:
        folder = args.print_token or os.environ.get(KEYS_ENV)
        if not folder:
            raise UsageError(f"--print-token needs a keys folder (or {KEYS_ENV} set)")
        try:
            print(load(folder).api_token())
        except KeyError_ as exc:
            raise UsageError(str(exc)) from None
        return 0
    try:
        keys = generate(args.out)
    except KeyError_ as exc:
        raise UsageError(str(exc)) from None
    print(f"cluster key pair written to {args.out} (public key {keys.public.decode()})")
    print(f"start every daemon with --keys {args.out}, or export {KEYS_ENV}={args.out}")
    print(
        f"REST API POSTs need the header X-Squall-Key: {keys.api_token()} "
        f"(later: squall keygen --print-token {args.out})"
    )
    return 0
