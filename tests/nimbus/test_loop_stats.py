"""What the server loop's time goes to: its steps by kind, and the garbage collector's pauses.

Unit tests of :class:`LoopStats`, then a real server loop (in-process, real sockets and HTTP
port, as in ``test_published_snapshot``) whose ``/metrics`` names the steps it took.
"""

from __future__ import annotations

import gc

import pytest

from squall import messages as M
from squall.nimbus.loop_stats import SLOW_TURN_S, STEP_BUCKETS_S, LoopStats
from squall.wire import decode, encode
from tests.nimbus.test_published_snapshot import metrics_text, register, running  # noqa: F401  (a fixture)

pytestmark = pytest.mark.timeout(60)


def test_a_step_lands_in_the_first_bucket_whose_bound_holds_it():
    stats = LoopStats()
    stats.step("Heartbeat", 0.0004)
    stats.step("Heartbeat", 0.03)
    stats.step("Tick", 5.0)
    steps = stats.read().steps
    assert steps["Heartbeat"].counts[0] == 1  # <= 1 ms
    assert steps["Heartbeat"].counts[STEP_BUCKETS_S.index(0.05)] == 1  # 25 ms < 30 ms <= 50 ms
    assert steps["Tick"].counts[-1] == 1  # above every bound: +Inf
    assert steps["Heartbeat"].total_s == pytest.approx(0.0304)


def test_collections_are_counted_by_generation_while_installed_only():
    stats = LoopStats()
    stats.install()
    try:
        gc.collect(2)
        gc.collect(0)
        pauses = stats.read().gc_pauses
        assert sum(pauses[2].counts) >= 1 and sum(pauses[0].counts) >= 1
        assert pauses[2].total_s > 0
    finally:
        stats.close()
    seen = sum(stats.read().gc_pauses[2].counts)
    gc.collect(2)
    assert sum(stats.read().gc_pauses[2].counts) == seen, "counted after close()"
    assert stats._on_gc not in gc.callbacks


def test_a_copy_read_is_not_changed_by_later_steps():
    stats = LoopStats()
    stats.step("Tick", 0.002)
    steps = stats.read().steps
    stats.step("Tick", 0.002)
    assert sum(steps["Tick"].counts) == 1


def test_a_step_s_cpu_time_is_kept_beside_its_wall_time():
    stats = LoopStats()
    stats.step("Heartbeat", 0.030, 0.0004)  # waited: 30 ms of wall, 0.4 ms on a CPU
    stats.step("Tick", 0.002)  # no CPU measured: only the wall histogram
    read = stats.read()
    assert read.steps["Heartbeat"].counts[STEP_BUCKETS_S.index(0.05)] == 1
    assert read.step_cpu["Heartbeat"].counts[0] == 1
    assert read.step_cpu["Heartbeat"].total_s == pytest.approx(0.0004)
    assert "Tick" not in read.step_cpu


def test_a_slow_turn_is_counted_by_its_longest_step():
    stats = LoopStats()
    stats.step("Heartbeat", 0.004, 0.004)
    stats.step("Tick", 0.030, 0.010)
    stats.step("Heartbeat", 0.004, 0.004)
    stats.turn(0.040, 0.020)
    stats.step("Tick", 0.030, 0.030)
    stats.turn(0.020, 0.020)  # under SLOW_TURN_S: in the histograms, not among the slow turns
    stats.step("publish", 0.001, 0.001)
    stats.turn(0.030, 0.001)  # its longest step was 1 ms: the rest was between the steps
    read = stats.read()
    assert sum(read.turns.counts) == 3 and read.turn_cpu.total_s == pytest.approx(0.041)
    assert set(read.slow_turns) == {"Tick", "publish"}
    tick = read.slow_turns["Tick"]
    assert (tick.count, tick.wall_s, tick.cpu_s) == (1, pytest.approx(0.040), pytest.approx(0.020))
    assert read.slow_turns["publish"].count == 1


def test_a_collection_on_the_loop_s_thread_can_be_a_turn_s_longest_part():
    stats = LoopStats()
    stats.install()  # this thread is the loop's
    try:
        stats.step("Heartbeat", 0.0, 0.0)
        gc.collect(2)
        pause = stats.read().gc_pauses[2].total_s
        stats.turn(2 * SLOW_TURN_S, 0.0)  # counted as slow whatever the collection took
    finally:
        stats.close()
    read = stats.read()
    assert pause > 0 and read.gc_cpu[2].total_s > 0
    assert set(read.slow_turns) == {"gc gen2"}


def count_of(text: str, family: str, label: str) -> float:
    for line in text.splitlines():
        if line.startswith(f"{family}_count{{{label}}} "):
            return float(line.split()[1])
    raise AssertionError(f"{family}_count{{{label}}} is not in /metrics")


def test_metrics_name_the_loop_s_steps_and_the_collector_s_pauses(running):  # noqa: F811
    register(running, "n1")
    running.peer.send(encode(M.Heartbeat("n1", 1, [])))
    while True:  # the board's first assignment may come before the ack
        assert running.peer.poll(5000), "no HeartbeatAck"
        if isinstance(decode(running.peer.recv()), M.HeartbeatAck):
            break
    gc.collect(2)  # the loop runs in this process: its hook times this one too
    text = metrics_text(running.base)
    assert count_of(text, "squall_nimbus_loop_step_seconds", 'kind="RegisterSupervisor"') == 1.0
    assert count_of(text, "squall_nimbus_loop_step_seconds", 'kind="Heartbeat"') == 1.0
    assert count_of(text, "squall_nimbus_gc_pause_seconds", 'generation="2"') >= 1.0
    assert 'squall_nimbus_loop_step_seconds_bucket{kind="Heartbeat",le="+Inf"} 1.0' in text
    assert count_of(text, "squall_nimbus_loop_step_cpu_seconds", 'kind="Heartbeat"') == 1.0
    assert count_of(text, "squall_nimbus_gc_pause_cpu_seconds", 'generation="2"') >= 1.0
    turns = next(line for line in text.splitlines() if line.startswith("squall_nimbus_loop_turn_seconds_count "))
    assert float(turns.split()[1]) >= 2.0  # at least the registration's turn and the heartbeat's
