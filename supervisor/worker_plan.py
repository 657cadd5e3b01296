"""The worker's decisions, as a state machine: ``plan(view, event) -> commands``.

The worker process (``squall.supervisor.worker``) carries the commands out — on its engine,
outbox and sockets — and feeds back what happened; ``plan`` reads only the ``WorkerView`` it
is given and the event, so tests feed events and compare command lists: no sockets, no
engine, no clock.

How a ``WorkerUpdate`` is applied, in this order, within one round of the worker's single
thread (no tuple moves in between):

1. a new ``assignment_version`` forgets the snapshots reported for the previous one
   (``AdoptVersion``);
2. ``paused`` is applied first, so no spout emits under the new routes before they are set;
3. executors no longer listed leave the engine, each snapshot kept in ``released`` and
   reported in every heartbeat until the version changes; executors newly listed join it,
   restoring ``states[id]`` when given (a state for an executor already running here is
   ignored, so a re-sent update is harmless) — one ``MoveExecutors``, whose outcome comes
   back as ``ExecutorsMoved`` (an executor that cannot be built — its code fails to import
   or ``initialize`` raises — is reported there as failed);
4. the placement is applied (``Route``): tasks placed at ``""`` are in transit and their items
   are held; held items whose task now has an owner go to it, or to its inbox if it is
   local now; the tasks of an executor that failed to start here are routed nowhere, so
   their items are dropped and counted rather than forwarded back and forth;
5. activation (``active``) is applied, then a heartbeat confirms the version at once
   (``Confirm``): a migration step waits on that confirmation.

A control frame that does not decode, or decodes to anything but a ``WorkerUpdate``, is
counted as bad (``CountBad``) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from squall import wire
from squall.messages import WorkerUpdate
from squall.topology.spec import ExecutorSpec


@dataclass(frozen=True)
class WorkerView:
    """What the decisions read of a running worker (a value: built afresh for each event)."""

    executors: tuple[ExecutorSpec, ...]  # every executor of the topology, ackers included
    local_ids: frozenset[int]  # the executors running here now
    version: int  # the assignment version last applied
    active: bool
    paused: bool


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutorsMoved:
    """``MoveExecutors`` was carried out for ``update``; ``failed`` could not be started."""

    update: WorkerUpdate
    failed: frozenset[int] = frozenset()


# A control frame from the supervisor arrives as it was received (bytes, not yet decoded).
Event = bytes | ExecutorsMoved


# -- commands -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CountBad:
    """Count ``n`` bad inputs in the heartbeat's ``bad_frames``; log ``what`` once."""

    what: str
    n: int = 1


@dataclass(frozen=True)
class AdoptVersion:
    """The assignment version the next heartbeats report; ``forget_released``: the
    snapshots released under the previous version are done with."""

    version: int
    forget_released: bool


@dataclass(frozen=True)
class SetPaused:
    paused: bool  # spouts held (a migration drains) or free; nothing else stops


@dataclass(frozen=True)
class MoveExecutors:
    """Remove ``remove`` from the engine (keeping their snapshots in ``released``), then add
    ``add`` (executor id, snapshot to restore or None); report back ``ExecutorsMoved(update,
    failed)``."""

    update: WorkerUpdate
    remove: tuple[int, ...]
    add: tuple[tuple[int, bytes | None], ...]


@dataclass(frozen=True)
class Route:
    """Task -> endpoint for every task not run here ("" in transit, None nowhere)."""

    routes: dict[int, str | None]


@dataclass(frozen=True)
class SetActive:
    active: bool  # the spouts' activate()/deactivate() callbacks are called


@dataclass(frozen=True)
class Confirm:
    """Send a heartbeat at once: it carries the applied ``version``."""

    version: int


Command = CountBad | AdoptVersion | SetPaused | MoveExecutors | Route | SetActive | Confirm


# -- the decisions ----------------------------------------------------------------------------


def plan(view: WorkerView, event: Event) -> list[Command]:
    """The commands that follow from ``event`` for a worker in state ``view``."""
    if isinstance(event, bytes):
        return _control(view, event)
    if isinstance(event, ExecutorsMoved):
        return _finish(view, event.update, event.failed)
    raise TypeError(f"not a worker event: {event!r}")


def _control(view: WorkerView, data: bytes) -> list[Command]:
    try:
        msg = wire.decode(data)
    except wire.WireError as exc:
        return [CountBad(f"a malformed control frame from the supervisor ({exc})")]
    if not isinstance(msg, WorkerUpdate):
        return [CountBad(f"an unexpected {type(msg).__name__} from the supervisor")]
    return _update(view, msg)


def _update(view: WorkerView, update: WorkerUpdate) -> list[Command]:
    """Steps 1-3; step 3's outcome continues in ``_finish`` (at once when nothing moves)."""
    cmds: list[Command] = [AdoptVersion(update.assignment_version, update.assignment_version != view.version)]
    if update.paused != view.paused:
        cmds.append(SetPaused(update.paused))
    known = {e.id for e in view.executors}
    wanted = view.local_ids if update.executors is None else frozenset(update.executors) & known
    remove = tuple(sorted(view.local_ids - wanted))
    add = tuple((eid, update.states.get(eid)) for eid in sorted(wanted - view.local_ids))
    if remove or add:
        return [*cmds, MoveExecutors(update, remove, add)]
    return [*cmds, *_finish(view, update, frozenset())]


def _finish(view: WorkerView, update: WorkerUpdate, failed: frozenset[int]) -> list[Command]:
    """Steps 4-5, in a view that has the executors of step 3 in place."""
    cmds: list[Command] = [Route(routes_for(view.executors, view.local_ids, update.placement, failed))]
    if update.active != view.active:
        cmds.append(SetActive(update.active))
    cmds.append(Confirm(update.assignment_version))
    return cmds


def routes_for(
    executors: Iterable[ExecutorSpec],
    local_ids: frozenset[int],
    placement: dict[int, str],
    nowhere: frozenset[int] = frozenset(),
) -> dict[int, str | None]:
    """Task -> endpoint for every task not run here: its executor's placement ("" in
    transit), None (nowhere: items dropped and counted) when the placement names none or the
    executor is in ``nowhere``."""
    routes: dict[int, str | None] = {}
    for e in executors:
        if e.id in local_ids:
            continue
        endpoint = None if e.id in nowhere else placement.get(e.id)
        for t in e.tasks:
            routes[t] = endpoint
    return routes
