"""The supervisor daemon on real sockets against a fake Nimbus: registration, heartbeats,
and survival of garbage on both of its sockets."""

from __future__ import annotations

import time

import msgpack
import pytest
import zmq

from squall import messages as m
from squall.ports import free_port
from squall.supervisor.daemon import SupervisorDaemon
from squall.supervisor.facts import board_facts
from squall.wire import encode
from tests.supervisor.supervisor_helpers import recv

pytestmark = pytest.mark.timeout(60)


def test_registers_then_heartbeats_every_second(fake_nimbus, daemon):
    sock, _ = fake_nimbus
    peer, reg = recv(sock, m.RegisterSupervisor)
    assert reg.supervisor_id == "pi-test" and reg.capacity_hz == 1e9 and len(reg.ports) == 1
    sock.send_multipart([peer, encode(m.RegisterReply(ok=True))])
    _, hb1 = recv(sock, m.Heartbeat)
    _, hb2 = recv(sock, m.Heartbeat)
    assert hb2.seq == hb1.seq + 1 and hb2.rss_bytes > 0


def test_survives_garbage_from_nimbus_and_on_its_worker_socket(fake_nimbus, daemon):
    sock, _ = fake_nimbus
    peer, _ = recv(sock, m.RegisterSupervisor)
    garbage = [
        b"",
        b"\xff\x00garbage",
        msgpack.packb([1, "NoSuchMessage", {}]),
        msgpack.packb([99, "RegisterReply", {"ok": True}]),
        msgpack.packb([1, "RegisterReply", {"ok": "yes"}]),
        encode(m.ListTopologies(rid=1)),  # a valid message that a supervisor never expects
        b"x" * (2 * 1024 * 1024),
    ]
    for frame in garbage:
        sock.send_multipart([peer, frame])
    ctx = zmq.Context.instance()
    w = ctx.socket(zmq.DEALER)
    w.setsockopt(zmq.LINGER, 0)
    deadline = time.monotonic() + 5
    while not hasattr(daemon, "worker_endpoint") and time.monotonic() < deadline:
        time.sleep(0.05)
    w.connect(daemon.worker_endpoint)
    for frame in garbage:
        w.send(frame)
    w.send_multipart([b"a", b"b", b"c"])
    sock.send_multipart([peer, encode(m.RegisterReply(ok=True))])
    recv(sock, m.Heartbeat)  # still alive and now registered
    deadline = time.monotonic() + 5
    while daemon.bad_frames < 2 * len(garbage) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert daemon.bad_frames >= 2 * len(garbage)
    w.close(0)


SLEEPER = (
    "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "open(sys.argv[1], 'w').close(); time.sleep(60)"
)


def test_a_slow_worker_stop_and_a_lost_fetch_never_stall_the_heartbeats(fake_nimbus, daemon, monkeypatch, tmp_path):
    """The findings: stopping workers waited up to 3 s each inside the loop that must heartbeat
    within 5 s (both boards of a killed topology were declared dead); the code fetch was a
    blocking send, and a lost one was never asked again."""
    import subprocess
    import sys
    from pathlib import Path

    from squall.bundle import make_bundle
    from squall.supervisor import daemon as daemon_module
    from squall.topology.loader import load_topology

    wordcount = str(Path(__file__).resolve().parents[2] / "examples" / "wordcount.py")
    monkeypatch.setattr(daemon_module, "FETCH_RETRY_S", 0.5)
    real_popen = subprocess.Popen
    started: list[subprocess.Popen] = []

    def sleeper(argv, **kw):  # a "worker" that ignores SIGTERM: only SIGKILL ends it
        proc = real_popen([sys.executable, "-c", SLEEPER, str(tmp_path / "ignoring-sigterm")], **kw)
        started.append(proc)
        return proc

    monkeypatch.setattr(daemon_module.subprocess, "Popen", sleeper)
    sock, _ = fake_nimbus
    peer, _ = recv(sock, m.RegisterSupervisor)
    sock.send_multipart([peer, encode(m.RegisterReply(ok=True))])
    port = daemon.ports[0]
    worker = m.WorkerAssignment("wc", port, [1], {1: f"127.0.0.1:{port}"}, True, 1, {})
    sock.send_multipart([peer, encode(m.SupervisorAssignment("pi-test", 1, [worker]))])
    _, first = recv(sock, m.GetTopology)  # dropped: this fake Nimbus never answers it
    _, again = recv(sock, m.GetTopology, timeout_s=5)
    assert again.name == "wc" and again.rid != first.rid
    topology = load_topology(wordcount)
    reply = m.Reply(
        rid=again.rid, ok=True, data={"bundle": make_bundle(Path(wordcount)), "spec": topology.spec.to_dict()}
    )
    sock.send_multipart([peer, encode(reply)])
    deadline = time.monotonic() + 10
    while not started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started, "the worker was never started"
    while not (tmp_path / "ignoring-sigterm").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    sock.send_multipart([peer, encode(m.SupervisorAssignment("pi-test", 2, []))])  # stop it
    beats = []
    stop_seen = time.monotonic()
    while time.monotonic() - stop_seen < 4.5:
        recv(sock, m.Heartbeat, timeout_s=3)
        beats.append(time.monotonic())
    gaps = [b - a for a, b in zip([stop_seen, *beats], beats)]
    assert max(gaps) < 2.0, f"a heartbeat waited {max(gaps):.1f} s while a worker stopped"
    assert started[0].wait(5) == -9  # killed after its grace, not left running


def test_old_code_is_removed_and_worker_logs_are_rotated(tmp_path, monkeypatch):
    """The finding: extracted bundles and worker logs were never deleted."""
    import subprocess

    from squall.bundle import digest
    from squall.supervisor import daemon as daemon_module

    facts = board_facts("pi-test", slots=1, capacity_hz=1e9)
    d = SupervisorDaemon("127.0.0.1:1", facts, [free_port()], tmp_path)
    code = tmp_path / "topologies"
    names = {t: f"{t}-{digest(t.encode())}" for t in ("wc", "wc-x", "old")}
    for folder in names.values():
        (code / folder).mkdir(parents=True)
    d._remove_code(keep={code / names["wc"]}, prefix="wc-")  # new code for "wc" arrived
    assert sorted(p.name for p in code.iterdir()) == sorted(names.values())  # "wc-x" is not "wc"
    (code / f"wc-{digest(b'previous')}").mkdir()
    d._remove_code(keep={code / names["wc"]}, prefix="wc-")
    assert sorted(p.name for p in code.iterdir()) == sorted(names.values())
    d._remove_code(keep=set())  # at start: nothing runs yet
    assert list(code.iterdir()) == []

    monkeypatch.setattr(daemon_module, "MAX_LOG_BYTES", 1000)
    real_popen = subprocess.Popen
    monkeypatch.setattr(daemon_module.subprocess, "Popen", lambda *a, **k: real_popen(["true"], **k))
    workers = tmp_path / "workers"
    workers.mkdir()
    port = d.ports[0]
    (workers / f"{port}.log").write_bytes(b"x" * 5000)
    d.topology_specs["wc"], d.topology_dirs["wc"] = {}, tmp_path
    d.worker_endpoint = "tcp://127.0.0.1:1"
    d._start_worker(m.WorkerAssignment("wc", port, [1], {}, True, 1, {}))
    assert (workers / f"{port}.log.1").stat().st_size == 5000 and (workers / f"{port}.log").stat().st_size < 1000
    d.procs[port].wait(10)
