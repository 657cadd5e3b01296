"""A batch the server loop read at once is handled requests first, each peer's messages in
the order it sent them (squall/nimbus/batch_order.py); and the real loop answers a request
read together with a backlog of heartbeats before it handles them."""

from __future__ import annotations

import threading

import pytest
import zmq

from squall import messages as M
from squall.nimbus.batch_order import handling_order
from squall.nimbus.server import NimbusServer
from squall.nimbus.state import NimbusState
from squall.nimbus.store import Store
from squall.ports import free_port
from squall.wire import decode, encode
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(60)


def hb(board: str) -> tuple[bytes, M.Heartbeat, float]:
    return board.encode(), M.Heartbeat(board, 1, []), 0.0


def query(peer: str, rid: int) -> tuple[bytes, M.ListTopologies, float]:
    return peer.encode(), M.ListTopologies(rid), 0.0


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        ([hb("b1"), hb("b2"), query("c", 1)], [query("c", 1), hb("b1"), hb("b2")]),
        ([query("c", 1), hb("b1"), query("c", 2)], [query("c", 1), query("c", 2), hb("b1")]),
        # b1's request after its own heartbeat stays after it; c's goes first.
        ([hb("b1"), query("b1", 7), query("c", 1)], [query("c", 1), hb("b1"), query("b1", 7)]),
        ([hb("b1"), hb("b2")], [hb("b1"), hb("b2")]),
        ([], []),
    ],
    ids=[
        "a request read after heartbeats goes first",
        "requests keep their order",
        "a peer's message behind its own heartbeat stays behind it",
        "heartbeats alone keep their order",
        "empty",
    ],
)
def test_handling_order(batch, expected):
    assert handling_order(batch) == expected


def test_the_loop_answers_a_request_read_with_a_backlog_of_heartbeats_before_them(monkeypatch):
    """Heartbeats from 40 boards, then one request, wait in Nimbus's socket (its loop not yet
    running); once it runs, the request is handled before every heartbeat read with it.
    Frames of different connections may arrive in any order: a try in which the request was
    not read together with heartbeats proves nothing and is made again (up to 5 tries)."""
    from squall.nimbus import server as server_module

    batches: list[list[str]] = []

    def recorded(batch):
        ordered = handling_order(batch)
        batches.append([type(msg).__name__ for _, msg, _ in ordered])
        return ordered

    monkeypatch.setattr(server_module, "handling_order", recorded)
    for _ in range(5):
        batches.clear()
        one_try()
        with_request = next(b for b in batches if "ListTopologies" in b)
        if "Heartbeat" in with_request:
            assert with_request.index("ListTopologies") < with_request.index("Heartbeat"), with_request
            return
    pytest.fail(f"the request was never read together with heartbeats: {batches}")


def one_try() -> None:
    srv = NimbusServer(NimbusState(Store(":memory:")), "127.0.0.1", free_port(), 0)
    ctx = zmq.Context()
    loop = threading.Thread(target=srv.run, daemon=True)
    try:
        boards = []  # kept: a socket collected with LINGER 0 drops what it had not sent
        for k in range(40):
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(srv.address)
            sock.send(encode(M.Heartbeat(f"b{k}", 1, [])))
            boards.append(sock)
        eventually(lambda: srv.sock.poll(0) != 0, timeout_s=10, interval_s=0.01, what="heartbeats waiting")
        client = ctx.socket(zmq.DEALER)
        client.setsockopt(zmq.LINGER, 0)
        client.connect(srv.address)
        client.send(encode(M.ListTopologies(5)))
        # The request's own connection: it waits in Nimbus's socket once the client is
        # connected and has flushed it (POLLOUT with nothing queued), unless the loop ran.
        eventually(lambda: client.poll(0, zmq.POLLOUT) != 0, timeout_s=10, interval_s=0.01, what="client connected")
        loop.start()
        assert client.poll(10_000), "no answer to the request"
        assert isinstance(decode(client.recv()), M.Reply)
    finally:
        srv.stop()
        loop.join(10)
        ctx.destroy(linger=0)
