"""``squall supervisor --nimbus HOST:PORT [--id ID] [--slots N] [--capacity-hz X] [--ports A-B]``

The board daemon. Slots and capacity are derived from the board (``--dry-run`` shows how)
unless given. Runs until SIGTERM or Ctrl-C, then stops its workers.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from squall.cli import UsageError

DEFAULT_FIRST_PORT = 6700  # Storm's supervisor.slots.ports start


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("supervisor", help="run the board daemon that starts workers")
    p.add_argument("--nimbus", help="Nimbus HOST:PORT (default $SQUALL_NIMBUS or localhost:6627)")
    p.add_argument("--id", dest="supervisor_id", help="node id (default: the host name)")
    p.add_argument("--slots", type=int, help="worker slots (default: from memory and cores)")
    p.add_argument("--capacity-hz", type=float, help="usable CPU in cycles/s (default: cores x clock x share)")
    p.add_argument("--ports", help="worker ports A-B (default 6700 upwards, one per slot)")
    p.add_argument("--host", default="127.0.0.1", help="address workers bind and advertise (default 127.0.0.1)")
    p.add_argument("--data-dir", type=Path, help="where code and worker logs go (default ~/.squall/supervisor-ID)")
    p.add_argument("--metrics-port", type=int, default=0, help="Prometheus port (default 0 = off)")
    p.add_argument("--dry-run", action="store_true", help="print what this board advertises and exit")
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(func=run)


def parse_ports(text: str) -> list[int]:
    first, sep, last = text.partition("-")
    try:
        a = int(first)
        b = int(last) if sep else a
    except ValueError:
        raise UsageError(f"--ports expects A-B, got {text!r}") from None
    if not (0 < a <= b < 65536):
        raise UsageError(f"--ports {text!r} is not a valid range")
    return list(range(a, b + 1))


def run(args: argparse.Namespace) -> int:
    from squall.client import nimbus_address
    from squall.supervisor.facts import board_facts

    if args.slots is not None and args.slots < 1:
        raise UsageError("--slots must be >= 1")
    if args.capacity_hz is not None and args.capacity_hz <= 0:
        raise UsageError("--capacity-hz must be > 0")
    port_range = parse_ports(args.ports) if args.ports else None
    facts = board_facts(args.supervisor_id, args.slots, args.capacity_hz,
                        ports=len(port_range) if port_range else None)
    if port_range is None:
        ports = list(range(DEFAULT_FIRST_PORT, DEFAULT_FIRST_PORT + facts.slots))
    else:
        if args.slots is not None and args.slots > len(port_range):
            raise UsageError(f"--slots {args.slots} needs at least that many ports, --ports gives {len(port_range)}")
        ports = port_range[: facts.slots]
    if args.dry_run:
        print(facts.describe())
        print(f"ports        {ports[0]}-{ports[-1]}")
        return 0
    try:
        nimbus = nimbus_address(args.nimbus)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from squall.supervisor.daemon import SupervisorDaemon

    data_dir = args.data_dir or Path.home() / ".squall" / f"supervisor-{facts.supervisor_id}"
    daemon = SupervisorDaemon(nimbus, facts, ports, data_dir, host=args.host, metrics_port=args.metrics_port)
    daemon.install_signal_handlers()
    daemon.run()
    return 0
