"""The worker runtime carrying out its decisions, on a fake ``WorkerIO``: no ZeroMQ, no
process, one round at a time. Updates arrive as control frames; what leaves (tuple frames,
heartbeats) is read back from the fake."""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Callable

import msgpack
import pytest

from squall import wire
from squall.messages import WorkerAssignment, WorkerHeartbeat, WorkerLaunch, WorkerUpdate
from squall.supervisor.runtime.layout import FRAME_VERSION, decode_frame
from squall.supervisor.runtime.messages import TREES_DONE
from squall.supervisor.worker import HEARTBEAT_DEFER_MAX_S, HEARTBEAT_TREES_WAIT_S, Worker
from tests.helpers import modules_loaded
from tests.worker.worker_helpers import APPS, user_module

Chain = user_module("chain_app").Chain

A, B = "127.0.0.1:7001", "127.0.0.1:7002"
# Chain without ackers: middle 0 (task 1), middle 1 (task 2), sink 2 (task 3), spout 3 (task 4).
MIDDLE_0, SPOUT = 0, 3
MIDDLE_0_TASK, MIDDLE_1_TASK, SINK_TASK, SPOUT_TASK = 1, 2, 3, 4
PLACEMENT = {0: A, 1: B, 2: B, 3: A}
LIMIT = 20


class FakeIO:
    """A worker's sockets, in memory: ``sent`` holds (endpoint, frame); ``heartbeats`` the
    decoded control frames the worker sent; tests queue ``control_in`` and ``data_in``."""

    def __init__(self) -> None:
        self.frames_received = 0
        self.bytes_received = 0
        self.sent: list[tuple[str, bytes]] = []
        self.heartbeats: list[WorkerHeartbeat] = []
        self.control_in: list[bytes] = []
        self.data_in: list[bytes] = []
        self.kept: set[str] | None = None
        self.closed = False

    def send(self, endpoint: str, frame: bytes) -> bool:
        self.sent.append((endpoint, frame))
        return True

    def keep(self, endpoints: set[str]) -> None:
        self.kept = set(endpoints)

    def data_waiting(self) -> bool:
        return bool(self.data_in)

    def receive_data(self, deliver: Callable[[bytes], tuple[int, int]], limit: int, max_items: int) -> tuple[int, int]:
        got = bad = 0
        while self.data_in and limit and got < max_items:
            frame = self.data_in.pop(0)
            self.frames_received += 1
            n, b = deliver(frame)
            got, bad, limit = got + n, bad + b, limit - 1
        return got, bad

    def receive_control(self) -> list[bytes]:
        frames, self.control_in = self.control_in, []
        return frames

    def send_control(self, frame: bytes) -> None:
        msg = wire.decode(frame)
        assert isinstance(msg, WorkerHeartbeat)
        self.heartbeats.append(msg)

    def wait(self, seconds: float) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def launch(executors: list[int], **overrides: object) -> WorkerLaunch:
    conf = {
        "topology.acker.executors": 0,
        "app.reliable": False,
        "app.limit": LIMIT,
        "squall.worker.heartbeat.secs": 3600,
        **overrides,
    }
    assignment = WorkerAssignment(
        topology="chain",
        port=7001,
        executors=executors,
        placement=dict(PLACEMENT),
        active=True,
        assignment_version=1,
        conf=conf,
    )
    return WorkerLaunch(
        topology="chain",
        node="n",
        host="127.0.0.1",
        port=7001,
        spec=Chain.spec.to_dict(),
        bundle_dir=str(APPS),
        supervisor_endpoint="tcp://127.0.0.1:1",
        clock_hz=1e9,
        assignment=assignment,
    )


@pytest.fixture
def worker() -> tuple[Worker, FakeIO]:
    io = FakeIO()
    w = Worker(launch([MIDDLE_0, SPOUT]), io)
    w.start()
    yield w, io
    w.shutdown()
    assert io.closed


def rounds(w: Worker, n: int = 5) -> None:
    for _ in range(n):
        w.round()


