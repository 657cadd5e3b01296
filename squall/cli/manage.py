"""Storm's management verbs against a running Nimbus:

``squall list [--json]``, ``squall nimbus-status [--json]``, ``squall kill NAME [-w SECS]``, ``squall activate NAME``,
``squall deactivate NAME``, ``squall rebalance NAME [-w SECS] [-n WORKERS] [-e COMPONENT=PAR]
[--scheduler S]``, ``squall assignment NAME [--json]``.

``rebalance`` without a change of parallelism moves executors live (the workers keep
running, spouts pause briefly, ``-w`` is not needed); ``--scheduler online`` also keeps the
topology under Nimbus's traffic-aware loop. ``-e`` changes executor ids: the topology is
deactivated for ``-w`` seconds and its workers restart.

``--nimbus A,B,C`` (or ``SQUALL_NIMBUS=A,B,C``) lists every Nimbus replica: a request goes to
the leader among them (see ``squall.client``). ``squall list`` names the leader that answered.

Each exits 0 on success, 1 when Nimbus refuses (its reason printed) or cannot be reached
within ``--timeout`` seconds, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from squall.cli import UsageError
from squall.cli.keygen import add_keys_option, keys_from_args
from squall.cli.report import table


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--nimbus", help="Nimbus HOST:PORT, or every replica's as A,B,C (default $SQUALL_NIMBUS or localhost:6627)"
    )
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for Nimbus (default 5)")
    add_keys_option(p)


def add_topology_verb(
    sub: argparse._SubParsersAction,
    verb: str,
    help_text: str,
    func: Callable[[argparse.Namespace], int],
    json_option: bool = False,
    **defaults: Any,
) -> argparse.ArgumentParser:
    """A verb taking a topology NAME (and ``--json`` when ``json_option``) plus the options
    every verb against Nimbus has; ``defaults`` are set on its namespace with ``func``."""
    p = sub.add_parser(verb, help=help_text)
    p.add_argument("name")
    if json_option:
        p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=func, **defaults)
    return p


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list topologies")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=run_list)

    p = sub.add_parser("nimbus-status", help="which Nimbus leads, its term, and every replica")
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"leader": "host:port", "term": N, "replicas": [{"address", "role", "pid"}]}',
    )
    _common(p)
    p.set_defaults(func=run_nimbus_status)

    p = sub.add_parser("kill", help="deactivate, wait, then remove a topology")
    p.add_argument("name")
    p.add_argument(
        "-w", "--wait", type=float, help="seconds between deactivation and removal (default: message timeout)"
    )
    _common(p)
    p.set_defaults(func=run_kill)

    for verb, active in (("activate", True), ("deactivate", False)):
        add_topology_verb(sub, verb, f"{verb} a topology's spouts", run_set_active, active=active)

    p = sub.add_parser("rebalance", help="reassign a topology (new workers, parallelism or scheduler)")
    p.add_argument("name")
    p.add_argument("-w", "--wait", type=float, help="seconds deactivated before reassigning")
    p.add_argument("-n", "--num-workers", type=int, dest="workers", help="new worker count")
    p.add_argument(
        "-e",
        "--executors",
        action="append",
        default=[],
        metavar="COMPONENT=PAR",
        help="new parallelism of a component (at most its task count)",
    )
    p.add_argument("--scheduler", help="switch the topology's scheduler (online: traffic-aware, rebalanced live)")
    _common(p)
    p.set_defaults(func=run_rebalance)

    add_topology_verb(
        sub, "assignment", "where each executor runs, with measured traffic and load", run_assignment, json_option=True
    )


def _call(args: argparse.Namespace, fn: Callable[[Any], Any]) -> tuple[int, Any]:
    from squall.client import NimbusClient, NimbusError, NimbusUnreachable

    try:
        client = NimbusClient(args.nimbus, timeout_s=args.timeout, keys=keys_from_args(args))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        with client:
            return 0, fn(client)
    except NimbusUnreachable as exc:
        print(f"squall {args.verb}: {exc}", file=sys.stderr)
    except NimbusError as exc:
        print(f"squall {args.verb}: {exc}", file=sys.stderr)
    return 1, None


def _show(args: argparse.Namespace, fn: Callable[[Any], Any], print_text: Callable[[Any], None]) -> int:
    """Ask Nimbus ``fn(client)`` and print the answer: as JSON with ``--json``, else with
    ``print_text(answer)``. The exit code is ``_call``'s."""
    code, answer = _call(args, fn)
    if code:
        return code
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        print_text(answer)
    return 0


