"""The live-migration coordinator: what each phase declares, when it moves on, timeouts,
and a Nimbus restart in the middle — pure functions and NimbusState, no sockets."""

from __future__ import annotations

import dataclasses
from hashlib import sha256

import pytest

from squall import messages as M
from squall.nimbus.migration import (
    ACQUIRE,
    DONE,
    PAUSE,
    QUIESCENT,
    RELEASE,
    TIMED_OUT,
    Migration,
    advance,
    declared,
    observe,
)
from squall.nimbus.rebalance_policy import LoopConf
from squall.nimbus.records import Slot
from squall.nimbus.store import Store
from tests.nimbus.live_helpers import CROSSING, assignments, online, report_all, where, worker_metrics
from tests.nimbus.nimbus_helpers import CLI, ask, new_state, register, reply, submit

A, B, C, D = ("n1", 6700), ("n2", 6700), ("n2", 6701), ("n1", 6701)
# a: 0 1 -> 0 1 2;  b: 2 3 -> gone;  c: 4 5 unchanged;  d: new, takes 3
OLD = {0: Slot(0, *A), 1: Slot(0, *A), 2: Slot(1, *B), 3: Slot(1, *B), 4: Slot(2, *C), 5: Slot(2, *C)}
TARGET = {0: Slot(0, *A), 1: Slot(0, *A), 2: Slot(0, *A), 3: Slot(3, *D), 4: Slot(2, *C), 5: Slot(2, *C)}
LC = LoopConf.of({}, {})


class Rec:
    """The few fields of a TopologyRecord that ``declared`` reads."""

    name, version, conf, workers_running_active = "t", 7, {"k": 1}, True

    def worker_conf(self) -> dict:
        return dict(self.conf)


def endpoint(key: tuple[str, int]) -> str:
    return f"{key[0]}:{key[1]}"


PEERS = tuple(endpoint(k) for k in (A, B, C))  # the old workers: those a PAUSE reads


def host(node: str) -> str:
    return f"h-{node}"


def mig(**kw) -> Migration:
    return Migration("t", "periodic", 1, dict(OLD), dict(TARGET), (2, 3), **kw)


def report(key, version=7, paused=True, queued=0, sent=10, received=10, at=1.0, state="running", released=None):
    """``key``'s worker, linked to every other old worker (``live_helpers.mesh_links``)."""
    metrics = worker_metrics([], at, {}, {}, queued, sent, received, me=endpoint(key), peers=PEERS)
    return M.WorkerReport("t", key[1], 1, state, version, metrics=metrics, paused=paused, released=released or {})


def test_pause_keeps_executors_and_placement_and_pauses_every_worker():
    got = declared(mig(phase=PAUSE), Rec(), host)
    assert sorted(got) == sorted([A, B, C])
    assert {k: w.executors for k, w in got.items()} == {A: [0, 1], B: [2, 3], C: [4, 5]}
    assert all(w.paused and w.states == {} and w.assignment_version == 7 for w in got.values())
    assert got[A].placement == {
        0: "h-n1:6700",
        1: "h-n1:6700",
        2: "h-n2:6700",
        3: "h-n2:6700",
        4: "h-n2:6701",
        5: "h-n2:6701",
    }


def test_release_takes_the_moved_executors_off_and_marks_them_in_transit():
    got = declared(mig(phase=RELEASE), Rec(), host)
    assert {k: w.executors for k, w in got.items()} == {A: [0, 1], B: [], C: [4, 5]}  # b stays to hand over
    assert got[C].placement[2] == got[C].placement[3] == "" and got[C].placement[4] == "h-n2:6701"
    assert all(w.paused for w in got.values())


def test_acquire_installs_the_target_and_routes_each_snapshot_to_its_new_owner():
    got = declared(mig(phase=ACQUIRE, states={2: b"two", 3: b"three"}), Rec(), host)
    # b, emptied, stays with nothing to run (it forwards what it holds; it stops at RESUME); d new
    assert {k: w.executors for k, w in got.items()} == {A: [0, 1, 2], B: [], C: [4, 5], D: [3]}
    assert got[B].placement == got[A].placement and got[B].state_refs == {}
    # The snapshots are named (digest, size), not carried: a board fetches each once.
    assert got[A].state_refs == {2: M.StateRef(sha256(b"two").hexdigest(), 3)}
    assert got[D].state_refs == {3: M.StateRef(sha256(b"three").hexdigest(), 5)} and got[C].state_refs == {}
    assert all(w.states == {} for w in got.values())
    assert got[A].placement[3] == "h-n1:6701" and all(w.paused for w in got.values())


