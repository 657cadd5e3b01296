"""A client finds the leader among several Nimbus addresses: it skips one that does not
answer and follows a follower's ``NotLeader`` to the leader it names. Fake Nimbuses here
are real ZeroMQ ROUTERs on loopback, answering from a thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import zmq

from squall import messages as m
from squall.client import NimbusClient, NimbusUnreachable, nimbus_addresses
from squall.ports import free_port
from squall.wire import decode, encode

pytestmark = pytest.mark.timeout(30)


class FakeNimbus:
    """A ROUTER answering each request with ``answer(request)``; counts what it was asked."""

    def __init__(self, answer: Callable[[object], object]) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.asked: list[object] = []
        self._answer = answer
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.bind(f"tcp://{self.address}")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self._sock.poll(50):
                continue
            peer, frame = self._sock.recv_multipart()
            request = decode(frame)
            self.asked.append(request)
            self._sock.send_multipart([peer, encode(self._answer(request))])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()
        self._ctx.term()


@pytest.fixture
def fakes() -> Iterator[list[FakeNimbus]]:
    made: list[FakeNimbus] = []
    yield made
    for fake in made:
        fake.close()


def leader(fakes: list[FakeNimbus]) -> FakeNimbus:
    fake = FakeNimbus(lambda req: m.Reply(rid=req.rid, ok=True, data=["from the leader"]))
    fakes.append(fake)
    return fake


def follower(fakes: list[FakeNimbus], leader_address: str) -> FakeNimbus:
    fake = FakeNimbus(lambda req: m.NotLeader(rid=req.rid, leader=leader_address, term=4))
    fakes.append(fake)
    return fake


def test_a_follower_s_not_leader_answer_is_followed_to_the_leader(fakes):
    real = leader(fakes)
    first = follower(fakes, real.address)
    with NimbusClient(first.address, timeout_s=2) as client:
        assert client.list() == ["from the leader"]
        assert client.address == real.address  # the leader stays the first choice
        assert client.list() == ["from the leader"]
    assert len(first.asked) == 1 and len(real.asked) == 2


def test_an_address_that_does_not_answer_is_left_for_the_next(fakes):
    real = leader(fakes)
    dead = f"127.0.0.1:{free_port()}"
    with NimbusClient(f"{dead},{real.address}", timeout_s=0.5) as client:
        assert client.list() == ["from the leader"]
    assert len(real.asked) == 1


def test_no_leader_anywhere_is_named_with_every_address_tried(fakes):
    dead = f"127.0.0.1:{free_port()}"
    lost = follower(fakes, "")  # a follower that knows no leader (an election)
    with NimbusClient([lost.address, dead], timeout_s=0.3) as client:
        with pytest.raises(NimbusUnreachable) as err:
            client.list()
    assert lost.address in str(err.value) and dead in str(err.value)


def test_addresses_come_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.setenv("SQUALL_NIMBUS", "a:1, b:2,a:1")
    assert nimbus_addresses() == ["a:1", "b:2"]
    assert nimbus_addresses("c:3") == ["c:3"]
    with pytest.raises(ValueError, match="'b'"):
        nimbus_addresses("a:1,b")
