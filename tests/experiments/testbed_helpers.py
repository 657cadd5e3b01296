"""The prefix and subnet the experiments' tests build their testbeds with, unique per test run.

Every object a testbed makes is named with its prefix (namespaces, links, cgroups, the state
folder), and teardown removes what starts with it; two runs sharing a prefix would tear down
each other's boards. So by default the prefix names this run: ``sqr`` and the pytest
process's pid in five base-36 digits (``sqr0004d2``: a testbed takes at most 8 characters, so
its link names stay within the kernel's 15), and the subnet is one no interface here uses
yet. ``SQUALL_TEST_PREFIX`` and ``SQUALL_TEST_SUBNET`` still override both.

A run killed before its fixtures tore down leaves objects with its prefix; the next run finds
them by the ``sqr`` mark, reads the pid back and removes them once that pid is no longer a
pytest process (:func:`sweep_dead_runs`). Nothing else is touched: the demo's ``sqdemo``,
the CLI's default ``sqtb`` and a prefix of a live run never match.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from squall.experiments import netns
from squall.experiments.testbed import TestbedInUse, state_dir, teardown

RUN_MARK = "sqr"
PID_DIGITS = 5  # base 36: up to 60,466,175, above Linux's largest pid_max (4,194,304)
_RUN_PREFIX = re.compile(rf"^{RUN_MARK}[0-9a-z]{{{PID_DIGITS}}}")
_SUBNET_BASE = "10.232"


def needs_testbed() -> None:
    """Skip the calling test unless emulated boards can be made here (root, iproute2, cgroups)."""
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(f"emulated boards unavailable: {reason}")


def needs_link_delay(boards) -> None:
    """Skip the calling test when ``boards`` have a link delay and it cannot be emulated here
    (iptables missing; CI installs it)."""
    if any(b.delay_ms > 0 or b.jitter_ms > 0 for b in boards):
        reason = netns.delay_unavailable_reason()
        if reason:
            pytest.skip(f"these boards have a link delay: {reason}")


def run_prefix(pid: int) -> str:
    """The testbed prefix of the test run whose pytest process is ``pid``."""
    digits = ""
    while pid:
        pid, d = divmod(pid, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[d] + digits
    return RUN_MARK + digits.rjust(PID_DIGITS, "0")


def owner_pid(name: str) -> int | None:
    """The pid in a name made with a :func:`run_prefix` prefix, else None."""
    m = _RUN_PREFIX.match(name)
    return int(m.group(0)[len(RUN_MARK) :], 36) if m else None


def _is_pytest(pid: int) -> bool:
    try:
        return b"pytest" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def free_subnet(start: int) -> str:
    """The first ``10.232.N`` (N from ``start``, wrapping within 1..254) no interface here has
    an address in: two runs at once each get their own, so their bridges never share routes."""
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False).stdout
    except OSError:  # no iproute2: the testbed tests skip anyway
        out = ""
    used = {int(n) for n in re.findall(rf"inet {re.escape(_SUBNET_BASE)}\.(\d+)\.", out)}
    for i in range(254):
        n = (start - 1 + i) % 254 + 1
        if n not in used:
            return f"{_SUBNET_BASE}.{n}"
    raise RuntimeError(f"every {_SUBNET_BASE}.N/24 is in use here; set SQUALL_TEST_SUBNET")


def sweep_dead_runs() -> list[str]:
    """Tear down every testbed left by a test run whose pytest process is gone; returns the
    prefixes removed. Needs root (the caller skips without it)."""
    left = netns.leftovers(RUN_MARK)
    names = left["namespaces"] + left["links"] + [g.split("/", 1)[1] for g in left["cgroups"]]
    marked = state_dir(RUN_MARK)  # a state folder: <temp>/squall-testbed-<prefix>
    names += [p.name.replace(marked.name, RUN_MARK, 1) for p in marked.parent.glob(f"{marked.name}*")]
    dead = {
        name[: len(RUN_MARK) + PID_DIGITS]
        for name in names
        if (pid := owner_pid(name)) is not None and not _is_pytest(pid)
    }
    removed = []
    for prefix in sorted(dead):
        try:
            teardown(prefix)
        except TestbedInUse:  # a process the dead run started still runs it: its exit tears it down
            continue
        removed.append(prefix)
    return removed


PREFIX = os.environ.get("SQUALL_TEST_PREFIX") or run_prefix(os.getpid())
SUBNET = os.environ.get("SQUALL_TEST_SUBNET") or free_subnet(start=os.getpid() % 254 + 1)
