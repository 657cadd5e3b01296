"""Snapshots of executors migrating onto a board: fetched once each, one at a time, kept
while the assignment names them, handed to the worker only when all it takes over are
here — the supervisor's state machine fed events, compared as commands (no sockets)."""

from __future__ import annotations

import dataclasses
from hashlib import sha256

import pytest

from squall import messages as m
from squall.supervisor.arriving_states import RETRY_S, SLOW_LINK_BYTES_S, FetchSnapshot
from squall.supervisor.state import FetchTopology, StartWorker, SupervisorState, UpdateWorker
from tests.supervisor.test_supervisor_state import assign, registration, running, update, worker

STATE_5, STATE_6 = b"five" * 1000, b"six" * 2000


def ref(data: bytes) -> m.StateRef:
    return m.StateRef(sha256(data).hexdigest(), len(data))


def fetch(ex: int, data: bytes) -> FetchSnapshot:
    return FetchSnapshot("t", ex, ref(data).digest)


def answer(ex: int, data: bytes) -> m.Reply:
    return m.Reply(rid=1, ok=True, data={"topology": "t", "executor": ex, "digest": ref(data).digest, "state": data})


def acquire(w: m.WorkerAssignment, version: int, executors: list[int], refs: dict[int, bytes]) -> m.WorkerAssignment:
    """``w`` in a migration's ACQUIRE: paused, taking over ``executors``, naming ``refs``."""
    return dataclasses.replace(
        w,
        assignment_version=version,
        executors=executors,
        paused=True,
        state_refs={ex: ref(data) for ex, data in refs.items()},
    )


def with_states(w: m.WorkerAssignment, states: dict[int, bytes]) -> m.WorkerAssignment:
    return dataclasses.replace(w, states=states, state_refs={})


@pytest.fixture
def state() -> SupervisorState:
    s = SupervisorState(registration())
    s.on_register_reply(m.RegisterReply(ok=True), 0.0)
    return s


def test_the_worker_gets_its_update_once_the_snapshot_it_takes_over_is_here(state):
    w = worker(6700, [0, 1])
    running(state, w)
    acq = acquire(w, 3, [0, 1, 5], {5: STATE_5})
    assert assign(state, 3, acq, now=1.0) == [fetch(5, STATE_5)]  # no update while it is on its way
    cmds = state.on_snapshot_reply(fetch(5, STATE_5).key, answer(5, STATE_5), 1.5)
    assert cmds == [update(with_states(acq, {5: STATE_5}))]
    assert state.snapshots.fetches == 1 and state.snapshots.bytes_fetched == len(STATE_5)


def test_a_pushed_again_assignment_fetches_nothing_not_even_after_a_re_registration(state):
    w = worker(6700, [0, 1])
    running(state, w)
    acq = acquire(w, 3, [0, 1, 5], {5: STATE_5})
    assign(state, 3, acq, now=1.0)
    state.on_snapshot_reply(fetch(5, STATE_5).key, answer(5, STATE_5), 1.5)
    assert assign(state, 4, acq, now=2.0) == []  # Nimbus resent it (a new push, same worker)
    state.on_register_reply(m.RegisterReply(ok=True, term=1), 3.0)  # the board registered again
    assert assign(state, 5, acq, now=3.1) == []  # the push that follows a registration
    assert state.snapshots.fetches == 1


def test_one_fetch_in_flight_at_a_time(state):
    w0, w1 = worker(6700, [0, 1]), worker(6701, [2])
    running(state, w0, w1)
    a0, a1 = acquire(w0, 3, [0, 1, 5], {5: STATE_5}), acquire(w1, 3, [2, 6], {6: STATE_6})
    assert assign(state, 3, a0, a1, now=1.0) == [fetch(5, STATE_5)]
    got = state.on_snapshot_reply(fetch(5, STATE_5).key, answer(5, STATE_5), 1.2)
    assert got == [fetch(6, STATE_6), update(with_states(a0, {5: STATE_5}))]  # the next asked only now
    got = state.on_snapshot_reply(fetch(6, STATE_6).key, answer(6, STATE_6), 1.4)
    assert got == [update(with_states(a1, {6: STATE_6}))]


def test_a_new_worker_starts_once_its_snapshots_are_here(state):
    running(state, worker(6700, [0, 1]))
    new = acquire(worker(6701, [5]), 3, [5], {5: STATE_5})
    assert assign(state, 3, worker(6700, [0, 1], version=3), new, now=1.0) == [
        fetch(5, STATE_5),
        update(worker(6700, [0, 1], version=3)),
    ]
    assert not any(isinstance(c, StartWorker) for c in state.tick(1.1))  # its code is here, its state not
    cmds = state.on_snapshot_reply(fetch(5, STATE_5).key, answer(5, STATE_5), 1.5)
    assert cmds == [StartWorker(with_states(new, {5: STATE_5}))]


def test_a_worker_restarted_during_acquire_gets_the_cached_snapshot_again(state):
    w = worker(6700, [0, 1])
    running(state, w)
    acq = acquire(w, 3, [0, 1, 5], {5: STATE_5})
    assign(state, 3, acq, now=1.0)
    state.on_snapshot_reply(fetch(5, STATE_5).key, answer(5, STATE_5), 1.5)
    cmds = state.on_worker_exited(6700, -9, 20.0)
    assert cmds == [StartWorker(with_states(acq, {5: STATE_5}))] and state.snapshots.fetches == 1


