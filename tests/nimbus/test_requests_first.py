"""The server loop handles a request before the heartbeats queued ahead of it.

The loop's socket is replaced by a scripted one (the frames it holds, in the order the ROUTER
would hand them over, and when it is found empty), so the order in which the loop handles
them is exact; the loop's own handler records it. The real socket path is covered by the
other server tests, which all go through the same drain.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import pytest
import zmq

from squall import messages as M
from squall.nimbus import server as S
from squall.nimbus.server import NimbusServer
from squall.nimbus.state import NimbusState
from squall.nimbus.store import Store
from squall.ports import free_port
from squall.wire import decode, encode

pytestmark = pytest.mark.timeout(60)

EMPTY = None  # in a script: the socket is found empty once here


class ScriptedSocket:
    """What ``recv_multipart(zmq.NOBLOCK)`` returns, in order; ``EMPTY`` raises ``zmq.Again`` once."""

    def __init__(self, script: list[list[bytes] | None]) -> None:
        self.script = deque(script)
        self.reads = 0
        self.sent: list[list[bytes]] = []

    def recv_multipart(self, flags: int = 0) -> list[bytes]:
        self.reads += 1
        if not self.script or self.script[0] is EMPTY:
            if self.script:
                self.script.popleft()
            raise zmq.Again()
        return self.script.popleft()

    def send_multipart(self, frames: list[bytes], flags: int = 0) -> None:
        self.sent.append(frames)


def beat(board: str, seq: int = 1) -> list[bytes]:
    return [board.encode(), encode(M.Heartbeat(board, seq, []))]


def request(peer: bytes, rid: int) -> list[bytes]:
    return [peer, encode(M.ListTopologies(rid))]


@pytest.fixture
def server() -> Iterator[NimbusServer]:
    srv = NimbusServer(NimbusState(Store(":memory:")), "127.0.0.1", free_port(), 0)
    real = srv.sock
    try:
        yield srv
    finally:
        srv.sock = real
        srv.close()


def handled_order(
    srv: NimbusServer, script: list[list[bytes] | None]
) -> tuple[list[tuple[bytes, str]], ScriptedSocket]:
    """Run the loop's drains over ``script`` until it is used up; (peer, message type) in the
    order the loop handled them."""
    order: list[tuple[bytes, str]] = []
    real = srv._on_frames
    srv._on_frames = lambda parts: (order.append((parts[0], type(decode(parts[-1])).__name__)), real(parts))[1]  # type: ignore[method-assign]
    sock = ScriptedSocket(script)
    srv.sock = sock  # type: ignore[assignment]
    while sock.script or srv._beats:
        srv._drain()
    return order, sock


def test_a_request_behind_hundreds_of_heartbeats_is_handled_first(server):
    boards = [f"b{k:03d}" for k in range(300)]
    order, _ = handled_order(server, [*(beat(b) for b in boards), request(b"client", 7)])
    assert order[0] == (b"client", "ListTopologies")
    assert [peer.decode() for peer, _kind in order[1:]] == boards, "every heartbeat handled, in the order read"
    assert not server._beats and not server._queued_from


def test_a_request_that_arrives_during_the_backlog_waits_for_one_slice(server, monkeypatch):
    monkeypatch.setattr(S, "BEATS_SLICE_S", 0.0)  # a slice is one heartbeat: the wait is exact
    boards = [f"b{k:03d}" for k in range(50)]
    # The socket is found empty after the heartbeats; the request comes in while they are handled.
    order, _ = handled_order(server, [*(beat(b) for b in boards), EMPTY, request(b"client", 7)])
    assert order.index((b"client", "ListTopologies")) == 1, order[:3]
    assert len(order) == 51


def test_a_peer_s_messages_keep_their_order(server):
    # b001's registration is not a heartbeat, but its heartbeat read before it waits in the
    # queue: the registration queues behind it. b002's own registration goes first.
    reg = encode(M.RegisterSupervisor("b001", "127.0.0.1", [free_port()], 1e9, 1e9, 1, 512, 1))
    reg2 = encode(M.RegisterSupervisor("b002", "127.0.0.1", [free_port()], 1e9, 1e9, 1, 512, 1))
    order, _ = handled_order(server, [beat("b001"), [b"b001", reg], [b"b002", reg2], beat("b002", 2)])
    assert order == [
        (b"b002", "RegisterSupervisor"),
        (b"b001", "Heartbeat"),
        (b"b001", "RegisterSupervisor"),
        (b"b002", "Heartbeat"),
    ]


def test_a_drain_is_empty_only_once_the_queued_heartbeats_are_handled(server, monkeypatch):
    monkeypatch.setattr(S, "DRAIN_AT_MOST", 10)
    server.sock = ScriptedSocket([beat(f"b{k:03d}") for k in range(25)])  # type: ignore[assignment]
    results = [server._drain() for _ in range(3)]
    assert results == [False, False, True]  # 10, 10, then 5 and the socket found empty
    assert not server._beats


def test_heartbeats_read_ahead_are_bounded(server, monkeypatch):
    monkeypatch.setattr(S, "BEATS_AT_MOST", 5)
    monkeypatch.setattr(S, "BEATS_SLICE_S", 0.0)
    sock = ScriptedSocket([beat(f"b{k:03d}") for k in range(20)])
    server.sock = sock  # type: ignore[assignment]
    seen: list[int] = []
    real = server._on_frames
    server._on_frames = lambda parts: (seen.append(len(server._beats)), real(parts))[1]  # type: ignore[method-assign]
    while not server._drain():
        pass
    assert len(seen) == 20 and max(seen) < 5  # at most 5 queued, one of them being handled


def test_a_probe_read_behind_queued_heartbeats_is_kept(server):
    stamp = S.PROBE_STAMP.pack(123.0)
    order, _ = handled_order(server, [beat("b001"), [server._probe_id, stamp], beat("b002")])
    assert [kind for _peer, kind in order] == ["Heartbeat", "Heartbeat"]
    assert server._probe_read == 123.0


def heard_when_handled(srv: NimbusServer) -> list[tuple[str, float | None]]:
    """Record, as each frame is handled, its peer and how far silence could be judged then."""
    seen: list[tuple[str, float | None]] = []
    real = srv._on_frames
    srv._on_frames = lambda parts: (seen.append((parts[0].decode(), srv._heard_until)), real(parts))[1]  # type: ignore[method-assign]
    return seen


def test_silence_is_judged_past_a_probe_only_once_what_was_read_before_it_is_handled(server, monkeypatch):
    monkeypatch.setattr(S, "BEATS_SLICE_S", 0.0)  # one heartbeat per slice: every step is seen
    seen = heard_when_handled(server)
    probe = [server._probe_id, S.PROBE_STAMP.pack(123.0)]
    server.sock = ScriptedSocket([beat("b001"), probe, beat("b002"), EMPTY])  # type: ignore[assignment]
    server._drain()
    assert seen == [("b001", None), ("b002", None)]  # both read before the socket was empty
    assert server._heard_until == 123.0


def test_heartbeats_read_after_the_empty_socket_do_not_hold_silence_back(server, monkeypatch):
    """Under a steady stream the queue is rarely empty; the empty socket's mark still settles."""
    monkeypatch.setattr(S, "BEATS_SLICE_S", 0.0)
    seen = heard_when_handled(server)
    probe = [server._probe_id, S.PROBE_STAMP.pack(7.0)]
    server.sock = ScriptedSocket([beat("b001"), probe, EMPTY, beat("b002"), beat("b003"), EMPTY])  # type: ignore[assignment]
    server._drain()
    assert seen == [("b001", None), ("b002", 7.0), ("b003", 7.0)]


