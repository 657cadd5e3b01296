"""``squall testbed up [--boards FILE] [--prefix P] [--subnet A.B.C] [--port N] [--control-dscp N]`` and
``squall testbed down [--prefix P]``: emulated boards on this machine.

``up`` makes one network namespace per board (its own address on a bridge, an HTB rate limit
on its link that sends DSCP-marked control traffic first, cgroup cpu and memory caps), starts
Nimbus on the bridge address and a supervisor inside each board, prints the layout and
returns, leaving the daemons running.
``down`` stops them and removes every namespace, link, qdisc and cgroup named with the
prefix, also after a crash; it is safe to run again. It refuses (exit 1) a testbed that a
running process brought up and still owns (``squall experiment``, a test), naming it,
unless ``--force``. Both need root: without it they say so
(experiments then fall back to loopback processes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from squall.cli import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("testbed", help="emulated boards: network namespaces with link, CPU and memory caps")
    verbs = p.add_subparsers(dest="action", metavar="up|down|status")
    verbs.required = True  # status also measures each board pair's round trip (emulated delay)
    up = verbs.add_parser("up", help="make the boards and start Nimbus and a supervisor on each")
    up.add_argument("--boards", type=Path, help="board file (JSON; default: 2x Pi 4, a Pi 3 and a Pi 5)")
    up.add_argument("--port", type=int, default=6627, help="Nimbus port on the bridge (default 6627)")
    up.add_argument(
        "--control-dscp",
        type=int,
        default=None,
        help="DSCP of the control traffic between Nimbus and the supervisors (default: theirs, 40 = CS5; "
        "0 = unmarked: the links then queue it with the data)",
    )
    for v in (
        up,
        verbs.add_parser("down", help="stop everything and remove what up made"),
        verbs.add_parser("status", help="what exists now with the prefix"),
    ):
        v.add_argument("--prefix", default="sqtb", help="name prefix of every object (default sqtb)")
    up.add_argument("--subnet", default="10.231.0", help="the bridge's /24, as A.B.C (default 10.231.0)")
    down = verbs.choices["down"]
    down.add_argument(
        "--force", action="store_true", help="also when the process that brought it up still runs (it will fail)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from squall.experiments import netns
    from squall.experiments.boards import BoardFileError, default_boards, load_boards
    from squall.experiments.testbed import Testbed, TestbedError, TestbedInUse, read_state, teardown

    if not args.prefix.isalnum() or len(args.prefix) > 8:
        raise UsageError("--prefix must be 1-8 letters or digits")
    reason = netns.unavailable_reason()
    if args.action == "status":
        state = read_state(args.prefix)
        print(f"state: {'up, Nimbus at ' + state['nimbus'] if state else 'none'}")
        if reason is None:
            for kind, names in netns.leftovers(args.prefix).items():
                print(f"{kind}: {', '.join(names) or '-'}")
            if state:
                print_link_classes(state)
                print_rtts(state)
        return 0
    if reason:
        print(f"squall testbed: {reason}; nothing done. Experiments run on loopback processes (LocalCluster) instead.")
        return 1
    if args.action == "down":
        try:
            done = teardown(args.prefix, force=args.force)
        except TestbedInUse as exc:
            print(f"squall testbed: {exc}", file=sys.stderr)
            return 1
        print("\n".join(f"removed {d}" for d in done) if done else "nothing to remove")
        return 0
    try:
        boards = load_boards(args.boards) if args.boards else default_boards()
    except BoardFileError as exc:
        raise UsageError(str(exc)) from None
    if len(args.subnet.split(".")) != 3 or not all(p.isdigit() and int(p) < 256 for p in args.subnet.split(".")):
        raise UsageError(f"--subnet expects A.B.C, got {args.subnet!r}")
    if args.control_dscp is not None and not 0 <= args.control_dscp <= 63:
        raise UsageError(f"--control-dscp must be from 0 to 63 (40 = CS5, 0 = unmarked), got {args.control_dscp}")
    tb = Testbed(boards, prefix=args.prefix, subnet=args.subnet, port=args.port, control_dscp=args.control_dscp)
    try:
        tb.up()
    except (TestbedError, TimeoutError) as exc:
        print(f"squall testbed: {exc}", file=sys.stderr)
        return 1
    tb.detach()
    print(tb.describe())
    if tb.emulates_delay:
        print_rtts(tb.state)
    print(f"export SQUALL_NIMBUS={tb.nimbus_address}    # then: squall submit ..., squall testbed down")
    return 0


def print_link_classes(state: dict) -> None:
    """Each board link's two HTB classes, both directions: what went to the priority class
    (marked control traffic) and to best effort, and what each dropped."""
    from squall.experiments.boards import parse_boards
    from squall.experiments.netns import BEST_EFFORT_CLASS, PRIORITY_CLASS
    from squall.experiments.testbed import Testbed

    tb = Testbed(parse_boards(state["boards"], "state"), prefix=state["prefix"], subnet=state["subnet"])
    print("link classes (priority: DSCP-marked control traffic; best effort: the rest), bytes sent / packets dropped:")
    for board, directions in tb.link_classes().items():
        for direction, classes in directions.items():
            prio, rest = classes.get(PRIORITY_CLASS, {}), classes.get(BEST_EFFORT_CLASS, {})
            print(
                f"  {board:<10} {direction:<4} priority {prio.get('bytes', 0):>12,} / {prio.get('dropped', 0):<6,} "
                f"best effort {rest.get('bytes', 0):>14,} / {rest.get('dropped', 0):,}"
            )


def print_rtts(state: dict) -> None:
    """Each board pair's measured round trip through the EMULATED links, against the board
    file's delay(A) + delay(B)."""
    from squall.experiments.boards import parse_boards
    from squall.experiments.testbed import Testbed

    if not state.get("relays"):
        print("link delay: none emulated (every board has delay_ms 0)")
        return
    tb = Testbed(parse_boards(state["boards"], "state"), prefix=state["prefix"], subnet=state["subnet"])
    tb.state = state
    print("round trips through the EMULATED link delay (userspace relay; 20 messages of 32 B per pair):")
    print(f"  {'from':<10} {'to':<10} {'expected':>9} {'median':>9} {'min':>9} {'max':>9}")
    for r in tb.measure_rtts():
        if "error" in r:
            print(f"  {r['from']:<10} {r['to']:<10} {r['expected_ms']:>7.2f}ms  failed: {r['error']}")
            continue
        print(
            f"  {r['from']:<10} {r['to']:<10} {r['expected_ms']:>7.2f}ms {r['median_ms']:>7.2f}ms "
            f"{r['min_ms']:>7.2f}ms {r['max_ms']:>7.2f}ms"
        )
