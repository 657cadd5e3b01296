"""The batch-aware user API in real worker processes: a chain whose spout emits runs with
``emit_many`` and whose bolts define ``process_many``, split over two workers, so runs are
made of tuples decoded from frames as well as local ones. Every process started here is
killed by the fixture."""

from __future__ import annotations

import pytest

from squall.ports import free_port
from tests.worker.worker_helpers import by_executor, make_bundle, user_module, write_launch

BatchChain = user_module("batch_app").BatchChain

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

# Executors of BatchChain with one acker: middle 0 and 1, sink 2, spout 3, acker 4.
A_EXECUTORS, B_EXECUTORS = [0, 3, 4], [1, 2]
TREES = 3_000


def _start_two_workers(env, a_executors: list[int], b_executors: list[int], conf: dict):
    """Workers A and B of BatchChain with these executors, started from one bundle; returns
    (port A, port B, their launch files, metric(port, executor) from the last heartbeat)."""
    tmp, sup, procs = env
    bundle = make_bundle(tmp, "batch_app")
    a, b = free_port(), free_port()
    placement = {e: f"127.0.0.1:{a}" for e in a_executors} | {e: f"127.0.0.1:{b}" for e in b_executors}
    launches = {}
    for port, executors in ((a, a_executors), (b, b_executors)):
        launches[port] = write_launch(
            tmp / f"w{port}.launch", BatchChain.spec, port, executors, placement, sup.endpoint, bundle, conf
        )
        procs.worker(launches[port])

    def metric(port: int, executor: int):
        hb = sup.last(port)
        return by_executor(hb)[executor] if hb is not None else None

    return a, b, launches, metric


def test_every_tree_of_a_batch_chain_over_two_workers_completes(env):
    _tmp, sup, procs = env
    conf = {
        "topology.acker.executors": 1,
        "squall.worker.heartbeat.secs": 0.2,
        "topology.max.spout.pending": 500,
        "app.limit": TREES,
        "app.run": 25,
    }
    a, b, launches, metric = _start_two_workers(env, A_EXECUTORS, B_EXECUTORS, conf)

    def done() -> bool:
        spout = metric(a, 3)
        return spout is not None and spout.acked + spout.failed >= TREES

    sup.wait_for(done, 30, f"{TREES} trees acked or failed:\n{procs.log(launches[a])}\n{procs.log(launches[b])}")
    spout, acker = metric(a, 3), metric(a, 4)
    assert spout.acked == TREES and spout.failed == 0 and spout.errors == 0
    assert spout.emitted == spout.transferred == TREES
    sup.wait_for(lambda: metric(b, 2).executed == TREES, 10, "the sink's count in a heartbeat")
    local_middle, remote_middle, sink = metric(a, 0), metric(b, 1), metric(b, 2)
    assert local_middle.errors == remote_middle.errors == sink.errors == 0
    assert local_middle.executed + remote_middle.executed == TREES
    assert local_middle.executed > 0 and remote_middle.executed > 0, "shuffle fed both middles"
    assert remote_middle.received_from.keys() == {3}, "the middle on B ran runs decoded from A's frames"
    assert set(sink.received_from) == {0, 1} and sum(sink.received_from.values()) == TREES
    assert acker.acked == TREES


def test_acking_off_the_spout_s_runs_reach_both_middles_whole_and_counted_once(env):
    # Acking off, the spout's emit_many hands the remote middle's share to the outbox as one
    # run per call (no Tuple built on A for it) and the local middle's as tuples.
    _tmp, sup, procs = env
    a_executors, b_executors = [0, 3], [1, 2]  # no acker
    conf = {"topology.acker.executors": 0, "squall.worker.heartbeat.secs": 0.2, "app.limit": TREES, "app.run": 25}
    a, b, launches, metric = _start_two_workers(env, a_executors, b_executors, conf)

    def done() -> bool:
        sink = metric(b, 2)
        return sink is not None and sink.executed >= TREES

    sup.wait_for(done, 30, f"{TREES} tuples at the sink:\n{procs.log(launches[a])}\n{procs.log(launches[b])}")
    sup.wait_for(lambda: metric(a, 3).emitted == TREES, 10, "the spout's count in a heartbeat")
    spout, local_middle, remote_middle, sink = metric(a, 3), metric(a, 0), metric(b, 1), metric(b, 2)
    assert spout.emitted == spout.transferred == TREES and spout.errors == 0
    assert local_middle.executed + remote_middle.executed == TREES
    assert local_middle.executed == remote_middle.executed == TREES // 2, "the shuffle's cycle split each run"
    assert remote_middle.received_from == {3: TREES // 2}
    assert sink.executed == TREES and set(sink.received_from) == {0, 1} and sink.errors == 0
    received = sup.last(b).metrics.received_remote
    assert received == TREES // 2 + local_middle.executed, "each tuple received once"
    sup.wait_for(lambda: sup.last(a).metrics.sent_remote == received, 10, "A's count of what it sent")
