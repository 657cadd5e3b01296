"""``squall nimbus [--host H] [--port 6627] [--data-dir D] [--http-port 8080] [--cluster NAME]``: the master.

Binds the control plane (a ZeroMQ ROUTER) on tcp://H:PORT, serves the web page, the REST API
and Prometheus metrics on http://H:HTTP_PORT/ (0 = off; the page's address is printed at
start), keeps its state under the data directory and runs until SIGTERM or Ctrl-C, then
exits 0. Unless ``--no-discovery`` (or a loopback ``--host``) it answers supervisors'
discovery beacons for its cluster on UDP ``--discovery-port`` (``squall.discovery``); a busy
discovery port is logged, not fatal.

Protected by default: without ``--keys`` it binds 127.0.0.1, and refuses any other ``--host``
(exit 2, saying why) unless ``--insecure`` (which also makes 0.0.0.0 the default again).
REST API POSTs always need ``X-Squall-Key``: the keys' token, or else a random token
written to ``DATA_DIR/http-token`` (mode 0600) at start.
SIGUSR1 writes every thread's stack to stderr (``faulthandler``), to see where it is stuck.

``--peers A,B,C`` (every replica's HOST:PORT, this one's included, an odd number >= 3) runs
this Nimbus as one of that many Raft replicas (``squall.nimbus.replication``; Raft on PORT+1):
it decides only while it leads; otherwise it redirects clients, boards and its web page to
the leader. A bad list is refused (exit 2) naming what is wrong.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import hmac
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from squall.cli import UsageError
from squall.cli.discovery_options import add_discovery_options, check_discovery_options
from squall.cli.keygen import add_keys_option, keys_from_args
from squall.cli.local import parse_overrides
from squall.extras import missing
from squall.security import default_bind, is_loopback, protection_refusal

if TYPE_CHECKING:
    from squall.discovery import DiscoveryResponder
    from squall.nimbus.replication import Replica
    from squall.security import ClusterKeys

TOKEN_FILE = "http-token"

DEFAULT_PORT = 6627  # Storm's
DEFAULT_HTTP_PORT = 8080
DEFAULT_DATA_DIR = Path("~/.squall/nimbus")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("nimbus", help="run the master that places topologies on supervisors")
    p.add_argument(
        "--host",
        default=None,
        help="address to bind (default 0.0.0.0 with --keys or --insecure, else 127.0.0.1; another "
        "address without keys needs --insecure)",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host without keys: anyone who reaches the port can run code",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"control-plane port (default {DEFAULT_PORT})")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="SQLite store and code bundles (default ~/.squall/nimbus)",
    )
    p.add_argument(
        "--http-port",
        type=int,
        default=DEFAULT_HTTP_PORT,
        help=f"web page, REST API and /metrics port (default {DEFAULT_HTTP_PORT}, 0 = off)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Nimbus config entry, e.g. nimbus.supervisor.timeout.secs=5 (VALUE parsed as JSON)",
    )
    add_discovery_options(
        p,
        cluster="cluster name that discovery answers for",
        port="UDP port answering supervisors' discovery beacons",
        off="do not answer discovery beacons (off anyway when --host is a loopback address)",
    )
    p.add_argument(
        "--peers",
        default="",
        metavar="A,B,C",
        help="run as one of 2f+1 replicas (Raft): every replica's HOST:PORT, this one's included; each "
        "replica's Raft port is its PORT+1 (default: a single Nimbus)",
    )
    add_keys_option(p)
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(func=run)


def page_url(host: str, http_port: int) -> str:
    """The web page's address as a browser elsewhere would reach it: a wildcard bind is
    shown as this machine's outward address (no packet is sent to find it)."""
    import socket

    if host in ("", "0.0.0.0", "::"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect(("192.0.2.1", 9))  # TEST-NET: only picks the route's source address
                host = s.getsockname()[0]
        except OSError:
            host = "127.0.0.1"
    return f"http://{'[' + host + ']' if ':' in host else host}:{http_port}/"


def advertised_address(host: str, port: int) -> str:
    """HOST:PORT as a client elsewhere would reach this Nimbus (a wildcard bind names this
    machine's outward address)."""
    url_host = page_url(host, port)[len("http://") :].rsplit(":", 1)[0]
    return f"{url_host}:{port}"


def start_discovery(
    args: argparse.Namespace, log: logging.Logger, key: bytes | None = None
) -> DiscoveryResponder | None:
    """Answer supervisors' beacons for this cluster, unless off; a busy port only warns.
    With ``key`` (the cluster secret) requests must be signed and replies are."""
    from squall.discovery import DiscoveryResponder

    if args.no_discovery:
        return None
    wildcard = args.host in ("", "0.0.0.0", "::")
    if is_loopback(args.host):
        log.info("discovery off: Nimbus binds %s, which no board can reach", args.host)
        return None
    try:
        responder = DiscoveryResponder(
            args.cluster,
            args.port,
            args.discovery_port,
            advertise_host="" if wildcard else args.host,
            http_port=args.http_port,
            key=key,
        )
    except OSError as exc:
        log.warning("discovery off: cannot bind UDP %d: %s", args.discovery_port, exc)
        return None
    return responder.start()


def http_token(data_dir: Path, keys: ClusterKeys | None) -> str:
    """The token REST API POSTs must carry: the keys' token, else a fresh random one written
    to ``DATA_DIR/http-token`` (mode 0600) so a local user can read it."""
    import os
    import secrets

    if keys is not None:
        return keys.api_token()
    token = secrets.token_hex(16)
    path = data_dir / TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)  # an older file may have had other bits
    return token


