"""Nimbus's side of fencing, fed events (no sockets): each start is a new term, saved before it
is used; a board reporting a higher term raises Nimbus above it and every board is pushed
its assignment again under the new term; GetNimbusStatus states who leads."""

from __future__ import annotations

from squall import messages as M
from squall.nimbus.store import Store
from tests.nimbus.nimbus_helpers import CLI, new_state, peer_of, pushes

PORTS = [6700, 6701]


def register(st, node: str, now: float, term: int = 0):
    msg = M.RegisterSupervisor(node, f"host-{node}", PORTS, 1e9, 1e9, 4, 1024, 100, term=term)
    return st.handle(peer_of(node), msg, now)


def test_every_start_is_a_new_term_saved_in_the_store(tmp_path):
    store = Store.open(tmp_path)
    try:
        assert new_state(store).leadership.term == 1
        assert new_state(store).leadership.term == 2  # a restart on the same data dir
        assert store.load_epoch() == 2
    finally:
        store.close()
    reopened = Store.open(tmp_path)
    try:
        assert new_state(reopened).leadership.term == 3
    finally:
        reopened.close()


def test_a_board_ahead_raises_the_term_and_every_board_is_pushed_again():
    st = new_state()  # an empty data dir: term 1
    register(st, "n1", 0.0)
    cmds = register(st, "n2", 0.1, term=5)  # n2 followed a Nimbus of term 5
    reply = cmds[0].msg
    assert reply.ok and reply.term == 6 and st.leadership.term == 6
    assert st.store.load_epoch() == 6
    pushed = pushes(cmds)
    assert set(pushed) == {"n1", "n2"} and all(a.term == 6 for a in pushed.values())


def test_a_board_below_this_term_or_back_in_it_changes_nothing():
    st = new_state()
    register(st, "n1", 0.0)
    register(st, "n2", 0.1)
    cmds = register(st, "n2", 0.2, term=1)  # n2 again (declared dead, say), in this term
    assert st.leadership.term == 1 and set(pushes(cmds)) == {"n2"}
    register(st, "n3", 0.3, term=0)
    assert st.leadership.term == 1


def test_a_new_board_reporting_this_very_term_got_it_from_another_nimbus():
    """Two fresh data dirs both start at term 1: their numbers cannot be compared."""
    st = new_state()
    register(st, "n1", 0.0)
    cmds = register(st, "n2", 0.1, term=1)
    assert st.leadership.term == 2
    assert {n: a.term for n, a in pushes(cmds).items()} == {"n1": 2, "n2": 2}


def test_a_heartbeat_is_acked_and_a_higher_term_in_it_raises_the_term():
    st = new_state()
    register(st, "n1", 0.0)
    register(st, "n2", 0.0)
    cmds = st.handle(peer_of("n1"), M.Heartbeat("n1", 7, [], term=1), 0.5)
    assert [c.msg for c in cmds] == [M.HeartbeatAck(7, term=1)]
    cmds = st.handle(peer_of("n2"), M.Heartbeat("n2", 8, [], term=9), 0.6)
    acks = [c.msg for c in cmds if isinstance(c.msg, M.HeartbeatAck)]
    assert acks == [M.HeartbeatAck(8, term=1)]  # the ack states the term it was received in
    assert st.leadership.term == 10
    assert {n: a.term for n, a in pushes(cmds).items()} == {"n1": 10, "n2": 10}


def test_status_names_this_nimbus_as_the_leader_of_its_term():
    st = new_state()
    st.leadership.address = "10.0.0.5:6627"
    (cmd,) = st.handle(CLI, M.GetNimbusStatus(rid=3), 0.0)
    assert cmd.msg == M.Reply(
        rid=3,
        ok=True,
        data={
            "leader": "10.0.0.5:6627",
            "term": 1,
            "replicas": [{"address": "10.0.0.5:6627", "role": "leader", "pid": st.leadership.pid}],
        },
    )