def test_pause_moves_on_after_two_fresh_quiet_reports():
    m = mig(phase_at=0.0)
    live = {"n1", "n2"}
    quiet = {k: report(k, at=1.0) for k in (A, B, C)}
    assert not advance(m, quiet, live, 7, 1.0, LC)  # first look
    assert not advance(m, quiet, live, 7, 1.5, LC)  # nothing new reported
    assert advance(m, {k: report(k, at=2.0) for k in (A, B, C)}, live, 7, 2.0, LC) and m.phase == RELEASE


@pytest.mark.parametrize(
    "fault",
    [
        {"version": 6},
        {"paused": False},
        {"queued": 3},
        {"sent": 11},
    ],
    ids=["old version", "not paused", "tuples queued", "tuples in flight"],
)
def test_pause_waits_while_a_worker_is_not_quiet_then_times_out(fault):
    m = mig(phase_at=0.0)
    live = {"n1", "n2"}
    for t in (1.0, 2.0, 3.0):
        reports = {k: report(k, at=t, **(fault if k == B else {})) for k in (A, B, C)}
        assert not advance(m, reports, live, 7, t, LC)
    assert advance(m, reports, live, 7, LC.drain_s, LC) and m.phase == RELEASE
    assert "drain timed out" in m.notes[0]


def test_release_collects_snapshots_from_the_old_owner_only():
    m = mig(phase=RELEASE, phase_at=0.0)
    live = {"n1", "n2"}
    assert not advance(m, {A: report(A, released={2: b"forged"}), B: report(B, released={2: b"two"})}, live, 7, 1.0, LC)
    assert m.states == {2: b"two"}
    assert advance(m, {B: report(B, released={3: b"three"})}, live, 7, 2.0, LC) and m.phase == ACQUIRE
    assert m.states == {2: b"two", 3: b"three"} and m.notes == []


def test_release_times_out_and_moves_without_the_missing_state():
    m = mig(phase=RELEASE, phase_at=0.0)
    assert advance(m, {B: report(B, released={2: b"two"})}, {"n1", "n2"}, 7, LC.release_s, LC)
    assert m.phase == ACQUIRE and m.states == {2: b"two"} and "3" in m.notes[0]


def test_acquire_finishes_when_every_new_worker_runs_or_at_its_timeout():
    m = mig(phase=ACQUIRE, phase_at=0.0)
    live = {"n1", "n2"}
    running = {k: report(k, at=1.0) for k in (A, B, C, D)}
    starting = {**running, D: report(D, state="starting")}
    assert not advance(m, starting, live, 7, 1.0, LC)
    assert advance(m, running, live, 7, 2.0, LC) and m.phase == DONE
    late = mig(phase=ACQUIRE, phase_at=0.0)
    assert advance(late, starting, live, 7, LC.acquire_s, LC) and late.notes == [
        f"worker(s) n1:6701 not running after {LC.acquire_s:g} s; resumed anyway"
    ]


@pytest.mark.parametrize(
    "fault",
    [{"version": 6}, {"queued": 2}],
    ids=["still on the release placement", "still holding items for moved executors"],
)
def test_acquire_waits_for_an_emptied_worker_to_hand_over_what_it_holds(fault):
    """An emptied worker (b) is not stopped while it may hold items for moved executors
    (a drain that timed out let them reach it after its executors left): ACQUIRE ends once it
    reports the target placement's version with nothing queued, or names it at the timeout."""
    m = mig(phase=ACQUIRE, phase_at=0.0)
    live = {"n1", "n2"}
    holding = {k: report(k, at=1.0, **(fault if k == B else {})) for k in (A, B, C, D)}
    assert not advance(m, holding, live, 7, 1.0, LC)
    assert m.progress is not None and m.progress.waiting == {B}
    assert observe(m, "n2", {k: report(k, at=2.0) for k in (B, C)}, 7, 2.0, LC) and m.phase == DONE
    late = mig(phase=ACQUIRE, phase_at=0.0)
    assert advance(late, holding, live, 7, LC.acquire_s, LC)
    assert late.notes == [
        f"emptied worker(s) n2:6700 still held items after {LC.acquire_s:g} s; stopped anyway (what they held is lost)"
    ]


