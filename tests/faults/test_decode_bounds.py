"""Bounded decoding: large and deeply nested frames cost a stated amount of memory, not what
their author chose.

Findings reproduced (before: a 2.9 MiB frame cost 207 MiB at decode, Nimbus accepted 64 MiB
frames, a worker's PULL took a 300 MiB junk frame and grew to 630 MiB). The bound stated in
``squall.wire``: one decode peaks under ``2 x frame bytes + objects x BYTES_PER_OBJECT`` of
its kind's limit; sockets drop frames over the largest kind they receive.
"""

from __future__ import annotations

import tracemalloc

import msgpack
import psutil
import pytest
import zmq

from squall import messages as M
from squall import wire
from squall.bundle import MAX_BUNDLE_BYTES
from squall.localcluster import LocalCluster
from squall.supervisor.transfer import MAX_DATA_FRAME_BYTES
from tests.helpers import WORDCOUNT, eventually

MiB = 1024 * 1024


def framed(kind: str, fields: bytes) -> bytes:
    """A frame of ``kind`` whose fields are the raw msgpack ``fields`` (any shape)."""
    return b"\x93\x01" + msgpack.packb(kind) + fields


def nested_empties(count: int) -> bytes:
    """``count`` empty maps in lists of 1000: one byte of msgpack each, ~64+ bytes in Python."""
    rows, rest = divmod(count, 1000)
    return msgpack.packb([[{}] * 1000] * rows + ([[{}] * rest] if rest else []))


def bound(kind: str, frame: bytes) -> int:
    return 2 * len(frame) + wire.limit_of(kind).objects * wire.BYTES_PER_OBJECT


def peak_of(frame: bytes) -> tuple[int, str]:
    tracemalloc.start()
    try:
        try:
            wire.decode(frame)
            outcome = "decoded"
        except wire.WireError as exc:
            outcome = str(exc)
        return tracemalloc.get_traced_memory()[1], outcome
    finally:
        tracemalloc.stop()


ATTACKS = [
    pytest.param("Heartbeat", nested_empties(2_900_000), "objects", id="2.9 MiB of nested empty maps (the finding)"),
    pytest.param("KillTopology", nested_empties(900_000), "objects", id="a small kind with 0.9 MiB of maps"),
    pytest.param(
        "Reply",
        b"\xdd" + (600_000).to_bytes(4, "big") + b"\xa2ab" * 600_000,
        "max_array_len",
        id="one array longer than the budget",
    ),
    pytest.param(
        "Reply",
        b"\xdd" + (450_000).to_bytes(4, "big") + b"\xa2ab" * 450_000,
        "expected a mapping",
        id="one array of 450k short strings",
    ),
    pytest.param("Heartbeat", b"\x91" * 50_000 + b"\xc0", "not a msgpack frame", id="nesting 50,000 deep"),
    pytest.param(
        "SetActive",
        msgpack.packb({"rid": 1, "name": "x" * (2 * MiB), "active": True}),
        "exceeds its limit",
        id="a small kind over its frame limit",
    ),
    pytest.param(
        "ListTopologies",
        b"\xdb" + (1 << 31).to_bytes(4, "big") + b"x" * 10,
        "not a msgpack frame",
        id="a string claiming 2 GiB",
    ),
    pytest.param(
        "Reply", b"\xc6" + (1 << 31).to_bytes(4, "big") + b"x" * 10, "not a msgpack frame", id="a binary claiming 2 GiB"
    ),
]


@pytest.mark.parametrize("kind, fields, refusal", ATTACKS)
def test_hostile_frames_are_refused_within_the_stated_memory_bound(kind, fields, refusal):
    frame = framed(kind, fields)
    peak, outcome = peak_of(frame)
    assert refusal in outcome, outcome
    assert peak < bound(kind, frame), f"peak {peak / MiB:.1f} MiB over the bound {bound(kind, frame) / MiB:.1f} MiB"


def test_before_the_bounds_the_same_frame_cost_far_more():
    """The yardstick the bound is measured against: plain msgpack on the finding's frame."""
    frame = framed("Heartbeat", nested_empties(2_900_000))
    tracemalloc.start()
    try:
        msgpack.unpackb(frame, strict_map_key=False)
        unbounded = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    peak, _ = peak_of(frame)
    assert unbounded > 100 * MiB and peak < unbounded / 5


