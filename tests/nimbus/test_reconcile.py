"""Reconciliation: an assignment the supervisor's heartbeats do not reflect is sent again.

The finding: Nimbus marked an assignment pushed before the send that may drop it, and never
sent it again — a supervisor that missed it ran nothing until the next change."""

from __future__ import annotations

from squall import messages as M
from squall.nimbus.state import RESEND_S
from tests.nimbus.nimbus_helpers import heartbeat, new_state, pushes, register, submit


def test_a_lost_assignment_is_resent_until_the_heartbeats_list_its_workers():
    st = new_state()
    register(st, "n1", [6700, 6701], 0.0)
    first = pushes(submit(st, "t", 0.0))["n1"]  # imagine this send was dropped
    assert first.workers
    resent = []
    t = 0.0
    while t < 3 * RESEND_S:
        t += 1.0
        heartbeat(st, "n1", t)  # the supervisor runs nothing: it never got the assignment
        resent += [p for p in pushes(st.tick(t)).values()]
    assert len(resent) >= 2 and all(p.version == first.version and p.workers == first.workers for p in resent)
    assert st.counters["assignments_resent"] == len(resent)

    reports = [M.WorkerReport("t", w.port, 1, "running", w.assignment_version) for w in first.workers]
    heartbeat(st, "n1", t + 1, workers=reports)  # now it runs what was declared
    later = []
    for k in range(2, 3 * int(RESEND_S)):
        heartbeat(st, "n1", t + k, workers=reports)
        later += list(pushes(st.tick(t + k)).values())
    assert later == []


def test_nothing_is_resent_while_heartbeats_match():
    st = new_state()
    register(st, "n1", [6700], 0.0)
    push = pushes(submit(st, "t", 0.0, workers=1))["n1"]
    reports = [M.WorkerReport(w.topology, w.port, 1, "starting", 0) for w in push.workers]
    for t in range(1, 4 * int(RESEND_S)):
        heartbeat(st, "n1", float(t), workers=reports)
        assert pushes(st.tick(float(t))) == {}
    assert st.counters["assignments_resent"] == 0
