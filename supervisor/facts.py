"""Board facts: what a supervisor advertises, derived from the board itself.

In the spirit of the frugal-Hadoop "Findex": a board's **slots** follow from its memory (a
worker budget per slot, after a reserve for the OS and the supervisor) and are capped by its
cores; its **capacity** is cores x clock x the usable share, in cycles/s. Both can be
overridden (``--slots``, ``--capacity-hz``).

Guarantees: :func:`derive_slots` and :func:`derive_capacity` are pure; a board whose memory
does not hold the reserve plus one worker budget gets **zero** slots, never a silent one, and
:meth:`BoardFacts.refusal` says why and how to override. What the rule gives
(``tests/boards/test_board_facts.py``):

=====================  ======  =====  =======  =====  ==========
board                  memory  cores  clock    slots  capacity
=====================  ======  =====  =======  =====  ==========
Raspberry Pi Zero 2 W  512 MB  4      1.0 GHz  0      refused
Raspberry Pi 3         1 GB    4      1.2 GHz  1      3.84 GHz
Raspberry Pi 4 (4 GB)  4 GB    4      1.5 GHz  4      4.80 GHz
Raspberry Pi 5 (8 GB)  8 GB    4      2.4 GHz  4      7.68 GHz
=====================  ======  =====  =======  =====  ==========
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

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
                f"id           {self.supervisor_id}    (override: --id ID)",
                f"cores        {self.cores}",
                f"clock        {self.clock_hz / 1e9:.2f} GHz",
                f"memory       {self.memory_mb} MB",
                f"slots        {self.slots}    (rule: {self.slots_rule}; override: --slots N)",
                f"capacity     {self.capacity_hz / 1e9:.2f} GHz    "
                f"(rule: {self.capacity_rule}; override: --capacity-hz X)",
            ]
        )

    def refusal(self) -> str | None:
        """Why a supervisor must not start on this board, or None when it may."""
        if self.slots >= 1:
            return None
        return (
            f"this board has no worker slot: {self.memory_mb} MB of memory does not hold the "
            f"{RESERVE_MB} MB reserve plus one worker's {WORKER_BUDGET_MB} MB budget "
            f"({RESERVE_MB + WORKER_BUDGET_MB} MB). A worker started here would push the board "
            "into swap on its SD card. Use --slots 1 to start anyway."
        )


def derive_slots(memory_mb: int, cores: int, ports: int | None = None) -> tuple[int, str]:
    """Slots from memory and cores (possibly 0), and the rule written out with its numbers."""
    by_memory = max(0, (memory_mb - RESERVE_MB) // WORKER_BUDGET_MB)
    slots = min(cores, by_memory)
    rule = (
        f"min(cores {cores}, (memory {memory_mb} MB - {RESERVE_MB} MB reserve) // {WORKER_BUDGET_MB} MB "
        f"per worker = {by_memory})"
    )
    if ports is not None and ports < slots:
        slots = ports
        rule += f", capped by {ports} ports"
    return slots, rule


def derive_capacity(cores: int, clock_hz: float, clock_rule: str) -> tuple[float, str]:
    """Usable cycles/s: cores x clock x the usable share, and the rule with its numbers."""
    capacity = cores * clock_hz * USABLE_SHARE
    return capacity, f"{cores} cores x {clock_hz / 1e9:.2f} GHz ({clock_rule}) x usable share {USABLE_SHARE}"


def read_clock_hz() -> tuple[float, str]:
    """The CPU's maximum clock: cpufreq, then psutil, then /proc/cpuinfo, then a fallback."""
    import psutil

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


def measured_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def measured_memory_mb() -> int:
    import psutil

    return int(psutil.virtual_memory().total // (1024 * 1024))


def board_facts(
    supervisor_id: str | None = None,
    slots: int | None = None,
    capacity_hz: float | None = None,
    ports: int | None = None,
    *,
    memory_mb: int | None = None,
    cores: int | None = None,
    clock_hz: float | None = None,
) -> BoardFacts:
    """Measure the board; explicit arguments win over measurements.

    ``memory_mb``, ``cores`` and ``clock_hz`` replace the measurements (tests describe a Pi
    this way); ``slots`` and ``capacity_hz`` replace the rules' results.
    """
    cores = measured_cores() if cores is None else cores
    memory_mb = measured_memory_mb() if memory_mb is None else memory_mb
    if clock_hz is None:
        clock_hz, clock_rule = read_clock_hz()
    else:
        clock_rule = "given"
    if slots is None:
        slots, slots_rule = derive_slots(memory_mb, cores, ports)
    else:
        slots_rule = "set by --slots"
    if capacity_hz is None:
        capacity_hz, capacity_rule = derive_capacity(cores, clock_hz, clock_rule)
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
