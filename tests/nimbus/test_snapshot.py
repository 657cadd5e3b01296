"""The snapshot the HTTP side renders from: a copy the state's later events leave unchanged.
No sockets."""

from __future__ import annotations

from squall import messages as M
from squall.nimbus import http_views as V
from squall.nimbus.snapshot import Snapshot
from tests.nimbus.live_helpers import CROSSING, online, report_all, run
from tests.nimbus.nimbus_helpers import CLI, heartbeat


def test_later_events_leave_a_snapshot_as_it_was():
    st = online()
    run(st, 1, 12, traffic=CROSSING)
    snap = Snapshot.of(st, 12.0)
    rec = snap.topologies["t"]
    placement, version, status = rec.placement, rec.version, rec.status
    rates = snap.rates("t")
    assert rates.traffic, "the window had samples: the rates are not trivially empty"
    page = V.topology_summary(snap, snap.now)

    st.handle(CLI, M.KillTopology(rid=2, name="t", wait_s=30.0), 13.0)
    report_all(st, 13.0, traffic={(0, 1): 5.0})
    st.tick(13.0)
    assert st.topologies["t"].status == "KILLED" and st.topologies["t"].version != version

    assert snap.topologies["t"].placement is placement and snap.topologies["t"].version == version
    assert snap.topologies["t"].status == status == "ACTIVE"
    assert Snapshot.of(st, 13.0).rates("t") != rates  # the live window moved on ...
    assert snap.rates("t") == rates  # ... the copied one did not
    assert V.topology_summary(snap, snap.now) == page


def test_a_snapshot_answers_what_the_views_read():
    st = online()
    run(st, 1, 12, traffic=CROSSING)
    snap = Snapshot.of(st, 12.0)
    assert snap.live_nodes(12.0) == st.live_nodes(12.0) == {"n1", "n2"}
    assert V.supervisor_summary(snap, 12.0) == V.supervisor_summary(st, 12.0)  # type: ignore[arg-type]
    assert V.traffic(snap, snap.topologies["t"]) == V.traffic(st, st.topologies["t"])  # type: ignore[arg-type]


def test_a_board_unchanged_since_the_last_snapshot_shares_its_copy_and_a_changed_one_does_not():
    st = online()
    run(st, 1, 3, traffic=CROSSING)
    first = Snapshot.of(st, 3.0)
    heartbeat(st, "n1", 3.5)  # n1 heartbeats; n2 does not
    second = Snapshot.of(st, 3.5, first)
    assert second.supervisors["n2"] is first.supervisors["n2"]
    assert second.supervisors["n1"] is not first.supervisors["n1"]
    assert second.supervisors["n1"].last_seen == 3.5 and first.supervisors["n1"].last_seen == 3.0
    assert second.supervisors["n1"] is not st.supervisors["n1"]  # still a copy, never the live record
