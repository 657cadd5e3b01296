"""Board facts: what a supervisor advertises, derived from the board itself.

In the spirit of the frugal-Hadoop "Findex": a board's **slots** follow from its memory (a
worker budget per slot, after a reserve for the OS and the supervisor) and are capped by its
cores; its **capacity** is cores x clock x the usable share, in cycles/s. Both can be
overridden. A Raspberry Pi 3 (1 GB) gets one slot; a Pi 4 or Pi 5 with 4 GB gets four.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import psutil

RESERVE_MB = 256  # OS, supervisor and page cache headroom
WORKER_BUDGET_MB = 512  # what one worker may use, with room for the user's code
USABLE_SHARE = 0.8  # of the CPU left to workers; the rest for the OS, the supervisor and I/O
FALLBACK_CLOCK_HZ = 1.0e9


@dataclass(frozen=True)
class BoardFacts:
    supervisor_id: str
    slots: int
    capacity_hz: float
    cores: int
    clock_hz: float
    memory_mb: int
    slots_rule: str
    capacity_rule: str

    def describe(self) -> str:
        return "\n".join(
            [
                f"id           {self.supervisor_id}",
                f"cores        {self.cores}",
                f"clock        {self.clock_hz / 1e9:.2f} GHz",
                f"memory       {self.memory_mb} MB",
                f"slots        {self.slots}    ({self.slots_rule})",
                f"capacity     {self.capacity_hz / 1e9:.2f} GHz    ({self.capacity_rule})",
                "override     --slots N, --capacity-hz X, --id ID",
            ]
        )


def read_clock_hz() -> tuple[float, str]:
    """The CPU's maximum clock: cpufreq, then psutil, then /proc/cpuinfo, then a fallback."""
    path = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    try:
        return float(path.read_text().strip()) * 1e3, "cpufreq max"
    except (OSError, ValueError):
        pass
    try:
        freq = psutil.cpu_freq()
        if freq and (freq.max or freq.current):
            return float(freq.max or freq.current) * 1e6, "psutil cpu_freq"
    except (OSError, NotImplementedError, AttributeError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("cpu mhz"):
                return float(line.split(":")[1]) * 1e6, "/proc/cpuinfo"
    except (OSError, ValueError, IndexError):
        pass
    return FALLBACK_CLOCK_HZ, "unknown clock, assumed 1 GHz"


def board_facts(
    supervisor_id: str | None = None,
    slots: int | None = None,
    capacity_hz: float | None = None,
    ports: int | None = None,
) -> BoardFacts:
    """Measure the board; explicit arguments win over measurements."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    memory_mb = int(psutil.virtual_memory().total // (1024 * 1024))
    clock_hz, clock_rule = read_clock_hz()
    if slots is None:
        by_memory = max(1, (memory_mb - RESERVE_MB) // WORKER_BUDGET_MB)
        slots = max(1, min(cores, by_memory))
        slots_rule = (
            f"min(cores {cores}, (memory {memory_mb} MB - {RESERVE_MB} MB reserve) / {WORKER_BUDGET_MB} MB "
            f"per worker = {by_memory})"
        )
        if ports is not None and ports < slots:
            slots = ports
            slots_rule += f", capped by {ports} ports"
    else:
        slots_rule = "set by --slots"
    if capacity_hz is None:
        capacity_hz = cores * clock_hz * USABLE_SHARE
        capacity_rule = f"{cores} cores x {clock_hz / 1e9:.2f} GHz ({clock_rule}) x usable share {USABLE_SHARE}"
    else:
        capacity_rule = "set by --capacity-hz"
    return BoardFacts(
        supervisor_id=supervisor_id or socket.gethostname(),
        slots=slots,
        capacity_hz=float(capacity_hz),
        cores=cores,
        clock_hz=clock_hz,
        memory_mb=memory_mb,
        slots_rule=slots_rule,
        capacity_rule=capacity_rule,
    )
