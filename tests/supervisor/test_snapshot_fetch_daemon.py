"""The supervisor daemon on real sockets against a fake Nimbus: an ACQUIRE assignment that
names a snapshot by reference makes it send one ``GetSnapshot``, not another when the
assignment is pushed again, and start the worker with the snapshot's bytes once they came."""

from __future__ import annotations

import subprocess
import sys
import time
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
import zmq

from squall import messages as m
from squall.bundle import make_bundle
from squall.supervisor import daemon as daemon_module
from squall.topology.loader import load_topology
from squall.wire import decode, encode
from tests.supervisor.supervisor_helpers import recv

pytestmark = pytest.mark.timeout(60)

WORDCOUNT = str(Path(__file__).resolve().parents[2] / "examples" / "wordcount.py")
STATE = b"counts " * 50_000


def until_heartbeat(sock: zmq.Socket, timeout_s: float = 5.0) -> list[Any]:
    """Every message the fake Nimbus receives up to and including the next heartbeat."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sock.poll(100):
            _, frame = sock.recv_multipart()
            got.append(decode(frame))
            if isinstance(got[-1], m.Heartbeat):
                return got
    raise AssertionError(f"no heartbeat within {timeout_s} s (got {[type(x).__name__ for x in got]})")


def test_a_named_snapshot_is_fetched_once_and_reaches_the_started_worker(fake_nimbus, daemon, monkeypatch, tmp_path):
    started: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    def nothing(argv: list[str], **kw: Any) -> subprocess.Popen:  # the launch file is what is checked
        proc = real_popen([sys.executable, "-c", "import time; time.sleep(30)"], **kw)
        started.append(proc)
        return proc

    monkeypatch.setattr(daemon_module.subprocess, "Popen", nothing)
    sock, _ = fake_nimbus
    peer, _ = recv(sock, m.RegisterSupervisor)
    sock.send_multipart([peer, encode(m.RegisterReply(ok=True))])
    port = daemon.ports[0]
    digest = sha256(STATE).hexdigest()
    worker = m.WorkerAssignment(
        "wc",
        port,
        [1],
        {1: f"127.0.0.1:{port}"},
        True,
        3,
        {},
        paused=True,
        state_refs={1: m.StateRef(digest, len(STATE))},
    )
    sock.send_multipart([peer, encode(m.SupervisorAssignment("pi-test", 1, [worker]))])
    _, fetch = recv(sock, m.GetSnapshot)
    assert (fetch.topology, fetch.executor, fetch.digest) == ("wc", 1, digest)
    _, code = recv(sock, m.GetTopology)
    bundle = {"bundle": make_bundle(Path(WORDCOUNT)), "spec": load_topology(WORDCOUNT).spec.to_dict()}
    sock.send_multipart([peer, encode(m.Reply(rid=code.rid, ok=True, data=bundle))])

    # Pushed again (as after a re-registration): the heartbeat after it comes with no new fetch.
    sock.send_multipart([peer, encode(m.SupervisorAssignment("pi-test", 2, [worker]))])
    until_heartbeat(sock)  # may have left before the push was read
    assert not [x for x in until_heartbeat(sock) if isinstance(x, m.GetSnapshot)]
    assert not started, "the worker started before the snapshot it takes over arrived"

    data = {"topology": "wc", "executor": 1, "digest": digest, "state": STATE}
    sock.send_multipart([peer, encode(m.Reply(rid=fetch.rid, ok=True, data=data))])
    deadline = time.monotonic() + 10
    while not started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started, "the worker was never started"
    launch = decode((tmp_path / "workers" / f"{port}.launch").read_bytes())
    assert launch.assignment.states == {1: STATE} and launch.assignment.state_refs == {}
    assert daemon.state.snapshots.fetches == 1
