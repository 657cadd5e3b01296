"""The data plane with keys, real worker processes: a PUSH without the cluster key cannot
deliver a frame to a worker's PULL; with it the same frame is delivered."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest
import zmq

from squall import security
from squall.supervisor.transfer import FRAME_VERSION
from tests.security.keyed_workers import MIDDLE_TASK, SINK, SPOUT_TASK, TwoKeyedWorkers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

FRAME = msgpack.packb(
    [FRAME_VERSION, "", 0, 0, [[MIDDLE_TASK, "default", SPOUT_TASK, [[n, 0.0] for n in range(50)], None]]]
)


@pytest.fixture
def keys(tmp_path: Path) -> security.ClusterKeys:
    return security.generate(tmp_path / "keys")


@pytest.fixture
def sink_worker(tmp_path, keys):
    """Only worker B (middle and sink) runs, keyed; nothing else sends to it."""
    w = TwoKeyedWorkers(tmp_path, keys, {}, start_a=False)
    yield w
    w.close()


def tally(w: TwoKeyedWorkers) -> tuple[int, int, int]:
    hb = w.sup.last(w.b)
    return hb.metrics.received_remote, hb.bad_frames, w.metric(w.b, SINK).executed


def inject(port: int, keys: security.ClusterKeys | None, wrong: security.ClusterKeys | None = None) -> None:
    ctx = zmq.Context()
    try:
        push = ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        if wrong is not None:  # knows the cluster's public key, holds another pair
            push.curve_serverkey = keys.public
            push.curve_publickey, push.curve_secretkey = wrong.public, wrong.secret
        else:
            security.secure_client(push, keys)
        push.connect(f"tcp://127.0.0.1:{port}")
        for _ in range(5):
            try:
                push.send(FRAME, zmq.NOBLOCK)
            except zmq.Again:
                pass
        push.close(linger=1000)
    finally:
        ctx.term()


def test_a_push_without_the_cluster_key_delivers_nothing(sink_worker, keys, tmp_path):
    w = sink_worker
    w.sup.collect(0.5)
    before = tally(w)
    assert before == (0, 0, 0)
    inject(w.b, None)
    inject(w.b, keys, wrong=security.generate(tmp_path / "other"))
    w.sup.collect(2.0)
    assert tally(w) == before, "received_remote, bad_frames and the sink tally must not move"
    # The same frames from a key holder arrive: the refusal above was the handshake's.
    inject(w.b, keys)
    w.sup.wait_for(lambda: tally(w)[2] >= 250, 10, "the keyed frames at the sink")
    received, bad, executed = tally(w)
    assert received == 250 and bad == 0 and executed == 250


def test_with_keys_the_chain_runs_across_two_workers(tmp_path, keys):
    w = TwoKeyedWorkers(tmp_path, keys, {"app.rate": 2000})
    try:
        w.sup.wait_for(lambda: w.metric(w.b, SINK).executed >= 1000, 20, "1000 tuples at the sink")
        assert w.sup.last(w.b).bad_frames == 0
    finally:
        w.close()
