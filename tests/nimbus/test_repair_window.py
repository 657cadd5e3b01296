"""A lost board's repair restarts the topology's measurement, and what a rebalance asked
right after it is planned on (what ``benchmarks/scale.py``'s live-rebalance step waits out) —
NimbusState, no sockets."""

from __future__ import annotations

from squall import messages as M
from squall.nimbus.state import NimbusState
from tests.nimbus.live_helpers import report_all
from tests.nimbus.nimbus_helpers import ask, new_state, register, submit

# A chain's edges between the executors of the default chain spec (3 stages of 2).
TRAFFIC = {(0, 2): 100.0, (1, 3): 100.0, (2, 4): 100.0, (3, 5): 100.0}


def repaired() -> tuple[NimbusState, float]:
    """Four boards, three workers of ``t`` on three of them (the fourth a standby), measured
    for 4 s; then the board of executor 0 falls silent and the others report each second
    until the tick that repairs: the state and that tick's time."""
    st = new_state(**{"topology.metrics.window.secs": 10})
    for node in ("n1", "n2", "n3", "n4"):
        register(st, node, [6700], 0.0)
    submit(st, "t", 0.0, workers=3)
    for t in (1.0, 2.0, 3.0, 4.0):
        report_all(st, t, traffic=TRAFFIC)
        st.tick(t)
    assert st.rates("t").load_hz, "measured before the loss"
    lost = st.topologies["t"].placement[0].node
    t = 4.0
    while not st.supervisors[lost].dead:
        t += 1.0
        report_all(st, t, traffic=TRAFFIC, skip={lost})
        st.tick(t)
        assert t < 30.0
    (repair,) = ask(st, M.GetEvents(1, "t"), t).data
    assert (repair["trigger"], repair["paused_s"]) == ("node-lost", 0.0), "installed at once: only lost executors"
    return st, t


def requested(st: NimbusState, now: float) -> dict:
    """Ask an online rebalance at ``now``; its event."""
    reply = ask(st, M.RebalanceTopology(2, "t", 0, scheduler="online"), now)
    assert not reply.error, reply.error
    return [e for e in ask(st, M.GetEvents(3, "t"), now).data if e["trigger"] == "requested"][-1]


def test_a_reschedule_asked_as_the_repair_lands_is_refused_with_the_reason_and_recorded():
    """Planned on the empty window it would move executors for no measured reason."""
    st, t = repaired()
    assert st.rates("t").load_hz == {} and st.rates("t").traffic == {}  # the window restarted
    before = dict(st.topologies["t"].placement)
    reply = ask(st, M.RebalanceTopology(2, "t", 0, scheduler="online"), t)
    assert reply.error and "nothing measured" in reply.error and "'t'" in reply.error, reply.error
    declined = [e for e in ask(st, M.GetEvents(3, "t"), t).data if e["trigger"] == "requested"][-1]
    assert declined["decision"] == "declined" and "nothing measured" in declined["reason"]
    assert st.topologies["t"].placement == before and "t" not in st.migrations


def test_a_new_worker_count_asked_as_the_repair_lands_is_applied_and_says_it_was_unmeasured():
    st, t = repaired()
    reply = ask(st, M.RebalanceTopology(2, "t", 0, workers=2, scheduler="online"), t)
    assert not reply.error, reply.error
    event = [e for e in ask(st, M.GetEvents(3, "t"), t).data if e["trigger"] == "requested"][-1]
    assert event["decision"] == "applied" and "placed without traffic or load" in event["reason"]
    assert event["current"]["inter_node_tps"] == 0.0


def test_two_heartbeats_after_the_repair_the_rebalance_is_planned_on_the_measured_traffic():
    st, t = repaired()
    for later in (t + 1.0, t + 2.0):
        report_all(st, later, traffic=TRAFFIC)
        st.tick(later)
    assert set(st.rates("t").load_hz) >= {0, 1, 2, 3, 4, 5}
    event = requested(st, t + 2.0)
    assert event["current"]["inter_node_tps"] > 0.0
