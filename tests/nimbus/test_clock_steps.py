"""A step of the system clock (NTP sync on a board without a real-time clock) neither stops
Nimbus's ticks nor declares every board dead: ticks run on the monotonic clock and the state
is fed a clock that never steps. A real server loop and a real DEALER peer, in-process."""

from __future__ import annotations

import threading
import time

import pytest
import zmq

from squall import messages as M
from squall.nimbus.events import Event, Tick
from squall.nimbus.server import NimbusServer
from squall.nimbus.state import NimbusState
from squall.nimbus.store import Store
from squall.ports import free_port
from squall.wire import decode, encode
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server():
    port = free_port()
    srv = NimbusServer(NimbusState(Store(":memory:")), "127.0.0.1", port, 0)
    ticks = {"n": 0}
    apply = srv.state.apply

    def counted(event: Event):
        ticks["n"] += isinstance(event, Tick)
        return apply(event)

    srv.state.apply = counted  # type: ignore[method-assign]
    loop = threading.Thread(target=srv.run, daemon=True)
    loop.start()
    ctx = zmq.Context()
    peer = ctx.socket(zmq.DEALER)
    peer.setsockopt(zmq.LINGER, 0)
    peer.connect(f"tcp://127.0.0.1:{port}")
    peer.send(encode(M.RegisterSupervisor("n1", "127.0.0.1", [free_port()], 1e9, 1e9, 1, 512, 1)))
    assert peer.poll(5000) and isinstance(decode(peer.recv()), M.RegisterReply)
    yield srv, peer, ticks
    srv.stop()
    loop.join(10)
    ctx.destroy(linger=0)


def beat(peer: zmq.Socket, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        peer.send(encode(M.Heartbeat("n1", 1, [])))
        time.sleep(0.2)


@pytest.mark.parametrize("step_s", [3600.0, -3600.0], ids=["clock jumps forward an hour", "clock steps back an hour"])
def test_a_clock_step_keeps_ticks_and_boards(server, monkeypatch, step_s):
    srv, peer, ticks = server
    beat(peer, 0.6)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + step_s)
    # No heartbeat while Nimbus ticks a few times with the stepped clock (0.5 s apart: well
    # under the 5 s timeout in real time); a tick that read the wall clock would bury n1.
    gap = ticks["n"]
    eventually(lambda: ticks["n"] - gap >= 3, timeout_s=10, interval_s=0.02, what="ticks without a heartbeat")
    assert not srv.state.supervisors["n1"].dead, "presumed dead in a gap shorter than the timeout"
    before = ticks["n"]
    beat(peer, 1.5)
    assert ticks["n"] - before >= 2, "ticks stopped"
    assert not srv.state.supervisors["n1"].dead and srv.state.live_nodes(srv.clock()) == {"n1"}