def test_a_drain_with_queued_heartbeats_ends_when_the_loop_has_something_due(server, monkeypatch):
    monkeypatch.setattr(S, "BEATS_SLICE_S", 0.0)
    server.sock = ScriptedSocket([beat(f"b{k:03d}") for k in range(20)])  # type: ignore[assignment]
    assert server._drain(due=0.0) is False  # due long ago: one slice, then back to the loop
    assert server._handled_n == 1 and len(server._beats) == 19
    assert server._drain() is True  # nothing due: every queued heartbeat handled
    assert server._handled_n == 20


def test_a_later_empty_socket_does_not_push_back_an_earlier_probe_s_mark(server, monkeypatch):
    """Under a steady stream the socket is found empty again before the queue is handled: the
    earlier probe's stamp still settles once what was read before it is handled."""
    monkeypatch.setattr(S, "BEATS_SLICE_S", 0.0)
    seen = heard_when_handled(server)
    p7, p8 = ([server._probe_id, S.PROBE_STAMP.pack(t)] for t in (7.0, 8.0))
    script = [beat("b001"), beat("b002"), p7, EMPTY, beat("b003"), p8, EMPTY]
    server.sock = ScriptedSocket(script)  # type: ignore[assignment]
    server._drain()
    assert seen == [("b001", None), ("b002", None), ("b003", 7.0)]
    assert server._heard_until == 8.0 and not server._marks


def test_requests_ahead_of_queued_heartbeats_get_at_most_an_equal_share(server, monkeypatch):
    """A flood of requests cannot starve the heartbeats: once the requests handled ahead of
    them took longer than the heartbeats since, the next request waits in turn."""
    monkeypatch.setattr(S, "BEATS_SLICE_S", 0.0)  # a slice is one heartbeat, far shorter than a request
    requests = [request(f"client{k}".encode(), k) for k in range(3)]
    order, _ = handled_order(server, [*(beat(f"b{k:03d}") for k in range(5)), *requests])
    kinds = [kind for _peer, kind in order]
    assert kinds[0] == "ListTopologies", kinds  # the first request goes ahead of the backlog
    assert kinds[1:6] == ["Heartbeat"] * 5, kinds  # the next ones wait in turn, after the heartbeats
    assert kinds[6:] == ["ListTopologies"] * 2
