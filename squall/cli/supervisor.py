"""``squall supervisor [--nimbus HOST:PORT[,HOST:PORT...]] [--cluster NAME] [--id ID]
[--slots N] [--capacity-hz X] [--ports A-B]``

The board daemon. Slots and capacity are derived from the board (``--dry-run`` shows how)
unless given; a board with no slot by the rule refuses to start (exit 2) unless ``--slots``
is given. Without ``--nimbus`` and ``$SQUALL_NIMBUS`` it finds the Nimbus of its cluster on
the local network (``squall.discovery``), and then, without ``--host``, advertises the
address of the interface that reaches Nimbus. Runs until SIGTERM or Ctrl-C, then stops its
workers.

Nimbus may move (a restart elsewhere, later a new leader): ``--nimbus A,B,C`` lists every
address it may answer on, and discovery collects every Nimbus of the cluster that answers.
A supervisor that hears nothing from its Nimbus for ``supervisor.nimbus.timeout.secs``
(``--set``, default 3) tries the next address, and after the last one searches again (when
the addresses came from discovery); its workers keep running throughout.

The connection to Nimbus carries DSCP CS5 (``--set supervisor.control.dscp=N``, 0 =
unmarked; ``squall.control_mark``), so a board's heartbeats can pass its data on a busy link
whose access point honours the mark (Wi-Fi WMM).

Protected by default: without ``--keys`` its workers may only listen on a loopback
address; any other ``--host`` (given or found) is refused (exit 2, saying why) unless
``--insecure``. Discovery without keys is spoofable (any host on the LAN can answer), so it
is only a fallback: ``--nimbus`` or ``$SQUALL_NIMBUS`` always win, and a keyless search
warns. SIGUSR1 writes every thread's stack to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from squall.cli import UsageError
from squall.cli.discovery_options import add_discovery_options, check_discovery_options
from squall.cli.keygen import add_keys_option, keys_from_args
from squall.control_mark import DEFAULT_CONTROL_DSCP, SUPERVISOR_CONTROL_DSCP, check_dscp
from squall.supervisor.state import DEFAULT_NIMBUS_TIMEOUT_S, NIMBUS_TIMEOUT_KEY

DEFAULT_FIRST_PORT = 6700  # Storm's supervisor.slots.ports start


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("supervisor", help="run the board daemon that starts workers")
    p.add_argument(
        "--nimbus",
        help="Nimbus HOST:PORT, or every address it may answer on as A,B,C "
        "(default $SQUALL_NIMBUS, else discovered on the local network)",
    )
    add_discovery_options(
        p,
        cluster="cluster name; only a Nimbus of this cluster is accepted",
        port="UDP port of the discovery beacon",
        off="do not look for Nimbus; use localhost:6627 when no address is given",
    )
    p.add_argument(
        "--discovery-timeout",
        type=float,
        default=None,
        help="seconds to look for Nimbus before giving up with exit 1 (default: keep looking)",
    )
    p.add_argument("--id", dest="supervisor_id", help="node id (default: the host name)")
    p.add_argument("--slots", type=int, help="worker slots (default: from memory and cores)")
    p.add_argument("--capacity-hz", type=float, help="usable CPU in cycles/s (default: cores x clock x share)")
    p.add_argument("--link-mbit", type=float, help="this board's link rate in Mbit/s, if known (default: unknown)")
    p.add_argument(
        "--link-delay-ms", type=float, help="this board's one-way link delay in ms, if known (default: unknown)"
    )
    p.add_argument("--ports", help="worker ports A-B (default 6700 upwards, one per slot)")
    p.add_argument(
        "--host",
        help="address workers bind and advertise (default: the interface that reaches "
        "Nimbus, 127.0.0.1 for a local Nimbus)",
    )
    p.add_argument("--data-dir", type=Path, help="where code and worker logs go (default ~/.squall/supervisor-ID)")
    p.add_argument("--metrics-port", type=int, default=0, help="Prometheus port (default 0 = off)")
    p.add_argument("--dry-run", action="store_true", help="print what this board advertises and exit")
    add_keys_option(p)
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow workers to listen on a non-loopback --host without keys: anyone who reaches "
        "their ports can inject tuples, and a spoofed Nimbus can run code here",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"a supervisor setting: {NIMBUS_TIMEOUT_KEY}=SECS, silence from Nimbus before trying "
        f"another address (default {DEFAULT_NIMBUS_TIMEOUT_S:g}); {SUPERVISOR_CONTROL_DSCP}=N, the DSCP "
        f"of the connection to Nimbus (default {DEFAULT_CONTROL_DSCP}, CS5; 0 = unmarked)",
    )
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(func=run)


def parse_settings(items: list[str]) -> dict[str, float]:
    """``--set`` entries: only known keys, with a number in range (a clear error otherwise)."""
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        if key == SUPERVISOR_CONTROL_DSCP:
            try:
                out[key] = check_dscp(int(value), key)
            except ValueError:
                raise UsageError(
                    f"--set {key}: must be a DSCP, an integer from 0 to 63 (40 = CS5, 0 = unmarked), got {value!r}"
                ) from None
            continue
        if key != NIMBUS_TIMEOUT_KEY:
            raise UsageError(
                f"--set {key!r}: unknown supervisor setting (known: {NIMBUS_TIMEOUT_KEY}, {SUPERVISOR_CONTROL_DSCP})"
            )
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"--set {key}: expects seconds, got {value!r}") from None
        if not 0.5 <= number <= 3600:
            raise UsageError(f"--set {key}: must be from 0.5 to 3600 seconds, got {value}")
        out[key] = number
    return out


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


def resolve_nimbus(args: argparse.Namespace, key: bytes | None = None) -> list[str] | None:
    """--nimbus, then $SQUALL_NIMBUS, then discovery (unless --no-discovery): every address to
    try, in order; None = not found. With ``key`` (the cluster secret) only a signed reply is
    accepted."""
    from squall.client import nimbus_addresses

    explicit = args.nimbus or os.environ.get("SQUALL_NIMBUS")
    if explicit or args.no_discovery:
        try:
            return nimbus_addresses(explicit)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    from squall.discovery import find_nimbuses

    log = logging.getLogger("squall.supervisor")
    log.info("looking for the Nimbus of cluster %r (UDP broadcast to port %d)", args.cluster, args.discovery_port)
    if key is None:
        log.warning(
            "discovery without keys is spoofable: any host on this network can answer; "
            "give --nimbus HOST:PORT, or --keys to accept only signed replies"
        )
    found = find_nimbuses(args.cluster, args.discovery_port, timeout_s=args.discovery_timeout, key=key)
    if not found:
        log.error(
            "no Nimbus of cluster %r answered within %g s; give --nimbus HOST:PORT",
            args.cluster,
            args.discovery_timeout,
        )
        return None
    log.info("found the Nimbus of cluster %r at %s", args.cluster, ", ".join(f.address for f in found))
    return [f.address for f in found]


def rediscovery(args: argparse.Namespace, key: bytes | None) -> Any:
    """For a supervisor whose addresses came from discovery: one short search round, run
    when every known Nimbus fell silent (None when addresses were given)."""
    if args.nimbus or os.environ.get("SQUALL_NIMBUS") or args.no_discovery:
        return None
    from squall.discovery import search

    return lambda: [f.address for f in search(args.cluster, args.discovery_port, 0.5, key)]


def early_refusal(args: argparse.Namespace) -> None:
    """Refuse before any search what protected mode would refuse after it (no keys, no
    ``--insecure``): a non-loopback ``--host``, or discovery, which only finds boards' peers
    on a network and whose keyless replies anyone can forge."""
    from squall.security import protection_refusal

    if args.host:
        refusal = protection_refusal("this supervisor's workers", args.host, None, False)
        if refusal:
            raise UsageError(refusal)
    if not (args.nimbus or os.environ.get("SQUALL_NIMBUS") or args.no_discovery):
        raise UsageError(
            "finding Nimbus by discovery without cluster keys would trust any host that answers on "
            "this network; give --nimbus HOST:PORT (127.0.0.1:6627 for a Nimbus on this machine), "
            "--keys DIR, or --insecure"
        )


def run(args: argparse.Namespace) -> int:
    from squall.supervisor.facts import board_facts

    if args.slots is not None and args.slots < 1:
        raise UsageError("--slots must be >= 1")
    if args.capacity_hz is not None and args.capacity_hz <= 0:
        raise UsageError("--capacity-hz must be > 0")
    check_discovery_options(args)
    if args.link_mbit is not None and not 0 < args.link_mbit <= 1e6:
        raise UsageError(f"--link-mbit must be > 0 (Mbit/s), got {args.link_mbit:g}")
    if args.link_delay_ms is not None and not 0 <= args.link_delay_ms <= 60_000:
        raise UsageError(f"--link-delay-ms must be from 0 to 60000, got {args.link_delay_ms:g}")
    settings = parse_settings(args.set)
    port_range = parse_ports(args.ports) if args.ports else None
    facts = board_facts(
        args.supervisor_id,
        args.slots,
        args.capacity_hz,
        ports=len(port_range) if port_range else None,
        link_mbit=args.link_mbit,
        link_delay_ms=args.link_delay_ms,
    )
    if port_range is None:
        ports = list(range(DEFAULT_FIRST_PORT, DEFAULT_FIRST_PORT + facts.slots))
    else:
        if args.slots is not None and args.slots > len(port_range):
            raise UsageError(f"--slots {args.slots} needs at least that many ports, --ports gives {len(port_range)}")
        ports = port_range[: facts.slots]
    if args.dry_run:
        print(facts.describe())
        print(f"ports        {f'{ports[0]}-{ports[-1]}' if ports else 'none'}    (override: --ports A-B)")
        print(f"cluster      {args.cluster}    (override: --cluster NAME)")
        print(
            f"nimbus       {args.nimbus or os.environ.get('SQUALL_NIMBUS') or 'discovered on the local network'}"
            "    (override: --nimbus HOST:PORT)"
        )
    refusal = facts.refusal()
    if refusal:
        raise UsageError(refusal)
    if args.dry_run:
        return 0
    keys = keys_from_args(args)
    if keys is None and not args.insecure:
        early_refusal(args)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    nimbuses = resolve_nimbus(args, keys.secret if keys else None)
    if nimbuses is None:
        return 1
    nimbus = nimbuses[0]
    import faulthandler
    import signal

    from squall.discovery import local_address_towards
    from squall.security import is_loopback, protection_refusal
    from squall.supervisor.daemon import SupervisorDaemon

    host = args.host or local_address_towards(nimbus.rpartition(":")[0])
    refusal = protection_refusal("this supervisor's workers", host, keys, args.insecure)
    if refusal:
        raise UsageError(refusal)
    if keys is None and not is_loopback(host):
        logging.getLogger("squall.supervisor").warning(
            "--insecure: workers listen on %s without keys; anyone who reaches them can inject tuples", host
        )
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID`: where is every thread?
    faulthandler.enable(all_threads=True)  # a crash in C (segfault, abort) leaves every stack in the log
    data_dir = args.data_dir or Path.home() / ".squall" / f"supervisor-{facts.supervisor_id}"
    daemon = SupervisorDaemon(
        nimbuses,
        facts,
        ports,
        data_dir,
        host=host,
        cluster=args.cluster,
        metrics_port=args.metrics_port,
        keys=keys,
        nimbus_timeout_s=settings.get(NIMBUS_TIMEOUT_KEY, DEFAULT_NIMBUS_TIMEOUT_S),
        rediscover=rediscovery(args, keys.secret if keys else None),
        control_dscp=int(settings.get(SUPERVISOR_CONTROL_DSCP, DEFAULT_CONTROL_DSCP)),
    )
    daemon.install_signal_handlers()
    daemon.run()
    return 0
