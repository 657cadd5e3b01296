"""Who may tear a testbed down: its owner, anyone once the owner is gone or detached it, and
anyone with ``force``. A state file written here stands for a testbed (no namespaces are
made, so no root is needed); the owner is a real process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from squall.experiments import netns
from squall.experiments.testbed import TestbedInUse, read_state, state_dir, teardown

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("ip") is None, reason="teardown looks for namespaces with iproute2"),
]


@pytest.fixture
def prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SQUALL_TESTBED_DIR", str(tmp_path))  # state files here, not in the shared temp folder
    yield f"sqo{os.getpid() % 100000:05d}"


@pytest.fixture
def owner() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


def write_state(prefix: str, owner: dict | None) -> None:
    folder = state_dir(prefix)
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps({"prefix": prefix, "pids": {}, "owner": owner}))
    (folder / "nimbus.log").write_text("the owner's Nimbus log\n")


def test_a_live_owner_s_testbed_is_refused_and_left_whole(prefix: str, owner: subprocess.Popen[bytes]) -> None:
    write_state(prefix, {"pid": owner.pid, "started": netns.process_start(owner.pid)})
    with pytest.raises(TestbedInUse, match=rf"pid {owner.pid} \(.*time.sleep"):
        teardown(prefix)
    assert owner.poll() is None and read_state(prefix) is not None
    assert (state_dir(prefix) / "nimbus.log").read_text() == "the owner's Nimbus log\n"


def test_once_the_owner_is_gone_anyone_may_remove_the_leftovers(prefix: str, owner: subprocess.Popen[bytes]) -> None:
    write_state(prefix, {"pid": owner.pid, "started": netns.process_start(owner.pid)})
    owner.kill()
    owner.wait(10)
    teardown(prefix)
    assert read_state(prefix) is None


def test_a_reused_pid_is_not_mistaken_for_the_owner(prefix: str, owner: subprocess.Popen[bytes]) -> None:
    started = netns.process_start(owner.pid)
    assert started is not None
    write_state(prefix, {"pid": owner.pid, "started": started - 1})  # same pid, another process
    teardown(prefix)
    assert read_state(prefix) is None and owner.poll() is None


@pytest.mark.parametrize("how", ["detached", "forced"])
def test_a_detached_testbed_or_a_forced_teardown_goes(prefix: str, owner: subprocess.Popen[bytes], how: str) -> None:
    live = {"pid": owner.pid, "started": netns.process_start(owner.pid)}
    write_state(prefix, None if how == "detached" else live)
    teardown(prefix, force=how == "forced")
    assert read_state(prefix) is None
