"""The XOR acker on its own: messages of one tree may arrive in any order (across workers an
ack can beat the spout's init), a tree completes only once its init arrived and its value is
zero, a failure wins, and entries older than two timeout periods are forgotten."""

from __future__ import annotations

from typing import Any

from squall.supervisor.runtime.acker import AckerExecutor
from squall.supervisor.runtime.engine import Wiring
from squall.supervisor.runtime.messages import ACK_ACK, ACK_FAIL, ACK_INIT, TREE_COMPLETE, TREE_FAILED
from squall.topology import TopologySpec
from squall.topology.spec import ACKER_COMPONENT, ComponentSpec, ExecutorSpec, StreamSpec
from tests.runtime.runtime_helpers import FakeClock

SPOUT_TASK, ACKER_TASK = 1, 2
ROOT = 0xDEADBEEF
E1, E2, E3 = 0x1111, 0x2222, 0x4444


def _acker(clock: FakeClock | None = None, timeout_s: float = 30.0) -> tuple[AckerExecutor, list[Any]]:
    spec = TopologySpec("t", (ComponentSpec("s", "spout", "m:S", outputs=(StreamSpec("default", ("x",)),)),))
    wiring = Wiring(spec, [ACKER_TASK], frozenset({SPOUT_TASK, ACKER_TASK}), clock or FakeClock(), 0)
    to_spout: list[Any] = []
    wiring.sinks[SPOUT_TASK] = to_spout.append
    acker = AckerExecutor(ExecutorSpec(1, ACKER_COMPONENT, ACKER_TASK, ACKER_TASK), wiring, timeout_s)
    return acker, to_spout


def _feed(acker: AckerExecutor, *messages: tuple) -> None:
    for msg in messages:
        acker.inbox.append((ACKER_TASK, msg))
    acker.drain(1000)


def test_a_tree_completes_when_every_edge_was_acked() -> None:
    acker, out = _acker()
    # The spout emitted two tuples (E1, E2); the first bolt anchored E3 on the E1 tuple.
    _feed(acker, (ACK_INIT, ROOT, E1 ^ E2, SPOUT_TASK), (ACK_ACK, ROOT, E1 ^ E3), (ACK_ACK, ROOT, E2))
    assert out == []
    _feed(acker, (ACK_ACK, ROOT, E3))
    assert out == [(SPOUT_TASK, (TREE_COMPLETE, ROOT))]
    assert acker.stats.acked == 1 and not acker.current and not acker.previous


def test_acks_arriving_before_the_init_wait_for_it() -> None:
    acker, out = _acker()
    _feed(acker, (ACK_ACK, ROOT, E1), (ACK_ACK, ROOT, E2))
    assert out == []  # value zero would be premature without the init
    _feed(acker, (ACK_INIT, ROOT, E1 ^ E2, SPOUT_TASK))
    assert out == [(SPOUT_TASK, (TREE_COMPLETE, ROOT))]


def test_a_failure_is_reported_even_if_it_beats_the_init() -> None:
    acker, out = _acker()
    _feed(acker, (ACK_FAIL, ROOT))
    assert out == []
    _feed(acker, (ACK_INIT, ROOT, E1, SPOUT_TASK))
    assert out == [(SPOUT_TASK, (TREE_FAILED, ROOT))]
    assert acker.stats.failed == 1


def test_a_failure_after_the_init_is_reported_at_once_and_later_acks_are_ignored() -> None:
    acker, out = _acker()
    _feed(acker, (ACK_INIT, ROOT, E1 ^ E2, SPOUT_TASK), (ACK_FAIL, ROOT))
    assert out == [(SPOUT_TASK, (TREE_FAILED, ROOT))]
    _feed(acker, (ACK_ACK, ROOT, E1), (ACK_ACK, ROOT, E2))
    assert out == [(SPOUT_TASK, (TREE_FAILED, ROOT))]


def test_entries_older_than_two_timeout_periods_are_forgotten() -> None:
    clock = FakeClock()
    acker, out = _acker(clock, timeout_s=1.0)
    _feed(acker, (ACK_INIT, ROOT, E1 ^ E2, SPOUT_TASK))
    clock.advance(1.0)
    acker.rotate(clock())
    assert ROOT in acker.previous  # one period: still known
    clock.advance(1.0)
    acker.rotate(clock())
    assert ROOT not in acker.previous and ROOT not in acker.current
