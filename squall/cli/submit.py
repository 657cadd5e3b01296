"""``squall submit FILE[:Topology] [--name N] [--workers W] [--scheduler S] [--set K=V] [-- ARGS]``

Validates the topology locally, bundles the code of the file's project (its layout:
a plain file, a streamparse project, a package) and sends both to Nimbus. ``ARGS`` after
``--`` are the script's ``sys.argv[1:]`` (a heronpy script that calls ``build_and_submit()``).
Nimbus's refusal (an invalid topology, a name in use) is printed and the exit code is 1;
its warnings about an accepted topology (a cycle) are printed after the confirmation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from squall.cli import UsageError
from squall.cli.keygen import add_keys_option, keys_from_args

SCHEDULER_NAMES = ("round_robin", "offline", "online", "partition")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="submit a topology to Nimbus")
    p.add_argument("target", metavar="FILE[:TOPOLOGY]")
    p.add_argument("--name", help="topology name (default: the topology's own)")
    p.add_argument(
        "--workers", type=int, help="worker processes (topology.workers; default 1 or the topology's config)"
    )
    p.add_argument(
        "--scheduler", default="round_robin", help=f"one of {', '.join(SCHEDULER_NAMES)} (default round_robin)"
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a topology config entry")
    p.add_argument(
        "--nimbus", help="Nimbus HOST:PORT, or every replica's as A,B,C (default $SQUALL_NIMBUS or localhost:6627)"
    )
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for Nimbus (default 10)")
    add_keys_option(p)
    p.set_defaults(func=run, takes_script_args=True)


def run(args: argparse.Namespace) -> int:
    from squall.bundle import BundleError, make_bundle
    from squall.cli.local import parse_overrides
    from squall.client import NimbusClient, NimbusError, NimbusUnreachable
    from squall.topology.loader import LoadError, load_topology

    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be >= 1")
    try:
        topology = load_topology(args.target, getattr(args, "script_args", []))
        bundle = make_bundle(Path(args.target.partition(":")[0]))
        client = NimbusClient(args.nimbus, timeout_s=args.timeout, keys=keys_from_args(args))
    except (LoadError, BundleError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    name = args.name or topology.spec.name
    try:
        with client:
            reply = client.submit(
                name, topology.spec.to_dict(), bundle, args.scheduler, args.workers, parse_overrides(args.set)
            )
    except NimbusUnreachable as exc:
        print(f"squall submit: {exc}")
        return 1
    except NimbusError as exc:
        print(f"squall submit: Nimbus refused {name!r}: {exc}")
        return 1
    print(f"submitted {name!r} ({len(topology.spec.components)} components, scheduler {args.scheduler})")
    # An older Nimbus replies without "warnings".
    for warning in reply.get("warnings", []) if isinstance(reply, dict) else []:
        print(f"warning: {warning}")
    return 0
