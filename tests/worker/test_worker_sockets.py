"""The worker's sockets on real ZeroMQ (loopback): what they remember about waiting messages
saves ZeroMQ queries without ever missing a frame or a control message, and a round's intake
stops at its item budget."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import zmq

from squall.ports import free_port
from squall.supervisor.worker_io import WorkerSockets

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


class Peers:
    """A worker's sockets, a PUSH to its PULL, a ROUTER its DEALER connects to."""

    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        sup_port = self.router.bind_to_random_port("tcp://127.0.0.1")
        self.port = free_port()
        self.io = WorkerSockets("127.0.0.1", self.port, f"tcp://127.0.0.1:{sup_port}", context=zmq.Context())
        self.push = self.ctx.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.push.connect(f"tcp://127.0.0.1:{self.port}")

    def wait_for_data(self) -> None:
        """Block in the worker's own ``wait`` (as its loop does) until a frame is waiting."""
        for _ in range(200):
            if self.io.data_waiting():
                return
            self.io.wait(0.05)
        raise AssertionError("no frame arrived")

    def close(self) -> None:
        self.io.close()
        self.push.close(0)
        self.router.close(0)
        self.ctx.term()


@pytest.fixture
def peers() -> Iterator[Peers]:
    p = Peers()
    yield p
    p.close()


def collect(frames: list[bytes]):
    def deliver(frame: bytes) -> tuple[int, int]:
        frames.append(frame)
        return 1, 0

    return deliver


def test_a_quiet_pull_is_not_asked_again_until_its_descriptor_signals(peers: Peers) -> None:
    io = peers.io
    peers.push.send(b"zero")  # once connected, the descriptor signals only what arrives
    peers.wait_for_data()
    io.receive_data(collect([]), 64, 1000)
    assert not io.data_waiting()
    asked = io.events_asked
    for _ in range(100):
        assert not io.data_waiting()
        io.wait(0)
    # Asking every time would be 300 queries; libzmq may signal a few commands of its own.
    assert io.events_asked - asked <= 5, "hardly a ZeroMQ query while nothing arrived"
    peers.push.send(b"one")
    peers.wait_for_data()
    assert io.events_asked > asked, "the descriptor's signal made it ask"
    got: list[bytes] = []
    assert io.receive_data(collect(got), 64, 1000) == (1, 0)
    assert got == [b"one"]
    assert not io.data_waiting()


def test_every_frame_of_a_stream_is_received_in_order(peers: Peers) -> None:
    """Frames sent while the worker receives, waits or checks: none is left behind."""
    io = peers.io
    got: list[bytes] = []
    sent = [str(i).encode() for i in range(2000)]
    for i, frame in enumerate(sent):
        peers.push.send(frame)
        if i % 7 == 0:
            io.receive_data(collect(got), 3, 1000)
    while len(got) < len(sent):
        peers.wait_for_data()
        io.receive_data(collect(got), 64, 1000)
    assert got == sent


def test_a_round_stops_taking_frames_at_its_item_budget(peers: Peers) -> None:
    io = peers.io
    for i in range(10):
        peers.push.send(str(i).encode())
    got: list[bytes] = []
    while len(got) < 10:
        peers.wait_for_data()
        before = len(got)
        n, _ = io.receive_data(collect(got), 64, 4)
        assert n == len(got) - before <= 4
    assert got == [str(i).encode() for i in range(10)]


def test_a_control_message_after_a_heartbeat_is_not_missed(peers: Peers) -> None:
    """A send on the DEALER may consume the signal of a message arriving meanwhile: the
    socket must ask ZeroMQ again after it, not trust what it knew."""
    io = peers.io
    assert io.receive_control() == []
    io.send_control(b"heartbeat")
    identity, frame = peers.router.recv_multipart()
    assert frame == b"heartbeat"
    for i in range(50):
        peers.router.send_multipart([identity, f"update {i}".encode()])
        io.send_control(b"heartbeat")  # races the update's arrival
        received: list[bytes] = []
        for _ in range(200):
            received += io.receive_control()
            if received:
                break
            io.wait(0.05)
        assert received == [f"update {i}".encode()]
