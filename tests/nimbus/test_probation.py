"""Every rebalance on probation: the pure rules, and NimbusState rolling back a change that
made latency worse — driven by synthetic heartbeats and ticks, no sockets."""

from __future__ import annotations

from squall import messages as M
from squall.nimbus.probation import (
    KEPT,
    MIN_SAMPLES,
    MIN_TAIL_SAMPLES,
    ROLLED_BACK,
    Margins,
    Measured,
    Rejections,
    signature,
    verdict,
)
from squall.nimbus.records import Slot
from squall.nimbus.state import NimbusState
from tests.nimbus.live_helpers import CROSSING, latency_counters, online, run, where
from tests.nimbus.nimbus_helpers import ask


def events(st: NimbusState) -> list[dict]:
    return ask(st, M.GetEvents(9, "t"), 0.0).data


# -- the rules -----------------------------------------------------------------------------


def test_average_up_more_than_ten_percent_rolls_back():
    outcome, why = verdict(Measured(2.0, 5.0, 500), Measured(2.3, 5.0, 500))
    assert outcome == ROLLED_BACK and "average" in why


def test_p99_up_more_than_a_quarter_rolls_back_even_when_the_average_fell():
    outcome, why = verdict(Measured(2.0, 5.0, 5000), Measured(1.5, 6.5, 5000))
    assert outcome == ROLLED_BACK and "p99" in why and "average" not in why


def test_within_the_margins_the_change_is_kept():
    assert verdict(Measured(2.0, 5.0, 5000), Measured(2.19, 6.2, 5000))[0] == KEPT


def test_a_p99_from_fewer_than_a_thousand_latencies_is_not_judged_and_the_reason_says_so():
    # From 500 latencies the p99 is the window's five slowest: a tenfold rise of those alone
    # does not roll back a change whose average fell; the same rise over 1,000 does.
    few = MIN_TAIL_SAMPLES - 1
    outcome, why = verdict(Measured(2.0, 5.0, few), Measured(1.5, 50.0, few))
    assert outcome == KEPT and "p99 not judged" in why and str(MIN_TAIL_SAMPLES) in why
    outcome, why = verdict(Measured(2.0, 5.0, MIN_TAIL_SAMPLES), Measured(1.5, 50.0, MIN_TAIL_SAMPLES))
    assert outcome == ROLLED_BACK and "p99" in why
    # The average is judged from MIN_SAMPLES up, whatever the tail.
    assert verdict(Measured(2.0, 5.0, few), Measured(3.0, 5.0, few))[0] == ROLLED_BACK


def test_the_margins_are_the_topology_s_to_set():
    before, after = Measured(2.0, 5.0, 5000), Measured(2.6, 9.0, 5000)  # +30% average, +80% p99
    assert verdict(before, after)[0] == ROLLED_BACK
    outcome, why = verdict(before, after, Margins(avg_worse=0.5, p99_worse=1.0))
    assert outcome == KEPT, why
    outcome, why = verdict(before, after, Margins(avg_worse=0.5, p99_worse=0.5))
    assert outcome == ROLLED_BACK and "p99" in why and "+50%" in why and "average" not in why


def test_too_few_samples_keep_the_change_and_say_so():
    outcome, why = verdict(Measured(2.0, 5.0, MIN_SAMPLES - 1), Measured(20.0, 50.0, 500))
    assert outcome == KEPT and "too few" in why


def test_a_rejected_placement_is_recognised_whatever_its_ports_until_the_cooldown_ends():
    rejections = Rejections()
    placement = {0: Slot(0, "n1", 6700), 1: Slot(0, "n1", 6700), 2: Slot(1, "n2", 6700)}
    same_on_other_ports = {0: Slot(3, "n1", 6701), 1: Slot(3, "n1", 6701), 2: Slot(1, "n2", 6702)}
    assert signature(placement) == signature(same_on_other_ports)
    rejections.add("t", placement, until=100.0)
    assert rejections.rejected("t", same_on_other_ports, 50.0) == 100.0
    assert rejections.rejected("t", {0: Slot(0, "n2", 6700), **{k: v for k, v in placement.items() if k}}, 50.0) is None
    assert rejections.rejected("t", placement, 100.0) is None  # the cool-down is over


def test_the_synthetic_latency_counters_are_cumulative():
    total, count, buckets = latency_counters([(0.0, 2.0), (10.0, 8.0)], 20.0, per_s=10)
    assert (total, count, sum(buckets)) == (100 * 2.0 + 100 * 8.0, 200, 200)


# -- NimbusState ---------------------------------------------------------------------------


def _apply_online_change(
    latency_after: float, conf: dict | None = None, catch_up: float | None = None
) -> tuple[NimbusState, dict]:
    """The online loop applies a change at t=20 (see test_nimbus_loop); the migration rolls
    forward by timeouts and is done at t=28, after 8 s of paused spouts, so the probation's
    window starts at t=36 and it judges at t=47. Latency is 2 ms until t=28, then
    ``catch_up`` (if given) until t=36, then ``latency_after``."""
    st = online(conf)
    curve = [(0.0, 2.0), (28.0, catch_up if catch_up is not None else latency_after), (36.0, latency_after)]
    run(st, 1, 20, traffic=CROSSING, latency=curve)
    applied = events(st)[-1]
    assert applied["decision"] == "applied" and applied["measured_before"]["count"] >= MIN_SAMPLES
    assert applied["measured_before"]["avg_ms"] == 2.0
    run(st, 21, 48, traffic=CROSSING, latency=curve)
    return st, applied


