"""The worker's decisions, fed events and compared as commands (no sockets, no engine, no
clock): how a ``WorkerUpdate`` is applied, in order, and what bad control input does."""

from __future__ import annotations

import pytest

from squall import wire
from squall.messages import WorkerUpdate
from squall.supervisor.worker_plan import (
    AdoptVersion,
    Confirm,
    CountBad,
    ExecutorsMoved,
    MoveExecutors,
    Route,
    SetActive,
    SetPaused,
    WorkerView,
    plan,
    routes_for,
)
from squall.topology.spec import ExecutorSpec

# Executors 0 and 1 of component "a" (tasks 1-2 and 3), 2 of "b" (task 4), an acker 3 (task 5).
EXECUTORS = (
    ExecutorSpec(0, "a", 1, 2),
    ExecutorSpec(1, "a", 3, 3),
    ExecutorSpec(2, "b", 4, 4),
    ExecutorSpec(3, "__acker", 5, 5),
)
HERE, THERE = "10.0.0.1:6700", "10.0.0.2:6700"
PLACEMENT = {0: HERE, 1: HERE, 2: THERE, 3: THERE}


def view(local=(0, 1), version=1, active=True, paused=False) -> WorkerView:
    return WorkerView(EXECUTORS, frozenset(local), version, active, paused)


def update(version=2, placement=None, active=True, executors=None, paused=False, states=None) -> WorkerUpdate:
    return WorkerUpdate(
        placement=dict(PLACEMENT if placement is None else placement),
        active=active,
        assignment_version=version,
        executors=executors,
        paused=paused,
        states=dict(states or {}),
    )


def frame(msg) -> bytes:
    """A control frame as the worker receives it."""
    return wire.encode(msg)


REMOTE = {4: THERE, 5: THERE}  # the routes of the tasks of executors 2 and 3


def test_an_update_that_moves_nothing_routes_and_confirms_at_once():
    assert plan(view(), frame(update(version=2))) == [AdoptVersion(2, forget_released=True), Route(REMOTE), Confirm(2)]


def test_the_same_version_again_keeps_the_released_snapshots():
    cmds = plan(view(version=2), frame(update(version=2, executors=[0, 1])))
    assert cmds == [AdoptVersion(2, forget_released=False), Route(REMOTE), Confirm(2)]


@pytest.mark.parametrize(
    "active_before,active_after,expected",
    [(True, False, [SetActive(False)]), (False, True, [SetActive(True)]), (True, True, [])],
    ids=["deactivate", "activate", "unchanged"],
)
def test_activation_follows_the_routes_and_precedes_the_confirmation(active_before, active_after, expected):
    cmds = plan(view(active=active_before), frame(update(active=active_after)))
    assert cmds == [AdoptVersion(2, True), Route(REMOTE), *expected, Confirm(2)]


def test_pause_comes_before_executors_move_and_routes_change():
    u = update(paused=True, executors=[0])
    assert plan(view(), frame(u)) == [AdoptVersion(2, True), SetPaused(True), MoveExecutors(u, remove=(1,), add=())]


def test_executors_moving_in_bring_their_states_and_unknown_ids_are_ignored():
    u = update(executors=[0, 1, 2, 99], states={2: b"snap", 0: b"ignored: already here"})
    assert plan(view(), frame(u)) == [AdoptVersion(2, True), MoveExecutors(u, remove=(), add=((2, b"snap"),))]


def test_after_the_move_the_new_local_set_is_routed_and_the_version_confirmed():
    u = update(executors=[0, 2], placement={0: HERE, 1: "", 2: HERE, 3: THERE})
    cmds = plan(view(local=(0, 2)), ExecutorsMoved(u))
    assert cmds == [Route({3: "", 5: THERE}), Confirm(2)], "executor 1 in transit: its task is held"


def test_an_executor_that_failed_to_start_here_is_routed_nowhere_not_back_to_itself():
    u = update(executors=[0, 1, 2], placement={0: HERE, 1: HERE, 2: HERE, 3: THERE})
    cmds = plan(view(local=(0, 1)), ExecutorsMoved(u, failed=frozenset({2})))
    assert cmds == [Route({4: None, 5: THERE}), Confirm(2)]


def test_executors_none_keeps_the_local_set():
    assert plan(view(local=(0,)), frame(update(executors=None)))[1] == Route({3: HERE, 4: THERE, 5: THERE})


@pytest.mark.parametrize(
    "data,what",
    [
        (b"\x00garbage", "a malformed control frame"),
        (wire.encode(update())[:5], "a malformed control frame"),
    ],
    ids=["not a frame", "truncated"],
)
def test_a_malformed_control_frame_is_counted_and_changes_nothing(data, what):
    (cmd,) = plan(view(), data)
    assert isinstance(cmd, CountBad) and cmd.what.startswith(what) and cmd.n == 1


def test_a_message_that_is_not_an_update_is_counted_and_changes_nothing():
    from squall.messages import RegisterReply

    assert plan(view(), frame(RegisterReply(ok=True))) == [CountBad("an unexpected RegisterReply from the supervisor")]


def test_routes_name_every_task_not_run_here():
    routes = routes_for(EXECUTORS, frozenset({0}), {1: "", 2: THERE}, nowhere=frozenset({2}))
    assert routes == {3: "", 4: None, 5: None}, "in transit, nowhere by choice, nowhere by omission"
