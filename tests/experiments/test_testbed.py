"""The testbed: up makes namespaces, links, HTB qdiscs and cgroups and starts Nimbus and a
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
from squall.experiments.testbed import Testbed, TestbedError, read_state, state_dir, teardown
from squall.ports import free_port
from tests.experiments.testbed_helpers import PREFIX, SUBNET, needs_link_delay

pytestmark = pytest.mark.integration

BOARDS = parse_boards(
    [{"id": "pi4-a", "class": "pi4", "link_mbit": 50, "slots": 2}, {"id": "pi3-a", "class": "pi3", "link_mbit": 20}]
)


def nothing_left(prefix: str) -> None:
    assert netns.leftovers(prefix) == {"namespaces": [], "links": [], "qdiscs": [], "cgroups": []}
    assert read_state(prefix) is None


def test_up_makes_every_object_and_down_removes_them(clean_prefix: str) -> None:
    needs_link_delay(BOARDS)
    with Testbed(BOARDS, prefix=clean_prefix, subnet=SUBNET, port=free_port()) as tb:
        left = netns.leftovers(clean_prefix)
        assert left["namespaces"] == [f"{PREFIX}-pi3-a", f"{PREFIX}-pi4-a"]
        assert left["links"] == [f"{PREFIX}0h", f"{PREFIX}1h", f"{PREFIX}br"]
        assert len(left["qdiscs"]) == 4  # both ends of both links
        # Each end: an HTB root with the priority (marked control traffic) and best-effort
        # classes, the filter that sorts by the mark, and frames, not offloaded 64 KiB "packets".
        for board, directions in tb.link_classes().items():
            for direction, classes in directions.items():
                assert {netns.ROOT_CLASS, netns.PRIORITY_CLASS, netns.BEST_EFFORT_CLASS} <= set(classes), (
                    board,
                    direction,
                )
        # The supervisors' registrations and heartbeats went up their links in the priority class.
        assert all(d["up"][netns.PRIORITY_CLASS]["packets"] > 0 for d in tb.link_classes().values())
        board_end = subprocess.run(
            ["tc", "-n", f"{PREFIX}-pi3-a", "filter", "show", "dev", f"{PREFIX}1n"], capture_output=True, text=True
        ).stdout
        assert f"flowid {netns.PRIORITY_CLASS}" in board_end and "00800000/00800000" in board_end
        link = subprocess.run(["ip", "-d", "link", "show", f"{PREFIX}1h"], capture_output=True, text=True).stdout
        assert "gso_max_segs 1 " in link
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
    needs_link_delay(BOARDS)
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


def test_a_running_testbed_is_refused_to_any_other_process_s_teardown(clean_prefix: str) -> None:
    """The cause of "Nimbus stopped answering" (docs/experiments.md): while every test run used
    one prefix, each testbed test began with a teardown of it, which stopped another run's
    Nimbus in the middle of an experiment and deleted its logs with the state folder (the
    experiment then said "its process is gone" and had no logs to keep). Now a teardown from
    any process but the owner is refused, and the owner's Nimbus keeps answering."""
    needs_link_delay(BOARDS)
    with Testbed(BOARDS, prefix=clean_prefix, subnet=SUBNET, port=free_port()) as tb:
        down = subprocess.run(
            [sys.executable, "-m", "squall", "testbed", "down", "--prefix", clean_prefix],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert down.returncode == 1 and f"pid {os.getpid()}" in down.stderr and "--force" in down.stderr
        fixture_of_another_run = subprocess.run(
            [sys.executable, "-c", f"from squall.experiments.testbed import teardown; teardown({clean_prefix!r})"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert fixture_of_another_run.returncode == 1 and "TestbedInUse" in fixture_of_another_run.stderr
        assert tb.nimbus_alive() and tb.nimbus_exit() == ""
        assert (tb.dir / "nimbus.log").is_file()
        with tb.client() as c:
            assert {s["id"] for s in c.cluster()["supervisors"] if s["alive"]} == {"pi4-a", "pi3-a"}
    nothing_left(clean_prefix)  # its owner's own close still removes everything


def test_a_subnet_already_on_an_interface_is_refused_before_anything_is_made(clean_prefix: str) -> None:
    """Before, the demo and every test run shared 10.232.0: two bridges on one /24, and the
    host routed one testbed's packets into the other."""
    tb = Testbed(BOARDS, prefix=clean_prefix, subnet="127.0.0", port=free_port())
    with pytest.raises(TestbedError, match=r"subnet 127\.0\.0\.0/24 is already in use here \(lo 127\.0\.0\.1/8"):
        tb.up()
    nothing_left(clean_prefix)
