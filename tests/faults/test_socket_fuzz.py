"""Random and mutated frames at the sockets of a running cluster: Nimbus's ROUTER and a
worker's data-plane PULL. Nothing crashes (same pids), bad frames are counted, and the
topology keeps running and answering."""

from __future__ import annotations

import re
import time
import urllib.request

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from squall import messages as m
from squall.localcluster import LocalCluster
from squall.wire import PROTOCOL_VERSION, encode
from tests.faults.fault_helpers import mutate
from tests.helpers import WORDCOUNT, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

VALID = [
    encode(m.ListTopologies(rid=1)),
    encode(m.RegisterSupervisor("fuzz", "127.0.0.1", [1], 1e9, 1e9, 1, 1024, 1)),
    encode(m.Heartbeat("fuzz", 1, [])),
    msgpack.packb([1, [[1, "default", 4, ["word"], None]]]),  # a data-plane frame
]


frames = st.one_of(
    st.binary(max_size=200),
    st.builds(
        lambda v: msgpack.packb([PROTOCOL_VERSION, v[0], v[1]], use_bin_type=True),
        st.tuples(
            st.sampled_from(["Heartbeat", "SubmitTopology", "KillTopology", "Nope"]),
            st.dictionaries(st.text(max_size=6), st.integers(-(2**63), 2**64 - 1) | st.text(max_size=6), max_size=3),
        ),
    ),
)


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with LocalCluster(supervisors=2, slots=1, data_dir=tmp_path_factory.mktemp("fuzz")) as cluster:
        cluster.submit(WORDCOUNT, name="wc", workers=2)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            execs = cluster.client().assignment("wc")["executors"]
            if execs and all(e["pid"] for e in execs):
                break
            time.sleep(0.3)
        ctx = zmq.Context()
        nimbus = ctx.socket(zmq.DEALER)
        worker = ctx.socket(zmq.PUSH)
        for s in (nimbus, worker):
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.SNDHWM, 100_000)
        nimbus.connect(f"tcp://{cluster.nimbus_address}")
        port = execs[0]["port"]
        worker.connect(f"tcp://127.0.0.1:{port}")
        try:
            yield cluster, nimbus, worker, execs
        finally:
            ctx.destroy(linger=0)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_and_mutated_frames_at_nimbus_and_a_worker(running, data):
    _, nimbus, worker, _ = running
    frame = data.draw(frames) if data.draw(st.booleans()) else mutate(data.draw(st.sampled_from(VALID)), data)
    nimbus.send(frame, zmq.NOBLOCK)
    worker.send(frame, zmq.NOBLOCK)


def test_after_the_fuzz_everything_still_runs_and_bad_frames_were_counted(running):
    cluster, _, _, execs_before = running

    def bad_frames_counted() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{cluster.http_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        bad = re.search(r'squall_nimbus_events_total\{event="bad_frames"\} ([0-9.e+]+)', text)
        return float(bad.group(1)) if bad else 0.0

    # Nimbus worked through the fuzz (it counted bad frames), then the topology still runs.
    eventually(bad_frames_counted, timeout_s=30, what="bad frames counted by Nimbus")
    with cluster.client() as c:
        assert [r["name"] for r in c.list()] == ["wc"]
        emitted_before = c.stats("wc")["emitted"]
        eventually(lambda: c.stats("wc")["emitted"] > emitted_before, timeout_s=30, what="the topology emitting")
        execs = c.assignment("wc")["executors"]
    assert {e["pid"] for e in execs} == {e["pid"] for e in execs_before}, "a worker died"
    assert cluster.nimbus_proc.poll() is None and all(p.poll() is None for p in cluster.supervisor_procs.values())
