"""``squall cluster --supervisors N [--slots S] [--port P] [--nimbus-replicas R] [--data-dir D] [--keys DIR]``

Nimbus and N supervisors on loopback, as separate processes, in the foreground: prints
Nimbus's address and runs until interrupted or terminated, then stops everything it started
(workers included). With ``--nimbus-replicas 3`` (any odd number >= 3) Nimbus runs as that
many Raft replicas, each its own process, data dir and ports (the first on ``--port``), and
the ``export SQUALL_NIMBUS=...`` line lists every one.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from squall.cli import UsageError
from squall.cli.keygen import add_keys_option, keys_from_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cluster", help="run Nimbus and N supervisors on this machine")
    p.add_argument("--supervisors", type=int, default=3, help="supervisors (nodes) to start (default 3)")
    p.add_argument("--slots", type=int, default=2, help="worker slots per supervisor (default 2)")
    p.add_argument("--port", type=int, default=6627, help="Nimbus port (default 6627)")
    p.add_argument("--http-port", type=int, default=8080, help="Nimbus HTTP port (default 8080)")
    p.add_argument(
        "--nimbus-replicas",
        type=int,
        default=1,
        help="Nimbus replicas (Raft), an odd number >= 3 for failover (default 1: a single Nimbus)",
    )
    p.add_argument("--data-dir", type=Path, help="state and logs (default: a temporary folder)")
    add_keys_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from squall.localcluster import LocalCluster

    if args.supervisors < 1 or args.slots < 1:
        raise UsageError("--supervisors and --slots must be >= 1")
    if args.nimbus_replicas != 1 and (args.nimbus_replicas < 3 or args.nimbus_replicas % 2 == 0):
        raise UsageError(f"--nimbus-replicas must be 1 or an odd number >= 3 (2f+1), got {args.nimbus_replicas}")
    keys = keys_from_args(args)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with LocalCluster(
        args.supervisors,
        args.slots,
        port=args.port,
        http_port=args.http_port,
        data_dir=args.data_dir,
        keys=keys.folder if keys else None,
        nimbus_replicas=args.nimbus_replicas,
        # Three Nimbus processes start (and elect) slower than one on a busy board.
        startup_timeout_s=30.0 if args.nimbus_replicas == 1 else 90.0,
    ) as cluster:
        if cluster.replica_addresses:
            print(f"Nimbus replicas at {', '.join(cluster.replica_addresses)} (Raft on each port + 1)")
        else:
            print(f"Nimbus at {cluster.nimbus_address}; for the other verbs (every replica, comma-separated):")
        print(f"export SQUALL_NIMBUS={','.join(cluster.nimbus_addresses)}")
        if cluster.http_port:  # Nimbus binds loopback here, so this is the page's address
            print(f"Web UI at http://127.0.0.1:{cluster.http_port}/ (REST API under /api/v1, metrics at /metrics)")
            if cluster.replica_addresses:
                others = ", ".join(f"http://127.0.0.1:{p}/" for p in cluster.replica_http_ports[1:])
                print(f"  and {others} (every replica serves one; a follower's redirects to the leader's)")
        print(f"supervisors: {', '.join(cluster.node_ids)} ({args.slots} slots each); logs in {cluster.data_dir}")
        if keys is not None:
            print(f"links encrypted with the keys in {keys.folder}: clients need --keys {keys.folder}")
        elif cluster.http_port:
            print(f"REST API POSTs need the header X-Squall-Key: {cluster.http_token_file}")
        print("Ctrl-C stops the cluster.", flush=True)
        while not stop.wait(0.5):
            for name, proc in [*cluster._nimbus_procs(), *cluster.supervisor_procs.items()]:
                if proc is not None and proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}; stopping the cluster")
                    stop.set()
    print("cluster stopped")
    return 0
