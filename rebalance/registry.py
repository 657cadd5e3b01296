"""Schedulers by name, so Nimbus (and ``squall schedule``) can take any of them from config.

A scheduler is ``schedule(workloads, nodes, params=SchedulerParams(), current=None) ->
Assignment``. ``uses_load`` says whether it reads measured load and capacity: only those
promise to respect capacity when a placement exists; the others are capacity-blind by
design (Storm's round robin; the offline scheduler runs before anything is measured).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from squall.rebalance import latency_search, offline, online, partition, round_robin
from squall.rebalance.assignment import Assignment
from squall.rebalance.model import Node, Workload
from squall.rebalance.params import SchedulerParams

ScheduleFn = Callable[[Sequence[Workload], Sequence[Node], SchedulerParams, Assignment | None], Assignment]


@dataclass(frozen=True)
class Scheduler:
    name: str
    schedule: ScheduleFn
    uses_load: bool
    summary: str
    # False: ``workers`` is an upper bound the scheduler may stay under (``latency`` merges
    # workers when a hop between them costs more than the parallelism gains).
    fills_workers: bool = True


SCHEDULERS: dict[str, Scheduler] = {
    s.name: s
    for s in (
        Scheduler("round_robin", round_robin.schedule, False, "Storm's EvenScheduler (the baseline)"),
        Scheduler("offline", offline.schedule, False, "topology-based, before measurements"),
        Scheduler("online", online.schedule, True, "traffic-based two-phase greedy (Aniello et al.)"),
        Scheduler("partition", partition.schedule, True, "METIS k-way partitioning (a reference)"),
        Scheduler(
            "latency",
            latency_search.schedule,
            True,
            "searches for the least predicted latency (queueing model)",
            fills_workers=False,
        ),
    )
}


def get_scheduler(name: str) -> Scheduler:
    """The scheduler called ``name``; :class:`KeyError` naming the known ones otherwise."""
    try:
        return SCHEDULERS[name]
    except KeyError:
        raise KeyError(f"unknown scheduler {name!r}; known: {', '.join(sorted(SCHEDULERS))}") from None
