"""What Nimbus knows, as plain records: topologies, their placement, supervisors.

These are the values the state machine mutates and the store persists. Guarantees: a
``TopologyRecord``'s ``placement`` is empty or covers every executor of
``executors()`` exactly once; ``status`` is derived, never stored on its own.

A placement is one immutable value, :class:`Placement`, from the scheduler's answer to the
store, the pushed assignments, the cost the policy weighs and the pages the UI serves; a
change of placement is a new value, never an edit of the old one.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from squall.messages import WorkerReport
from squall.nimbus.config import ACKERS, SCHEDULER, WORKERS
from squall.rebalance import Assignment
from squall.topology.spec import ExecutorSpec, TopologySpec

# Keys a live rebalance changes (``rebalance -n`` / ``--scheduler``). Workers do not get
# them: a supervisor restarts a worker whose conf changed, and these change nothing a
# worker runs (the acker count is always explicit).
NIMBUS_ONLY_KEYS = (WORKERS, SCHEDULER)

# Lifecycle phases (persisted). The user-facing status also folds in ``active``.
WAITING = "waiting"  # no placement yet: waiting for slots
RUNNING = "running"
KILLING = "killing"  # deactivated; removed at ``deadline``
REBALANCING = "rebalancing"  # deactivated; rescheduled at ``deadline``
FAILED = "failed"  # every worker failed to run (``error`` says why); no placement


@dataclass(frozen=True)
class Slot:
    """Where an executor runs: the scheduler's worker label, its node and its port."""

    worker: int
    node: str
    port: int


Where = tuple[str, int]  # (node, port): one worker


