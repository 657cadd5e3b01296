"""``squall local FILE[:Topology] --seconds N``: run a topology in this process.

Prints per-component counts and the spouts' complete latency. A file that defines no
topology, or several without one named, exits 2 with a message.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from squall.cli import UsageError
from squall.cli.report import component_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("local", help="run a topology in one process and print its counts")
    p.add_argument("target", metavar="FILE[:TOPOLOGY]", help="a Python file, optionally :TopologyClass")
    p.add_argument("--seconds", type=float, default=10.0, help="how long to run (default 10)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a topology config entry (VALUE parsed as JSON when it can be)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def parse_overrides(pairs: list[str]) -> dict:
    """``--set KEY=VALUE`` pairs as a config dict; VALUE is parsed as JSON when it can be
    (``3`` is a number, ``true`` a boolean, ``abc`` stays a string). Shared by every verb
    that takes ``--set``."""
    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            conf[key] = json.loads(value)
        except json.JSONDecodeError:
            conf[key] = value
    return conf


def run(args: argparse.Namespace) -> int:
    from squall.supervisor.runtime.engine import Engine
    from squall.topology.loader import LoadError, load_topology

    if args.seconds <= 0:
        raise UsageError("--seconds must be > 0")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        topology = load_topology(args.target)
    except LoadError as exc:
        raise UsageError(str(exc)) from None
    engine = Engine(topology.spec, topology.classes, parse_overrides(args.set))
    engine.start()
    started = time.monotonic()
    engine.run(args.seconds)
    elapsed = time.monotonic() - started
    engine.drain(timeout_s=5.0)
    summaries = engine.summary()
    if args.json:
        print(json.dumps({"topology": topology.spec.name, "seconds": elapsed,
                          "components": [s.to_dict() for s in summaries]}, indent=2))
    else:
        print(f"topology {topology.spec.name!r} ran {elapsed:.1f} s in one process\n")
        print(component_table(summaries, elapsed))
    return 0
