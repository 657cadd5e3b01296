"""The spout pacer, on a clock the test gives (no sleeps)."""

from __future__ import annotations

import pytest

from squall.topology.pacing import Pacer


def emissions(pacer: Pacer, times: list[float]) -> list[float]:
    """The times at which ``pacer`` allowed an emission, asked once at each of ``times``."""
    return [t for t in times if pacer.ready(t)]


def test_one_emission_per_interval_on_schedule() -> None:
    pacer = Pacer(rate=10.0, now=0.0)  # every 0.1 s
    asked = [i * 0.025 for i in range(41)]  # 0 .. 1.0 s, four asks per interval
    allowed = emissions(pacer, asked)
    assert len(allowed) == 11, allowed  # 0, 0.1, ..., 1.0
    assert pacer.next_due() == pytest.approx(1.1)


@pytest.mark.parametrize(
    ("catch_up_s", "allowed_after_stall"),
    [
        pytest.param(0.0, 3, id="one interval behind at most"),
        pytest.param(0.35, 5, id="catch_up_s behind at most"),
    ],
)
def test_a_stall_is_made_up_only_as_far_as_catch_up_allows(catch_up_s: float, allowed_after_stall: int) -> None:
    pacer = Pacer(rate=10.0, catch_up_s=catch_up_s, now=0.0)
    assert pacer.ready(0.0)
    # Asleep for 5 s, then asked many times at the same instant: a burst is bounded.
    allowed = emissions(pacer, [5.0] * 100)
    assert len(allowed) == allowed_after_stall


def test_unpaced_is_always_ready_and_has_no_due_time() -> None:
    pacer = Pacer(rate=0.0, now=0.0)
    assert not pacer.paced
    assert emissions(pacer, [0.0] * 5) == [0.0] * 5
    assert pacer.next_due() is None


def test_not_ready_before_due() -> None:
    pacer = Pacer(rate=4.0, now=10.0)
    assert pacer.paced
    assert pacer.ready(10.0)
    assert not pacer.ready(10.2)
    assert pacer.next_due() == pytest.approx(10.25)
    assert pacer.ready(10.25)
