"""A board's CPU and memory, as its supervisor reports them to Nimbus (``BoardMetrics``).

What "the board" is: the cgroup the supervisor runs in when that is not the root group (the
experiments' emulated boards are cgroups with a CPU quota and a memory limit; the workers
inherit their supervisor's groups), else the whole machine.

* ``cpu_s`` (cumulative CPU seconds): the group's own usage counter — cgroup v1
  ``cpuacct.usage`` when the cpuacct controller has the supervisor in a non-root group,
  cgroup v2 ``cpu.stat`` ``usage_usec`` likewise; else, when only the v1 cpu controller
  has it in a non-root group, the CPU times (psutil) of the processes in that group's
  ``cgroup.procs``, plus what processes that have exited had used when last seen (so the
  counter never goes back when a worker exits); else the machine's busy CPU time
  (``psutil.cpu_times()``: everything but idle and iowait). ``source`` says which: "cgroup"
  for the first two, "system" for the last.
* ``cores`` (capacity): the group's CFS quota / period (v1 ``cpu.cfs_quota_us`` /
  ``cpu.cfs_period_us``, v2 ``cpu.max``) when one is set on the group or an ancestor (the
  smallest wins), else the cores this process may run on (its affinity). ``cpu_period_s``
  is the period of that quota, 0 without one.
* throttling (``periods``, ``throttled_periods``, ``throttled_s``) from the cpu group's
  ``cpu.stat`` where present, else 0.
* memory: the memory group's usage less its inactive file cache (the working set, as
  container runtimes report it) and its limit, when the group is limited below the
  machine's memory; else the machine's used and total memory.

Reading costs a few small file reads (the cgroup paths are found once, at construction), so
once per heartbeat is negligible. Nothing raises: a file that is missing or unreadable
falls back to the next source. All paths are under ``root`` (``/`` in production; a fake
tree in tests).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from squall.messages import BoardMetrics

UNLIMITED_MEMORY = 1 << 62  # cgroup v1 reports "no limit" as a page-rounded 2^63 - 1


@dataclass(frozen=True)
class CgroupDirs:
    """The supervisor's groups as directories (None: not in a non-root group there)."""

    cpuacct: Path | None = None  # v1 cpuacct (usage)
    cpu: Path | None = None  # v1 cpu (quota, cpu.stat, cgroup.procs)
    memory: Path | None = None  # v1 memory
    unified: Path | None = None  # v2 (all of the above)
    cpu_ancestors: tuple[Path, ...] = ()  # the cpu (or v2) group and its parents below the root


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def _keyed(path: Path) -> dict[str, int]:
    """A ``key value`` per line file (cpu.stat, memory.stat) as a dict; {} when unreadable."""
    out: dict[str, int] = {}
    for line in (_read(path) or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def find_cgroups(root: Path, pid: int | str = "self") -> CgroupDirs:
    """Where the process's cgroups are, from ``/proc/<pid>/cgroup`` and ``mountinfo``.

    A group counts only when it is not the root of its hierarchy (in the root group the
    counters are the machine's, which psutil reads better)."""
    proc = root / "proc" / str(pid)
    memberships: dict[str, str] = {}  # controller ("" for v2) -> path in its hierarchy
    for line in (_read(proc / "cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _id, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            memberships[controller] = path
    mounts: dict[str, tuple[str, str]] = {}  # controller ("" for v2) -> (mount point, mount root)
    for line in (_read(proc / "mountinfo") or "").splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        mount_root, mount_point = fields[3], fields[4]
        if tail[0] == "cgroup2":
            mounts.setdefault("", (mount_point, mount_root))
        elif tail[0] == "cgroup":
            for option in tail[2].split(","):
                mounts.setdefault(option, (mount_point, mount_root))

    def group_dir(controller: str) -> Path | None:
        path, mount = memberships.get(controller), mounts.get(controller)
        if path is None or mount is None or path in ("/", ""):
            return None
        mount_point, mount_root = mount
        if mount_root != "/" and (path == mount_root or path.startswith(mount_root + "/")):
            path = path[len(mount_root) :] or "/"  # a container's view: relative to its mount
        if path == "/":
            return None
        return root / mount_point.lstrip("/") / path.lstrip("/")

    cpu, unified = group_dir("cpu"), group_dir("")
    limiting = cpu if cpu is not None else unified
    ancestors: list[Path] = []
    if limiting is not None:
        mount_dir = root / mounts["cpu" if cpu is not None else ""][0].lstrip("/")
        d = limiting
        while d != mount_dir and mount_dir in d.parents:
            ancestors.append(d)
            d = d.parent
    return CgroupDirs(group_dir("cpuacct"), cpu, group_dir("memory"), unified, tuple(ancestors))


class BoardReader:
    """Reads ``BoardMetrics`` for the board the process at ``pid`` runs on (see the module
    docstring for the sources). ``usable_cores`` defaults to this process's CPU affinity."""

    def __init__(
        self,
        root: Path | str = "/",
        pid: int | str = "self",
        clock: Callable[[], float] = time.monotonic,
        usable_cores: Callable[[], float] | None = None,
    ) -> None:
        self.root = Path(root)
        self.clock = clock
        self.usable_cores = usable_cores or _affinity_cores
        self.groups = find_cgroups(self.root, pid)
        self._seen: dict[tuple[int, float], float] = {}  # (pid, create time) -> CPU s when last read
        self._retired_s = 0.0  # CPU of group processes that have exited

    def read(self) -> BoardMetrics:
        at = self.clock()
        cpu_s, source = self._cpu_s()
        cores, period_s = self._capacity()
        periods, throttled, throttled_s = self._throttling()
        used, limit = self._memory()
        return BoardMetrics(
            at=at,
            cpu_s=max(0.0, cpu_s),
            cores=max(0.0, cores),
            cpu_period_s=period_s,
            periods=periods,
            throttled_periods=throttled,
            throttled_s=throttled_s,
            memory_used_bytes=max(0, used),
            memory_limit_bytes=max(0, limit),
            source=source,
        )

    # -- CPU used --------------------------------------------------------------------------

    def _cpu_s(self) -> tuple[float, str]:
        g = self.groups
        if g.cpuacct is not None:
            ns = _read_int(g.cpuacct / "cpuacct.usage")
            if ns is not None:
                return ns / 1e9, "cgroup"
        if g.unified is not None:
            usec = _keyed(g.unified / "cpu.stat").get("usage_usec")
            if usec is not None:
                return usec / 1e6, "cgroup"
        if g.cpu is not None:
            procs = _read(g.cpu / "cgroup.procs")
            if procs is not None:
                return self._processes_cpu_s(procs.split()), "cgroup"
        t = psutil.cpu_times()
        busy = sum(t) - t.idle - getattr(t, "iowait", 0.0)
        # guest time is already inside user (and guest_nice inside nice) on Linux
        busy -= getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)
        # The kernel counts in clock ticks (1/100 s): round the float arithmetic back to
        # them, or an unchanged counter can read 68211.94 then 68211.93999999999 — a CPU
        # counter that ran backwards.
        return round(busy, 2), "system"

    def _processes_cpu_s(self, pids: list[str]) -> float:
        now: dict[tuple[int, float], float] = {}
        for text in pids:
            try:
                p = psutil.Process(int(text))
                with p.oneshot():
                    times = p.cpu_times()
                    now[(p.pid, p.create_time())] = times.user + times.system
            except (ValueError, psutil.Error):
                continue  # exited between the listing and the read: retired below
        for key, last in self._seen.items():
            if key not in now:
                self._retired_s += last
        self._seen = now
        return self._retired_s + sum(now.values())

    # -- capacity and throttling -------------------------------------------------------------

    def _capacity(self) -> tuple[float, float]:
        """(cores, period s): the smallest quota on the group or its ancestors, else the
        usable cores with period 0."""
        best: tuple[float, float] | None = None
        for d in self.groups.cpu_ancestors:
            quota_period = _quota(d)
            if quota_period is not None:
                quota, period = quota_period
                if best is None or quota / period < best[0]:
                    best = (quota / period, period / 1e6)
        if best is not None:
            return best
        return float(self.usable_cores()), 0.0

    def _throttling(self) -> tuple[int, int, float]:
        g = self.groups
        d = g.cpu if g.cpu is not None else g.unified
        if d is None:
            return 0, 0, 0.0
        stat = _keyed(d / "cpu.stat")
        if "throttled_usec" in stat:
            throttled_s = stat["throttled_usec"] / 1e6
        else:
            throttled_s = stat.get("throttled_time", 0) / 1e9
        return stat.get("nr_periods", 0), stat.get("nr_throttled", 0), throttled_s

    # -- memory ------------------------------------------------------------------------------

    def _memory(self) -> tuple[int, int]:
        total = psutil.virtual_memory()
        g = self.groups
        group = None
        if g.memory is not None:
            group = (
                _read_int(g.memory / "memory.usage_in_bytes"),
                _read_int(g.memory / "memory.limit_in_bytes"),
                _keyed(g.memory / "memory.stat").get("total_inactive_file", 0),
            )
        elif g.unified is not None:
            limit_text = (_read(g.unified / "memory.max") or "").strip()
            limit = int(limit_text) if limit_text.isdigit() else None
            group = (
                _read_int(g.unified / "memory.current"),
                limit,
                _keyed(g.unified / "memory.stat").get("inactive_file", 0),
            )
        if group is not None:
            usage, limit, inactive = group
            if usage is not None and limit is not None and 0 < limit < min(UNLIMITED_MEMORY, total.total):
                return max(0, usage - inactive), limit
        return total.used, total.total


def _quota(d: Path) -> tuple[int, int] | None:
    """(quota, period) in µs when ``d`` has a CFS quota (v1 files or v2 cpu.max), else None."""
    quota, period = _read_int(d / "cpu.cfs_quota_us"), _read_int(d / "cpu.cfs_period_us")
    if quota is None:
        parts = (_read(d / "cpu.max") or "").split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            quota, period = int(parts[0]), int(parts[1])
    if quota is None or period is None or quota <= 0 or period <= 0:
        return None
    return quota, period


def _affinity_cores() -> float:
    try:
        return float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return float(psutil.cpu_count() or 1)
