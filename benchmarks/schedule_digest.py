"""Every scheduler's output over a fixed set of generated cases, as digests and move counts.

    python benchmarks/schedule_digest.py            # one line per (scheduler, case), then a total
    python benchmarks/schedule_digest.py --total    # only the total digest

A refactoring of ``squall.rebalance`` that must not change any placement prints the same
digests before and after (run it on both commits and compare). The ``moved`` column is how
many executors a rebalance from the case's current assignment would move
(``Assignment.moved``); a change meant to move fewer executors shows there.

Cases: Aniello's chain (stages x replication, several worker counts, key skew), seeded random
workloads, two topologies scheduled together, on homogeneous and mixed Pi clusters; each
scheduled from scratch and again from a current assignment computed for other traffic (so
rescheduling, tie-breaking towards the current place and worker relabelling all run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from squall.rebalance import SCHEDULERS, Assignment, InfeasibleError, SchedulerParams
from squall.rebalance.model import Node, Workload
from squall.rebalance.reference import chain_workload, pi_cluster, random_workload

# The latency search is slow on the larger cases and is no two-phase scheduler; it is
# covered on the small ones.
LATENCY_MAX_EXECUTORS = 24


@dataclass(frozen=True)
class Case:
    name: str
    workloads: tuple[Workload, ...]
    nodes: tuple[Node, ...]
    params: SchedulerParams
    previous: tuple[Workload, ...]  # the traffic the current assignment was computed for


def cases() -> Iterator[Case]:
    for stages, replication, workers, skew in ((3, 2, 2, 0.0), (4, 3, 4, 1.0), (5, 4, 6, 0.5), (6, 2, 3, 2.0)):
        for hetero in (False, True):
            now = chain_workload(stages, replication, workers, skew=skew)
            before = chain_workload(stages, replication, workers, skew=skew + 1.5, rate=700.0)
            yield Case(
                f"chain {stages}x{replication} w{workers} skew{skew:g} {'mixed' if hetero else 'pi4'}",
                (now,),
                pi_cluster(4, hetero),
                SchedulerParams(),
                (before,),
            )
    for seed in range(4):
        now = random_workload(30, 5, seed=seed)
        before = random_workload(30, 5, seed=seed + 100)
        yield Case(f"random 30 w5 seed{seed}", (now,), pi_cluster(5, True), SchedulerParams(alpha=0.3), (before,))
    two = (chain_workload(4, 2, 3, name="a"), random_workload(20, 4, seed=7, name="b"))
    two_before = (chain_workload(4, 2, 3, skew=2.0, name="a"), random_workload(20, 4, seed=8, name="b"))
    yield Case("two topologies", two, pi_cluster(6, True), SchedulerParams(beta=0.5), two_before)


def run(name: str, case: Case, current: Assignment | None) -> tuple[str, int | None]:
    scheduler = SCHEDULERS[name]
    try:
        result = scheduler.schedule(case.workloads, case.nodes, case.params, current)
    except InfeasibleError as exc:
        return f"infeasible: {exc}", None
    text = json.dumps(result.to_dict(), sort_keys=True)
    moved = len(current.moved(result)) if current is not None else None
    return hashlib.sha256(text.encode()).hexdigest()[:16], moved


def rows() -> Iterator[tuple[str, str, str, str, int | None]]:
    for case in cases():
        executors = sum(len(w.executors) for w in case.workloads)
        # The current assignment: online's answer for the previous traffic.
        current = SCHEDULERS["online"].schedule(case.previous, case.nodes, case.params, None)
        for name in sorted(SCHEDULERS):
            if name == "latency" and executors > LATENCY_MAX_EXECUTORS:
                continue
            for start, hint in (("fresh", None), ("reschedule", current)):
                digest, moved = run(name, case, hint)
                yield name, case.name, start, digest, moved


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--total", action="store_true", help="print only the digest over every row")
    args = ap.parse_args(argv)
    total = hashlib.sha256()
    moved_by: dict[str, int] = {}
    for name, case, start, digest, moved in rows():
        total.update(f"{name}|{case}|{start}|{digest}\n".encode())
        if moved is not None:
            moved_by[name] = moved_by.get(name, 0) + moved
        if not args.total:
            print(f"{name:12} {start:10} {digest:16} moved={'-' if moved is None else moved:>3}  {case}")
    if not args.total:
        print(
            "executors moved when rescheduling, summed over the cases: "
            + ", ".join(f"{n} {m}" for n, m in sorted(moved_by.items()))
        )
    print(f"total {total.hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