def test_an_emptied_worker_on_a_lost_board_is_not_waited_for():
    m = mig(phase=ACQUIRE, phase_at=0.0)
    # n2 (b and c) is gone: only a and d, on n1, are read.
    assert advance(m, {k: report(k, at=1.0) for k in (A, D)}, {"n1"}, 7, 1.0, LC) and m.phase == DONE


def test_a_lost_executor_is_not_waited_for():
    m = Migration("t", "node-lost", 1, dict(OLD), dict(TARGET), (2, 3), lost=(3,), phase=RELEASE, phase_at=0.0)
    assert advance(m, {B: report(B, released={2: b"two"})}, {"n1", "n2"}, 7, 0.5, LC) and m.phase == ACQUIRE
    assert declared(mig(lost=(3,), phase=PAUSE), Rec(), host)[A].placement[3] == ""


def test_the_record_round_trips():
    m = mig(phase=RELEASE, phase_at=3.0, started_at=1.0, notes=["x"], states={2: b"s"}, drain=QUIESCENT, drain_s=1.5)
    back = Migration.from_record(m.to_record(), m.states, restarted=False)
    assert back == m
    assert Migration.from_record(m.to_record(), m.states, restarted=True).phase_at is None
    older = {k: v for k, v in m.to_record().items() if k not in ("drain", "drain_s")}  # saved before drains were told
    assert (Migration.from_record(older, {}, restarted=True).drain, older.get("drain_s")) == ("", None)


# -- what "quiescent" reads: the data links' last frames -------------------------------------------


def linked(key, sent: dict[str, M.LinkMark], received: dict[str, M.LinkMark], at=1.0, **kw) -> M.WorkerReport:
    """``key``'s quiet report with exactly these links (and unbalanced cumulative sums)."""
    r = report(key, at=at, **kw)
    assert r.metrics is not None
    links = M.DataLinks(endpoint(key), sent=sent, received=received)
    return dataclasses.replace(r, metrics=dataclasses.replace(r.metrics, links=links, sent_remote=10**6))


def two_looks(m, reports_at, live=frozenset({"n1", "n2"})) -> list[bool]:
    return [advance(m, reports_at(t), set(live), 7, t, LC) for t in (1.0, 2.0)]


def test_the_drain_ends_by_quiescence_whatever_the_cumulative_sums_say():
    """The bug this replaced: once a worker left, the sums of items sent and received over
    the workers left never matched again. Links match here, the sums are far apart."""
    m = mig(phase_at=0.0)
    mark = M.LinkMark(7, 40)
    a_b = {endpoint(B): mark}, {endpoint(B): mark}  # A and B each sent 40 frames to the other, all arrived

    def reports(t: float) -> dict:
        return {
            A: linked(A, *a_b, at=t),
            B: linked(B, {endpoint(A): mark}, {endpoint(A): mark}, at=t),
            C: linked(C, {}, {}, at=t),  # no link to or from C
        }

    assert reports(1.0)[A].metrics.sent_remote != reports(1.0)[B].metrics.received_remote  # type: ignore[union-attr]
    assert two_looks(m, reports) == [False, True]
    assert (m.phase, m.drain, m.drain_s, m.notes) == (RELEASE, QUIESCENT, 2.0, [])


def test_a_link_whose_last_frame_is_in_flight_holds_the_drain_and_the_timeout_names_it():
    m = mig(phase_at=0.0)
    a_to_b, b_got = M.LinkMark(7, 12), M.LinkMark(7, 11)
    reports = {
        A: linked(A, {endpoint(B): a_to_b}, {}),
        B: linked(B, {}, {endpoint(A): b_got}),
        C: linked(C, {}, {}),
    }
    assert not advance(m, reports, {"n1", "n2"}, 7, 1.0, LC)
    assert m.progress is not None and m.progress.unmatched == {(endpoint(A), endpoint(B))}
    assert advance(m, reports, {"n1", "n2"}, 7, LC.drain_s, LC) and m.drain == TIMED_OUT
    assert "link(s) whose last frame has not arrived: n1:6700->n2:6700" in m.notes[0]


