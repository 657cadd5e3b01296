"""The board's side of fencing and of finding Nimbus, fed events (no sockets, no clock).

Assignments are ordered by (term, version): a higher term wins whatever its version, an
older term is refused and counted; a silent Nimbus makes the board look elsewhere without
touching its workers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from squall import messages as m
from squall.supervisor.state import (
    FetchTopology,
    ReconnectNimbus,
    SendNimbus,
    StartWorker,
    StopWorker,
    SupervisorState,
)
from tests.supervisor.test_supervisor_state import registration, worker


def assign(state: SupervisorState, term: int, version: int, *workers: m.WorkerAssignment, now: float = 0.0) -> list:
    return state.on_assignment(m.SupervisorAssignment("pi-1", version, list(workers), term=term), now)


@pytest.fixture
def state() -> SupervisorState:
    s = SupervisorState(registration())
    s.on_register_reply(m.RegisterReply(ok=True, term=3), 0.0)
    return s


def running(state: SupervisorState, *ports: int) -> SupervisorState:
    for port in ports:
        state.on_topology_ready("t", 0.0)
        state.on_worker_started(port, 40 + port, 0.0)
    return state


def test_a_higher_term_is_accepted_even_with_a_lower_version(state):
    assign(state, 3, 50, worker(6700, [1]))
    running(state, 6700)
    # A Nimbus on an empty data dir numbers from 1 again, in a newer term: the truth now.
    cmds = assign(state, 4, 1, worker(6701, [2], topology="u"))
    assert StopWorker(6700) in cmds and FetchTopology("u") in cmds
    assert (state.term, state.assignment_version) == (4, 1)
    assert state.refused_assignments == 0


def test_an_older_term_is_refused_and_counted_whatever_its_version(state, caplog):
    assign(state, 4, 2, worker(6700, [1]))
    running(state, 6700)
    assert assign(state, 3, 99) == []  # a deposed Nimbus would stop every worker: refused
    assert assign(state, 3, 100, worker(6701, [5])) == []
    assert state.refused_assignments == 2
    assert (state.term, state.assignment_version) == (4, 2)
    assert set(state.slots) == {6700} and state.slots[6700].alive
    assert "refused assignment version 99 of term 3" in caplog.text


def test_within_a_term_an_older_version_is_still_ignored_but_not_counted_as_fenced(state):
    assign(state, 3, 5, worker(6700, [1]))
    assert assign(state, 3, 4) == []  # a resend that crossed a newer one
    assert state.refused_assignments == 0 and state.assignment_version == 5
    assert assign(state, 3, 5, worker(6700, [1])) == []  # the same again: nothing to do
    cmds = assign(state, 3, 6)
    assert cmds == [] and not state.slots  # a newer version of the same term applies (nothing was running)


def test_registration_and_heartbeats_report_the_highest_term_accepted():
    s = SupervisorState(registration(), nimbus_timeout_s=None)
    (first,) = s.tick(0.0)
    assert first == SendNimbus(replace(registration(), term=0))
    s.on_register_reply(m.RegisterReply(ok=True, term=7), 0.1)
    s.on_assignment(m.SupervisorAssignment("pi-1", 12, [], term=7), 0.2)
    (beat,) = s.tick(1.2)
    assert isinstance(beat.msg, m.Heartbeat) and beat.msg.term == 7
    s.on_register_reply(m.RegisterReply(ok=False, reason="unknown supervisor; register again"), 1.3)
    (again,) = s.tick(2.3)
    assert again.msg.term == 7


def test_a_nimbus_without_terms_still_renumbers_on_registration():
    """Compatibility: a Nimbus that sends term 0 is ordered by version alone, and a new
    registration resets the numbering as before terms existed."""
    s = SupervisorState(registration())
    s.on_register_reply(m.RegisterReply(ok=True), 0.0)
    s.on_assignment(m.SupervisorAssignment("pi-1", 40, []), 0.0)
    s.on_register_reply(m.RegisterReply(ok=True), 1.0)  # a Nimbus that forgot this board
    s.on_assignment(m.SupervisorAssignment("pi-1", 1, [worker(6700, [1])]), 1.0)
    assert s.assignment_version == 1 and 6700 in s.slots


def test_a_silent_nimbus_is_left_for_another_once_per_timeout_and_workers_stay(state):
    state.nimbus_timeout_s = 3.0
    assign(state, 3, 1, worker(6700, [1]), now=0.0)
    running(state, 6700)
    state.on_heartbeat_ack(m.HeartbeatAck(1, term=3), 1.0)
    assert not [c for c in state.tick(3.9) if isinstance(c, ReconnectNimbus)]  # heard 2.9 s ago
    cmds = state.tick(4.0)
    assert ReconnectNimbus(3.0, attempt=1) in cmds
    assert not [c for c in cmds if isinstance(c, (StopWorker, StartWorker))]
    assert SendNimbus(replace(registration(), term=3)) in cmds  # registers there
    assert not state.registered and state.slots[6700].alive
    assert not [c for c in state.tick(6.9) if isinstance(c, ReconnectNimbus)]  # a full timeout at the new one
    assert [c for c in state.tick(7.0) if isinstance(c, ReconnectNimbus)] == [ReconnectNimbus(3.0, attempt=2)]
    state.on_heartbeat_ack(m.HeartbeatAck(2, term=3), 7.5)  # heard at the new address: a new count
    assert [c for c in state.tick(10.5) if isinstance(c, ReconnectNimbus)] == [ReconnectNimbus(3.0, attempt=1)]
    assert state.reconnects == 3


def test_any_frame_from_nimbus_counts_as_a_sign_of_life(state):
    state.nimbus_timeout_s = 3.0
    state.tick(0.0)
    state.on_assignment(m.SupervisorAssignment("pi-1", 1, [], term=3), 2.5)
    assert not [c for c in state.tick(5.0) if isinstance(c, ReconnectNimbus)]
    state.on_register_reply(m.RegisterReply(ok=False, reason="busy"), 7.0)
    assert not [c for c in state.tick(9.9) if isinstance(c, ReconnectNimbus)]


def test_a_board_that_never_heard_nimbus_looks_elsewhere_too():
    s = SupervisorState(registration(), nimbus_timeout_s=2.0)
    s.tick(0.0)
    assert not [c for c in s.tick(1.9) if isinstance(c, ReconnectNimbus)]
    assert ReconnectNimbus(2.0, attempt=1) in s.tick(2.0)


def test_a_nimbus_without_heartbeat_acks_is_not_left_for_its_silence():
    s = SupervisorState(registration(), nimbus_timeout_s=2.0)
    s.on_register_reply(m.RegisterReply(ok=True), 0.0)  # term 0: an older Nimbus, it never acks
    assert not [c for c in s.tick(60.0) if isinstance(c, ReconnectNimbus)]


def test_the_term_refusals_and_reconnects_are_exported_as_metrics(state):
    from types import SimpleNamespace

    from squall.supervisor.prom import SupervisorCollector

    assign(state, 4, 1)
    assign(state, 2, 9)  # refused
    state.nimbus_timeout_s = 1.0
    state.tick(0.0)
    state.tick(5.0)  # silent: one reconnect
    daemon = SimpleNamespace(facts=SimpleNamespace(supervisor_id="pi-1"), state=state, bad_frames=0)
    values = {s.name: s.value for family in SupervisorCollector(daemon).collect() for s in family.samples}
    assert values["squall_supervisor_nimbus_term"] == 4
    assert values["squall_supervisor_refused_assignments_total"] == 1
    assert values["squall_supervisor_nimbus_reconnects_total"] == 1


def test_a_stale_nimbus_s_acks_and_assignments_do_not_keep_the_board_from_moving(state):
    state.nimbus_timeout_s = 3.0
    assign(state, 5, 1, now=0.0)
    state.on_heartbeat_ack(m.HeartbeatAck(1, term=4), 2.0)  # a deposed leader, still talking
    assign(state, 4, 9, now=2.5)
    assert ReconnectNimbus(3.0, attempt=1) in state.tick(3.0)
