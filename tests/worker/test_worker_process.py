"""Real worker processes: two workers split a 3-stage chain, a fake supervisor ROUTER collects
their heartbeats and sends updates. Every process started here is killed by the fixture."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import msgpack
import pytest
import zmq

from squall.ports import free_port
from squall.supervisor.runtime.messages import ACK_FAIL
from squall.supervisor.transfer import FRAME_VERSION
from tests.worker.worker_helpers import (
    FakeSupervisor,
    Processes,
    by_executor,
    make_bundle,
    pid_gone,
    user_module,
    write_launch,
)

Chain = user_module("chain_app").Chain

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

# Executors of Chain with one acker: middle 0 and 1, sink 2, spout 3, acker 4.
A_EXECUTORS, B_EXECUTORS = [0, 3, 4], [1, 2]
BASE_CONF = {"topology.acker.executors": 1, "squall.worker.heartbeat.secs": 0.2}


@dataclass
class Pair:
    sup: FakeSupervisor
    procs: Processes
    a: int
    b: int
    launches: dict[int, Path]
    placement: dict[int, str]

    def beat(self, port: int):
        hb = self.sup.last(port)
        assert hb is not None, f"no heartbeat from {port}:\n{self.procs.log(self.launches[port])}"
        return hb

    def metric(self, port: int, executor: int):
        return by_executor(self.beat(port))[executor]


def start_pair(env, conf: dict, placement: dict[int, str] | None = None) -> Pair:
    tmp, sup, procs = env
    bundle = make_bundle(tmp, "chain_app")
    a, b = free_port(), free_port()
    real = {e: f"127.0.0.1:{a}" for e in A_EXECUTORS} | {e: f"127.0.0.1:{b}" for e in B_EXECUTORS}
    placement = placement if placement is not None else real
    merged = {**BASE_CONF, **conf}
    launches = {}
    for port, executors in ((a, A_EXECUTORS), (b, B_EXECUTORS)):
        launches[port] = write_launch(
            tmp / f"w{port}.launch", Chain.spec, port, executors, placement, sup.endpoint, bundle, merged
        )
        procs.worker(launches[port])
    pair = Pair(sup, procs, a, b, launches, real)
    sup.wait_for(lambda: sup.last(a) and sup.last(b), 20, "first heartbeats of both workers")
    return pair


def test_heartbeats_carry_traffic_from_remote_executors_and_every_tree_completes(env):
    p = start_pair(env, {"app.rate": 2000})
    p.sup.wait_for(lambda: p.metric(p.a, 3).acked >= 1000, 20, "1000 completed trees")
    spout, sink, remote_middle = p.metric(p.a, 3), p.metric(p.b, 2), p.metric(p.b, 1)
    assert spout.failed == 0 and spout.errors == 0
    assert spout.latency_count == spout.acked and sum(spout.latency_buckets) == spout.latency_count
    assert spout.latency_sum_ms / spout.latency_count < 1000
    assert set(sink.received_from) == {0, 1}, "the sink hears from the local and the remote middle"
    assert remote_middle.received_from.keys() == {3}, "the middle on B is fed by the spout on A"
    assert p.metric(p.a, 4).acked >= 1000, "the acker on A completes trees from bolts on B"
    for port in (p.a, p.b):
        hb = p.beat(port)
        assert hb.topology == "chain" and hb.assignment_version == 1 and hb.bad_frames == 0
        assert hb.metrics.sent_remote > 0 and hb.metrics.clock_hz == 1.0e9
        assert 0 < hb.metrics.rss_bytes < 200 * 2**20
        assert hb.metrics.at == pytest.approx(time.time(), abs=5)
    assert spout.cpu_s > 0 and sink.cpu_s > 0
    beats = p.sup.heartbeats[p.a]
    assert len(beats) >= 3 and beats[-1].metrics.at - beats[-2].metrics.at == pytest.approx(0.2, abs=0.15)


def test_deactivate_stops_emission_and_activate_resumes(env):
    p = start_pair(env, {"app.rate": 1000})
    p.sup.wait_for(lambda: p.metric(p.a, 3).emitted > 100, 10, "emission")
    p.sup.update(p.a, p.placement, active=False, version=2)
    p.sup.wait_for(lambda: p.beat(p.a).assignment_version == 2, 5, "version 2 applied")
    p.sup.collect(0.3)
    stopped_at = p.metric(p.a, 3).emitted
    p.sup.collect(0.6)
    assert p.metric(p.a, 3).emitted == stopped_at, "a deactivated spout emits nothing"
    p.sup.update(p.a, p.placement, active=True, version=3)
    p.sup.wait_for(lambda: p.metric(p.a, 3).emitted > stopped_at + 100, 10, "emission resumed")
    assert p.beat(p.a).assignment_version == 3


def test_placement_update_reroutes_remote_tasks_live(env):
    # Worker A starts believing B's executors live on a port nobody listens on.
    nowhere = f"127.0.0.1:{free_port()}"
    tmp, sup, procs = env
    p = start_pair(
        env, {"app.rate": 1000, "topology.acker.executors": 0}, placement={0: "", 3: "", 4: "", 1: nowhere, 2: nowhere}
    )
    sup.collect(0.5)
    assert p.metric(p.b, 1).executed == 0
    p.sup.update(p.a, p.placement, active=True, version=2)
    p.sup.update(p.b, p.placement, active=True, version=2)
    p.sup.wait_for(lambda: p.metric(p.b, 1).executed > 100, 10, "tuples reaching B after re-routing")


def test_sigterm_exits_cleanly_and_promptly(env):
    p = start_pair(env, {"app.rate": 0, "topology.acker.executors": 0})
    for port in (p.a, p.b):
        proc = next(pr for pr in p.procs.procs if pr.args[-1] == str(p.launches[port]))
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0, p.procs.log(p.launches[port])
        assert time.monotonic() - started < 2.0
        assert "stopped" in p.procs.log(p.launches[port])


def test_worker_exits_when_its_supervisor_dies(env):
    tmp, sup, procs = env
    bundle = make_bundle(tmp, "chain_app")
    port = free_port()
    launch = write_launch(
        tmp / "orphan.launch",
        Chain.spec,
        port,
        [0, 1, 2, 3, 4],
        {},
        sup.endpoint,
        bundle,
        {**BASE_CONF, "app.rate": 100},
    )
    # An intermediate process plays the supervisor: it starts the worker, reports its pid, dies.
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            f"w = subprocess.Popen([sys.executable, '-m', 'squall.supervisor.worker', {str(launch)!r}])\n"
            "print(w.pid, flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
    )
    procs.procs.append(parent)
    worker_pid = int(parent.stdout.readline())
    try:
        sup.wait_for(lambda: sup.last(port) is not None, 20, "the orphan-to-be's heartbeat")
        parent.kill()
        parent.wait(5)
        deadline = time.monotonic() + 5
        while not pid_gone(worker_pid):
            assert time.monotonic() < deadline, "worker outlived its supervisor"
            time.sleep(0.05)
    finally:
        if not pid_gone(worker_pid):
            import os

            os.kill(worker_pid, signal.SIGKILL)


def test_garbage_on_both_sockets_is_counted_and_the_worker_keeps_running(env):
    p = start_pair(env, {"app.rate": 1000})
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.connect(f"tcp://127.0.0.1:{p.b}")
    try:
        push.send(b"\x00\xffgarbage")
        push.send(msgpack.packb([FRAME_VERSION, "", 0, 0, [[3, ACK_FAIL, 1]]]))  # task 3 is the spout, on A
        push.send(msgpack.packb([FRAME_VERSION, "", 0, 0, [[999, "default", 4, [[1, 2.0]], None]]]))
        p.sup.send_raw(p.b, b"not a wire message")
        p.sup.send_raw(p.b, msgpack.packb([1, "WorkerUpdate", {"placement": "x"}]))
        p.sup.wait_for(lambda: p.beat(p.b).bad_frames >= 5, 10, "bad frames counted")
        executed = p.metric(p.b, 2).executed
        p.sup.wait_for(lambda: p.metric(p.b, 2).executed > executed + 100, 10, "the sink still working")
        assert p.metric(p.a, 3).failed == 0
    finally:
        push.close(0)
    for proc in p.procs.procs:
        assert proc.poll() is None


def test_an_unserialisable_value_is_an_error_of_its_component_not_of_the_worker(env):
    # Every 7th tuple carries a bad value; shuffle alternates the two middles, so bad values
    # go both straight to B (the spout's send fails) and through A's middle (the middle's does).
    p = start_pair(env, {"app.rate": 2000, "app.bad_every": 7, "topology.acker.executors": 0})
    p.sup.wait_for(lambda: p.metric(p.a, 3).errors >= 5 and p.metric(p.a, 0).errors >= 5, 10, "errors counted")
    p.sup.wait_for(lambda: p.metric(p.b, 1).executed > 100, 10, "good tuples still reach B")
    log = p.procs.log(p.launches[p.a])
    assert log.count("'spout' emitted on stream 'default' a value that cannot be sent") == 1
    assert log.count("'middle' emitted on stream 'default' a value that cannot be sent") == 1
    for proc in p.procs.procs:
        assert proc.poll() is None


def test_a_bad_launch_file_exits_2(tmp_path):
    bad = tmp_path / "bad.launch"
    bad.write_bytes(b"nonsense")
    result = subprocess.run(
        [sys.executable, "-m", "squall.supervisor.worker", str(bad)], capture_output=True, timeout=30
    )
    assert result.returncode == 2
