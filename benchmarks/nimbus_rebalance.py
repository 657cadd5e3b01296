"""What a requested rebalance costs Nimbus's loop, at the scale of hundreds of boards.

    python benchmarks/nimbus_rebalance.py --boards 500 --executors 5000 --rounds 3

Builds the Nimbus state of ``benchmarks/history_sample.py`` in process (``--boards`` boards, a
chain topology of ``--executors`` executors placed round robin over two workers per board,
``--seconds`` seconds of heartbeats with realistic metrics and a tick each second), then
applies one ``squall rebalance --scheduler online`` request the way the loop does
(``NimbusState.apply``) and prints the CPU time of this thread for it: the scheduler's call,
the proposal's pricing against the current placement and the start of the migration, all on
the loop (which answers nothing else meanwhile). Each round builds a fresh state. With
``--profile`` the last round runs under cProfile and prints its 30 largest parts.

CPU time of this thread: less sensitive to a loaded machine than wall time, but not
insensitive (caches are shared). Nothing here is timed by a test.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # history_sample, beside this file
from history_sample import CLI, heartbeats, placed_state  # noqa: E402

from squall import messages as M  # noqa: E402
from squall.nimbus.events import Received, Tick  # noqa: E402


def one_round(boards: int, executors: int, seconds: int, profile: bool) -> tuple[float, int]:
    """(CPU s of the request, executors it moved) on a fresh state."""
    with tempfile.TemporaryDirectory() as folder:
        st, nodes, ids = placed_state(folder, boards, executors)
        now = 1000.0
        for _ in range(seconds):
            now += 1.0
            heartbeats(st, nodes, ids, now)
            st.apply(Tick(now))
        version = st.topologies["scale"].version
        request = Received(CLI, M.RebalanceTopology(7, "scale", 0, None, {}, "online"), now)
        prof = cProfile.Profile() if profile else None
        started = time.thread_time()
        if prof is not None:
            prof.enable()
        st.apply(request)
        if prof is not None:
            prof.disable()
        took = time.thread_time() - started
        if st.topologies["scale"].version == version:
            raise SystemExit("the rebalance was not applied (was anything measured?)")
        migration = st.live.migrations.get("scale")
        moved = len(migration.moved) if migration is not None else 0
        if prof is not None:
            pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
        return took, moved


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--boards", type=int, default=500)
    ap.add_argument("--executors", type=int, default=5000)
    ap.add_argument("--seconds", type=int, default=12, help="heartbeats before the request (the window fills)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    took = []
    for k in range(args.rounds):
        cpu, moved = one_round(args.boards, args.executors, args.seconds, args.profile and k == args.rounds - 1)
        took.append(cpu)
        print(f"round {k + 1}: the request took {cpu:.3f} s of the loop's CPU, {moved} executors to move", flush=True)
    print(
        f"{args.boards} boards, {args.executors} executors: requested online rebalance on the loop, CPU s "
        f"best {min(took):.3f}, median {statistics.median(took):.3f} ({args.rounds} rounds)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
