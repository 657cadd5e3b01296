"""The supervisor's decisions, fed events and compared as commands (no sockets, no clock)."""

from __future__ import annotations

import pytest

from squall import messages as m
from squall.supervisor.state import (
    MAX_FAST_FAILURES,
    FetchTopology,
    SendNimbus,
    StartWorker,
    StopWorker,
    SupervisorState,
    UpdateWorker,
)

PORTS = [6700, 6701]


def registration() -> m.RegisterSupervisor:
    return m.RegisterSupervisor(
        supervisor_id="pi-1", host="127.0.0.1", ports=PORTS, capacity_hz=4e9, clock_hz=1.5e9,
        cores=4, memory_mb=4096, pid=1,
    )


def worker(port: int, executors: list[int], topology: str = "t", active: bool = True, version: int = 1,
           placement: dict[int, str] | None = None) -> m.WorkerAssignment:
    return m.WorkerAssignment(
        topology=topology, port=port, executors=executors,
        placement=placement or {e: f"127.0.0.1:{port}" for e in executors},
        active=active, assignment_version=version, conf={},
    )


def assign(state: SupervisorState, version: int, *workers: m.WorkerAssignment, now: float = 0.0) -> list:
    return state.on_assignment(m.SupervisorAssignment("pi-1", version, list(workers)), now)


@pytest.fixture
def state() -> SupervisorState:
    s = SupervisorState(registration())
    s.on_register_reply(m.RegisterReply(ok=True), 0.0)
    return s


def test_registers_until_accepted_then_heartbeats():
    s = SupervisorState(registration())
    assert s.tick(0.0) == [SendNimbus(registration())]
    assert s.tick(0.5) == []  # not before the heartbeat interval
    assert s.tick(1.0) == [SendNimbus(registration())]
    s.on_register_reply(m.RegisterReply(ok=True), 1.1)
    (cmd,) = s.tick(1.1)
    assert isinstance(cmd.msg, m.Heartbeat) and cmd.msg.supervisor_id == "pi-1" and cmd.msg.seq == 1


def test_refused_registration_is_retried():
    s = SupervisorState(registration())
    s.tick(0.0)
    s.on_register_reply(m.RegisterReply(ok=False, reason="id pi-1 is alive"), 0.1)
    assert not s.registered
    assert s.tick(1.2) == [SendNimbus(registration())]


def test_fetches_code_once_then_starts_each_worker(state):
    w0, w1 = worker(6700, [0, 1]), worker(6701, [2])
    assert assign(state, 1, w0, w1) == [FetchTopology("t")]
    assert assign(state, 2, w0, w1) == []  # already fetching: no second fetch
    cmds = state.on_topology_ready("t", 0.0)
    assert cmds == [StartWorker(w0), StartWorker(w1)]


def test_ports_not_advertised_are_ignored(state):
    assert assign(state, 1, worker(9999, [0])) == []


def test_changed_executors_restart_but_placement_change_updates_live(state):
    w0 = worker(6700, [0, 1])
    assign(state, 1, w0)
    state.on_topology_ready("t", 0.0)
    state.on_worker_started(6700, 42, 0.0)
    moved = worker(6700, [0, 1], placement={0: "127.0.0.1:6700", 1: "127.0.0.1:6800"}, version=2)
    assert assign(state, 2, moved) == [
        UpdateWorker(6700, m.WorkerUpdate(moved.placement, True, 2))
    ]
    changed = worker(6700, [0], version=3)
    assert assign(state, 3, changed) == [StopWorker(6700), StartWorker(changed)]


def test_deactivation_is_a_live_update(state):
    assign(state, 1, worker(6700, [0]))
    state.on_topology_ready("t", 0.0)
    state.on_worker_started(6700, 42, 0.0)
    cmds = assign(state, 2, worker(6700, [0], active=False, version=2))
    assert cmds == [UpdateWorker(6700, m.WorkerUpdate({0: "127.0.0.1:6700"}, False, 2))]


def test_workers_no_longer_assigned_are_stopped(state):
    assign(state, 1, worker(6700, [0]), worker(6701, [1]))
    state.on_topology_ready("t", 0.0)
    for port in PORTS:
        state.on_worker_started(port, port, 0.0)
    assert assign(state, 2, worker(6700, [0])) == [StopWorker(6701)]
    assert assign(state, 3) == [StopWorker(6700)]
    assert state.slots == {}


def test_stale_assignment_is_ignored(state):
    assign(state, 5, worker(6700, [0]))
    assert assign(state, 4, worker(6701, [1])) == []


def test_a_dead_worker_is_restarted_at_once(state):
    w0 = worker(6700, [0])
    assign(state, 1, w0)
    state.on_topology_ready("t", 0.0)
    state.on_worker_started(6700, 42, 0.0)
    assert state.on_worker_exited(6700, -9, 30.0) == [StartWorker(w0)]
    assert state.slots[6700].restarts == 1


def test_a_crash_looping_worker_backs_off_then_is_marked_failed(state):
    w0 = worker(6700, [0])
    assign(state, 1, w0)
    state.on_topology_ready("t", 0.0)
    now = 0.0
    starts = 0
    for _ in range(20):
        state.on_worker_started(6700, 1, now)
        cmds = state.on_worker_exited(6700, 1, now + 0.1)
        now += 0.1
        while not cmds and state.slots[6700].restart_at is not None:
            now += 0.25
            cmds = state.tick(now)
            cmds = [c for c in cmds if isinstance(c, StartWorker)]
        if not cmds:
            break
        starts += 1
    assert starts == MAX_FAST_FAILURES - 1
    slot = state.slots[6700]
    assert slot.state == "failed" and "gave up" in slot.error
    assert [c for c in state.tick(now + 100) if isinstance(c, StartWorker)] == []
    report = state.reports()[0]
    assert report.state == "failed" and report.error


def test_heartbeat_carries_worker_metrics(state):
    assign(state, 1, worker(6700, [0]))
    state.on_topology_ready("t", 0.0)
    state.on_worker_started(6700, 42, 0.0)
    metrics = m.WorkerMetrics(at=1.0, clock_hz=1e9, executors=[m.ExecutorMetrics(0, "spout", emitted=5)])
    state.on_worker_heartbeat(m.WorkerHeartbeat(6700, 42, "t", 1, metrics), 0.5)
    (cmd,) = [c for c in state.tick(5.0) if isinstance(c, SendNimbus)]
    (report,) = cmd.msg.workers
    assert report.state == "running" and report.pid == 42 and report.metrics == metrics


def test_a_worker_behind_on_its_assignment_is_updated(state):
    assign(state, 1, worker(6700, [0]))
    state.on_topology_ready("t", 0.0)
    state.on_worker_started(6700, 42, 0.0)
    metrics = m.WorkerMetrics(at=1.0, clock_hz=1e9, executors=[])
    cmds = state.on_worker_heartbeat(m.WorkerHeartbeat(6700, 42, "t", 0, metrics), 0.5)
    assert cmds == [UpdateWorker(6700, m.WorkerUpdate({0: "127.0.0.1:6700"}, True, 1))]


def test_unavailable_code_fails_the_workers_with_the_reason(state):
    assign(state, 1, worker(6700, [0]))
    state.on_topology_unavailable("t", "bundle corrupt", 0.0)
    assert state.slots[6700].state == "failed" and state.slots[6700].error == "bundle corrupt"
    assert [c for c in state.tick(10.0) if isinstance(c, StartWorker)] == []