def test_big_kinds_still_carry_what_they_are_for():
    bundle = b"\x00" * (MAX_BUNDLE_BYTES - 1)
    submit = wire.decode(wire.encode(M.SubmitTopology(rid=1, name="t", spec={"name": "t"}, bundle=bundle)))
    assert len(submit.bundle) == len(bundle)
    metrics = M.WorkerMetrics(
        at=1.0,
        clock_hz=1e9,
        executors=[
            M.ExecutorMetrics(
                executor=i, component="c", received_from={j: j for j in range(20)}, latency_buckets=[1] * 17
            )
            for i in range(1000)
        ],
    )
    report = M.WorkerReport(topology="t", port=1, pid=1, state="running", assignment_version=1, metrics=metrics)
    hb = wire.decode(wire.encode(M.Heartbeat("n1", 1, [report])))
    assert len(hb.workers[0].metrics.executors) == 1000
    with pytest.raises(wire.WireError, match="exceeds the limit"):
        wire.decode(
            wire.encode(M.SubmitTopology(rid=1, name="t", spec={}, bundle=b"\x00" * (MAX_BUNDLE_BYTES + 2 * MiB)))
        )


def test_trailing_bytes_and_short_frames_are_refused():
    good = wire.encode(M.ListTopologies(rid=1))
    with pytest.raises(wire.WireError, match="after the frame"):
        wire.decode(good + b"\xc0")
    with pytest.raises(wire.WireError):
        wire.decode(good[:-1])


# -- at the sockets of a running cluster ---------------------------------------------------


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with LocalCluster(supervisors=1, slots=2, data_dir=tmp_path_factory.mktemp("bounds")) as cluster:
        cluster.submit(WORDCOUNT, name="wc", workers=2)

        def placed():
            execs = cluster.client().assignment("wc")["executors"]
            return execs if execs and all(e["pid"] for e in execs) else None

        yield cluster, eventually(placed, timeout_s=60, what="wordcount's workers running")


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_big_frames_at_nimbus_and_a_worker_leave_both_small_and_running(running):
    cluster, execs = running
    nimbus_pid, worker_pid, port = cluster.nimbus_proc.pid, execs[0]["pid"], execs[0]["port"]
    nimbus_before, worker_before = rss(nimbus_pid), rss(worker_pid)
    ctx = zmq.Context()
    try:
        to_nimbus, to_worker = ctx.socket(zmq.DEALER), ctx.socket(zmq.PUSH)
        for s in (to_nimbus, to_worker):
            s.setsockopt(zmq.LINGER, 0)
        to_nimbus.connect(f"tcp://{cluster.nimbus_address}")
        to_worker.connect(f"tcp://127.0.0.1:{port}")
        junk = b"\x00" * (MAX_DATA_FRAME_BYTES + MiB)  # over the data-plane limit: ZeroMQ drops it
        to_worker.send(junk)
        to_nimbus.send(framed("Heartbeat", nested_empties(2_900_000)))  # under the size limit, over the budget
        to_nimbus.send(b"\x00" * (wire.MAX_FRAME_BYTES + MiB))  # over the ROUTER's MAXMSGSIZE
        del junk
        with cluster.client() as c:  # Nimbus kept answering, and counted the bad frame

            def counted():
                return c.stats("wc") is not None and _bad_frames(cluster) >= 1

            eventually(counted, timeout_s=30, what="Nimbus counting the over-budget heartbeat")
            emitted = c.stats("wc")["emitted"]
            eventually(lambda: c.stats("wc")["emitted"] > emitted, timeout_s=30, what="the topology still emitting")
    finally:
        ctx.destroy(linger=0)
    assert psutil.pid_exists(worker_pid) and cluster.nimbus_proc.poll() is None
    # Stated bound: neither process holds on to more than the frame it refused (32 MiB of
    # slack covers allocator noise and the topology's own growth while this runs).
    assert rss(nimbus_pid) - nimbus_before < 32 * MiB, (nimbus_before, rss(nimbus_pid))
    assert rss(worker_pid) - worker_before < 32 * MiB, (worker_before, rss(worker_pid))


def _bad_frames(cluster) -> float:
    import re
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{cluster.http_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    found = re.search(r'squall_nimbus_events_total\{event="bad_frames"\} ([0-9.e+]+)', text)
    return float(found.group(1)) if found else 0.0