def test_a_restarted_receiver_s_last_frame_of_an_old_link_is_not_the_new_link_s():
    m = mig(phase_at=0.0)
    reports = {
        A: linked(A, {endpoint(B): M.LinkMark(8, 3)}, {}),  # a new link since B restarted
        B: linked(B, {}, {endpoint(A): M.LinkMark(7, 3)}),  # the old link's last frame
        C: linked(C, {}, {}),
    }
    assert not advance(m, reports, {"n1", "n2"}, 7, 1.0, LC)
    assert m.progress is not None and m.progress.unmatched == {(endpoint(A), endpoint(B))}
    reports[B] = linked(B, {}, {endpoint(A): M.LinkMark(8, 3)}, at=2.0)  # the new link's last frame arrived
    assert not advance(m, reports, {"n1", "n2"}, 7, 2.0, LC)  # first quiet look
    reports[B] = linked(B, {}, {endpoint(A): M.LinkMark(8, 3)}, at=3.0)
    assert advance(m, reports, {"n1", "n2"}, 7, 3.0, LC) and m.drain == QUIESCENT


def test_a_link_to_an_endpoint_no_worker_has_holds_the_drain_unless_a_board_is_lost():
    to_nowhere = {"n9:1": M.LinkMark(7, 4)}
    m = mig(phase_at=0.0)
    assert two_looks(m, lambda t: {A: linked(A, to_nowhere, {}, at=t), **{k: report(k, at=t) for k in (B, C)}}) == [
        False,
        False,
    ]
    assert m.progress is not None and m.progress.unknown == {(endpoint(A), "n9:1")}
    # n2 (B and C) lost: A's frames to them went with it; not waited for.
    lost = mig(phase_at=0.0)
    to_b = {endpoint(B): M.LinkMark(7, 4)}
    assert two_looks(lost, lambda t: {A: linked(A, to_b, {}, at=t)}, live={"n1"}) == [False, True]
    assert lost.drain == QUIESCENT


def test_a_worker_of_an_older_version_keeps_the_drain_to_its_timeout_and_is_named():
    m = mig(phase_at=0.0)
    r = report(B)
    assert r.metrics is not None
    older = dataclasses.replace(r, metrics=dataclasses.replace(r.metrics, links=None))
    reports = {A: report(A), B: older, C: report(C)}
    assert not advance(m, reports, {"n1", "n2"}, 7, 1.0, LC)
    assert not advance(m, {**reports, A: report(A, at=2.0)}, {"n1", "n2"}, 7, 2.0, LC)
    assert advance(m, reports, {"n1", "n2"}, 7, LC.drain_s, LC) and m.drain == TIMED_OUT
    assert "no usable data links (an older version, or an endpoint named twice): n2:6700" in m.notes[0]


def test_two_workers_naming_one_endpoint_hold_the_drain_and_never_break_the_look():
    m = mig(phase_at=0.0)
    a_links = {endpoint(C): M.LinkMark(7, 2)}, {}
    reports = {
        A: linked(A, *a_links),
        B: dataclasses.replace(linked(C, {}, {endpoint(A): M.LinkMark(7, 2)}), port=B[1]),  # B claims C's endpoint
        C: linked(C, {}, {endpoint(A): M.LinkMark(7, 2)}),
    }
    for t in (1.0, 2.0, 3.0):
        assert not advance(
            m,
            {k: dataclasses.replace(r, metrics=dataclasses.replace(r.metrics, at=t)) for k, r in reports.items()},
            {"n1", "n2"},
            7,
            t,
            LC,
        )
        assert not observe(m, "n2", {B: reports[B], C: reports[C]}, 7, t + 0.5, LC)
    assert m.progress is not None and len(m.progress.uncounted) == 1
    assert advance(m, reports, {"n1", "n2"}, 7, LC.drain_s, LC) and m.drain == TIMED_OUT