def test_a_change_that_made_latency_worse_is_rolled_back_and_not_proposed_again():
    # No back-off: the loop looks again at once, and the rejected placement is what stops it.
    st, applied = _apply_online_change(latency_after=6.0, conf={"topology.reschedule.backoff.secs": 0})
    moved_to = where(st, "t")
    judged = next(e for e in events(st) if e["id"] == applied["id"])
    assert judged["decision"] == ROLLED_BACK
    assert judged["measured_after"]["avg_ms"] == 6.0 and "latency rose" in judged["probation"]
    # The verdict's time: the pause (8 s) and a full window (+1 s) after the move.
    assert judged["judged_at"] == judged["done_at"] + 8 + 10 + 1
    back = next(e for e in events(st) if e.get("rolls_back") == applied["id"])
    assert back["trigger"] == "rollback" and back["decision"] == "applied"
    assert sorted(back["moved"]) == sorted(applied["moved"])
    assert st.rebalances[("t", ROLLED_BACK)] == 1

    # The move back completes (timeouts roll it forward) and the placement is the old one.
    curve = [(0.0, 2.0), (28.0, 6.0), (49.0, 2.0)]
    run(st, 49, 110, traffic=CROSSING, latency=curve)
    assert where(st, "t") != moved_to
    later = [e for e in events(st) if e["id"] > back["id"] and e["trigger"] == "periodic"]
    assert later, "the loop looked again after the roll-back"
    assert all(e["decision"] == "declined" for e in later)
    assert any("rolled back before" in e["reason"] for e in later)


def test_a_topology_that_allows_a_larger_rise_keeps_the_change():
    """The same tripled latency as above, with margins of 500% set in the topology's conf:
    kept, and the event says what was measured."""
    conf = {"topology.probation.avg.worse": 500.0, "topology.probation.p99.worse": 500.0}
    st, applied = _apply_online_change(latency_after=6.0, conf=conf)
    judged = next(e for e in events(st) if e["id"] == applied["id"])
    assert judged["decision"] == "applied" and judged["measured_after"]["avg_ms"] == 6.0
    assert judged["probation"].startswith("average 2 -> 6 ms"), judged["probation"]
    assert not any(e.get("rolls_back") == applied["id"] for e in events(st))
    assert st.rebalances[("t", ROLLED_BACK)] == 0


def test_the_catch_up_after_the_pause_is_not_judged_as_the_new_placement():
    """The spouts were paused 8 s; their backlog's catch-up (20 ms here) right after the move
    is not the placement's latency: the probation measures after it and keeps the change."""
    st, applied = _apply_online_change(latency_after=2.1, catch_up=20.0)
    judged = next(e for e in events(st) if e["id"] == applied["id"])
    assert judged["decision"] == "applied", judged["probation"]
    assert judged["measured_after"]["avg_ms"] == 2.1


def test_a_change_that_kept_latency_is_kept():
    st, applied = _apply_online_change(latency_after=2.1)
    judged = next(e for e in events(st) if e["id"] == applied["id"])
    assert judged["decision"] == "applied" and judged["measured_after"]["avg_ms"] == 2.1
    assert not any(e.get("rolls_back") for e in events(st))
    assert st.rebalances[("t", ROLLED_BACK)] == 0


def test_after_a_roll_back_the_loop_backs_off_and_doubles_the_hold_when_it_repeats():
    """A roll-back says the scheduler's view was wrong: the loop proposes nothing for the
    back-off (a slightly different proposal a few seconds later would pause the spouts again
    for the same mistake), then looks again; a second roll-back in a row holds twice as long."""
    st, applied = _apply_online_change(latency_after=6.0, conf={"topology.reschedule.backoff.secs": 30})
    judged = next(e for e in events(st) if e["id"] == applied["id"])
    assert judged["decision"] == ROLLED_BACK and judged["loop_held_s"] == 30.0
    back = next(e for e in events(st) if e.get("rolls_back") == applied["id"])
    held_until = judged["judged_at"] + 30.0
    curve = [(0.0, 2.0), (28.0, 6.0), (49.0, 2.0)]
    run(st, 49, held_until + 15, traffic=CROSSING, latency=curve)
    periodic = [e for e in events(st) if e["id"] > back["id"] and e["trigger"] == "periodic"]
    assert periodic, "the loop looked again once the back-off was over"
    assert all(e["at"] >= held_until for e in periodic), [(e["at"], held_until) for e in periodic]

    from squall.nimbus.rebalance_policy import LoopClock, LoopClocks

    clocks, clock = LoopClocks(), LoopClock(0.0, 0.0)
    assert clocks.rolled_back("t", clock, 100.0, 30.0, 600.0) == 130.0
    assert clocks.rolled_back("t", clock, 200.0, 30.0, 600.0) == 260.0  # twice as long
    assert clocks.rolled_back("t", clock, 300.0, 30.0, 600.0) == 420.0
    clocks.kept("t")  # a kept change ends the run of roll-backs
    assert clocks.rolled_back("t", clock, 500.0, 30.0, 600.0) == 530.0
    for _ in range(10):
        until = clocks.rolled_back("t", clock, 1000.0, 30.0, 600.0)
    assert until == 1600.0  # capped at the cool-down
