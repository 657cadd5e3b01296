"""Measured profiles for the latency model: what a board offers and what a workload costs.

The traffic schedulers need only a :class:`~squall.rebalance.model.Node`'s slots and
capacity and a :class:`~squall.rebalance.model.Workload`'s loads and traffic. The latency
model (:mod:`squall.rebalance.latency`) needs more, measured by workers and supervisors and
derived by Nimbus (``nimbus/profiles.py``):

* :class:`BoardProfile` — the board's CPU in cores (its cgroup quota, else its cores),
  its clock, memory for workers, its link (rate and one-way delay), and how much its CPU
  quota throttled it at the measured load;
* :class:`WorkloadProfile` — per executor the rate of tuples it processes and the CPU
  cycles each costs; per worker the CPU no executor accounts for (the loop, timers,
  heartbeats) and the CPU per item that crosses between workers (encode, send, receive,
  decode); the mean item size on the wire; a worker's memory; the batching delay of the
  transfer; the rate of root tuples (what one complete latency is per); the ackers.

Both are optional parts of the values the schedulers take (``Node.board``,
``Workload.profile``), frozen and equal by value, and round-trip through JSON. A value
that is missing is never invented silently: :func:`squall.rebalance.latency.predict`
falls back to a stated default and lists it in ``Prediction.assumptions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from squall.rebalance.errors import InvalidInputError


def _number(value: Any, where: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"{where}: expected a number, got {value!r}")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise InvalidInputError(f"{where}: must be finite, got {value!r}")
    if number < minimum:
        raise InvalidInputError(f"{where}: must be >= {minimum:g}, got {value!r}")
    return number


@dataclass(frozen=True)
class BoardProfile:
    """A board as the latency model sees it. Zero means "not measured" for every field
    but ``cores``: no memory limit, no link limit, no link delay, no throttling seen."""

    cores: float  # CPU capacity in cores (cgroup quota / period, else usable cores)
    clock_hz: float = 0.0  # the clock service cycles are divided by (0: unknown)
    memory_mb: float = 0.0  # memory the board has for workers (0: unknown, not checked)
    link_mbit: float = 0.0  # link rate each way (0: unknown, transmission time ignored)
    link_delay_ms: float = 0.0  # the board's share of a round trip to another board: rtt(A, B) = d(A) + d(B)
    cpu_period_s: float = 0.0  # CFS period when a quota caps the board (0: no quota)
    measured_utilisation: float = 0.0  # board CPU used / cores over the window
    throttled_share: float = 0.0  # share of the window the quota held the board stopped
    background_cores: float = 0.0  # CPU used on the board by what no worker accounts for
    cpu_wait_ms: float = 0.0  # mean wait of a worker's thread for a CPU each time it became ready

    def __post_init__(self) -> None:
        for f in fields(self):
            value = _number(getattr(self, f.name), f"board profile: {f.name}")
            object.__setattr__(self, f.name, value)
        if self.cores <= 0:
            raise InvalidInputError(f"board profile: cores must be > 0, got {self.cores!r}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "board") -> BoardProfile:
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"{where}: expected an object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidInputError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        if "cores" not in data:
            raise InvalidInputError(f"{where}.cores: missing field")
        return cls(**{k: _number(v, f"{where}.{k}") for k, v in data.items()})


@dataclass(frozen=True)
class ExecutorProfile:
    """One executor: tuples (or acker items) it processes per second and the CPU cycles
    each costs (its measured CPU divided by what it executed, times the clock)."""

    id: int
    rate: float
    service_cycles: float

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or self.id < 0:
            raise InvalidInputError(f"executor profile: id must be an integer >= 0, got {self.id!r}")
        object.__setattr__(self, "rate", _number(self.rate, f"executor {self.id}: rate"))
        object.__setattr__(self, "service_cycles", _number(self.service_cycles, f"executor {self.id}: service_cycles"))


@dataclass(frozen=True)
class WorkloadProfile:
    """A topology's measured costs beyond loads and traffic (see the module docstring).
    ``executors`` is sorted by id; ``ackers`` and ``sources`` are executor ids."""

    executors: tuple[ExecutorProfile, ...]
    source_rate: float  # root tuples/s: the rate complete latencies are counted at
    sources: tuple[int, ...] = ()  # spout executors
    ackers: tuple[int, ...] = ()
    worker_overhead_hz: float = 0.0  # per worker: CPU (cycles/s) of the loop, not of executors
    transfer_cycles_per_item: float = 0.0  # CPU per item crossing workers, both ends together
    item_bytes: float = 0.0  # mean bytes of an item on the wire
    worker_memory_mb: float = 0.0  # resident memory of one worker
    flush_s: float = 0.0  # mean wait of an item in the sender's batch before it is sent

    def __post_init__(self) -> None:
        execs = tuple(sorted(self.executors, key=lambda e: e.id))
        ids = [e.id for e in execs]
        if len(set(ids)) != len(ids):
            raise InvalidInputError("workload profile: an executor appears twice")
        object.__setattr__(self, "executors", execs)
        object.__setattr__(self, "sources", tuple(sorted(set(self.sources))))
        object.__setattr__(self, "ackers", tuple(sorted(set(self.ackers))))
        for name in (
            "source_rate",
            "worker_overhead_hz",
            "transfer_cycles_per_item",
            "item_bytes",
            "worker_memory_mb",
            "flush_s",
        ):
            object.__setattr__(self, name, _number(getattr(self, name), f"workload profile: {name}"))

    def of(self, executor_id: int) -> ExecutorProfile | None:
        return next((e for e in self.executors if e.id == executor_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "executors": [[e.id, e.rate, e.service_cycles] for e in self.executors],
            "source_rate": self.source_rate,
            "sources": list(self.sources),
            "ackers": list(self.ackers),
            "worker_overhead_hz": self.worker_overhead_hz,
            "transfer_cycles_per_item": self.transfer_cycles_per_item,
            "item_bytes": self.item_bytes,
            "worker_memory_mb": self.worker_memory_mb,
            "flush_s": self.flush_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "profile") -> WorkloadProfile:
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"{where}: expected an object, got {type(data).__name__}")
        rows = data.get("executors")
        if not isinstance(rows, list | tuple):
            raise InvalidInputError(f"{where}.executors: expected a list of [id, rate, service_cycles]")
        execs = []
        for k, row in enumerate(rows):
            if not isinstance(row, list | tuple) or len(row) != 3:
                raise InvalidInputError(f"{where}.executors[{k}]: expected [id, rate, service_cycles]")
            ex_id = row[0]
            if isinstance(ex_id, bool) or not isinstance(ex_id, int):
                raise InvalidInputError(f"{where}.executors[{k}][0]: expected an integer id, got {ex_id!r}")
            execs.append(
                ExecutorProfile(
                    ex_id, _number(row[1], f"{where}.executors[{k}][1]"), _number(row[2], f"{where}.executors[{k}][2]")
                )
            )
        if "source_rate" not in data:
            raise InvalidInputError(f"{where}.source_rate: missing field")

        def ids(key: str) -> tuple[int, ...]:
            raw = data.get(key, [])
            if not isinstance(raw, list | tuple) or any(isinstance(i, bool) or not isinstance(i, int) for i in raw):
                raise InvalidInputError(f"{where}.{key}: expected a list of executor ids")
            return tuple(raw)

        extra = {
            k: _number(data[k], f"{where}.{k}")
            for k in (
                "worker_overhead_hz",
                "transfer_cycles_per_item",
                "item_bytes",
                "worker_memory_mb",
                "flush_s",
            )
            if k in data
        }
        return cls(
            tuple(execs), _number(data["source_rate"], f"{where}.source_rate"), ids("sources"), ids("ackers"), **extra
        )
