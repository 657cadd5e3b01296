"""The online rebalancing loop on synthetic metric windows: when it applies, when it
declines, and what it records — NimbusState driven by heartbeats and ticks, no sockets."""

from __future__ import annotations

import pytest

from squall import messages as M
from squall.nimbus.rebalance_policy import LoopClock, LoopConf, not_due
from squall.nimbus.state import NimbusState
from squall.nimbus.store import EVENTS_KEPT, Store
from tests.nimbus.live_helpers import CROSSING, FAST, assignments, online, run, where
from tests.nimbus.nimbus_helpers import CLI, ask, new_state, register, reply, submit


def events(st: NimbusState) -> list[dict]:
    return ask(st, M.GetEvents(9, "t"), 0.0).data


def versions(st: NimbusState) -> tuple[int, dict[str, int]]:
    return st.topologies["t"].version, {s.id: s.version for s in st.supervisors.values()}


def test_applies_once_the_timeout_passed_and_the_gain_beats_the_threshold():
    st = online()
    before = versions(st)
    cmds = run(st, 1, 19, traffic=CROSSING)
    assert assignments(cmds) == [] and versions(st) == before  # declined twice: nothing pushed
    early = events(st)
    assert [(e["at"], e["decision"]) for e in early] == [(10.0, "declined"), (15.0, "declined")]
    assert "since the last change" in early[0]["reason"]

    cmds = run(st, 20, 20, traffic=CROSSING)
    applied = events(st)[-1]
    assert applied["decision"] == "applied" and applied["trigger"] == "periodic"
    assert applied["current"] == {"inter_node_tps": 400.0, "inter_worker_tps": 400.0, "overloaded": []}
    assert applied["proposed"] == {"inter_node_tps": 0.0, "inter_worker_tps": 0.0, "overloaded": []}
    assert applied["moved"] == [2, 3] and applied["paused_s"] is None
    pushed = assignments(cmds)
    assert {sa.supervisor_id for sa in pushed} == {"n1", "n2"}
    assert all(w.paused for sa in pushed for w in sa.workers)  # the migration started: PAUSE

    run(st, 21, 48, traffic=CROSSING)  # the synthetic workers hand over no snapshot: timeouts roll forward
    assert where(st, "t")[2] == ("n2", 6700) and where(st, "t")[3] == ("n1", 6700)
    done, *later = [e for e in events(st) if e["id"] >= applied["id"]]
    assert done["id"] == applied["id"] and done["paused_s"] == pytest.approx(8.0) and done["notes"]
    # Measurement restarted once the move finished (t=28) and its catch-up had as long as
    # the pause (8 s): the probation judges the change after a full window (+1 s), and only
    # then does the loop look again.
    assert [(e["at"], e["decision"]) for e in later] == [(47.0, "declined")]
    assert "too few latency samples" in events(st)[events(st).index(done)]["probation"]
    r = ask(st, M.ListTopologies(3), 41.0).data[0]
    assert r["status"] == "ACTIVE" and r["scheduler"] == "online"


def test_declines_while_the_window_is_not_full_and_records_nothing():
    st = online({"topology.metrics.window.secs": 30, "topology.reschedule.timeout.secs": 0})
    before = versions(st)
    cmds = run(st, 1, 29, traffic=CROSSING)
    assert assignments(cmds) == [] and versions(st) == before and events(st) == []
    run(st, 30, 30, traffic=CROSSING)
    assert [e["decision"] for e in events(st)] == ["applied"]


def test_a_gain_under_the_threshold_is_declined_and_changes_nothing():
    st = online({"topology.traffic.improvement": 100.0 - 1e-9, "topology.reschedule.timeout.secs": 0})
    # Everything talks to everything: any split crosses the nodes about as much; one extra
    # edge 0 -> 3 is the only gain a proposal can make.
    uniform = {(a, b): 10.0 for a in range(8) for b in range(8) if a != b}
    uniform[(0, 3)] += 20.0
    before = versions(st)
    cmds = run(st, 1, 12, traffic=uniform)
    assert assignments(cmds) == [] and versions(st) == before
    (e,) = events(st)
    assert e["decision"] == "declined" and e["proposed"]["inter_node_tps"] < e["current"]["inter_node_tps"]
    assert "needed" in e["reason"] or "less" in e["reason"]