# -- through NimbusState --------------------------------------------------------------------


def test_a_whole_migration_through_nimbus_with_a_restart_in_the_middle(tmp_path):
    db = tmp_path / "nimbus.db"
    st = online({"topology.reschedule.timeout.secs": 0}, store=Store(db))
    for t in range(1, 11):
        report_all(st, float(t), traffic=CROSSING)
        st.tick(float(t))
    assert st.migrations["t"].phase == PAUSE  # applied at t=10
    for t in (11.0, 12.0):  # two quiet reports: RELEASE
        report_all(st, t, traffic=CROSSING)
    assert st.migrations["t"].phase == RELEASE
    released = {("n1", 6700): {2: b"state-2"}}  # executor 2 left n1:6700; 3 will be missing
    report_all(st, 12.5, traffic=CROSSING, released=released)
    assert st.migrations["t"].states == {2: b"state-2"}
    st.tick(12.6)  # snapshots a heartbeat brought are saved at the next tick
    versions = st.topologies["t"].version
    st.store.close()

    st2 = new_state(Store(db))  # Nimbus restarts mid-RELEASE
    assert st2.migrations["t"].phase == RELEASE and st2.migrations["t"].states == {2: b"state-2"}
    cmds = register(st2, "n1", [6700, 6701], 100.0) + register(st2, "n2", [6700, 6701], 100.0)
    pushed = {sa.supervisor_id: sa for sa in assignments(cmds)}
    workers = {(n, w.port): w for n, sa in pushed.items() for w in sa.workers}
    assert all(w.paused and w.assignment_version == versions for w in workers.values())
    assert workers[("n2", 6700)].placement[3] == "" and 2 not in workers[("n1", 6700)].executors

    st2.tick(101.0)
    report_all(st2, 103.0, traffic=CROSSING)
    assert st2.migrations["t"].phase == RELEASE  # the phase timer restarted at the first look (101)
    cmds = st2.tick(106.0)  # release timeout: on without executor 3's state
    assert st2.migrations["t"].phase == ACQUIRE
    acquire = {(sa.supervisor_id, w.port): w for sa in assignments(cmds) for w in sa.workers}
    owner = next(k for k, w in acquire.items() if 2 in w.executors)
    assert acquire[owner].state_refs == {2: M.StateRef(sha256(b"state-2").hexdigest(), 7)} and owner[0] == "n2"
    fetched = ask(st2, M.GetSnapshot(9, "t", sha256(b"state-2").hexdigest(), 2), 106.5).data
    assert fetched == {"topology": "t", "executor": 2, "digest": sha256(b"state-2").hexdigest(), "state": b"state-2"}
    assert all(w.paused for w in acquire.values())
    cmds = report_all(st2, 107.0, traffic=CROSSING)
    assert "t" not in st2.migrations
    resumed = [w for sa in assignments(cmds) for w in sa.workers]
    assert resumed and not any(w.paused or w.states or w.state_refs for w in resumed)
    assert where(st2, "t")[2] == ("n2", 6700) and where(st2, "t")[3] == ("n1", 6700)
    e = ask(st2, M.GetEvents(1, "t"), 107.0).data[-1]
    assert e["paused_s"] == pytest.approx(97.0) and any("3" in n for n in e["notes"])
    assert e["snapshots_sent"] == {"2": {"sends": 1, "bytes": 7}}


def test_a_snapshot_not_yet_saved_at_a_restart_is_collected_again_from_the_boards(tmp_path):
    """Heartbeats collect snapshots; ticks save them. A Nimbus that stops in between lost
    that one in memory only: the old owner keeps reporting it until the next version, and
    the restarted Nimbus's first look collects it again."""
    db = tmp_path / "nimbus.db"
    st = online({"topology.reschedule.timeout.secs": 0}, store=Store(db))
    for t in range(1, 11):
        report_all(st, float(t), traffic=CROSSING)
        st.tick(float(t))
    for t in (11.0, 12.0):
        report_all(st, t, traffic=CROSSING)
    assert st.migrations["t"].phase == RELEASE
    released = {("n1", 6700): {2: b"state-2"}}
    report_all(st, 12.5, traffic=CROSSING, released=released)
    assert st.migrations["t"].states == {2: b"state-2"}
    st.store.close()  # before any tick

    st2 = new_state(Store(db))
    assert st2.migrations["t"].phase == RELEASE and st2.migrations["t"].states == {}
    register(st2, "n1", [6700, 6701], 100.0)
    register(st2, "n2", [6700, 6701], 100.0)
    report_all(st2, 101.0, traffic=CROSSING, released=released)
    assert st2.migrations["t"].states == {2: b"state-2"}
    st2.tick(101.5)
    st2.store.close()
    assert new_state(Store(db)).migrations["t"].states == {2: b"state-2"}


