"""The testbed: up makes namespaces, links, tbf qdiscs and cgroups and starts Nimbus and a
supervisor per board inside them; down (and a crash followed by down) leaves nothing named
with the prefix. Skipped without root."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from squall.experiments import netns
from squall.experiments.boards import parse_boards
from squall.experiments.testbed import Testbed, read_state, state_dir, teardown
from squall.localcluster import free_port
from tests.experiments.testbed_helpers import PREFIX, SUBNET

pytestmark = pytest.mark.integration

BOARDS = parse_boards(
    [{"id": "pi4-a", "class": "pi4", "link_mbit": 50, "slots": 2}, {"id": "pi3-a", "class": "pi3", "link_mbit": 20}]
)


def nothing_left(prefix: str) -> None:
    assert netns.leftovers(prefix) == {"namespaces": [], "links": [], "qdiscs": [], "cgroups": []}
    assert read_state(prefix) is None


def test_up_makes_every_object_and_down_removes_them(clean_prefix: str) -> None:
    with Testbed(BOARDS, prefix=clean_prefix, subnet=SUBNET, port=free_port()) as tb:
        left = netns.leftovers(clean_prefix)
        assert left["namespaces"] == [f"{PREFIX}-pi3-a", f"{PREFIX}-pi4-a"]
        assert left["links"] == [f"{PREFIX}0h", f"{PREFIX}1h", f"{PREFIX}br"]
        assert len(left["qdiscs"]) == 4  # both ends of both links
        assert sorted(left["cgroups"]) == sorted(
            f"{c}/{PREFIX}-{b}" for c in ("cpu", "memory") for b in ("pi4-a", "pi3-a")
        )
        quota = (netns.CGROUP_ROOT / "cpu" / f"{PREFIX}-pi3-a" / "cpu.cfs_quota_us").read_text().strip()
        assert int(quota) == int(BOARDS[1].cpu * netns.CFS_PERIOD_US)
        with tb.client() as c:
            sups = {s["id"]: s for s in c.cluster()["supervisors"]}
        assert set(sups) == {"pi4-a", "pi3-a"} and all(s["alive"] for s in sups.values())
        # Each supervisor runs in its board's namespace and cgroups.
        pid = read_state(clean_prefix)["pids"]["pi3-a"]
        assert pid in netns.pids_in(clean_prefix)
        assert f"{PREFIX}-pi3-a" in Path(f"/proc/{pid}/cgroup").read_text()
        addr = subprocess.run(["ip", "-n", f"{PREFIX}-pi3-a", "-o", "addr", "show"], capture_output=True, text=True)
        assert f"{SUBNET}.3/24" in addr.stdout
    nothing_left(clean_prefix)
    assert teardown(clean_prefix) == []  # idempotent


def test_down_after_a_crash_finds_leftovers_by_prefix(clean_prefix: str, tmp_path: Path) -> None:
    """A process that brought a testbed up is killed; the state file may be gone too: down
    still removes everything named with the prefix, and stops the orphaned daemons."""
    boards = tmp_path / "boards.json"
    boards.write_text(json.dumps([b.to_dict() for b in BOARDS]))
    port = free_port()
    up = subprocess.run(
        [
            sys.executable,
            "-m",
            "squall",
            "testbed",
            "up",
            "--boards",
            str(boards),
            "--prefix",
            clean_prefix,
            "--subnet",
            SUBNET,
            "--port",
            str(port),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert up.returncode == 0, up.stderr
    assert f"{SUBNET}.1:{port}" in up.stdout
    state = read_state(clean_prefix)
    nimbus = state["pids"]["nimbus"]
    pids = [p for name, p in state["pids"].items() if name != "nimbus"]  # supervisors and delay relays
    again = subprocess.run(
        [sys.executable, "-m", "squall", "testbed", "up", "--prefix", clean_prefix, "--subnet", SUBNET],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 1 and "already up" in again.stderr
    (state_dir(clean_prefix) / "state.json").unlink()
    os.kill(nimbus, signal.SIGKILL)  # Nimbus dies; the supervisors (and relays) are orphans now
    down = subprocess.run(
        [sys.executable, "-m", "squall", "testbed", "down", "--prefix", clean_prefix],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert down.returncode == 0, down.stderr
    assert "removed namespace" in down.stdout
    nothing_left(clean_prefix)
    assert pids and not any(netns._alive(p) for p in pids)
    second = subprocess.run(
        [sys.executable, "-m", "squall", "testbed", "down", "--prefix", clean_prefix],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 0 and "nothing to remove" in second.stdout
