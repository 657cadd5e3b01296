"""Migration snapshots go down once: an ACQUIRE assignment names each arriving executor's
snapshot by reference, Nimbus hands the bytes out one per ``GetSnapshot`` (and counts them),
refuses a fetch it cannot answer with the reason, and a re-registration pushes the
references again, not the bytes — NimbusState alone, no sockets."""

from __future__ import annotations

from hashlib import sha256

from squall import messages as M
from squall import wire
from squall.nimbus.migration import ACQUIRE, RELEASE
from squall.nimbus.state import NimbusState
from tests.nimbus.live_helpers import CROSSING, assignments, online, report_all
from tests.nimbus.nimbus_helpers import ask, register

BIG = 1024 * 1024  # a snapshot of a megabyte: an executor's queue of 16 KiB tuples


def snapshot_of(ex: int) -> bytes:
    return bytes([ex]) * (BIG + ex)  # a distinct size and digest per executor


def ref(ex: int) -> M.StateRef:
    data = snapshot_of(ex)
    return M.StateRef(sha256(data).hexdigest(), len(data))


def to_acquire() -> tuple[NimbusState, list, float]:
    """The online loop moves executors of "t"; each old owner releases its snapshot. The
    state in ACQUIRE, the ACQUIRE push and the time."""
    st = online({"topology.reschedule.timeout.secs": 0})
    for t in range(1, 11):
        report_all(st, float(t), traffic=CROSSING)
        st.tick(float(t))
    for t in (11.0, 12.0):  # two quiet looks: RELEASE
        report_all(st, t, traffic=CROSSING)
    mig = st.migrations["t"]
    assert mig.phase == RELEASE and mig.moved
    released: dict[tuple[str, int], dict[int, bytes]] = {}
    for ex in mig.moved:
        slot = mig.old[ex]
        released.setdefault((slot.node, slot.port), {})[ex] = snapshot_of(ex)
    cmds = report_all(st, 12.5, traffic=CROSSING, released=released)
    assert mig.phase == ACQUIRE
    return st, cmds, 12.5


def test_the_acquire_push_names_each_snapshot_and_a_fetch_gets_its_bytes_once_counted():
    st, cmds, now = to_acquire()
    mig = st.migrations["t"]
    named = {ex: r for sa in assignments(cmds) for w in sa.workers for ex, r in w.state_refs.items()}
    assert named == {ex: ref(ex) for ex in mig.moved}
    for sa in assignments(cmds):  # no snapshot byte in any frame: references only
        assert all(w.states == {} for w in sa.workers)
        assert len(wire.encode(sa)) < 10_000

    for ex in mig.moved:
        got = ask(st, M.GetSnapshot(ex, "t", ref(ex).digest, ex), now)
        assert got.ok and got.data == {
            "topology": "t",
            "executor": ex,
            "digest": ref(ex).digest,
            "state": snapshot_of(ex),
        }
    assert mig.sent == {ex: [1, len(snapshot_of(ex))] for ex in mig.moved}
    assert st.counters["snapshots_sent"] == len(mig.moved)
    assert st.counters["snapshot_bytes_sent"] == sum(len(snapshot_of(ex)) for ex in mig.moved)

    cmds = report_all(st, now + 1, traffic=CROSSING)  # the new owners run them: RESUME
    assert "t" not in st.migrations
    (event,) = [e for e in ask(st, M.GetEvents(1, "t"), now + 1).data if e.get("moved")]
    assert event["snapshots_sent"] == {str(ex): {"sends": 1, "bytes": len(snapshot_of(ex))} for ex in mig.moved}
    assert not any(w.state_refs or w.states for sa in assignments(cmds) for w in sa.workers)


def test_a_fetch_nimbus_cannot_answer_is_refused_with_the_reason():
    st, _, now = to_acquire()
    mig = st.migrations["t"]
    ex = mig.moved[0]
    stays = next(e for e in mig.old if e not in mig.moved)

    wrong = ask(st, M.GetSnapshot(1, "t", "00" * 32, ex), now)
    assert not wrong.ok and f"executor {ex} of topology 't'" in wrong.error and "digest" in wrong.error
    unknown = ask(st, M.GetSnapshot(2, "nope", ref(ex).digest, ex), now)
    assert not unknown.ok and "not migrating" in unknown.error
    not_moving = ask(st, M.GetSnapshot(3, "t", ref(ex).digest, stays), now)
    assert not not_moving.ok and "holds none" in not_moving.error
    assert st.counters["snapshot_fetches_refused"] == 3 and st.counters["snapshots_sent"] == 0

    report_all(st, now + 1, traffic=CROSSING)  # RESUME: the migration's states are gone
    expired = ask(st, M.GetSnapshot(4, "t", ref(ex).digest, ex), now + 1)
    assert not expired.ok and "not migrating" in expired.error


def test_a_fetch_before_acquire_is_refused():
    st = online({"topology.reschedule.timeout.secs": 0})
    for t in range(1, 11):
        report_all(st, float(t), traffic=CROSSING)
        st.tick(float(t))
    mig = st.migrations["t"]
    got = ask(st, M.GetSnapshot(1, "t", ref(mig.moved[0]).digest, mig.moved[0]), 10.5)
    assert not got.ok and "pause" in got.error and ACQUIRE in got.error


def test_a_re_registration_in_acquire_pushes_the_references_again_not_the_bytes():
    st, cmds, now = to_acquire()
    owners = {sa.supervisor_id for sa in assignments(cmds) for w in sa.workers if w.state_refs}
    sent_before = st.counters["snapshot_bytes_sent"]
    for node in sorted(owners):
        (sa,) = assignments(register(st, node, [6700, 6701], now + 0.2))
        assert any(w.state_refs for w in sa.workers) and all(w.states == {} for w in sa.workers)
        assert len(wire.encode(sa)) < 10_000  # a megabyte per named snapshot, were they inline
    assert st.counters["snapshot_bytes_sent"] == sent_before == 0  # bytes leave only when fetched
