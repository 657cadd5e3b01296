"""What Nimbus knows, as plain records: topologies, their placement, supervisors.

These are the values the state machine mutates and the store persists. Guarantees: a
``TopologyRecord``'s ``placement`` is empty or covers every executor of
``executors()`` exactly once; ``status`` is derived, never stored on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from squall.messages import WorkerReport
from squall.nimbus.config import ACKERS, SCHEDULER, WORKERS
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
    placement: dict[int, Slot] = field(default_factory=dict)
    error: str = ""  # why the topology FAILED (the workers' reports)

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
        out: dict[tuple[str, int], list[int]] = {}
        for ex in sorted(self.placement):
            slot = self.placement[ex]
            out.setdefault((slot.node, slot.port), []).append(ex)
        return out


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