def sent_items(io: FakeIO, endpoint: str) -> list[list]:
    """The items sent to ``endpoint``, a data run as one [task, stream, source, values, roots]
    per tuple."""
    items = [item for e, frame in io.sent if e == endpoint for item in decode_frame(frame) or []]
    return [
        [t, stream, source, values, roots[i] if roots else None]
        for t, stream, source, rows, roots in (i for i in items if isinstance(i[1], str))
        for i, values in enumerate(rows)
    ] + [i for i in items if not isinstance(i[1], str)]


def update(io: FakeIO, w: Worker, **kw) -> WorkerHeartbeat:
    """Send an update as the supervisor would; returns the heartbeat that confirms it."""
    before = len(io.heartbeats)
    io.control_in.append(wire.encode(WorkerUpdate(**kw)))
    w.round()
    assert len(io.heartbeats) == before + 1, "an applied update is confirmed at once"
    return io.heartbeats[-1]


def test_every_tuple_for_the_other_worker_leaves_in_frames_once(worker):
    w, io = worker
    rounds(w)
    items = sent_items(io, B)
    # Half the spout's tuples go straight to middle 1 on B; the other half through middle 0
    # here, then on to the sink on B: each of the LIMIT numbers reaches B exactly once.
    assert {i[0] for i in items} == {MIDDLE_1_TASK, SINK_TASK}
    assert sorted(i[3][0] for i in items) == list(range(1, LIMIT + 1))
    assert all(e == B for e, _ in io.sent) and w.outbox.sent_items == LIMIT


def test_a_round_that_leaves_nothing_runnable_sends_its_batches_at_once(worker):
    # The spout emits its LIMIT tuples (fewer than a spout batch) in the first round, and
    # middle 0 drains in the same round: nothing is left to do, so the batch for B leaves
    # now, not one (empty) round later or after squall.transfer.flush.ms.
    w, io = worker
    assert not w.round(), "nothing is runnable: the loop may block"
    assert w.engine.queued() == 0
    assert len(io.sent) == 1 and len(sent_items(io, B)) == LIMIT


def test_a_spout_emitting_whole_batches_keeps_the_batches_filling():
    # Unpaced and unlimited, the spout emits a whole batch every round: more is coming, so
    # the outbox sends by size (or age), not after every round.
    io = FakeIO()
    conf = {"app.limit": 0, "squall.transfer.batch.size": 100_000, "squall.transfer.flush.ms": 60_000}
    w = Worker(launch([MIDDLE_0, SPOUT], **conf), io)
    w.start()
    try:
        assert all(w.round() for _ in range(3)), "a spout with more to emit keeps the loop going"
        assert w.outbox.pending() > 0 and io.sent == []
    finally:
        w.shutdown()
    assert len(sent_items(io, B)) == w.outbox.sent_items > 0


def test_an_executor_moved_out_is_released_and_items_for_it_are_held_then_follow_it(worker):
    w, io = worker
    rounds(w)
    hb = update(
        io, w, placement={**PLACEMENT, MIDDLE_0: ""}, active=True, assignment_version=2, executors=[SPOUT], paused=True
    )
    assert (hb.assignment_version, hb.paused, list(hb.released)) == (2, True, [MIDDLE_0])
    assert w.local_ids == {SPOUT} and io.kept == {B}

    # A tuple for middle 0 still arrives here: it is neither bad nor lost, but held.
    io.data_in.append(
        msgpack.packb([FRAME_VERSION, "", 0, 0, [[MIDDLE_0_TASK, "default", SPOUT_TASK, [[99, 0.5]], None]]])
    )
    sent_before = len(io.sent)
    rounds(w, 2)
    assert (w.outbox.held(), w.codec.forwarded, w.bad_frames, len(io.sent)) == (1, 1, 0, sent_before)

    hb = update(
        io, w, placement={**PLACEMENT, MIDDLE_0: B}, active=True, assignment_version=3, executors=[SPOUT], paused=False
    )
    assert (hb.assignment_version, hb.paused, hb.released) == (3, False, {}), "a new version forgets the snapshots"
    assert [i for i in sent_items(io, B) if i[3][0] == 99] == [[MIDDLE_0_TASK, "default", SPOUT_TASK, [99, 0.5], None]]
    assert w.outbox.held() == 0


