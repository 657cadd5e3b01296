"""An idle worker blocks until the next thing is due instead of polling: counted in loop
iterations (``Worker.loops``), not CPU time, so the assertions do not depend on the
machine's load. The worker runs in this process (its loop in a thread) with a fake
supervisor on real sockets."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import zmq

from squall import wire
from squall.experiments.reference import chain_topology
from squall.messages import WorkerLaunch, WorkerUpdate
from squall.ports import free_port
from squall.supervisor.worker import PARENT_CHECK_S, Worker, open_worker
from tests.worker.worker_helpers import FakeSupervisor, by_executor, write_launch

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

HEARTBEAT_S = 0.5


@pytest.fixture
def sup() -> Iterator[FakeSupervisor]:
    s = FakeSupervisor()
    yield s
    s.close()


class Running:
    """A worker's loop in a thread, stopped (and joined) by ``close()``."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.thread = threading.Thread(target=worker.run, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.worker.stopping = True
        self.thread.join(10)
        assert not self.thread.is_alive()


def start(tmp_path, sup: FakeSupervisor, rate: float, active: bool) -> Running:
    chain = chain_topology(stages=2, replication=1, rate=rate, name="idle")
    port = free_port()
    n = len(chain.spec.executors_with_ackers(1))
    path = write_launch(
        tmp_path / "w.launch",
        chain.spec,
        port,
        list(range(n)),
        {},
        sup.endpoint,
        tmp_path,
        {"topology.acker.executors": 1, "squall.worker.heartbeat.secs": HEARTBEAT_S},
        active=active,
    )
    launch = wire.decode(path.read_bytes())
    assert isinstance(launch, WorkerLaunch)
    running = Running(open_worker(launch, context=zmq.Context()))  # its own: shutdown terminates it
    sup.wait_for(lambda: sup.last(port) is not None, 10, "the first heartbeat")
    return running


def loops_over(running: Running, sup: FakeSupervisor, seconds: float) -> tuple[int, float]:
    before, started = running.worker.loops, time.monotonic()
    sup.collect(seconds)
    return running.worker.loops - before, time.monotonic() - started


def test_a_deactivated_worker_wakes_only_for_its_heartbeat_and_parent_check(tmp_path, sup):
    running = start(tmp_path, sup, rate=200, active=True)
    try:
        port = running.worker.launch.port
        sup.wait_for(lambda: by_executor(sup.last(port))[1].acked >= 50, 10, "trees completing")
        sup.send(port, WorkerUpdate(placement={}, active=False, assignment_version=2))
        sup.wait_for(lambda: sup.last(port).assignment_version == 2, 5, "the deactivation applied")
        spout = running.worker.engine.spouts[0]
        sup.wait_for(lambda: not spout.pending, 5, "the last trees completing")
        sup.collect(0.3)  # the acker's entries are gone; nothing is due but the loop's own timers
        loops, seconds = loops_over(running, sup, 2.0)
        # Per second: 1/PARENT_CHECK_S parent checks, 1/HEARTBEAT_S heartbeats, a wake-up for
        # each heartbeat's reply-less send; polling every 1 ms would be ~1,000.
        allowed = seconds * (1 / PARENT_CHECK_S + 1 / HEARTBEAT_S) * 2 + 5
        assert loops <= allowed, f"{loops} loop iterations in {seconds:.1f} s (allowed {allowed:.0f})"
        assert loops >= 1, "the loop is alive"
    finally:
        running.close()


def test_a_worker_started_deactivated_does_not_poll(tmp_path, sup):
    running = start(tmp_path, sup, rate=200, active=False)
    try:
        loops, seconds = loops_over(running, sup, 1.5)
        assert loops <= seconds * (1 / PARENT_CHECK_S + 1 / HEARTBEAT_S) * 2 + 5
        assert by_executor(sup.last(running.worker.launch.port))[1].emitted == 0
    finally:
        running.close()


def test_a_paced_spout_wakes_the_worker_about_once_per_tuple(tmp_path, sup):
    running = start(tmp_path, sup, rate=100, active=True)
    try:
        port = running.worker.launch.port
        spout = running.worker.engine.spouts[0]
        sup.collect(0.5)
        loops_before, emitted_before = running.worker.loops, spout.emit_count
        sup.collect(2.0)
        loops = running.worker.loops - loops_before
        emitted = spout.emit_count - emitted_before
        assert emitted >= 100, "the spout keeps its pace"
        # Each tuple costs a few iterations (emit, deliver, ack, outcome), never ~10 polls of 1 ms.
        assert loops <= 6 * emitted + 30, f"{loops} iterations for {emitted} tuples"
        assert by_executor(sup.last(port))[1].failed == 0
    finally:
        running.close()
