"""``squall local FILE[:Topology] --seconds N [-- ARGS]``: run a topology in this process.

Prints per-component counts and the spouts' complete latency. A file that defines no
topology, or several without one named, exits 2 with a message. ``ARGS`` after ``--`` are
the script's ``sys.argv[1:]`` (a heronpy script that calls ``build_and_submit()``).

Fails loudly: exit 1, with the first error and the counts, when a component emitted on an
undeclared stream or with the wrong number of values (a bug every run would hit), when a
bolt raised on every tuple it got, when a spout raised and emitted nothing, or when a
component's ``initialize`` raised. Components' logs (``self.logger``, ``self.log``) show at
INFO (``--log-level`` changes it); Squall's own at WARNING.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

from squall.cli import UsageError
from squall.cli.report import component_table

LOG_LEVELS = ("debug", "info", "warning", "error")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("local", help="run a topology in one process and print its counts")
    p.add_argument("target", metavar="FILE[:TOPOLOGY]", help="a Python file, optionally :TopologyClass")
    p.add_argument("--seconds", type=float, default=10.0, help="how long to run (default 10)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a topology config entry (VALUE parsed as JSON when it can be)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="level of the components' own logs (default info; Squall's logs stay at warning)",
    )
    p.set_defaults(func=run, takes_script_args=True)


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


def configure_logging(level_name: str) -> None:
    """Components' loggers (``squall.task.*``) and the user's own at ``level_name``; Squall's
    internals at WARNING unless debug was asked for."""
    level = getattr(logging, level_name.upper())
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("squall").setLevel(logging.DEBUG if level == logging.DEBUG else logging.WARNING)
    logging.getLogger("squall.task").setLevel(level)


def run(args: argparse.Namespace) -> int:
    from squall.supervisor.runtime.engine import Engine
    from squall.topology.loader import LoadError, load_topology

    if args.seconds <= 0:
        raise UsageError("--seconds must be > 0")
    configure_logging(args.log_level)
    try:
        topology = load_topology(args.target, getattr(args, "script_args", []))
    except LoadError as exc:
        raise UsageError(str(exc)) from None
    engine = Engine(topology.spec, topology.classes, parse_overrides(args.set))
    try:
        engine.start()
    except Exception as exc:  # a component's initialize raised: report it, do not run
        print(f"squall local: a component failed to start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    started = time.monotonic()
    engine.run(args.seconds)
    elapsed = time.monotonic() - started
    engine.drain(timeout_s=5.0)
    summaries = engine.summary()
    problems = find_failures(engine)
    if args.json:
        print(
            json.dumps(
                {
                    "topology": topology.spec.name,
                    "seconds": elapsed,
                    "components": [s.to_dict() for s in summaries],
                    "failures": problems,
                    "metrics": _registered_metrics(),
                },
                indent=2,
                default=str,
            )
        )
    else:
        print(f"topology {topology.spec.name!r} ran {elapsed:.1f} s in one process\n")
        print(component_table(summaries, elapsed))
        metrics = _registered_metrics()
        if metrics:
            print("\nmetrics: " + ", ".join(f"{k}={v}" for k, v in metrics.items()))
    for problem in problems:
        print(f"squall local: FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


def find_failures(engine: Any) -> list[str]:
    """One line per component that failed loudly (see the module doc), naming its first error
    and its counts; empty when the run was sound."""
    by_component: dict[str, list[Any]] = {}
    for ex in engine.executors:
        if ex.kind in ("spout", "bolt"):
            by_component.setdefault(ex.component, []).append(ex)
    problems = []
    for component, executors in sorted(by_component.items()):
        kind = executors[0].kind
        errors = sum(ex.stats.errors for ex in executors)
        if not errors:
            continue
        emit_errors = sum(ex.emit_errors for ex in executors)
        executed = sum(ex.stats.executed for ex in executors)
        emitted = sum(sum(ex.stats.emitted.values()) for ex in executors)
        if emit_errors:
            why = f"{emit_errors} bad emit(s)"
        elif kind == "bolt" and errors >= executed:
            why = f"raised on every tuple ({errors} errors, {executed} tuples)"
        elif kind == "spout" and emitted == 0:
            why = f"raised {errors} time(s) and emitted nothing"
        else:
            continue
        task, where, exc = next(ex.first_error for ex in executors if ex.first_error is not None)
        problems.append(
            f"{kind} {component!r}: {why}; first error in task {task} ({where}): {type(exc).__name__}: {exc} "
            f"[errors {errors}, executed {executed}, emitted {emitted}]"
        )
    return problems


def _registered_metrics() -> dict[str, Any]:
    """heronpy metrics (global_metrics, register_metric), when heronpy code ran here."""
    metrics = sys.modules.get("squall.compat.heronpy.api.metrics")
    if metrics is None:
        return {}
    return {name: value for name, value in metrics.registered_values().items() if value not in ({}, None, 0)}
