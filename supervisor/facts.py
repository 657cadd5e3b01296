"""Board facts: what a supervisor advertises, derived from the board itself.

A board's **slots** follow the frugal-Hadoop paper's Frugality Index (Findex): the node
manager derives an index from the board's memory and CPU, labels the node ``Low`` (1),
``Med`` (2) or ``Hi`` (4), and the resource manager gives a Findex-1 node one container, a
Findex-2 node at most two, and a higher one the default allocation (here: one worker per
512 MB after a 256 MB reserve, capped by the cores). The paper's boards: Raspberry Pi 3B
(1 GB) Findex 1 Low; Odroid XU4 (2 GB) and RockPro64 (4 GB, 1.8 GHz) Findex 2 Med;
Raspberry Pi 5 Findex 4 Hi. Its text says the index is "implicitly derived from the size of
the on-board memory" and that CPU speed counts too, without a formula (its Table 3 is not in
the text); the thresholds of :func:`findex_of` reproduce every board it names:

* Low (1): under 1.5 GB usable (a "1 GB" board shows ~920 MB);
* Hi (4): at least 3 GB usable *and* a clock of at least 2.2 GHz (the Pi 5's 2.4 GHz; the
  RockPro64's 1.8 GHz keeps its 4 GB at Med, as in the paper);
* Med (2): everything between.

A board whose memory does not hold the reserve plus one worker gets **zero** slots whatever
its index, never a silent one, and :meth:`BoardFacts.refusal` says why and how to override.
Its **capacity** is cores x clock x the usable share, in cycles/s. Both can be overridden
(``--slots``, ``--capacity-hz``). A board's link (rate, one-way delay) is unknown unless the
operator states it (``--link-mbit``, ``--link-delay-ms``): a supervisor cannot measure it.

Guarantees: :func:`findex_of`, :func:`derive_slots` and :func:`derive_capacity` are pure.
What the rules give (``tests/boards/test_board_facts.py``):

=====================  ======  =====  =======  ==========  =====  ==========
board                  memory  cores  clock    Findex      slots  capacity
=====================  ======  =====  =======  ==========  =====  ==========
Raspberry Pi Zero 2 W  512 MB  4      1.0 GHz  1 Low       0      refused
Raspberry Pi 3         1 GB    4      1.2 GHz  1 Low       1      3.84 GHz
Odroid XU4             2 GB    8      2.0 GHz  2 Med       2      12.8 GHz
Raspberry Pi 4 (4 GB)  4 GB    4      1.5 GHz  2 Med       2      4.80 GHz
RockPro64 (4 GB)       4 GB    6      1.8 GHz  2 Med       2      8.64 GHz
Raspberry Pi 5 (8 GB)  8 GB    4      2.4 GHz  4 Hi        4      7.68 GHz
=====================  ======  =====  =======  ==========  =====  ==========
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
LOW_BELOW_MB = 1536  # under this, Findex 1: the paper's 1 GB Pi 3B runs one container
HI_FROM_MB = 3072  # Findex 4 needs a board sold as 4 GB or more ...
HI_FROM_CLOCK_HZ = 2.2e9  # ... and a fast core (Pi 5: 2.4 GHz; RockPro64's 1.8 GHz stays Med)


@dataclass(frozen=True)
class Findex:
    """A board's Frugality Index, its node label, the slots the paper's table gives it and
    the rule written out with the board's numbers."""

    index: int
    label: str
    slots: int
    rule: str


def findex_of(memory_mb: int, cores: int, clock_hz: float) -> Findex:
    """The Findex of a board (see the module's table); ``slots`` may be 0 when the memory
    does not hold the reserve plus one worker."""
    if memory_mb < LOW_BELOW_MB:
        index, label, why = 1, "Low", f"memory {memory_mb} MB < {LOW_BELOW_MB} MB"
    elif memory_mb >= HI_FROM_MB and clock_hz >= HI_FROM_CLOCK_HZ:
        index, label, why = (
            4,
            "Hi",
            (
                f"memory {memory_mb} MB >= {HI_FROM_MB} MB and clock "
                f"{clock_hz / 1e9:.2f} GHz >= {HI_FROM_CLOCK_HZ / 1e9:.1f} GHz"
            ),
        )
    else:
        index, label, why = (
            2,
            "Med",
            (
                f"memory {memory_mb} MB, clock {clock_hz / 1e9:.2f} GHz: neither Low "
                f"(< {LOW_BELOW_MB} MB) nor Hi (>= {HI_FROM_MB} MB and "
                f">= {HI_FROM_CLOCK_HZ / 1e9:.1f} GHz)"
            ),
        )
    by_memory = max(0, (memory_mb - RESERVE_MB) // WORKER_BUDGET_MB)
    default = min(cores, by_memory)
    if index == 1:
        slots, table = min(1, by_memory), "Findex 1 -> 1 slot"
    elif index == 2:
        slots, table = min(2, default), "Findex 2 -> at most 2 slots"
    else:
        slots, table = default, "Findex 4 -> the default allocation"
    rule = (
        f"{table} (Findex {index} {label}: {why}); never more than min(cores {cores}, "
        f"(memory {memory_mb} MB - {RESERVE_MB} MB reserve) // {WORKER_BUDGET_MB} MB per worker = {by_memory})"
    )
    return Findex(index, label, slots, rule)


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
    findex: int = 0
    findex_label: str = ""
    link_mbit: float | None = None  # None: unknown (a supervisor cannot measure its link)
    link_delay_ms: float | None = None

    def describe(self) -> str:
        def known(value: float | None, unit: str) -> str:
            return "unknown" if value is None else f"{value:g} {unit}"

        return "\n".join(
            [
                f"id           {self.supervisor_id}    (override: --id ID)",
                f"cores        {self.cores}",
                f"clock        {self.clock_hz / 1e9:.2f} GHz",
                f"memory       {self.memory_mb} MB",
                f"findex       {self.findex} {self.findex_label}    (the frugal-Hadoop Frugality Index)",
                f"slots        {self.slots}    (rule: {self.slots_rule}; override: --slots N)",
                f"capacity     {self.capacity_hz / 1e9:.2f} GHz    "
                f"(rule: {self.capacity_rule}; override: --capacity-hz X)",
                f"link         {known(self.link_mbit, 'Mbit/s')}, one-way delay {known(self.link_delay_ms, 'ms')}"
                "    (override: --link-mbit X --link-delay-ms Y)",
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


def derive_slots(
    memory_mb: int, cores: int, ports: int | None = None, clock_hz: float = FALLBACK_CLOCK_HZ
) -> tuple[int, str]:
    """Slots from the Findex of memory, cores and clock (possibly 0), and the rule written
    out with its numbers."""
    fx = findex_of(memory_mb, cores, clock_hz)
    slots, rule = fx.slots, fx.rule
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
    link_mbit: float | None = None,
    link_delay_ms: float | None = None,
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
    fx = findex_of(memory_mb, cores, clock_hz)
    if slots is None:
        slots, slots_rule = derive_slots(memory_mb, cores, ports, clock_hz)
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
        findex=fx.index,
        findex_label=fx.label,
        link_mbit=link_mbit,
        link_delay_ms=link_delay_ms,
    )
