"""Each test run builds its testbeds under a prefix of its own, and a later run removes what a
killed run left, never what a live run (or the demo, or the CLI's default testbed) has up."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from squall.experiments import netns
from tests.experiments.testbed_helpers import PREFIX, needs_testbed, owner_pid, run_prefix, sweep_dead_runs

LINUX_PID_MAX = 4_194_304


def test_the_prefix_names_this_run_unless_overridden() -> None:
    expected = os.environ.get("SQUALL_TEST_PREFIX") or run_prefix(os.getpid())
    assert PREFIX == expected
    assert run_prefix(os.getpid()) != run_prefix(os.getpid() + 1)


@pytest.mark.parametrize("pid", [1, 36, 4242, LINUX_PID_MAX])
def test_the_pid_reads_back_from_every_name_made_with_the_prefix(pid: int) -> None:
    prefix = run_prefix(pid)
    for name in (f"{prefix}br", f"{prefix}12h", f"{prefix}-pi4-a"):
        assert owner_pid(name) == pid
    assert len(prefix) <= 8 and prefix.isalnum()  # what a testbed accepts (its link names <= 15 characters)


@pytest.mark.parametrize(
    "name", ["sqdemo-pi4-a", "sqtb0h", "sqtbbr", "sqtt-pi4-a", "sqttbr", "sqr12", "sqrobe", "sqprobe1a2b3c"]
)
def test_names_of_other_testbeds_carry_no_owner(name: str) -> None:
    assert owner_pid(name) is None


@pytest.mark.integration
def test_a_dead_runs_namespace_is_removed_and_a_live_runs_kept() -> None:
    needs_testbed()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead, live = f"{run_prefix(int(gone.stdout))}-x", f"{run_prefix(os.getpid())}-x"
    for ns in (dead, live):
        netns.sh("ip", "netns", "add", ns)
    try:
        removed = sweep_dead_runs()
        assert run_prefix(int(gone.stdout)) in removed
        assert netns.namespaces(dead) == [] and netns.namespaces(live) == [live]
    finally:
        for ns in (dead, live):
            netns.sh("ip", "netns", "del", ns, check=False)
