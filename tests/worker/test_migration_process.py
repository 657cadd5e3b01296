"""Live migration with real worker processes: a fake supervisor drives PAUSE -> RELEASE ->
ACQUIRE -> RESUME by ``WorkerUpdate``s, as Nimbus's coordinator will through the supervisors,
moving a fields-grouped counter from one worker to another mid-stream with acking off. The
sink's tally must equal what the spout emitted, and the counts must go on from where they
were. Every process started here is killed by the fixture."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import pytest
import zmq

from squall.messages import WorkerUpdate
from squall.ports import free_port
from squall.supervisor.transfer import FRAME_VERSION
from tests.worker.worker_helpers import FakeSupervisor, Processes, by_executor, make_bundle, user_module, write_launch

Counting = user_module("migrate_app").Counting

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

# Executors of Counting without ackers: counter 0 (task 1), counter 1 (task 2), numbers 2
# (task 3), sink 3 (task 4).
COUNTER_TASK_0, SPOUT_TASK = 1, 3
CONF = {"topology.acker.executors": 0, "squall.worker.heartbeat.secs": 0.2, "app.keys": 50}


@dataclass
class Cluster:
    tmp: Path
    sup: FakeSupervisor
    procs: Processes
    executors: dict[int, list[int]]  # port -> executors
    launches: dict[int, Path] = field(default_factory=dict)
    version: int = 1

    @property
    def placement(self) -> dict[int, str]:
        return {e: f"127.0.0.1:{port}" for port, ids in self.executors.items() for e in ids}

    def logs(self) -> str:
        return "\n".join(f"--- {p}\n{self.procs.log(f)[-3000:]}" for p, f in self.launches.items())

    def beat(self, port: int):
        hb = self.sup.last(port)
        assert hb is not None, f"no heartbeat from {port}\n{self.logs()}"
        return hb

    def send(
        self,
        placement: dict[int, str],
        paused: bool,
        executors: dict[int, list[int]] | None = None,
        states: dict[int, dict[int, bytes]] | None = None,
    ) -> int:
        """One step of the sequence to every worker; returns the new version."""
        self.version += 1
        for port in self.executors:
            self.sup.send(
                port,
                WorkerUpdate(
                    placement=placement,
                    active=True,
                    assignment_version=self.version,
                    executors=None if executors is None else executors[port],
                    paused=paused,
                    states=(states or {}).get(port, {}),
                ),
            )
        return self.version

    def confirmed(self, version: int, paused: bool) -> bool:
        for port in self.executors:
            hb = self.sup.last(port)
            if hb is None or hb.assignment_version != version or hb.paused != paused:
                return False
        return True

    def wait_confirmed(self, version: int, paused: bool) -> None:
        self.sup.wait_for(lambda: self.confirmed(version, paused), 10, f"version {version} on every worker\n")

    def quiescent(self) -> bool:
        beats = [self.beat(p).metrics for p in self.executors]
        return all(m.queued == 0 for m in beats) and sum(m.sent_remote for m in beats) == sum(
            m.received_remote for m in beats
        )

    def wait_quiescent(self) -> None:
        stable = 0
        for _ in range(100):
            self.sup.collect(0.25)
            stable = stable + 1 if self.quiescent() else 0
            if stable >= 2:
                return
        raise AssertionError(f"no quiescence\n{self.logs()}")


def start(env, executors: list[list[int]], conf: dict) -> Cluster:
    tmp, sup, procs = env
    bundle = make_bundle(tmp, "migrate_app")
    ports = [free_port() for _ in executors]
    c = Cluster(tmp, sup, procs, dict(zip(ports, executors)))
    merged = {**CONF, "app.report": str(tmp / "tally.json"), **conf}
    for port, ids in c.executors.items():
        c.launches[port] = write_launch(
            tmp / f"w{port}.launch", Counting.spec, port, ids, c.placement, sup.endpoint, bundle, merged
        )
        procs.worker(c.launches[port])
    sup.wait_for(lambda: all(sup.last(p) for p in ports), 20, "first heartbeats")
    return c


def migrate(c: Cluster, executor: int, src: int, dst: int, drain: bool) -> bytes:
    """PAUSE, (drain,) RELEASE, ACQUIRE, RESUME: move ``executor`` from port src to dst."""
    v = c.send(c.placement, paused=True)
    c.wait_confirmed(v, paused=True)
    if drain:
        c.wait_quiescent()
    c.executors[src] = [e for e in c.executors[src] if e != executor]
    in_transit = {**c.placement, executor: ""}
    v = c.send(in_transit, paused=True, executors=dict(c.executors))
    c.sup.wait_for(
        lambda: executor in (c.beat(src).released if c.beat(src).assignment_version == v else {}),
        10,
        "the snapshot of the released executor",
    )
    state = c.beat(src).released[executor]
    c.executors[dst] = c.executors[dst] + [executor]
    v = c.send(c.placement, paused=True, executors=dict(c.executors), states={dst: {executor: state}})
    c.wait_confirmed(v, paused=True)
    assert executor in by_executor(c.beat(dst)), "the new owner runs the executor"
    v = c.send(c.placement, paused=False)
    c.wait_confirmed(v, paused=False)
    return state


# A data-plane run item (task, stream, source task, rows, roots) of one tuple for counter 0, keyed "k7".
K7_TO_COUNTER_0 = [COUNTER_TASK_0, "default", SPOUT_TASK, [["k7"]], None]


@contextmanager
def pushed(port: int, *items: list) -> Iterator[None]:
    """Send one data frame of ``items`` to the worker listening on ``port``; the socket stays
    open for the block (closing it at once, with LINGER 0, could drop the frame unsent)."""
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.connect(f"tcp://127.0.0.1:{port}")
    try:
        push.send(msgpack.packb([FRAME_VERSION, "", 0, 0, list(items)]))
        yield
    finally:
        push.close(0)


def expected_counts(limit: int, keys: int = 50) -> dict[str, int]:
    counts: dict[str, int] = {}
    for seq in range(limit):
        counts[f"k{seq % keys}"] = counts.get(f"k{seq % keys}", 0) + 1
    return counts


@pytest.mark.parametrize("drain", [True, False], ids=["quiescent", "tuples in flight"])
def test_moving_a_counter_mid_stream_loses_nothing_and_keeps_its_counts(env, drain):
    limit = 20_000
    # A: spout and counter 0; B: counter 1; C: the sink. Counter 0 moves from A to B.
    c = start(env, [[2, 0], [1], [3]], {"app.limit": limit, "app.rate": 8000})
    a, b, sink_port = list(c.executors)
    c.sup.wait_for(lambda: by_executor(c.beat(sink_port))[3].executed > 2000, 20, "the stream flowing")
    state = migrate(c, executor=0, src=a, dst=b, drain=drain)
    assert msgpack.unpackb(state, strict_map_key=False)["tasks"][COUNTER_TASK_0], "the counter's own state travelled"
    report = c.tmp / "tally.json"
    c.sup.wait_for(report.exists, 30, f"the sink's tally\n{c.logs()}")
    tally = json.loads(report.read_text())
    assert tally["seen"] == limit, "acking off: nothing lost, nothing doubled"
    assert tally["last"] == expected_counts(limit), "the moved counter went on counting, no reset"
    c.sup.collect(0.5)
    assert by_executor(c.beat(sink_port))[3].executed == limit
    for port in c.executors:
        hb = c.beat(port)
        assert hb.bad_frames == 0 and hb.metrics.queued == 0
    assert 0 not in by_executor(c.beat(a)) and 0 in by_executor(c.beat(b))


def test_released_snapshots_repeat_until_the_version_changes(env):
    c = start(env, [[2, 0], [1, 3]], {"app.limit": 1000, "app.rate": 0})
    a, b = list(c.executors)
    c.executors[a] = [2]
    v = c.send({**c.placement, 0: ""}, paused=True, executors=dict(c.executors))
    c.sup.wait_for(
        lambda: len([h for h in c.sup.heartbeats[a] if h.assignment_version == v]) >= 3,
        10,
        "three heartbeats at the release version",
    )
    at_v = [h for h in c.sup.heartbeats[a] if h.assignment_version == v]
    assert all(set(h.released) == {0} and h.paused for h in at_v)
    assert len({h.released[0] for h in at_v}) == 1, "the same snapshot each time"
    v = c.send(c.placement, paused=True)
    c.wait_confirmed(v, paused=True)
    assert c.beat(a).released == {}


def test_an_item_for_a_task_that_moved_away_is_forwarded_to_its_new_owner(env):
    # A runs counter 0 and the sink; B runs only counter 1: counter 0's task is not B's.
    c = start(env, [[0, 3], [1, 2]], {"app.limit": 0})
    a, b = list(c.executors)
    with pushed(b, K7_TO_COUNTER_0):
        c.sup.wait_for(lambda: by_executor(c.beat(a))[0].executed == 1, 10, f"the forwarded tuple at A\n{c.logs()}")
    c.sup.wait_for(lambda: by_executor(c.beat(a))[3].executed == 1, 10, "the counter's output at the sink")
    # B's heartbeat that reports the hand-over may come up to a heartbeat period later.
    c.sup.wait_for(lambda: c.beat(b).metrics.received_remote == 1, 10, "B's report of the hand-over")
    hb_b = c.beat(b)
    assert hb_b.bad_frames == 0, "a moved task's item is handed over, not dropped"
    assert hb_b.metrics.received_remote == 1 and hb_b.metrics.sent_remote == 1


def test_a_new_worker_takes_over_an_executor_with_its_state_from_the_launch(env):
    # The state of counter 0 as another worker would have released it.
    c = start(env, [[2, 0, 1, 3]], {"app.limit": 0, "app.report_each": True})
    (a,) = list(c.executors)
    c.executors[a] = [2, 1, 3]
    v = c.send({**c.placement, 0: ""}, paused=True, executors=dict(c.executors))
    c.sup.wait_for(lambda: c.beat(a).assignment_version == v and 0 in c.beat(a).released, 10, "release")
    state = c.beat(a).released[0]
    doc = msgpack.unpackb(state, strict_map_key=False)
    doc["tasks"][COUNTER_TASK_0] = msgpack.packb({"k7": 41})
    state = msgpack.packb(doc)
    # A new worker on a new port is launched with the executor and its state.
    tmp, sup, procs = env
    port = free_port()
    placement = {**c.placement, 0: f"127.0.0.1:{port}"}
    launch = write_launch(
        tmp / "new.launch",
        Counting.spec,
        port,
        [0],
        placement,
        sup.endpoint,
        tmp / "bundle",
        {**CONF, "app.limit": 0},
        states={0: state},
    )
    c.launches[port] = launch
    procs.worker(launch)
    sup.wait_for(lambda: sup.last(port) is not None, 20, "the new worker's heartbeat")
    c.executors[port] = [0]
    c.send(c.placement, paused=False, executors=dict(c.executors))
    with pushed(port, K7_TO_COUNTER_0):
        c.sup.wait_for(lambda: by_executor(c.beat(a))[3].executed == 1, 10, f"the count at the sink\n{c.logs()}")
    tally = json.loads((tmp / "tally.json").read_text())
    assert tally["last"] == {"k7": 42}, "the count went on from the restored state"
