"""The replica's side of Raft without sockets: a fake log that commits when the test says so.

What is checked: a leader's sends leave only after its writes are committed and stored, a
decision without writes waits behind one in flight, every replica carries entries out in
order and once (a restarted replica skips what its store holds), a deposed leader's entry
is skipped by every replica, stepping down drops what was in flight, and a follower answers
with the leader's address.
"""

from __future__ import annotations

from typing import Any

from squall import messages as M
from squall.nimbus.events import Received
from squall.nimbus.replication import Replica, raft_address
from squall.nimbus.store import Store

PEERS = ["127.0.0.1:7001", "127.0.0.1:7011", "127.0.0.1:7021"]


class FakeNode:
    def __init__(self, address: str) -> None:
        self.id = address


class FakeLog:
    """What ``Replica`` uses of pysyncobj's ``SyncObj``; ``commit()`` hands every appended
    entry to the replica, in order, as pysyncobj's thread would."""

    def __init__(self, self_node: str, others: list[str], conf: Any, on_committed: Any) -> None:
        self.self_node, self.conf, self.on_committed = self_node, conf, on_committed
        self.appended: list[tuple[Any, ...]] = []
        self.callbacks: dict[int, Any] = {}
        self.leader: str | None = None
        self.term = 0

    def append(self, entry: tuple[Any, ...], callback: Any = None) -> None:
        self.appended.append(entry)
        if callback is not None:
            self.callbacks[len(self.appended) - 1] = callback

    def commit(self) -> None:
        entries, self.appended = self.appended, []
        for entry in entries:
            self.on_committed(entry)

    def elect(self, address: str, term: int) -> None:
        self.leader, self.term = raft_address(address), term

    def _isLeader(self) -> bool:
        return self.leader == self.self_node

    def _getLeader(self) -> FakeNode | None:
        return FakeNode(self.leader) if self.leader else None

    def _getTerm(self) -> int:
        return self.term

    def getStatus(self) -> dict[str, Any]:
        return {"state": 2 if self._isLeader() else 0}

    def isNodeConnected(self, node: Any) -> bool:
        return True

    def destroy_synchronous(self) -> None:
        pass


def replica(store: Store, address: str = PEERS[0]) -> tuple[Replica, FakeLog]:
    logs: list[FakeLog] = []

    def make_log(*args: Any) -> FakeLog:
        logs.append(FakeLog(*args))
        return logs[0]

    return Replica(store, {}, address, PEERS, None, make_log=make_log), logs[0]


def lead(rep: Replica, log: FakeLog, term: int = 3) -> None:
    log.elect(rep.address, term)
    rep._on_state_changed(0, 2)
    rep.pump(0.0)
    assert rep.loading and not rep.leading
    log.commit()
    rep.pump(0.0)
    assert rep.leading and rep.term == term


def registration(node: str = "n1") -> M.RegisterSupervisor:
    return M.RegisterSupervisor(node, "host", [6700], 1e9, 1e9, 4, 1024, 100)


def test_a_leaders_reply_leaves_only_after_its_writes_are_committed_and_stored():
    store = Store(":memory:")
    rep, log = replica(store)
    lead(rep, log)
    assert rep.decide(Received(b"board", registration(), 1.0)) == []  # held: not stored anywhere yet
    assert store.load_supervisors() == []
    log.commit()
    sends = rep.pump(1.0)
    assert [type(s.msg) for s in sends] == [M.RegisterReply, M.SupervisorAssignment]
    assert sends[0].msg.ok and sends[0].msg.term == 3 and sends[1].msg.term == 3
    assert [s.id for s in store.load_supervisors()] == ["n1"]
    assert store.load_log_position() == 3  # the marker, its pid announcement, then this entry


def test_a_decision_without_writes_waits_behind_one_in_flight():
    rep, log = replica(Store(":memory:"))
    lead(rep, log)
    rep.decide(Received(b"board", registration(), 1.0))
    assert rep.decide(Received(b"cli", M.ListTopologies(rid=5), 1.1)) == []  # would overtake the write
    log.commit()
    assert [type(s.msg) for s in rep.pump(1.2)] == [M.RegisterReply, M.SupervisorAssignment, M.Reply]
    assert [type(s.msg) for s in rep.decide(Received(b"cli", M.ListTopologies(rid=6), 1.3))] == [M.Reply]


def test_every_replica_stores_the_leaders_entries_and_a_restart_skips_what_it_holds(tmp_path):
    leader_store, follower_store = Store(":memory:"), Store(tmp_path / "f.db", tmp_path / "blobs")
    rep, log = replica(leader_store)
    lead(rep, log)
    rep.decide(Received(b"board", registration("n1"), 1.0))
    rep.decide(Received(b"board2", registration("n2"), 1.1))
    entries = list(log.appended)
    log.commit()
    rep.pump(1.2)
    follower, flog = replica(follower_store, PEERS[1])
    flog.elect(PEERS[0], 3)
    marker = ("leader", PEERS[0], 3)
    for entry in [marker, *entries]:
        follower._on_committed(entry)
    assert follower.pump(1.3) == []  # a follower sends nothing
    assert {s.id for s in follower_store.load_supervisors()} == {"n1", "n2"}
    assert follower_store.load_log_position() == 3
    follower_store.close()
    # Restarted on the same store: its journal replays from the start; nothing is written twice.
    again_store = Store(tmp_path / "f.db", tmp_path / "blobs")
    again, alog = replica(again_store, PEERS[1])
    for entry in [marker, *entries]:
        again._on_committed(entry)
    again.pump(1.4)
    assert again.counters["store_errors"] == 0 and again_store.load_log_position() == 3


