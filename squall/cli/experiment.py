"""``squall experiment timeline|stages|alpha --out DIR [--quick] [--boards FILE] [--loopback]``

Runs one of the seed paper's experiments (or ``payload``, links under load) on emulated
boards (``squall testbed``, with EMULATED link delay; without root, on loopback processes,
said at the start), comparing round_robin, offline, online, partition and (once registered)
latency side by side, and writes into DIR: ``NAME.csv`` (every trial and repetition),
PNG plots and ``NAME-summary.md``. ``--quick`` runs a reduced sweep with short windows
(for tests; a few minutes at most). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from squall.cli import UsageError

if TYPE_CHECKING:
    from squall.experiments.suites import Load

NAMES = ("timeline", "stages", "alpha", "payload")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="run a latency / inter-node traffic experiment of the seed paper")
    p.add_argument(
        "name",
        choices=NAMES,
        help="timeline (fig. 8), stages (figs. 9-12), alpha (figs. 13-14), "
        "payload (links under load, on the Wi-Fi board file by default)",
    )
    p.add_argument("--out", type=Path, required=True, help="folder for the CSV, PNGs and summary")
    p.add_argument("--quick", action="store_true", help="a reduced sweep with short windows (tests)")
    p.add_argument(
        "--boards",
        type=Path,
        help="board file (default: 2x Pi 4, one on Wi-Fi, a Pi 3 and a Pi 5; payload: examples/boards/wifi-mixed.json)",
    )
    p.add_argument("--loopback", action="store_true", help="loopback processes instead of emulated boards")
    p.add_argument("--reps", type=int, help="repetitions per point (default 1 quick, 3 full)")
    p.add_argument("--workers", type=int, default=6, help="workers per topology (default 6)")
    p.add_argument("--rate", type=float, help="tuples/s per spout task (default 200)")
    p.add_argument(
        "--topology",
        choices=("chain", "diamond", "wordcount"),
        default="chain",
        help="timeline only: the reference topology (default chain)",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="measure nothing: write the summary and plots again from DIR/NAME.csv as it stands "
        "(after an interrupted run)",
    )
    p.add_argument("--prefix", default="sqtb", help="testbed name prefix (default sqtb)")
    p.add_argument("--subnet", default="10.231.0", help="testbed bridge /24 as A.B.C (default 10.231.0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from squall.client import NimbusUnreachable
    from squall.experiments import suites
    from squall.experiments.boards import BoardFileError, default_boards, load_boards
    from squall.experiments.runner import FULL, QUICK, Runner
    from squall.experiments.testbed import TestbedError, open_cluster
    from squall.ports import free_port

    if args.reps is not None and args.reps < 1:
        raise UsageError("--reps must be >= 1")
    if args.workers < 1:
        raise UsageError("--workers must be >= 1")
    if args.rate is not None and args.rate <= 0:
        raise UsageError("--rate must be > 0")
    try:
        if args.boards:
            boards = load_boards(args.boards)
        elif args.name == "payload":
            boards = load_boards(suites.WIFI_BOARDS)
        else:
            boards = default_boards()
    except BoardFileError as exc:
        raise UsageError(str(exc)) from None
    if importlib.util.find_spec("matplotlib") is None:  # checked before minutes of measuring
        raise UsageError("plots need matplotlib: pip install 'squall[experiments]'")
    args.out.mkdir(parents=True, exist_ok=True)

    def say(text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)

    # SIGTERM (a test timeout, `kill`) unwinds like Ctrl-C, so the testbed is always torn down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    timing = QUICK if args.quick else FULL
    if args.reps:
        timing = replace(timing, reps=args.reps)
    load = suites.Load() if args.rate is None else replace(suites.Load(), rate=args.rate)
    if args.report_only:
        return _report_only(args, timing, load, say)
    started = time.monotonic()
    try:
        cluster = open_cluster(
            boards, prefix=args.prefix, subnet=args.subnet, loopback=args.loopback, say=say, port=free_port()
        )
    except (TestbedError, TimeoutError) as exc:
        say(f"cannot start the cluster: {exc}")
        return 1
    try:
        setup = _describe(cluster, boards, load, args.workers)
        (args.out / f"{args.name}-setup.md").write_text(setup + "\n")  # for --report-only
        say(setup)
        runner = Runner(cluster, args.out, timing, args.workers, say=say)
        ctx = suites.Context(runner, args.out, args.quick, load, setup, say)
        try:
            if args.name == "timeline":
                suites.run_timeline(ctx, args.topology)
            else:
                suites.EXPERIMENTS[args.name](ctx)
        except NimbusUnreachable as exc:
            alive = getattr(cluster, "nimbus_alive", lambda: None)()
            state = "" if alive is None else "its process is still running" if alive else "its process is gone"
            ended = getattr(cluster, "nimbus_exit", lambda: "")()
            state += f" ({ended})" if ended else ""
            say(
                f"Nimbus stopped answering{': ' + state if state else ''} ({exc}); "
                f"the daemons' logs are in {args.out / 'logs'}"
            )
            return 1
    finally:
        keep_logs = getattr(cluster, "keep_logs", None)
        if callable(keep_logs):
            keep_logs(args.out / "logs")
        cluster.close()
    say(
        f"done in {time.monotonic() - started:.0f} s: {args.out / (args.name + '.csv')}, "
        f"{args.out / (args.name + '-summary.md')} and PNGs"
    )
    return 0


def _describe(cluster: object, boards: list, load: object, workers: int) -> str:
    describe = getattr(cluster, "describe", None)
    where = describe() if callable(describe) else f"loopback LocalCluster, {len(boards)} supervisors"
    return f"Cluster:\n\n```\n{where}\n```\n\nLoad: {load}; {workers} workers per topology; acking on."


def _report_only(args: argparse.Namespace, timing: object, load: Load, say: Callable[[str], None]) -> int:
    """Summary and plots from the CSV a run left in --out; no cluster is started."""
    from types import SimpleNamespace

    from squall.experiments import suites

    setup_file = args.out / f"{args.name}-setup.md"
    setup = setup_file.read_text().strip() if setup_file.exists() else "(cluster: not recorded)"
    runner: Any = SimpleNamespace(timing=timing)  # a stand-in: a report reads and sets only its ``timing``
    ctx = suites.Context(
        runner, args.out, args.quick, load, setup + "\n\nRedrawn with --report-only from the CSV as it stands.", say
    )
    try:
        suites.report_only(ctx, args.name)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    say(f"wrote {args.out / (args.name + '-summary.md')} and PNGs from {args.out / (args.name + '.csv')}")
    return 0