class Placement(Mapping[int, Slot]):
    """Executor id -> :class:`Slot` of one topology: immutable, equal by content (to a dict
    too), hashable, iterated by executor id ascending."""

    __slots__ = ("_slots", "_hash", "_assignment", "_workers")

    def __init__(self, slots: Mapping[int, Slot] | Iterable[tuple[int, Slot]] = ()) -> None:
        items = slots.items() if isinstance(slots, Mapping) else slots
        self._slots: dict[int, Slot] = dict(sorted(items))
        self._hash: int | None = None
        self._assignment: tuple[str, Assignment] | None = None  # computed once: the value never changes
        self._workers: dict[Where, tuple[int, ...]] | None = None  # likewise (asked per heartbeat)

    @classmethod
    def of(cls, slots: Mapping[int, Slot]) -> Placement:
        """``slots`` as a Placement (itself when it already is one)."""
        return slots if isinstance(slots, Placement) else cls(slots)

    def __getitem__(self, executor: int) -> Slot:
        return self._slots[executor]

    def __iter__(self) -> Iterator[int]:
        return iter(self._slots)

    def __len__(self) -> int:
        return len(self._slots)

    # The dict's own views: Mapping's generic ones look every executor up again (a tick reads
    # every placement, 5,000 executors at 500 boards).
    def keys(self) -> KeysView[int]:
        return self._slots.keys()

    def values(self) -> ValuesView[Slot]:
        return self._slots.values()

    def items(self) -> ItemsView[int, Slot]:
        return self._slots.items()

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(tuple(self._slots.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"Placement({self._slots!r})"

    def workers(self) -> dict[Where, list[int]]:
        """(node, port) -> executor ids on that worker, ascending (a new dict and new lists
        on every call; the grouping itself is computed once per placement)."""
        if self._workers is None:
            grouped: dict[Where, list[int]] = {}
            for ex, slot in self._slots.items():
                grouped.setdefault((slot.node, slot.port), []).append(ex)
            self._workers = {where: tuple(execs) for where, execs in grouped.items()}
        return {where: list(execs) for where, execs in self._workers.items()}

    def worker_count(self) -> int:
        """How many workers ((node, port) pairs) the placement uses."""
        return len(self.worker_keys())

    def worker_keys(self) -> KeysView[Where]:
        """The (node, port) of every worker, without copying the grouping (a migration asks
        on every heartbeat: copying a thousand workers' lists each time was most of its cost)."""
        if self._workers is None:
            self.workers()
        assert self._workers is not None
        return self._workers.keys()

    def executors_by_worker(self) -> Mapping[Where, tuple[int, ...]]:
        """(node, port) -> executor ids there, ascending: the grouping itself, read-only, not
        copied (a migration reads one board's workers out of it on every heartbeat)."""
        self.worker_keys()
        assert self._workers is not None
        return MappingProxyType(self._workers)

    def moved_to(self, new: Mapping[int, Slot]) -> tuple[int, ...]:
        """Executors of ``new`` that run on another (node, port) than here (or are new):
        what a change from this placement to ``new`` has to move."""
        return tuple(
            sorted(
                ex
                for ex, s in new.items()
                if ex not in self._slots or (self._slots[ex].node, self._slots[ex].port) != (s.node, s.port)
            )
        )

    def assignment(self, topology: str) -> Assignment:
        """This placement as the schedulers' :class:`~squall.rebalance.Assignment` (what
        their cost model prices); workers labelled by (node, port) order."""
        if self._assignment is not None and self._assignment[0] == topology:
            return self._assignment[1]
        label = {key: k for k, key in enumerate(sorted({(s.node, s.port) for s in self._slots.values()}))}
        assignment = Assignment.of(
            {(topology, ex): label[(s.node, s.port)] for ex, s in self._slots.items()},
            {(topology, label[(s.node, s.port)]): s.node for s in self._slots.values()},
        )
        self._assignment = (topology, assignment)
        return assignment


NO_PLACEMENT = Placement()


@dataclass
class TopologyRecord:
    name: str
    spec: TopologySpec
    scheduler: str
    conf: dict[str, Any]
    bundle_digest: str
    bundle_size: int
    submitted_at: float
    phase: str = WAITING
    active: bool = True  # the user's wish; workers run active only in RUNNING
    deadline: float | None = None  # when a kill or rebalance completes
    pending: dict[str, Any] | None = None  # the rebalance request waiting for ``deadline``
    version: int = 0  # assignment version, bumped whenever placement or activation changes
    placement: Placement = NO_PLACEMENT
    error: str = ""  # why the topology FAILED (the workers' reports)

    def __setattr__(self, name: str, value: Any) -> None:
        # Whoever sets a placement (a scheduler's dict, a stored row), the record holds a value.
        if name == "placement" and not isinstance(value, Placement):
            value = Placement(value)
        super().__setattr__(name, value)

    @property
    def workers(self) -> int:
        return int(self.conf[WORKERS])

    @property
    def ackers(self) -> int:
        return int(self.conf[ACKERS])

    def worker_conf(self) -> dict[str, Any]:
        """The conf pushed to workers: ``conf`` without :data:`NIMBUS_ONLY_KEYS`."""
        return {k: v for k, v in self.conf.items() if k not in NIMBUS_ONLY_KEYS}

    def executors(self) -> tuple[ExecutorSpec, ...]:
        return self.spec.executors_with_ackers(self.ackers)

    @property
    def status(self) -> str:
        if self.phase == KILLING:
            return "KILLED"
        if self.phase == REBALANCING:
            return "REBALANCING"
        if self.phase == WAITING:
            return "WAITING"
        if self.phase == FAILED:
            return "FAILED"
        return "ACTIVE" if self.active else "INACTIVE"

    @property
    def workers_running_active(self) -> bool:
        return self.phase == RUNNING and self.active

    def worker_slots(self) -> dict[tuple[str, int], list[int]]:
        """(node, port) -> executor ids on that worker, ascending."""
        return self.placement.workers()


@dataclass
class SupervisorRecord:
    id: str
    host: str
    ports: list[int]
    capacity_hz: float
    clock_hz: float = 0.0
    cores: int = 0
    memory_mb: int = 0
    pid: int = 0
    link_mbit: float | None = None  # as registered; None = unknown (not kept in the store)
    link_delay_ms: float | None = None
    version: int = 0  # the last SupervisorAssignment version pushed
    last_seen: float | None = None  # None: known from the store, not heard from yet
    peer: bytes | None = None
    dead: bool = False
    last_pushed: Any = None  # the last declarative set pushed, to push only on change
    reports: dict[tuple[str, int], WorkerReport] = field(default_factory=dict)
    board: Any = None  # BoardRates over the window (squall.nimbus.profiles), None until measured

    def alive(self, now: float, timeout: float) -> bool:
        return self.last_seen is not None and not self.dead and now - self.last_seen <= timeout