def test_a_refused_fetch_lets_the_executor_start_without_its_state(state, caplog):
    w = worker(6700, [0, 1])
    running(state, w)
    acq = acquire(w, 3, [0, 1, 5], {5: STATE_5})
    assign(state, 3, acq, now=1.0)
    refused = m.Reply(rid=1, ok=False, error="no snapshot of executor 5 of topology 't': the topology is not migrating")
    cmds = state.on_snapshot_reply(fetch(5, STATE_5).key, refused, 1.5)
    assert cmds == [update(with_states(acq, {}))]
    assert "executor 5" in caplog.text and "not migrating" in caplog.text


def test_bytes_that_do_not_match_the_digest_are_not_restored(state, caplog):
    w = worker(6700, [0, 1])
    running(state, w)
    acq = acquire(w, 3, [0, 1, 5], {5: STATE_5})
    assign(state, 3, acq, now=1.0)
    wrong = m.Reply(rid=1, ok=True, data={"state": b"something else"})
    assert state.on_snapshot_reply(fetch(5, STATE_5).key, wrong, 1.5) == [update(with_states(acq, {}))]
    assert "do not match the digest" in caplog.text


def test_an_unanswered_fetch_is_asked_again_after_its_transfer_time_and_a_late_reply_is_ignored(state):
    w = worker(6700, [0, 1])
    running(state, w)
    acq = acquire(w, 3, [0, 1, 5], {5: STATE_5})
    assign(state, 3, acq, now=1.0)
    due = 1.0 + RETRY_S + len(STATE_5) / SLOW_LINK_BYTES_S
    assert fetch(5, STATE_5) not in state.tick(due - 0.01)
    assert fetch(5, STATE_5) in state.tick(due)
    assert state.snapshots.fetches == 2
    first = state.on_snapshot_reply(fetch(5, STATE_5).key, answer(5, STATE_5), due + 0.5)
    assert first == [update(with_states(acq, {5: STATE_5}))]
    assert state.on_snapshot_reply(fetch(5, STATE_5).key, answer(5, STATE_5), due + 0.6) == []  # the retry's answer


def test_a_fetch_that_could_not_leave_is_sent_at_the_next_tick(state):
    w = worker(6700, [0, 1])
    running(state, w)
    assign(state, 3, acquire(w, 3, [0, 1, 5], {5: STATE_5}), now=1.0)
    state.snapshots.unsent(fetch(5, STATE_5).key)  # no link to Nimbus, or Nimbus changed
    assert fetch(5, STATE_5) in state.tick(1.1)


def test_the_snapshot_is_dropped_once_no_assignment_names_it(state):
    w = worker(6700, [0, 1])
    running(state, w)
    acq = acquire(w, 3, [0, 1, 5], {5: STATE_5})
    assign(state, 3, acq, now=1.0)
    state.on_snapshot_reply(fetch(5, STATE_5).key, answer(5, STATE_5), 1.5)
    assert state.snapshots.held
    resumed = dataclasses.replace(acq, assignment_version=4, paused=False, state_refs={})
    assert assign(state, 4, resumed, now=2.0) == [update(resumed)]
    assert state.snapshots.held == {} and state.snapshots.wanted == {}


def test_a_supervisor_that_restarts_mid_migration_fetches_again():
    fresh = SupervisorState(registration())
    fresh.on_register_reply(m.RegisterReply(ok=True), 0.0)
    new = acquire(worker(6700, [5]), 3, [5], {5: STATE_5})
    assert assign(fresh, 3, new, now=1.0) == [fetch(5, STATE_5), FetchTopology("t")]
    assert fresh.on_topology_ready("t", 1.2) == []  # the code is here, the snapshot not yet
    assert fresh.on_snapshot_reply(fetch(5, STATE_5).key, answer(5, STATE_5), 1.5) == [
        StartWorker(with_states(new, {5: STATE_5}))
    ]


def test_inline_states_of_an_older_nimbus_still_reach_the_worker(state):
    w = worker(6700, [0, 1])
    running(state, w)
    inline = dataclasses.replace(w, assignment_version=3, executors=[0, 1, 5], paused=True, states={5: STATE_5})
    assert assign(state, 3, inline, now=1.0) == [update(inline)]
    assert state.snapshots.fetches == 0


def test_updates_carry_states_only_in_the_update_not_in_what_the_slot_keeps(state):
    w = worker(6700, [0, 1])
    running(state, w)
    acq = acquire(w, 3, [0, 1, 5], {5: STATE_5})
    assign(state, 3, acq, now=1.0)
    state.on_snapshot_reply(fetch(5, STATE_5).key, answer(5, STATE_5), 1.5)
    assert state.slots[6700].assignment == acq  # the references, as Nimbus sent them
    (cmd,) = state.on_worker_heartbeat(
        m.WorkerHeartbeat(6700, 6700, "t", 2, m.WorkerMetrics(at=1.0, clock_hz=1e9, executors=[])), 2.0
    )[:1]
    assert isinstance(cmd, UpdateWorker) and cmd.update.states == {5: STATE_5}  # a worker behind catches up
