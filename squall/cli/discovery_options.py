"""The discovery options ``squall nimbus`` and ``squall supervisor`` share: ``--cluster``,
``--discovery-port`` and ``--no-discovery``, with one set of names, defaults and checks,
because a board finds only a Nimbus that answers for the same cluster name on the same UDP
port (``squall.discovery``). Each verb words the help for its own side of the exchange."""

from __future__ import annotations

import argparse

from squall.cli import UsageError
from squall.discovery import DEFAULT_CLUSTER
from squall.discovery import DEFAULT_PORT as DISCOVERY_PORT

MAX_CLUSTER_NAME = 100


def add_discovery_options(p: argparse.ArgumentParser, *, cluster: str, port: str, off: str) -> None:
    """Add the three options; ``cluster``, ``port`` and ``off`` are their help texts (the
    defaults are appended here, so they cannot disagree with the values)."""
    p.add_argument("--cluster", default=DEFAULT_CLUSTER, help=f"{cluster} (default {DEFAULT_CLUSTER})")
    p.add_argument("--discovery-port", type=int, default=DISCOVERY_PORT, help=f"{port} (default {DISCOVERY_PORT})")
    p.add_argument("--no-discovery", action="store_true", help=off)


def check_discovery_options(args: argparse.Namespace) -> None:
    """Refuse a cluster name or port that cannot be used, naming the option (exit 2)."""
    if not args.cluster or not args.cluster.isprintable() or len(args.cluster) > MAX_CLUSTER_NAME:
        raise UsageError(
            f"--cluster must be a printable name of 1 to {MAX_CLUSTER_NAME} characters, got {args.cluster!r}"
        )
    if not 0 < args.discovery_port < 65536:
        raise UsageError(f"--discovery-port {args.discovery_port} is not a valid port")
