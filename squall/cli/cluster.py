"""``squall cluster --supervisors N [--slots S] [--port P] [--data-dir D] [--keys DIR]``

Nimbus and N supervisors on loopback, as separate processes, in the foreground: prints
Nimbus's address and runs until interrupted or terminated, then stops everything it started
(workers included).
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
    p.add_argument("--data-dir", type=Path, help="state and logs (default: a temporary folder)")
    add_keys_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from squall.localcluster import LocalCluster

    if args.supervisors < 1 or args.slots < 1:
        raise UsageError("--supervisors and --slots must be >= 1")
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
    ) as cluster:
        print(f"Nimbus at {cluster.nimbus_address}; for the other verbs (every replica, comma-separated):")
        print(f"export SQUALL_NIMBUS={','.join(cluster.nimbus_addresses)}")
        if cluster.http_port:  # Nimbus binds loopback here, so this is the page's address
            print(f"Web UI at http://127.0.0.1:{cluster.http_port}/ (REST API under /api/v1, metrics at /metrics)")
        print(f"supervisors: {', '.join(cluster.node_ids)} ({args.slots} slots each); logs in {cluster.data_dir}")
        if keys is not None:
            print(f"links encrypted with the keys in {keys.folder}: clients need --keys {keys.folder}")
        elif cluster.http_port:
            print(f"REST API POSTs need the header X-Squall-Key: {cluster.data_dir / 'nimbus' / 'http-token'}")
        print("Ctrl-C stops the cluster.", flush=True)
        while not stop.wait(0.5):
            for name, proc in [("nimbus", cluster.nimbus_proc), *cluster.supervisor_procs.items()]:
                if proc is not None and proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}; stopping the cluster")
                    stop.set()
    print("cluster stopped")
    return 0
