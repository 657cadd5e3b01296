"""``squall nimbus`` as a real process: bad frames are dropped, requests answered, metrics served."""

from __future__ import annotations

import signal
import time
import urllib.request

import msgpack
import pytest
import zmq

from squall import messages as M
from squall.daemon_start import nimbus_argv, spawn_logged
from squall.ports import free_port
from squall.wire import MAX_FRAME_BYTES, PROTOCOL_VERSION, decode, encode

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def nimbus(tmp_path):
    port, http_port = free_port(), free_port()
    proc = spawn_logged(nimbus_argv("127.0.0.1", port, tmp_path / "data", http_port), tmp_path / "nimbus.log")
    try:
        yield proc, port, http_port, tmp_path / "nimbus.log"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


def dealer(ctx: zmq.Context, port: int) -> zmq.Socket:
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(f"tcp://127.0.0.1:{port}")
    return s


def request(sock: zmq.Socket, msg, timeout_s: float = 10.0):
    sock.send(encode(msg))
    if not sock.poll(int(timeout_s * 1000)):
        raise AssertionError(f"no answer to {type(msg).__name__} within {timeout_s} s")
    return decode(sock.recv())


def wait_for_http(url: str, timeout_s: float = 15.0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_bad_frames_are_dropped_and_requests_still_answered(nimbus, ctx):
    proc, port, http_port, log_path = nimbus
    wait_for_http(f"http://127.0.0.1:{http_port}/metrics")
    s = dealer(ctx, port)
    s.send(b"\x00garbage\xff")
    s.send(msgpack.packb([PROTOCOL_VERSION, "NoSuchMessage", {}]))
    s.send(msgpack.packb([PROTOCOL_VERSION + 7, "ListTopologies", {"rid": 1}]))
    s.send(msgpack.packb([PROTOCOL_VERSION, "ListTopologies", {"rid": "one"}]))
    s.send_multipart([b"two", b"parts"])
    s.send(encode(M.WorkerUpdate({}, True, 1)))  # valid on the wire, not for Nimbus: ignored
    s.send(b"\x91" + b"x" * (MAX_FRAME_BYTES + 1))  # over the frame limit
    reply = request(s, M.ListTopologies(rid=42))
    assert isinstance(reply, M.Reply) and reply.rid == 42 and reply.ok and reply.data == []
    assert proc.poll() is None

    # A REQ peer works too (its empty delimiter is handled), and registration is answered.
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(f"tcp://127.0.0.1:{port}")
    assert request(req, M.GetCluster(rid=5)).data == {"supervisors": [], "topologies": []}
    reg = request(s, M.RegisterSupervisor("n1", "127.0.0.1", [free_port()], 1e9, 1e9, 1, 512, 1))
    assert reg == M.RegisterReply(ok=True, heartbeat_s=1.0, term=1)

    text = wait_for_http(f"http://127.0.0.1:{http_port}/metrics")
    assert 'squall_supervisor_up{supervisor="n1"} 1.0' in text
    assert 'squall_nimbus_events_total{event="bad_frames"} 6.0' in text
    assert "squall_executor_emitted" in text and "squall_complete_latency_ms" in text

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    log = log_path.read_text()
    assert "listening on tcp://127.0.0.1:" in log and "Traceback" not in log


def test_state_survives_a_restart(nimbus, ctx, tmp_path):
    proc, port, http_port, _ = nimbus
    from squall.experiments.reference import chain_topology

    s = dealer(ctx, port)
    spec = chain_topology(2, 1).spec.to_dict()
    r = request(s, M.SubmitTopology(1, "keep", spec, b"code", "round_robin", 1, {}))
    assert r.ok and r.data["status"] == "WAITING"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    again = spawn_logged(nimbus_argv("127.0.0.1", port, tmp_path / "data"), tmp_path / "nimbus-again.log")
    try:
        s2 = dealer(ctx, port)
        deadline = time.monotonic() + 15
        while True:
            s2.send(encode(M.GetTopology(2, "keep")))
            if s2.poll(1000):
                break
            assert time.monotonic() < deadline, "restarted Nimbus did not answer"
        got = decode(s2.recv())
        assert got.ok and got.data["bundle"] == b"code" and got.data["spec"]["name"] == "keep"
    finally:
        again.kill()
        again.wait(10)
