"""Decisions as commands: ``on_message`` / ``on_tick`` write nothing, and what they return,
carried out through a store, is what ``handle`` / ``tick`` did. No sockets."""

from __future__ import annotations

import dataclasses
import hashlib

from squall import messages as M
from squall.nimbus.commands import (
    AddEvent,
    DeleteTopology,
    DropBundle,
    PutBundle,
    ReplyBundle,
    ReplyEvents,
    SaveSupervisor,
    SaveTopology,
    Send,
)
from squall.nimbus.store import Store
from tests.nimbus.nimbus_helpers import CLI, chain_spec, new_state, peer_of, register


def submit_msg(name: str = "t") -> M.SubmitTopology:
    return M.SubmitTopology(1, name, chain_spec(), b"bundle-bytes", "round_robin", 2, {})


def test_a_decision_writes_nothing_until_its_commands_are_carried_out():
    st = new_state()
    register(st, "n1", [6700, 6701], 0.0)
    cmds = st.on_message(CLI, submit_msg(), 0.0)
    kinds = [type(c) for c in cmds]
    assert PutBundle in kinds and SaveTopology in kinds and SaveSupervisor in kinds
    assert st.store.load_topologies() == [], "deciding wrote to the store"
    (bundle,) = [c for c in cmds if isinstance(c, PutBundle)]
    assert bundle.digest == hashlib.sha256(b"bundle-bytes").hexdigest()
    sends = st.carry_out(cmds)
    assert all(isinstance(s, Send) for s in sends)
    assert [r.name for r in st.store.load_topologies()] == ["t"]
    assert st.store.get_bundle(bundle.digest) == b"bundle-bytes"
    assert any(isinstance(s.msg, M.SupervisorAssignment) and s.peer == peer_of("n1") for s in sends)


def test_a_saved_record_is_the_one_decided_not_the_one_changed_later():
    st = new_state()
    register(st, "n1", [6700, 6701], 0.0)
    cmds = st.on_message(CLI, submit_msg(), 0.0)
    (save,) = [c for c in cmds if isinstance(c, SaveTopology)]
    version = save.record.version
    placement = save.record.placement
    st.topologies["t"].version += 10
    st.topologies["t"].placement = {}
    assert save.record.version == version and save.record.placement == placement and placement


def test_a_kill_past_its_deadline_deletes_the_topology_then_drops_its_bundle():
    st = new_state()
    register(st, "n1", [6700, 6701], 0.0)
    st.handle(CLI, submit_msg(), 0.0)
    cmds = st.on_message(CLI, M.KillTopology(rid=2, name="t", wait_s=0.0), 1.0)
    deleted = [i for i, c in enumerate(cmds) if isinstance(c, DeleteTopology)]
    dropped = [i for i, c in enumerate(cmds) if isinstance(c, DropBundle)]
    assert deleted and dropped and deleted[0] < dropped[0]
    st.carry_out(cmds)
    assert st.store.load_topologies() == [] and st.store.get_bundle(hashlib.sha256(b"bundle-bytes").hexdigest()) is None


def test_reads_of_the_store_are_commands_answered_by_the_store():
    st = new_state()
    register(st, "n1", [6700, 6701], 0.0)
    st.handle(CLI, submit_msg(), 0.0)
    (read,) = st.on_message(CLI, M.GetTopology(rid=3, name="t"), 1.0)
    assert isinstance(read, ReplyBundle) and read.rid == 3
    (sent,) = st.carry_out([read])
    assert sent.msg.ok and sent.msg.data["bundle"] == b"bundle-bytes"
    missing = ReplyBundle(CLI, 4, "t", "0" * 64, read.view)
    (sent,) = st.carry_out([missing])
    assert not sent.msg.ok and "missing from the store" in sent.msg.error
    (events,) = st.on_message(CLI, M.GetEvents(rid=5, name="t"), 1.0)
    assert isinstance(events, ReplyEvents)
    assert st.carry_out([events])[0].msg.data == []


def test_event_ids_are_given_by_the_state_and_continue_after_a_restart(tmp_path):
    store = Store.open(tmp_path / "d")
    st = new_state(store)
    st.boot = 0.0
    rec_name = "t"
    register(st, "n1", [6700, 6701], 0.0)
    st.handle(CLI, submit_msg(rec_name), 0.0)
    rec = st.topologies[rec_name]
    first = st.live.record(rec, 1.0, "periodic", "declined", "a test event", None)
    (add,) = [c for c in st._flush() if isinstance(c, AddEvent)]
    assert add.event_id == first
    st.carry_out([add])
    assert [e["id"] for e in store.events(rec_name)] == [first]
    store.close()
    again = new_state(Store.open(tmp_path / "d"))
    second = again.live.record(again.topologies[rec_name], 2.0, "periodic", "declined", "another", None)
    assert second == first + 1
    again.store.close()


def test_a_bug_while_carrying_out_is_answered_and_changes_nothing():
    """A value the store cannot encode must not kill the loop: the transaction rolls back,
    memory goes back to the store, the request gets an error and nothing is pushed."""
    st = new_state()
    register(st, "n1", [6700, 6701], 0.0)
    st.handle(CLI, submit_msg(), 0.0)
    cmds = st.on_message(CLI, M.KillTopology(rid=2, name="t", wait_s=30.0), 1.0)
    broken = [
        SaveTopology(dataclasses.replace(c.record, conf={"x": object()})) if isinstance(c, SaveTopology) else c
        for c in cmds
    ]
    (sent,) = st.carry_out(broken, CLI, 2)
    assert not sent.msg.ok and "internal error" in sent.msg.error and st.counters["internal_errors"] == 1
    assert st.topologies["t"].phase == "running" == st.store.load_topologies()[0].phase
