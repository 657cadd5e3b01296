"""A real supervisor daemon (in a thread) among fake Nimbuses (ROUTERs on loopback): it
follows a follower's "register with the leader at X", and it leaves a Nimbus that stops
answering for the next address (that its workers stay is tested on the state machine and
with real processes)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import zmq

from squall import messages as m
from squall.supervisor.daemon import SupervisorDaemon
from squall.supervisor.facts import board_facts
from squall.wire import encode
from tests.supervisor.supervisor_helpers import recv

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def routers() -> Iterator[list[tuple[zmq.Socket, str]]]:
    ctx = zmq.Context()
    made: list[tuple[zmq.Socket, str]] = []
    for _ in range(2):
        sock = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        made.append((sock, f"127.0.0.1:{sock.bind_to_random_port('tcp://127.0.0.1')}"))
    yield made
    ctx.destroy(linger=0)


def run_daemon(addresses: list[str], tmp_path, timeout_s: float) -> tuple[SupervisorDaemon, threading.Thread]:
    facts = board_facts("pi-test", slots=1, capacity_hz=1e9)
    d = SupervisorDaemon(addresses, facts, [6999], tmp_path, nimbus_timeout_s=timeout_s)
    t = threading.Thread(target=d.run, daemon=True)
    t.start()
    return d, t


def test_a_follower_s_refusal_naming_the_leader_is_followed(routers, tmp_path):
    (follower, follower_address), (leader, leader_address) = routers
    d, t = run_daemon([follower_address], tmp_path, timeout_s=30)
    try:
        peer, reg = recv(follower, m.RegisterSupervisor)
        follower.send_multipart(
            [peer, encode(m.RegisterReply(ok=False, reason="not the leader", term=2, leader=leader_address))]
        )
        peer, reg = recv(leader, m.RegisterSupervisor)
        assert reg.supervisor_id == "pi-test"
        leader.send_multipart([peer, encode(m.RegisterReply(ok=True, term=2))])
        _, beat = recv(leader, m.Heartbeat)
        assert beat.supervisor_id == "pi-test" and d.nimbus == leader_address
    finally:
        d.stop()
        t.join(10)


def test_a_silent_nimbus_is_left_for_the_next_address(routers, tmp_path):
    (first, first_address), (second, second_address) = routers
    d, t = run_daemon([first_address, second_address], tmp_path, timeout_s=1.0)
    try:
        peer, _ = recv(first, m.RegisterSupervisor)
        first.send_multipart([peer, encode(m.RegisterReply(ok=True, term=1))])
        first.send_multipart([peer, encode(m.SupervisorAssignment("pi-test", 1, [], term=1))])
        recv(first, m.Heartbeat)  # registered there; from now on the first Nimbus says nothing
        peer, reg = recv(second, m.RegisterSupervisor, timeout_s=5)
        assert reg.term == 1  # it tells the next Nimbus the term it follows
        assert d.state.reconnects == 1 and d.nimbus == second_address
    finally:
        d.stop()
        t.join(10)