def test_a_deposed_leaders_entry_after_its_successors_marker_is_skipped_everywhere():
    store = Store(":memory:")
    rep, log = replica(store, PEERS[1])
    log.elect(PEERS[0], 3)
    stale_writes = None
    old_leader, old_log = replica(Store(":memory:"), PEERS[0])
    lead(old_leader, old_log, term=3)
    old_leader.decide(Received(b"board", registration(), 1.0))
    stale_writes = old_log.appended[-1]
    for entry in [("leader", PEERS[0], 3), ("leader", PEERS[2], 4), stale_writes]:
        rep._on_committed(entry)
    rep.pump(2.0)
    assert store.load_supervisors() == [] and rep.counters["stale_entries"] == 1


def test_stepping_down_drops_what_was_in_flight():
    store = Store(":memory:")
    rep, log = replica(store)
    lead(rep, log)
    rep.decide(Received(b"board", registration(), 1.0))
    log.elect(PEERS[1], 4)  # another replica won a later term
    rep._on_state_changed(2, 0)
    assert rep.pump(1.1) == [] and not rep.leading
    log.commit()  # the entry may still commit (Raft may keep it): stored, never sent from here
    assert rep.pump(1.2) == []
    assert [s.id for s in store.load_supervisors()] == ["n1"]


def test_a_follower_names_the_leader_or_stays_silent_when_none_is_known():
    rep, log = replica(Store(":memory:"))
    assert rep.refusal(b"board", registration()) == []  # no leader: the board's timer moves it on
    log.elect(PEERS[2], 5)
    [kill] = rep.refusal(b"cli", M.KillTopology(rid=9, name="x"))
    assert kill.msg == M.NotLeader(rid=9, leader=PEERS[2])
    [reg] = rep.refusal(b"board", registration())
    assert isinstance(reg.msg, M.RegisterReply) and not reg.msg.ok and reg.msg.leader == PEERS[2]
    [status] = rep.refusal(b"cli", M.GetNimbusStatus(rid=10))
    assert status.msg == M.NotLeader(rid=10, leader=PEERS[2])  # the leader's view is the one to read


def test_an_entry_raft_did_not_commit_reloads_the_state_from_the_store_through_a_new_marker():
    store = Store(":memory:")
    rep, log = replica(store)
    lead(rep, log)
    rep.decide(Received(b"board", registration(), 1.0))
    rep._on_result(1, None, 1)  # pysyncobj: QUEUE_FULL, while still leader
    assert rep.pump(1.1) == [] and not rep.leading and rep.loading
    rep.hold(Received(b"cli", M.ListTopologies(rid=3), 1.15))  # what the server does meanwhile
    log.commit()  # whatever Raft kept is stored, then the new marker loads the state
    sends = rep.pump(1.2)  # the held request is decided; the dropped decision's reply never leaves
    assert [(s.peer, type(s.msg), s.msg.rid) for s in sends] == [(b"cli", M.Reply, 3)]
    assert rep.leading and set(rep.state.supervisors) == {s.id for s in store.load_supervisors()}


def test_a_board_ahead_of_the_raft_term_lifts_the_groups_term_past_it_through_the_log():
    """Boards that followed a standalone Nimbus's term 5 would refuse a group at Raft term 3:
    the leader raises the group's offset through the log, then pushes every board again."""
    store = Store(":memory:")
    rep, log = replica(store)
    lead(rep, log, term=3)
    ahead = M.RegisterSupervisor("n1", "host", [6700], 1e9, 1e9, 4, 1024, 100, term=5)
    rep.decide(Received(b"board", ahead, 1.0))
    assert ("offset", PEERS[0], 3, 3) in log.appended
    log.commit()
    rep.pump(1.1)
    assert rep.term == 6 and rep.state.leadership.term == 6
    assert rep.decide(Received(b"board", M.Heartbeat("n1", 1, [], term=5), 1.2)) == []  # a push: writes first
    log.commit()
    sends = rep.pump(1.3)
    sent = sorted((type(s.msg).__name__, s.msg.term) for s in sends)
    assert sent == [("HeartbeatAck", 6), ("SupervisorAssignment", 6)]
    # Replayed by another replica, the offset outlives this leader: a later one starts above 6.
    follower, flog = replica(Store(":memory:"), PEERS[1])
    for entry in [("leader", PEERS[0], 3), ("offset", PEERS[0], 3, 3), ("leader", PEERS[1], 4)]:
        follower._on_committed(entry)
    flog.elect(PEERS[1], 4)
    follower._want_term = 4
    follower.pump(2.0)
    assert follower.leading and follower.term == 7
