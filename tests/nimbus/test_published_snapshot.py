"""The HTTP side reads the snapshot the server loop publishes, never the loop itself.

A real server loop on a thread, its real HTTP port and a real DEALER peer, in-process: a
board registers, then the loop is held inside one event. Pages and ``/metrics`` are still
answered, from the snapshot published before the loop stopped, and they say how old it is.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from squall import messages as M
from squall.experiments.reference import chain_topology
from squall.nimbus.events import Event
from squall.nimbus.server import NimbusServer
from squall.nimbus.state import NimbusState
from squall.nimbus.store import Store
from squall.ports import free_port
from squall.wire import decode, encode
from tests.ui.ui_helpers import call

pytestmark = pytest.mark.timeout(60)

TOKEN = "published-snapshot-token"


class Running:
    def __init__(self, srv: NimbusServer, base: str, peer: zmq.Socket) -> None:
        self.srv, self.base, self.peer = srv, base, peer


@pytest.fixture
def running(monkeypatch) -> Iterator[Running]:
    monkeypatch.delenv("SQUALL_HTTP_KEY", raising=False)
    port, http_port = free_port(), free_port()
    srv = NimbusServer(NimbusState(Store(":memory:")), "127.0.0.1", port, http_port, api_token=TOKEN)
    loop = threading.Thread(target=srv.run, name="nimbus-loop", daemon=True)
    loop.start()
    ctx = zmq.Context()
    peer = ctx.socket(zmq.DEALER)
    peer.setsockopt(zmq.LINGER, 0)
    peer.connect(f"tcp://127.0.0.1:{port}")
    try:
        yield Running(srv, f"http://127.0.0.1:{http_port}", peer)
    finally:
        srv.stop()
        loop.join(10)
        ctx.destroy(linger=0)


def register(r: Running, board: str) -> None:
    r.peer.send(encode(M.RegisterSupervisor(board, "127.0.0.1", [free_port()], 1e9, 1e9, 1, 512, 1)))
    assert r.peer.poll(5000), "no RegisterReply"
    assert isinstance(decode(r.peer.recv()), M.RegisterReply)


def metrics_text(base: str) -> str:
    with urllib.request.urlopen(base + "/metrics", timeout=15) as answer:
        return str(answer.read().decode())


def gauge(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not in /metrics")


def hold_the_loop(srv: NimbusServer) -> tuple[threading.Event, threading.Event, list[float]]:
    """Make the loop's next event wait for ``release``; ``held`` is set once it waits there
    (with the monotonic time it started waiting in the list)."""
    held, release, since = threading.Event(), threading.Event(), []
    apply = srv.state.apply

    def blocking(event: Event) -> Any:
        if not release.is_set():
            since.append(time.monotonic())
            held.set()
            release.wait(30)
        return apply(event)

    srv.state.apply = blocking  # type: ignore[method-assign]
    return held, release, since


def test_pages_and_metrics_are_served_while_the_loop_is_held_in_an_event(running):
    """The finding: HTTP threads took the loop's lock, so a busy loop stalled every reader
    (and a crowd of readers stalled the loop)."""
    srv, base = running.srv, running.base
    register(running, "n1")
    # The loop published before the reply left: the board is on the page at once.
    assert call(base, "/api/v1/cluster/summary")[1]["supervisorsKnown"] == 1

    held, release, since = hold_the_loop(srv)
    try:
        assert held.wait(5), "the loop never ran another event (a tick is due every 0.5 s)"
        publications = srv.publications
        asked_at = time.monotonic()

        status, body = call(base, "/api/v1/supervisor/summary")
        assert status == 200 and [s["id"] for s in body["supervisors"]] == ["n1"]
        assert call(base, "/api/v1/topology/summary") == (200, {"topologies": [], "schedulerDisplayResource": False})
        text = metrics_text(base)
        assert 'squall_supervisor_up{supervisor="n1"} 1.0' in text
        # The snapshot is at least as old as the hold: these answers did not come from the loop.
        assert gauge(text, "squall_nimbus_snapshot_age_seconds") >= asked_at - since[0]

        assert not release.is_set() and srv.publications == publications, "the loop moved on during the reads"
    finally:
        release.set()
    # Once released, the loop publishes again and the age falls back to about a tick.
    deadline = time.monotonic() + 10
    while srv.publications == publications:
        assert time.monotonic() < deadline, "the loop published nothing after it was released"
        time.sleep(0.05)
    assert gauge(metrics_text(base), "squall_nimbus_snapshot_age_seconds") < asked_at - since[0] + 5


def test_a_client_reads_its_own_write_as_soon_as_it_is_answered(running):
    """Every Reply leaves after a snapshot holding its effect was published: a submit (over
    the control socket) and a deactivate (over HTTP) show on the very next GET."""
    base = running.base
    register(running, "n1")
    spec = chain_topology(2, 1).spec.to_dict()
    running.peer.send(encode(M.SubmitTopology(7, "t", spec, b"code", "round_robin", 1, {})))
    assert running.peer.poll(5000)
    reply = decode(running.peer.recv())
    while not isinstance(reply, M.Reply):  # the board's new assignment may come first
        assert running.peer.poll(5000)
        reply = decode(running.peer.recv())
    assert reply.ok, reply.error
    assert [t["name"] for t in call(base, "/api/v1/topology/summary")[1]["topologies"]] == ["t"]

    status, body = call(base, "/api/v1/topology/t/deactivate", "POST", key=TOKEN)
    assert status == 200, body
    assert call(base, "/api/v1/topology/t")[1]["status"] == "INACTIVE"


def test_an_idle_loop_publishes_only_at_its_ticks_and_a_burst_once_per_batch(running):
    """Publication is per batch of events that changed the state, not per read or per event."""
    srv, base = running.srv, running.base
    register(running, "n1")
    before = srv.publications
    for _ in range(50):
        assert call(base, "/api/v1/cluster/summary")[0] == 200
    reads_cost = srv.publications - before
    # 50 reads publish nothing themselves; only the ticks (every 0.5 s) publish meanwhile.
    assert reads_cost < 50

    # 200 heartbeats wait in the socket while the loop is held, then arrive as one batch.
    held, release, _since = hold_the_loop(srv)
    assert held.wait(5)
    for seq in range(200):
        running.peer.send(encode(M.Heartbeat("n1", seq, [])))
    before, handled = srv.publications, srv.state.counters["msg_Heartbeat"]
    release.set()
    acks = 0
    while acks < 200:
        assert running.peer.poll(5000), f"only {acks} heartbeat acks"
        acks += isinstance(decode(running.peer.recv()), M.HeartbeatAck)
    assert srv.state.counters["msg_Heartbeat"] - handled == 200
    # One publication for the batch (and one per tick that ran meanwhile), not one per event.
    assert srv.publications - before < 20


def test_a_topology_s_events_are_read_without_the_loop(tmp_path, monkeypatch):
    """Events live in the store: the HTTP side reads them on a SQLite connection of its own,
    so they too are served while the loop is held (a real SQLite file in WAL mode)."""
    from squall.nimbus.commands import AddEvent

    monkeypatch.delenv("SQUALL_HTTP_KEY", raising=False)
    http_port = free_port()
    state = NimbusState(Store.open(tmp_path / "data"))
    state.store.carry_out([AddEvent(1, "t", {"decision": "declined", "reason": "not worth it"})])
    state.handle(b"cli", M.SubmitTopology(1, "t", chain_topology(2, 1).spec.to_dict(), b"code"), 0.0)
    srv = NimbusServer(state, "127.0.0.1", free_port(), http_port, api_token=TOKEN)
    loop = threading.Thread(target=srv.run, name="nimbus-loop", daemon=True)
    loop.start()
    held, release, _since = hold_the_loop(srv)
    try:
        assert held.wait(5)
        status, body = call(f"http://127.0.0.1:{http_port}", "/api/v1/topology/t/events")
        assert status == 200, body
        assert [(e["id"], e["decision"], e["reason"]) for e in body["events"]] == [(1, "declined", "not worth it")]
        assert not release.is_set()
    finally:
        release.set()
        srv.stop()
        loop.join(10)
        state.store.close()