def _leader(client: Any) -> str:
    """ "leader HOST:PORT (term N)" as the answering Nimbus states it; its address for a
    Nimbus too old to say."""
    from squall.client import NimbusError

    try:
        status = client.nimbus_status()
        return f"leader {status.get('leader') or client.address} (term {status.get('term')})"
    except NimbusError:
        return f"leader {client.address}"


def run_nimbus_status(args: argparse.Namespace) -> int:
    return _show(args, lambda c: c.nimbus_status(), _print_nimbus_status)


def _print_nimbus_status(status: dict[str, Any]) -> None:
    print(f"leader {status['leader']}, term {status['term']}\n")
    print(
        table(
            ["address", "role", "pid"],
            [(r["address"], r["role"], str(r.get("pid", ""))) for r in status.get("replicas", [])],
        )
    )


def run_list(args: argparse.Namespace) -> int:
    code, answer = _call(args, lambda c: (c.list(), _leader(c)))
    if code:
        return code
    rows, leader = answer
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(leader)
    if not rows:
        print("no topologies")
    else:
        print(
            table(
                ["name", "status", "workers", "executors", "scheduler", "error"],
                [
                    (
                        r["name"],
                        r["status"],
                        r["workers"],
                        r["executors"],
                        r["scheduler"],
                        " ".join(str(r.get("error") or "").split())[:200],
                    )
                    for r in rows
                ],
            )
        )
    return 0


def run_kill(args: argparse.Namespace) -> int:
    code, _ = _call(args, lambda c: c.kill(args.name, args.wait))
    if not code:
        wait = "the message timeout" if args.wait is None else f"{args.wait:g} s"
        print(f"killing {args.name!r}: deactivated, removed after {wait}")
    return code


def run_set_active(args: argparse.Namespace) -> int:
    code, _ = _call(args, lambda c: c.set_active(args.name, args.active))
    if not code:
        print(f"{args.name!r} {'activated' if args.active else 'deactivated'}")
    return code


def parse_parallelism(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        comp, sep, value = item.partition("=")
        if not sep or not comp or not value.isdigit() or int(value) < 1:
            raise UsageError(f"-e expects COMPONENT=PAR with PAR >= 1, got {item!r}")
        out[comp] = int(value)
    return out


def run_rebalance(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise UsageError("-n must be >= 1")
    parallelism = parse_parallelism(args.executors)
    code, _ = _call(args, lambda c: c.rebalance(args.name, args.wait, args.workers, parallelism, args.scheduler))
    if not code:
        print(f"rebalancing {args.name!r}")
    return code


def run_assignment(args: argparse.Namespace) -> int:
    return _show(args, lambda c: c.assignment(args.name), _print_assignment)


def _print_assignment(data: dict[str, Any]) -> None:
    execs = data.get("executors", [])
    print(f"topology {data.get('topology')!r}: {len(execs)} executors\n")
    print(
        table(
            ["executor", "component", "tasks", "node", "port", "pid", "load MHz"],
            [
                (
                    str(e["id"]),
                    e["component"],
                    f"{e['tasks'][0]}-{e['tasks'][1]}",
                    e["node"],
                    str(e["port"]),
                    str(e["pid"]),
                    (e["load_hz"] or 0.0) / 1e6,
                )
                for e in execs
            ],
        )
    )
    traffic = sorted(data.get("traffic", []), key=lambda r: -r[2])
    if traffic:
        print("\ntraffic (tuples/s, heaviest first)\n")
        print(table(["from", "to", "tuples/s"], [(str(s), str(d), float(t)) for s, d, t in traffic[:30]]))