def test_an_executor_moved_in_takes_the_items_for_its_tasks(worker):
    w, io = worker
    rounds(w)
    update(io, w, placement={**PLACEMENT, 1: A}, active=True, assignment_version=2, executors=[SPOUT, MIDDLE_0, 1])
    io.data_in.append(
        msgpack.packb([FRAME_VERSION, "", 0, 0, [[MIDDLE_1_TASK, "default", SPOUT_TASK, [[77, 0.5]], None]]])
    )
    rounds(w)
    middle_1 = w.engine.by_id[1]
    assert middle_1.stats.executed == 1 and w.codec.forwarded == 0
    assert [i[3][0] for i in sent_items(io, B) if i[0] == SINK_TASK and i[2] == MIDDLE_1_TASK] == [77]


def test_bad_control_frames_are_counted_in_the_next_heartbeat(worker):
    w, io = worker
    rounds(w)
    io.control_in.extend([b"\x00not a frame", wire.encode(WorkerHeartbeat(1, 1, "t", 1, io.heartbeats[0].metrics))])
    w.round()
    w.heartbeat()
    assert io.heartbeats[-1].bad_frames == 2 and io.heartbeats[-1].assignment_version == 1


def test_the_worker_runtime_loads_no_zeromq_and_no_networkx():
    assert modules_loaded("import squall.supervisor.worker, squall.supervisor.worker_plan", ["zmq", "networkx"]) == []


def middle_0_frame(first: int, n: int) -> bytes:
    run = [MIDDLE_0_TASK, "default", SPOUT_TASK, [[first + i, 0.5] for i in range(n)], None]
    return msgpack.packb([FRAME_VERSION, "", 0, 0, [run]])


def test_a_round_takes_at_most_a_bolt_batch_of_items_off_the_socket():
    # Items beyond what a round drains would only wait as Python objects (RSS), not as
    # frame bytes in ZeroMQ's queues.
    io = FakeIO()
    w = Worker(launch([MIDDLE_0], **{"squall.bolt.batch": 250}), io)
    w.start()
    try:
        io.data_in.extend(middle_0_frame(100 * i, 100) for i in range(10))
        w.round()
        assert io.frames_received == 3, "three frames of 100 reach the batch of 250"
        assert w.engine.by_id[MIDDLE_0].stats.executed == 250
        while io.data_in:
            w.round()
        rounds(w, 3)
        assert w.engine.by_id[MIDDLE_0].stats.executed == 1000, "every item is taken in the end"
    finally:
        w.shutdown()


def test_no_frame_is_taken_while_an_inbox_holds_more_than_two_batches():
    io = FakeIO()
    w = Worker(launch([MIDDLE_0], **{"squall.bolt.batch": 250}), io)
    w.start()
    try:
        inbox = w.engine.by_id[MIDDLE_0].inbox
        io.data_in.append(middle_0_frame(1000, 10))
        w.codec.deliver(middle_0_frame(0, 501))  # over the mark of 2 x 250 by one
        assert len(inbox) == 501
        w.round()
        assert io.frames_received == 0 and len(inbox) == 251, "the round drained, took nothing"
        w.round()
        assert io.frames_received == 1, "at the mark, frames are taken again"
    finally:
        w.shutdown()


def test_a_due_heartbeat_waits_until_no_frame_is_waiting():
    # With a bolt batch of one item, a round takes one frame: while the second waits, the
    # due heartbeat gives way; it goes out in the round that leaves nothing waiting.
    io = FakeIO()
    w = Worker(launch([MIDDLE_0], **{"squall.bolt.batch": 1}), io)
    w.start()
    try:
        w.round()
        beats = len(io.heartbeats)
        assert beats == 1, "the first heartbeat goes out at start"
        w._next_beat = w.clock()  # due now
        io.data_in.extend([middle_0_frame(0, 1), middle_0_frame(1, 1)])
        w.round()
        assert (io.frames_received, len(io.heartbeats), w.beats_deferred) == (1, beats, 1)
        w.round()
        assert (io.frames_received, len(io.heartbeats), w.beats_deferred) == (2, beats + 1, 1)
        assert io.heartbeats[-1].metrics.received_remote == 2, "sent after both frames were taken"
    finally:
        w.shutdown()