def start_replica(
    args: argparse.Namespace, store: Any, conf: dict[str, Any], data_dir: Path, keys: ClusterKeys | None
) -> Replica:
    """This process as one of the ``--peers`` replicas; its Raft link is encrypted with the
    cluster secret when keys are given (pysyncobj's password, through ``cryptography``)."""
    from squall.nimbus.replication import PeersError, Replica, parse_peers

    own = advertised_address(args.host, args.port)
    try:
        peers = parse_peers(args.peers, own)
    except PeersError as exc:
        raise UsageError(str(exc)) from None
    password = None
    if keys is not None:
        if missing("cryptography") is not None:
            raise UsageError("--peers with --keys encrypts the Raft link, which needs: pip install cryptography")
        # Derived, so the link's password is never the secret itself.
        password = hmac.new(keys.secret, b"squall-raft-link", hashlib.sha256).hexdigest()
    http = page_url(args.host, args.http_port) if args.http_port else ""
    replica = Replica(store, conf, own, peers, data_dir, http_url=http, password=password)
    logging.getLogger("squall.nimbus").info("replica %s of %s; Raft on port %d", own, ",".join(peers), args.port + 1)
    return replica


def run(args: argparse.Namespace) -> int:
    needed = ("numpy", "networkx", *(["pysyncobj"] if args.peers else []))
    if (need := missing(*needed)) is not None:  # an environment fault, not bad input: exit 1
        print(f"squall nimbus: {need}", file=sys.stderr)
        return 1
    for name in ("port", "http_port"):
        value = getattr(args, name)
        if not 0 <= value < 65536 or (name == "port" and value == 0):
            raise UsageError(f"--{name.replace('_', '-')} {value} is not a valid port")
    check_discovery_options(args)
    conf = parse_overrides(args.set)
    from squall.nimbus.config import ConfError, check_nimbus_conf

    try:
        check_nimbus_conf(conf)
    except ConfError as exc:
        raise UsageError(f"--set {exc}") from None
    conf.setdefault("nimbus.cluster", args.cluster)
    keys = keys_from_args(args)
    if args.host is None:
        args.host = default_bind(keys, args.insecure)
    refusal = protection_refusal("Nimbus", args.host, keys, args.insecure)
    if refusal:
        raise UsageError(refusal)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if keys is None and not is_loopback(args.host):
        logging.getLogger("squall.nimbus").warning(
            "--insecure: listening on %s without keys; anyone who reaches it can run code on every board", args.host
        )
    import faulthandler
    import signal

    import zmq

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID`: where is every thread?
    faulthandler.enable(all_threads=True)  # a crash in C (segfault, abort) leaves every stack in the log
    from squall.nimbus.server import NimbusServer
    from squall.nimbus.state import NimbusState
    from squall.nimbus.store import Store, StoreError

    data_dir = args.data_dir.expanduser()
    try:
        store = Store.open(data_dir)
    except StoreError as exc:  # the message names the file and the fix
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot use data directory {str(data_dir)!r}: {exc}") from None
    replica = None
    try:
        token = http_token(data_dir, keys)
        if args.peers:
            replica = start_replica(args, store, conf, data_dir, keys)
            state = replica.follower_view()  # what the page shows until this replica leads
        else:
            state = NimbusState(store, conf)  # reads every stored row: a bad one is named here
            state.leadership.address = advertised_address(args.host, args.port)  # what nimbus-status names
    except OSError as exc:
        store.close()
        raise UsageError(f"cannot write {data_dir / TOKEN_FILE}: {exc}") from None
    except StoreError as exc:
        store.close()
        raise UsageError(str(exc)) from None
    try:
        server = NimbusServer(state, args.host, args.port, args.http_port, keys=keys, api_token=token, replica=replica)
    except (zmq.ZMQError, OSError) as exc:
        if replica is not None:
            replica.close()
        store.close()
        logging.getLogger("squall.nimbus").error("cannot bind: %s", exc)
        return 1
    log = logging.getLogger("squall.nimbus")
    log.info(
        "data in %s; metrics on %s",
        data_dir,
        f"{page_url(args.host, args.http_port)}metrics" if args.http_port else "(off)",
    )
    if args.http_port:
        print(
            f"Web UI at {page_url(args.host, args.http_port)} (REST API under /api/v1, metrics at /metrics)", flush=True
        )
    if keys is not None:
        log.info("cluster keys from %s: CURVE on every link, REST API POSTs need the keys' token", keys.folder)
    elif args.http_port:
        log.info("REST API POSTs need the header X-Squall-Key with the token in %s", data_dir / TOKEN_FILE)
    responder = start_discovery(args, log, keys.secret if keys else None)
    server.install_signal_handlers()
    # What exists now (modules, classes, the state loaded from the store) lives as long as the
    # process: frozen out of the collector's full collections, which run on the loop thread
    # every few seconds at hundreds of boards and would walk all of it each time.
    gc.collect()
    gc.freeze()
    try:
        server.run()
    finally:
        if responder is not None:
            responder.stop()
        store.close()
    log.info("nimbus stopped")
    return 0
