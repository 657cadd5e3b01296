"""The measurement fields of the metrics messages: older frames still decode, and NaN,
infinite or negative figures are refused at decode with the field named — by ``wire.decode``
and by a running supervisor daemon, which counts such a frame as bad and keeps going."""

from __future__ import annotations

import time

import msgpack
import pytest

from squall import messages as m
from squall.wire import PROTOCOL_VERSION, WireError, decode, encode
from tests.supervisor.supervisor_helpers import recv

pytestmark = pytest.mark.timeout(60)


def executor_fields(**extra) -> dict:
    return {"executor": 1, "component": "c", **extra}


def worker_fields(executor: dict | None = None, **extra) -> dict:
    return {"at": 1.0, "clock_hz": 1e9, "executors": [executor or executor_fields()], **extra}


def heartbeat_frame(metrics: dict) -> bytes:
    return msgpack.packb(
        [
            PROTOCOL_VERSION,
            "WorkerHeartbeat",
            {"port": 1, "pid": 2, "topology": "t", "assignment_version": 1, "metrics": metrics},
        ]
    )


def board_fields(**extra) -> dict:
    return {"at": 5.0, "cpu_s": 10.0, "cores": 2.0, **extra}


def supervisor_heartbeat_frame(board: dict | None) -> bytes:
    return msgpack.packb(
        [PROTOCOL_VERSION, "Heartbeat", {"supervisor_id": "s", "seq": 1, "workers": [], "board": board}]
    )


def test_frames_of_an_older_version_decode_with_zero_figures():
    hb = decode(heartbeat_frame(worker_fields()))
    assert hb.metrics.process_cpu_s == 0.0 and hb.metrics.transfer_cpu_s == 0.0
    assert (hb.metrics.frames_sent, hb.metrics.bytes_received) == (0, 0)
    assert hb.metrics.executors[0].sent_control == {}
    old = msgpack.packb([PROTOCOL_VERSION, "Heartbeat", {"supervisor_id": "s", "seq": 1, "workers": []}])
    assert decode(old).board is None


def test_new_figures_round_trip():
    ex = m.ExecutorMetrics(executor=3, component="c", cpu_s=1.5, sent_control={7: 12})
    wm = m.WorkerMetrics(
        at=1.0,
        clock_hz=1e9,
        executors=[ex],
        process_cpu_s=2.0,
        transfer_cpu_s=0.25,
        frames_sent=4,
        frames_received=5,
        bytes_sent=600,
        bytes_received=700,
    )
    hb = m.WorkerHeartbeat(port=1, pid=2, topology="t", assignment_version=1, metrics=wm)
    assert decode(encode(hb)) == hb
    board = m.BoardMetrics(
        at=1.0,
        cpu_s=3.0,
        cores=0.5,
        cpu_period_s=0.1,
        periods=10,
        throttled_periods=2,
        throttled_s=0.05,
        memory_used_bytes=1,
        memory_limit_bytes=2,
        source="cgroup",
    )
    sup = m.Heartbeat(supervisor_id="s", seq=1, workers=[], board=board)
    assert decode(encode(sup)) == sup


BAD = [float("nan"), float("inf"), -1.0]


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("name", ["process_cpu_s", "transfer_cpu_s"])
def test_bad_worker_cpu_figures_are_refused(name, bad):
    with pytest.raises(WireError, match=name):
        decode(heartbeat_frame(worker_fields(**{name: bad})))


@pytest.mark.parametrize("name", ["frames_sent", "frames_received", "bytes_sent", "bytes_received"])
def test_negative_worker_counts_are_refused(name):
    with pytest.raises(WireError, match=f"{name}: must not be negative"):
        decode(heartbeat_frame(worker_fields(**{name: -3})))


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("name", ["cpu_s", "latency_sum_ms"])
def test_bad_executor_figures_are_refused(name, bad):
    with pytest.raises(WireError, match=name):
        decode(heartbeat_frame(worker_fields(executor_fields(**{name: bad}))))


