"""The same events give the same commands: what replicas driven by one log need. No sockets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from squall import messages as M
from squall.nimbus.commands import AddEvent, DeleteTopology, SaveMigration
from squall.nimbus.events import Received, Tick
from squall.nimbus.store import Store
from tests.nimbus.nimbus_helpers import CLI, new_state, register, submit
from tests.nimbus.replay_scenario import digest, run_scenario

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def test_the_scenario_exercises_rebalancing_repair_and_kill():
    """Guard against a scenario that decides nothing (then any two runs would agree)."""
    cmds = run_scenario()
    triggers = {(c.event["trigger"], c.event["decision"]) for c in cmds if isinstance(c, AddEvent)}
    assert {("periodic", "applied"), ("node-lost", "applied"), ("requested", "applied")} <= triggers
    assert any(isinstance(c, SaveMigration) for c in cmds)
    assert any(isinstance(c, DeleteTopology) and c.name == "r" for c in cmds)


def test_two_states_fed_the_same_events_decide_the_same_commands():
    assert run_scenario() == run_scenario()


def test_the_decisions_do_not_depend_on_the_hash_seed():
    """Set and dict orders of strings change with PYTHONHASHSEED; the commands must not."""
    digests = set()
    for seed in ("0", "1", "12345"):
        done = subprocess.run(
            [sys.executable, "-m", "tests.nimbus.replay_scenario"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=100,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert done.returncode == 0, done.stderr
        digests.add(done.stdout.strip())
    assert len(digests) == 1 and digest(run_scenario()) in digests


def test_step_decides_and_apply_carries_out():
    st = new_state(Store(":memory:"))
    register(st, "n1", [6700, 6701], 0.0)
    submit(st, "t", 0.0)
    decided = st.step(Received(CLI, M.KillTopology(rid=2, name="t", wait_s=1.0), 1.0))
    assert [r.name for r in st.store.load_topologies()] == ["t"] and st.store.load_topologies()[0].phase == "running"
    st.carry_out(decided)
    assert st.store.load_topologies()[0].phase == "killing"
    sends = st.apply(Tick(2.5))
    assert st.store.load_topologies() == [] and "t" not in st.topologies
    assert any(isinstance(s.msg, M.SupervisorAssignment) and s.msg.workers == [] for s in sends)