def test_a_live_rebalance_keeps_the_conf_workers_see():
    st = online()
    before = {w.port: w.conf for w in st.declared("n1")}
    r = ask(st, M.RebalanceTopology(3, "t", workers=3), 1.0)
    assert r.ok and st.topologies["t"].workers == 3 and "t" in st.migrations
    assert {w.port: w.conf for w in st.declared("n1") if w.port in before} == before


def test_workers_that_do_not_change_keep_running_untouched():
    st = online({"topology.reschedule.timeout.secs": 0})
    submit(st, "other", 0.0, workers=1, rid=2)  # another topology on the same boards
    others_before = {n: [w for w in st.declared(n) if w.topology == "other"] for n in ("n1", "n2")}
    for t in range(1, 11):
        report_all(st, float(t), traffic=CROSSING)
        st.tick(float(t))
    assert "t" in st.migrations
    for n in ("n1", "n2"):
        assert [w for w in st.declared(n) if w.topology == "other"] == others_before[n]


def test_rebalance_with_new_parallelism_keeps_the_restart_path():
    st = new_state()
    register(st, "n1", [6700, 6701], 0.0)
    cmds = submit(st, "t", 0.0, workers=2)
    assert reply(cmds).ok
    r = ask(st, M.RebalanceTopology(2, "t", wait_s=1.0, parallelism={"stage1": 1}), 1.0)
    assert r.data["status"] == "REBALANCING" and not st.migrations


def test_kill_abandons_a_migration_and_closes_its_event():
    st = online({"topology.reschedule.timeout.secs": 0})
    for t in range(1, 11):
        report_all(st, float(t), traffic=CROSSING)
        st.tick(float(t))
    assert "t" in st.migrations
    st.handle(CLI, M.KillTopology(3, "t", wait_s=5.0), 10.5)
    assert all(not w.paused for n in ("n1", "n2") for w in st.declared(n))
    st.tick(11.0)
    assert not st.migrations


# -- one board's reports at a time (observe) ---------------------------------------------------


def test_observe_moves_on_from_one_board_s_reports_once_a_full_look_saw_the_others():
    """The heartbeat path reads the reporting board only: n2 was quiet at the full look, so
    n1's two fresh quiet reports end PAUSE without n2's reports being passed again."""
    m = mig(phase_at=0.0)
    live = {"n1", "n2"}
    assert not advance(m, {B: report(B), C: report(C), A: report(A, paused=False)}, live, 7, 1.0, LC)
    assert m.progress is not None and m.progress.waiting == {A}
    assert not observe(m, "n1", {A: report(A, at=2.0)}, 7, 2.0, LC)  # first quiet look
    assert observe(m, "n1", {A: report(A, at=3.0)}, 7, 3.0, LC) and m.phase == RELEASE
    assert m.progress is None  # a new phase: the next look is a full one


def test_observe_collects_a_board_s_snapshots_and_counts_what_is_missing():
    m = mig(phase=RELEASE, phase_at=0.0)
    assert not advance(m, {}, {"n1", "n2"}, 7, 0.5, LC)
    assert m.progress is not None and m.progress.missing == 2
    assert not observe(m, "n1", {A: report(A, released={2: b"forged"})}, 7, 1.0, LC)  # not its old owner
    assert not observe(m, "n2", {B: report(B, released={2: b"two"})}, 7, 1.5, LC)
    assert m.progress.missing == 1 and m.states == {2: b"two"}
    assert not observe(m, "n2", {B: report(B, released={2: b"two"})}, 7, 1.7, LC)  # the same one again
    assert m.progress.missing == 1
    assert observe(m, "n2", {B: report(B, released={2: b"two", 3: b"three"})}, 7, 2.0, LC) and m.phase == ACQUIRE


