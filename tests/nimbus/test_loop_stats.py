"""What the server loop's time goes to: its steps by kind, and the garbage collector's pauses.

Unit tests of :class:`LoopStats`, then a real server loop (in-process, real sockets and HTTP
port, as in ``test_published_snapshot``) whose ``/metrics`` names the steps it took.
"""

from __future__ import annotations

import gc

import pytest

from squall import messages as M
from squall.nimbus.loop_stats import STEP_BUCKETS_S, LoopStats
from squall.wire import decode, encode
from tests.nimbus.test_published_snapshot import metrics_text, register, running  # noqa: F401  (a fixture)

pytestmark = pytest.mark.timeout(60)


def test_a_step_lands_in_the_first_bucket_whose_bound_holds_it():
    stats = LoopStats()
    stats.step("Heartbeat", 0.0004)
    stats.step("Heartbeat", 0.03)
    stats.step("Tick", 5.0)
    steps, _ = stats.read()
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
        _, pauses = stats.read()
        assert sum(pauses[2].counts) >= 1 and sum(pauses[0].counts) >= 1
        assert pauses[2].total_s > 0
    finally:
        stats.close()
    seen = sum(stats.read()[1][2].counts)
    gc.collect(2)
    assert sum(stats.read()[1][2].counts) == seen, "counted after close()"
    assert stats._on_gc not in gc.callbacks


def test_a_copy_read_is_not_changed_by_later_steps():
    stats = LoopStats()
    stats.step("Tick", 0.002)
    steps, _ = stats.read()
    stats.step("Tick", 0.002)
    assert sum(steps["Tick"].counts) == 1


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