def test_the_threshold_is_configurable():
    uniform = {(a, b): 10.0 for a in range(8) for b in range(8) if a != b}
    uniform[(0, 3)] += 20.0
    st = online({"topology.traffic.improvement": 1.0, "topology.reschedule.timeout.secs": 0})
    run(st, 1, 10, traffic=uniform)
    (e,) = events(st)
    gain = 1 - e["proposed"]["inter_node_tps"] / e["current"]["inter_node_tps"]
    assert 0.01 <= gain < 0.10 and e["decision"] == "applied"


def test_overload_relief_applies_whatever_the_traffic():
    # n1 is small: the four executors there use 4 x 0.4 GHz against its 1 GHz.
    st = online({"topology.reschedule.timeout.secs": 0, "topology.traffic.improvement": 100.0}, capacity=(1e9, 1e10))
    run(st, 1, 10, load_s={ex: 0.4 for ex in range(8)})
    (e,) = events(st)
    assert e["decision"] == "applied" and e["current"]["overloaded"] == ["n1"] and e["proposed"]["overloaded"] == []
    assert "overload" in e["reason"]


def test_no_loop_for_other_schedulers():
    st = new_state()
    register(st, "n1", [6700], 0.0)
    register(st, "n2", [6700], 0.0)
    submit(st, "t", 0.0, workers=2, conf=FAST)
    cmds = run(st, 1, 40, traffic=CROSSING)
    assert assignments(cmds) == [] and events(st) == []


def test_requested_switch_to_online_applies_at_once_and_later_ones_follow_the_rule():
    st = new_state()
    register(st, "n1", [6700, 6701], 0.0)
    register(st, "n2", [6700, 6701], 0.0)
    submit(st, "t", 0.0, workers=2, conf=FAST)
    run(st, 1, 12, traffic=CROSSING)
    cmds = st.handle(CLI, M.RebalanceTopology(5, "t", scheduler="online"), 12.5)
    assert reply(cmds).ok and reply(cmds).data["scheduler"] == "online"
    (e,) = events(st)
    assert (e["trigger"], e["decision"]) == ("requested", "applied") and e["moved"]
    assert all(w.paused for sa in assignments(cmds) for w in sa.workers)
    refused = ask(st, M.RebalanceTopology(6, "t", scheduler="online"), 13.0)
    assert not refused.ok and "migrating" in refused.error
    run(st, 13, 45, traffic=CROSSING)
    assert not st.migrations
    # The move made the edges local: later evaluations decline (nothing left to gain).
    assert [x["decision"] for x in events(st)[1:]] and all(x["decision"] == "declined" for x in events(st)[1:])


def test_declined_events_are_bounded_per_topology(tmp_path):
    store = Store(tmp_path / "nimbus.db")
    for k in range(EVENTS_KEPT + 5):
        store.add_event("t", {"decision": "declined", "k": k})
    store.add_event("t", {"decision": "applied", "k": -1})
    kept = store.events("t")
    assert len(kept) == EVENTS_KEPT + 1 and kept[0]["k"] == 5 and kept[-1]["decision"] == "applied"


@pytest.mark.parametrize(
    "clock, now, due",
    [
        (LoopClock(0.0, 0.0), 9.9, False),
        (LoopClock(0.0, 0.0), 10.0, True),
        (LoopClock(0.0, 0.0, last_eval=10.0), 14.9, False),
        (LoopClock(0.0, 20.0, last_eval=10.0), 25.0, False),
    ],
    ids=["window not full", "window full", "interval not over", "measurement restarted"],
)
def test_not_due(clock, now, due):
    lc = LoopConf.of(FAST, {})
    assert (not_due(lc, clock, now) is None) == due


def test_loop_conf_defaults_are_documented():
    lc = LoopConf.of({}, {})
    assert (lc.interval_s, lc.timeout_s, lc.improvement_pct, lc.window_s) == (10.0, 60.0, 10.0, 30.0)
    assert (lc.drain_s, lc.release_s, lc.acquire_s) == (5.0, 5.0, 30.0)
