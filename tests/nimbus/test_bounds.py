"""Bounds: every numeric setting has an upper end too (refused with the key and the range),
``topology.max.spout.pending`` has a default, and silent boards are forgotten.

Findings reproduced: ``topology.metrics.window.secs=1e12`` was accepted (every rate
computation slower forever); 2,000 fake boards stayed as 2,002 rows and metric series;
``topology.max.spout.pending`` defaulted to unlimited."""

from __future__ import annotations

import pytest

from squall import messages as M
from squall.cli import main
from squall.nimbus import config as C
from squall.nimbus.store import Store
from squall.supervisor.state import SupervisorState
from tests.nimbus.nimbus_helpers import heartbeat, new_state, register, reply, submit


@pytest.mark.parametrize(
    "key, value",
    [
        pytest.param("topology.metrics.window.secs", 1e12, id="the finding: a window of 1e12 s"),
        pytest.param("topology.message.timeout.secs", 1e9, id="a timeout of 30 years"),
        pytest.param("topology.max.spout.pending", 0, id="no tuple may be pending"),
        pytest.param("topology.max.spout.pending", None, id="unlimited pending"),
        pytest.param("squall.transfer.batch.size", 10**9, id="a batch of a billion"),
        pytest.param("topology.traffic.improvement", 250.0, id="more than 100 percent"),
        pytest.param("topology.probation.p99.worse", -5.0, id="a p99 margin below zero"),
        pytest.param("topology.probation.avg.worse", "ten", id="a margin that is not a number"),
        pytest.param("squall.transfer.hwm", 2.5, id="a fraction where an integer is needed"),
        pytest.param("topology.tick.tuple.freq.secs", float("inf"), id="infinity"),
    ],
)
def test_a_submit_with_an_out_of_range_setting_is_refused_naming_key_and_range(key, value):
    st = new_state()
    register(st, "n1", [6700, 6701], 0.0)
    answer = reply(submit(st, "t", 0.0, conf={key: value}))
    assert not answer.ok and key in answer.error and " to " in answer.error, answer.error
    assert "t" not in st.topologies


def test_max_spout_pending_has_a_default_and_takes_a_value_in_range():
    conf = C.resolve_topology_conf({}, {}, 1)
    assert conf[C.MAX_SPOUT_PENDING] == C.DEFAULT_MAX_SPOUT_PENDING
    assert C.resolve_topology_conf({}, {C.MAX_SPOUT_PENDING: 50}, 1)[C.MAX_SPOUT_PENDING] == 50


def test_nimbus_refuses_an_out_of_range_set_with_exit_2(tmp_path, capsys):
    assert (
        main(
            [
                "nimbus",
                "--set",
                "nimbus.supervisor.timeout.secs=1e9",
                "--data-dir",
                str(tmp_path / "d"),
                "--http-port",
                "0",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "nimbus.supervisor.timeout.secs" in err and "3600" in err
    assert (
        main(
            [
                "nimbus",
                "--set",
                "nimbus.bundle.max.bytes=1073741824",
                "--data-dir",
                str(tmp_path / "d"),
                "--http-port",
                "0",
            ]
        )
        == 2
    )


def test_silent_boards_are_forgotten_after_the_retention_unless_a_placement_names_them():
    store = Store(":memory:")
    st = new_state(store, **{C.RETENTION: 60.0})
    for k in range(50):  # the finding: registrations nobody follows up
        register(st, f"fake-{k}", [7000], 0.0)
    register(st, "n1", [6700, 6701], 0.0)
    assert reply(submit(st, "t", 0.0, workers=1)).ok
    placed_on = {s.node for s in st.topologies["t"].placement.values()}
    t = 0.0
    while t < 120:
        t += 1.0
        for node in placed_on:
            heartbeat(st, node, t)
        st.tick(t)
    kept = set(st.supervisors)
    assert kept == placed_on and st.counters["boards_pruned"] == 51 - len(placed_on)
    assert {s.id for s in store.load_supervisors()} == kept


def test_a_supervisor_accepts_a_new_numbering_after_registering_again():
    reg = M.RegisterSupervisor("n1", "127.0.0.1", [6700], 1e9, 1e9, 1, 512, 1)
    s = SupervisorState(reg)
    s.on_register_reply(M.RegisterReply(ok=True), 0.0)
    s.on_assignment(M.SupervisorAssignment("n1", 57, []), 0.0)
    worker = M.WorkerAssignment("t", 6700, [1], {1: "127.0.0.1:6700"}, True, 1, {})
    assert s.on_assignment(M.SupervisorAssignment("n1", 3, [worker]), 1.0) == []  # older: ignored
    s.on_register_reply(M.RegisterReply(ok=True), 2.0)  # Nimbus forgot this board and took it back
    assert s.on_assignment(M.SupervisorAssignment("n1", 1, [worker]), 3.0) != []
    assert 6700 in s.slots