def test_a_negative_control_count_is_refused():
    with pytest.raises(WireError, match=r"sent_control\[4\]: must not be negative"):
        decode(heartbeat_frame(worker_fields(executor_fields(sent_control={4: -1}))))


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("name", ["at", "cpu_s", "cores", "cpu_period_s", "throttled_s"])
def test_bad_board_figures_are_refused(name, bad):
    with pytest.raises(WireError, match=f"board.{name}"):
        decode(supervisor_heartbeat_frame(board_fields(**{name: bad})))


@pytest.mark.parametrize("name", ["periods", "throttled_periods", "memory_used_bytes", "memory_limit_bytes"])
def test_negative_board_counts_are_refused(name):
    with pytest.raises(WireError, match=f"board.{name}"):
        decode(supervisor_heartbeat_frame(board_fields(**{name: -1})))


def test_a_running_daemon_counts_a_negative_figure_as_a_bad_frame(fake_nimbus, daemon):  # noqa: F811
    import zmq

    sock, _ = fake_nimbus
    peer, _ = recv(sock, m.RegisterSupervisor)
    sock.send_multipart([peer, encode(m.RegisterReply(ok=True))])
    recv(sock, m.Heartbeat)
    deadline = time.monotonic() + 5
    while not hasattr(daemon, "worker_endpoint") and time.monotonic() < deadline:
        time.sleep(0.05)
    w = zmq.Context.instance().socket(zmq.DEALER)
    w.setsockopt(zmq.LINGER, 0)
    w.connect(daemon.worker_endpoint)
    before = daemon.bad_frames
    w.send(heartbeat_frame(worker_fields(process_cpu_s=-1.0)))
    w.send(heartbeat_frame(worker_fields(executor_fields(cpu_s=float("nan")))))
    deadline = time.monotonic() + 5
    while daemon.bad_frames < before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert daemon.bad_frames == before + 2
    _, hb = recv(sock, m.Heartbeat)  # still alive
    assert hb.workers == []  # the refused heartbeats reported no worker
    w.close(0)


def test_a_running_daemon_sends_the_board_figures_with_every_heartbeat(fake_nimbus, daemon):  # noqa: F811
    sock, _ = fake_nimbus
    peer, _ = recv(sock, m.RegisterSupervisor)
    sock.send_multipart([peer, encode(m.RegisterReply(ok=True))])
    _, hb1 = recv(sock, m.Heartbeat)
    _, hb2 = recv(sock, m.Heartbeat)
    assert hb1.board is not None and hb2.board is not None
    assert hb2.board.at > hb1.board.at and hb2.board.cpu_s >= hb1.board.cpu_s > 0
    assert hb2.board.cores > 0 and 0 < hb2.board.memory_used_bytes < hb2.board.memory_limit_bytes


def test_data_links_round_trip_and_an_older_worker_reports_none():
    links = m.DataLinks("h:1", sent={"h:2": m.LinkMark(9, 4)}, received={"h:3": m.LinkMark(2**63 - 1, 1)})
    wm = m.WorkerMetrics(at=1.0, clock_hz=1e9, executors=[], links=links)
    hb = m.WorkerHeartbeat(port=1, pid=2, topology="t", assignment_version=1, metrics=wm)
    assert decode(encode(hb)) == hb
    assert decode(heartbeat_frame(worker_fields())).metrics.links is None


@pytest.mark.parametrize(
    "links, named",
    [
        ({"endpoint": "h:1", "sent": {"h:2": {"link": -1, "frame": 4}}}, "link: must not be negative"),
        ({"endpoint": "h:1", "received": {"h:2": {"link": 1, "frame": -4}}}, "frame: must not be negative"),
        ({"endpoint": "h:1", "sent": {"h:2": {"link": 1}}}, "frame"),
        ({"endpoint": 5}, "endpoint"),
        ({"endpoint": "h:1", "sent": {"h:2": [1, 2]}}, "sent"),
    ],
    ids=["negative link", "negative frame", "frame missing", "endpoint not a string", "mark not a record"],
)
def test_malformed_data_links_are_refused_naming_the_field(links, named):
    with pytest.raises(WireError, match=named):
        decode(heartbeat_frame(worker_fields(links=links)))