def test_observe_after_a_new_version_is_refused_until_a_full_look():
    m = mig(phase_at=0.0)
    advance(m, {k: report(k) for k in (A, B, C)}, {"n1", "n2"}, 7, 1.0, LC)
    assert m.progress is not None and not m.progress.matches(m, 8)
    with pytest.raises(AssertionError):
        observe(m, "n1", {A: report(A)}, 8, 2.0, LC)


def _random_reports(rng, version, phase_at):
    """Reports of A, B and C, each one quiet/running or faulty at random."""
    out = {}
    for k in (A, B, C, D):
        fault = rng.choice([{}, {}, {}, {"paused": False}, {"queued": 1}, {"sent": 11}, {"version": 6}, {"state": "x"}])
        released = {ex: b"s" for ex in (2, 3) if k == B and rng.random() < 0.3}
        out[k] = report(k, at=phase_at, released=released, **{"version": version, **fault})
    return out


@pytest.mark.parametrize("seed", range(40))
def test_looking_at_one_board_decides_as_looking_at_every_board(seed):
    """Two copies of a migration see the same heartbeats (one board at a time, random faults
    and snapshots): one takes a full look at each, the other looks at the reporting board
    only (a full look at the start of each phase, as Nimbus does). They step at the same
    heartbeats, to the same phases, with the same snapshots and notes."""
    import random

    rng = random.Random(seed)
    full, one = mig(phase_at=0.0), mig(phase_at=0.0)
    live = {"n1", "n2"}
    latest: dict = {}
    t = 0.0
    while full.phase != DONE and t < 200:
        t += 0.25
        node = rng.choice(["n1", "n2"])
        fresh = _random_reports(rng, 7, t)
        for k in (A, B, C, D):
            if k[0] == node:
                latest[k] = fresh[k]
        if one.progress is None or not one.progress.matches(one, 7):
            stepped_one = advance(one, latest, live, 7, t, LC)
        else:
            stepped_one = observe(one, node, {k: r for k, r in latest.items() if k[0] == node}, 7, t, LC)
        stepped_full = advance(full, latest, live, 7, t, LC)
        assert (stepped_one, one.phase, one.states, one.notes) == (stepped_full, full.phase, full.states, full.notes), t
    assert full.phase == DONE


def acks(cmds: list) -> dict[bytes, M.HeartbeatAck]:
    return {c.peer: c.msg for c in cmds if isinstance(c.msg, M.HeartbeatAck)}


def test_the_heartbeat_ack_names_the_snapshots_nimbus_took_and_not_those_it_still_waits_for():
    """A board sends a released snapshot (its executor's queue: up to megabytes) with every
    heartbeat until Nimbus's ack names it; Nimbus names it once held or no longer wanted."""
    st = online({"topology.reschedule.timeout.secs": 0})
    for t in range(1, 11):
        report_all(st, float(t), traffic=CROSSING)
        st.tick(float(t))
    for t in (11.0, 12.0):
        report_all(st, t, traffic=CROSSING)
    assert st.migrations["t"].phase == RELEASE and set(st.migrations["t"].awaited) == {2, 3}
    # Executor 3's snapshot from a worker that never owned it (n2:6700 did) is not taken:
    # Nimbus still wants executor 3's from its old owner.
    released = {("n1", 6700): {2: b"state-2", 3: b"not-its-own"}}
    got = acks(report_all(st, 12.5, traffic=CROSSING, released=released))
    assert got[b"peer-n1"].taken == {6700: [2]}
    assert got[b"peer-n2"].taken == {}
    assert st.migrations["t"].states == {2: b"state-2"}
    t = 12.5
    while "t" in st.migrations and st.migrations["t"].phase == RELEASE:  # until the release timeout
        t += 1.0
        assert t < 30.0
        st.tick(t)
        report_all(st, t + 0.5, traffic=CROSSING, released=released)
    got = acks(report_all(st, t + 0.7, traffic=CROSSING, released=released))
    assert got[b"peer-n1"].taken == {6700: [2, 3]}, "past RELEASE nothing is wanted any more"
