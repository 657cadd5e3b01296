"""Fixtures of the supervisor tests: a fake Nimbus (a ROUTER on a free loopback port) and a
real supervisor daemon, in a thread, connected to it and always stopped after the test."""

from __future__ import annotations

import threading

import pytest
import zmq

from squall.ports import free_port
from squall.supervisor.daemon import SupervisorDaemon
from squall.supervisor.facts import board_facts


@pytest.fixture
def fake_nimbus():
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    yield sock, port
    ctx.destroy(linger=0)


@pytest.fixture
def daemon(fake_nimbus, tmp_path):
    _, port = fake_nimbus
    facts = board_facts("pi-test", slots=1, capacity_hz=1e9)
    d = SupervisorDaemon(f"127.0.0.1:{port}", facts, [free_port()], tmp_path)
    t = threading.Thread(target=d.run, daemon=True)
    t.start()
    yield d
    d.stop()
    t.join(10)
    assert not t.is_alive()
