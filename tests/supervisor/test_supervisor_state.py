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
        supervisor_id="pi-1",
        host="127.0.0.1",
        ports=PORTS,
        capacity_hz=4e9,
        clock_hz=1.5e9,
        cores=4,
        memory_mb=4096,
        pid=1,
    )


def worker(
    port: int,
    executors: list[int],
    topology: str = "t",
    active: bool = True,
    version: int = 1,
    placement: dict[int, str] | None = None,
) -> m.WorkerAssignment:
    return m.WorkerAssignment(
        topology=topology,
        port=port,
        executors=executors,
        placement=placement or {e: f"127.0.0.1:{port}" for e in executors},
        active=active,
        assignment_version=version,
        conf={},
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
    assert s.registrations_sent == 2


def test_registration_requests_are_counted_until_one_is_accepted():
    s = SupervisorState(registration())
    for now in (0.0, 0.5, 1.0, 2.0, 2.5):
        s.tick(now)
    assert s.registrations_sent == 3  # at 0, 1 and 2 s: one per heartbeat period
    s.on_register_reply(m.RegisterReply(ok=True), 2.6)
    for now in (3.0, 4.0, 5.0):
        s.tick(now)
    assert s.registrations_sent == 3  # heartbeats from now on, not registrations


def test_fetches_code_once_then_starts_each_worker(state):
    w0, w1 = worker(6700, [0, 1]), worker(6701, [2])
    assert assign(state, 1, w0, w1) == [FetchTopology("t")]
    assert assign(state, 2, w0, w1) == []  # already fetching: no second fetch
    cmds = state.on_topology_ready("t", 0.0)
    assert cmds == [StartWorker(w0), StartWorker(w1)]


def test_ports_not_advertised_are_ignored(state):
    assert assign(state, 1, worker(9999, [0])) == []


def update(w: m.WorkerAssignment) -> UpdateWorker:
    """The live update a running worker gets for assignment ``w``: always the whole of it."""
    return UpdateWorker(
        w.port,
        m.WorkerUpdate(
            w.placement,
            w.active,
            w.assignment_version,
            executors=list(w.executors),
            paused=w.paused,
            states=dict(w.states),
        ),
    )


def running(state: SupervisorState, *workers: m.WorkerAssignment) -> None:
    assign(state, 1, *workers)
    state.on_topology_ready("t", 0.0)
    for w in workers:
        state.on_worker_started(w.port, w.port, 0.0)


def test_changed_executors_and_placement_update_the_worker_live(state):
    running(state, worker(6700, [0, 1]))
    moved = worker(6700, [0, 1], placement={0: "127.0.0.1:6700", 1: "127.0.0.1:6800"}, version=2)
    assert assign(state, 2, moved) == [update(moved)]
    changed = worker(6700, [0], placement={0: "127.0.0.1:6700", 1: ""}, version=3)
    assert assign(state, 3, changed) == [update(changed)], "an executor leaves: no restart"
    grown = worker(6700, [0, 2], version=4)
    assert assign(state, 4, grown) == [update(grown)], "an executor arrives: no restart"


def test_a_port_that_changes_topology_restarts_its_worker(state):
    running(state, worker(6700, [0, 1]))
    other = worker(6700, [0, 1], topology="u", version=2)
    assert assign(state, 2, other) == [StopWorker(6700), FetchTopology("u")]
    assert state.on_topology_ready("u", 1.0) == [StartWorker(other)]


def test_a_new_spec_restarts_the_worker_and_fetches_the_code_again(state):
    w = worker(6700, [0, 1])
    w = m.WorkerAssignment(**{**w.__dict__, "conf": {"topology.spec.digest": "aaa"}})
    running(state, w)
    rebalanced = m.WorkerAssignment(
        **{**w.__dict__, "assignment_version": 2, "executors": [0, 1, 2], "conf": {"topology.spec.digest": "bbb"}}
    )
    assert assign(state, 2, rebalanced) == [StopWorker(6700), FetchTopology("t")]
    assert state.on_topology_ready("t", 1.0) == [StartWorker(rebalanced)]


def test_migration_steps_reach_the_worker_with_pause_and_states(state):
    w = worker(6700, [0, 1])
    running(state, w)
    pause = m.WorkerAssignment(**{**w.__dict__, "assignment_version": 2, "paused": True})
    assert assign(state, 2, pause) == [update(pause)]
    acquire = m.WorkerAssignment(
        **{**pause.__dict__, "assignment_version": 3, "executors": [0, 1, 5], "states": {5: b"counts"}}
    )
    (cmd,) = assign(state, 3, acquire)
    assert cmd.update.executors == [0, 1, 5] and cmd.update.states == {5: b"counts"} and cmd.update.paused
    assert assign(state, 3, acquire) == [], "the same version again changes nothing"


def metrics() -> m.WorkerMetrics:
    return m.WorkerMetrics(at=1.0, clock_hz=1e9, executors=[])


def hb(version: int, paused: bool = False, released: dict[int, bytes] | None = None) -> m.WorkerHeartbeat:
    return m.WorkerHeartbeat(6700, 6700, "t", version, metrics(), paused=paused, released=released or {})


def test_reports_carry_the_workers_confirmed_version_pause_and_released_states(state):
    running(state, worker(6700, [0, 1]))
    state.on_worker_heartbeat(hb(1), 0.1)
    assign(state, 2, worker(6700, [0], version=2))
    (report,) = state.reports()
    assert report.assignment_version == 1, "version 2 is not confirmed yet"
    state.on_worker_heartbeat(hb(2, paused=True, released={1: b"snap"}), 0.2)
    (report,) = state.reports()
    assert (report.assignment_version, report.paused, report.released) == (2, True, {1: b"snap"})


def test_news_from_a_worker_go_to_nimbus_at_once(state):
    running(state, worker(6700, [0, 1]))
    state.tick(0.0)
    first = state.on_worker_heartbeat(hb(1), 0.1)
    assert [type(c.msg) for c in first if isinstance(c, SendNimbus)] == [m.Heartbeat], "a first heartbeat"
    assert state.on_worker_heartbeat(hb(1), 0.3) == [], "nothing new: wait for the tick"
    assign(state, 2, worker(6700, [0], version=2))
    cmds = state.on_worker_heartbeat(hb(2, paused=True, released={1: b"snap"}), 0.4)
    (sent,) = [c.msg for c in cmds if isinstance(c, SendNimbus)]
    assert sent.workers[0].released == {1: b"snap"} and sent.workers[0].assignment_version == 2
    assert state.on_worker_heartbeat(hb(2, paused=True, released={1: b"snap"}), 0.5) == [], (
        "the same released states again: not forwarded twice"
    )


def released_sent(state: SupervisorState, now: float) -> dict[int, bytes]:
    """The released snapshots of port 6700 in the heartbeat due at ``now``."""
    (cmd,) = [c for c in state.tick(now) if isinstance(c, SendNimbus)]
    assert isinstance(cmd.msg, m.Heartbeat)
    return cmd.msg.workers[0].released


def releasing(state: SupervisorState) -> int:
    """Port 6700 released executor 1's snapshot at version 2; the seq of the forwarded heartbeat."""
    running(state, worker(6700, [0, 1]))
    state.tick(0.0)
    state.on_worker_heartbeat(hb(1), 0.1)
    assign(state, 2, worker(6700, [0], version=2))
    (sent,) = [c.msg for c in state.on_worker_heartbeat(hb(2, paused=True, released={1: b"snap"}), 0.2)]
    assert sent.workers[0].released == {1: b"snap"}
    return sent.seq


def test_a_released_snapshot_is_sent_until_nimbus_says_it_took_it(state):
    seq = releasing(state)
    assert released_sent(state, 1.25) == {1: b"snap"}, "no word from Nimbus yet: sent again"
    state.on_heartbeat_ack(m.HeartbeatAck(seq, taken={6700: [1]}), 1.3)
    assert released_sent(state, 2.3) == {}, "taken: megabytes of queue are not sent with every heartbeat"
    assert state.slots[6700].released == {1: b"snap"}, "still kept: a new Nimbus may ask for it"


def test_an_ack_that_does_not_name_the_snapshot_leaves_it_in_the_reports(state):
    seq = releasing(state)
    state.on_heartbeat_ack(m.HeartbeatAck(seq, taken={6701: [1], 6700: [7]}), 1.1)
    assert released_sent(state, 2.0) == {1: b"snap"}


def test_an_ack_of_a_heartbeat_from_before_the_release_takes_nothing(state):
    seq = releasing(state)
    state.on_heartbeat_ack(m.HeartbeatAck(seq - 1, taken={6700: [1]}), 1.1)
    assert released_sent(state, 2.0) == {1: b"snap"}, "that ack spoke of an earlier snapshot of executor 1"


def test_a_new_registration_sends_the_taken_snapshots_again(state):
    seq = releasing(state)
    state.on_heartbeat_ack(m.HeartbeatAck(seq, taken={6700: [1]}), 1.1)
    state.on_register_reply(m.RegisterReply(ok=True), 1.5)  # e.g. a new Nimbus after a failover
    assert released_sent(state, 2.0) == {1: b"snap"}


def test_a_snapshot_released_at_a_new_version_is_sent_even_if_an_older_one_was_taken(state):
    seq = releasing(state)
    state.on_heartbeat_ack(m.HeartbeatAck(seq, taken={6700: [1]}), 1.1)
    assign(state, 4, worker(6700, [0], version=4))
    state.on_worker_heartbeat(hb(4, paused=True, released={1: b"snap at 4"}), 1.2)
    assert released_sent(state, 2.3) == {1: b"snap at 4"}


def test_deactivation_is_a_live_update(state):
    assign(state, 1, worker(6700, [0]))
    state.on_topology_ready("t", 0.0)
    state.on_worker_started(6700, 42, 0.0)
    off = worker(6700, [0], active=False, version=2)
    assert assign(state, 2, off) == [update(off)]


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
    assert [c for c in cmds if isinstance(c, UpdateWorker)] == [update(worker(6700, [0]))]


def test_unavailable_code_fails_the_workers_with_the_reason(state):
    assign(state, 1, worker(6700, [0]))
    state.on_topology_unavailable("t", "bundle corrupt", 0.0)
    assert state.slots[6700].state == "failed" and state.slots[6700].error == "bundle corrupt"
    assert [c for c in state.tick(10.0) if isinstance(c, StartWorker)] == []