def test_a_worker_that_is_never_quiet_still_sends_its_heartbeat_late_by_a_bound():
    now = [100.0]
    io = FakeIO()
    w = Worker(launch([MIDDLE_0], **{"squall.bolt.batch": 1}), io, clock=lambda: now[0])
    w.start()
    try:
        w.round()
        beats = len(io.heartbeats)
        w._next_beat = now[0]
        rounds_late = 0
        while len(io.heartbeats) == beats:
            io.data_in.extend([middle_0_frame(0, 1), middle_0_frame(1, 1)])  # always a frame waiting
            w.round()
            now[0] += 0.01
            rounds_late += 1
            assert rounds_late < 100, "the heartbeat never went out"
        assert w.beats_deferred == 1
        assert rounds_late == round(HEARTBEAT_DEFER_MAX_S / 0.01) + 1
    finally:
        w.shutdown()


def test_the_worker_s_loop_moves_what_start_up_made_out_of_the_collector_s_way():
    io = FakeIO()
    w = Worker(launch([MIDDLE_0, SPOUT]), io)
    w.stopping = True  # start, settle, shut down
    before = gc.get_freeze_count()
    try:
        w.run()
        frozen = gc.get_freeze_count()
        engine_scanned = any(o is w.engine for o in gc.get_objects())
    finally:
        gc.unfreeze()  # give this test process its collector back
    assert frozen > before and frozen > 10_000
    assert not engine_scanned, "objects alive after start-up are in the permanent generation"


def test_a_due_heartbeat_waits_while_a_tree_of_a_local_spout_is_in_flight():
    # The spout here, its acker (executor 4) on the other worker: three trees stay pending
    # until their completion comes back. A heartbeat then would stop the loop just as it
    # arrives; it goes out in the round that delivers the completion.
    base = launch([SPOUT], **{"topology.acker.executors": 1, "app.reliable": True, "app.limit": 3})
    assignment = dataclasses.replace(base.assignment, placement={**PLACEMENT, 4: B})
    io = FakeIO()
    w = Worker(dataclasses.replace(base, assignment=assignment), io)
    w.start()
    try:
        w.round()
        w.round()
        spout = w.engine.spouts[0]
        assert len(spout.pending) == 3, "three trees in flight"
        beats = len(io.heartbeats)
        w._next_beat = w.clock()  # due now
        w.round()
        assert (len(io.heartbeats), w.beats_deferred) == (beats, 1), "waits while the trees are out"
        spout.inbox.append((SPOUT_TASK, (TREES_DONE, list(spout.pending), [])))  # as a frame delivers it
        w.round()
        assert not spout.pending
        assert (len(io.heartbeats), w.beats_deferred) == (beats + 1, 1), "sent once they completed"
    finally:
        w.shutdown()


def test_trees_always_in_flight_delay_a_quiet_heartbeat_by_the_short_bound_only():
    now = [100.0]
    base = launch([SPOUT], **{"topology.acker.executors": 1, "app.reliable": True, "app.limit": 3})
    assignment = dataclasses.replace(base.assignment, placement={**PLACEMENT, 4: B})
    io = FakeIO()
    w = Worker(dataclasses.replace(base, assignment=assignment), io, clock=lambda: now[0])
    w.start()
    try:
        w.round()
        w.round()
        assert len(w.engine.spouts[0].pending) == 3, "three trees in flight, never completed here"
        beats = len(io.heartbeats)
        w._next_beat = now[0]
        w.round()
        now[0] += HEARTBEAT_TREES_WAIT_S / 2
        w.round()
        assert len(io.heartbeats) == beats, "within the short bound: waits for the trees"
        now[0] += HEARTBEAT_TREES_WAIT_S
        w.round()
        assert len(io.heartbeats) == beats + 1, "past it: sent at this quiet round, before the long bound"
        assert HEARTBEAT_TREES_WAIT_S < HEARTBEAT_DEFER_MAX_S
    finally:
        w.shutdown()
