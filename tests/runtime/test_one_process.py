"""The one-process paths of the sixth pass: the acker folding a spout task's trees with the
bolts' acks of the same roots (``AckerExecutor._fold``), a spout's ``emit_many`` announcing
its trees to the one acker in one call, the bolts' acks to one acker, and the spout's
latency computed once per emission instant. Each must give exactly what the single
messages, the per-tree appends and the per-tree latencies gave."""

from __future__ import annotations

import random
from typing import Any

import pytest

from squall import Bolt, Spout, Topology, Tuple
from squall.supervisor.runtime.acker import AckerExecutor
from squall.supervisor.runtime.messages import ACK_ACK, ACK_BULK, ACK_INIT_BULK, TREES_DONE
from squall.supervisor.runtime.stats import LATENCY_BOUNDS_S
from tests.runtime.runtime_helpers import FakeClock, only, pump, start_engine
from tests.runtime.test_acking import Relay, items_spout, topology
from tests.runtime.test_batch_api import BatchChain
from tests.runtime.test_bulk_acking import SPOUT_TASK, _acker, _feed, _outcomes, _singles

# -- the acker's fold ------------------------------------------------------------------------


def _tree_edges(rng: random.Random, roots: list[int]) -> dict[int, list[int]]:
    return {r: [rng.getrandbits(64) for _ in range(2)] for r in roots}


def test_a_chains_round_is_folded_and_completes_every_tree_in_order() -> None:
    acker, out = _acker()
    rng = random.Random(1)
    roots = [rng.getrandbits(64) for _ in range(50)]
    edges = _tree_edges(rng, roots)
    init = (ACK_INIT_BULK, SPOUT_TASK, [v for r in roots for v in (r, edges[r][0])])
    middle = (ACK_BULK, [v for r in roots for v in (r, edges[r][0] ^ edges[r][1])], [])
    sink = (ACK_BULK, [v for r in roots for v in (r, edges[r][1])], [])
    executed = _feed(acker, init, middle, sink)
    assert acker.folded == 150, "the three messages' pairs applied by one fold"
    assert executed == 150 and acker.stats.executed == 150, "each pair counted, as singles were"
    assert out == [(SPOUT_TASK, (TREES_DONE, roots, []))], "completed in the roots' order"
    assert not acker.current and not acker.previous


@pytest.mark.parametrize("seed", range(20))
def test_folds_mean_exactly_their_single_messages(seed: int) -> None:
    """Rounds shaped like a chain's (an init bulk, then ack bulks of the same roots), with
    trees left incomplete, acks that zero a tree early and strays after it, roots some
    entry already holds (acks that beat the init, in either generation), a repeated root,
    an init of value zero, a fail, and ack bulks of other roots between: the outcomes,
    entries and counts are those of the same messages fed one by one."""
    rng = random.Random(seed)
    clock = FakeClock()
    msgs_by_drain: list[list[tuple]] = []
    early: list[tuple] = []  # acks that beat their init, fed (and maybe rotated) first
    next_root = 1
    for _ in range(6):
        k = rng.randint(1, 8)
        roots = list(range(next_root, next_root + k))
        next_root += k
        if rng.random() < 0.1 and k > 1:
            roots[-1] = roots[0]  # a root repeated in one init bulk
        edges = {r: [rng.getrandbits(64) for _ in range(rng.randint(1, 3))] for r in roots}
        init_values = [edges[r][0] for r in roots]
        if rng.random() < 0.1:
            init_values[0] = 0  # an init of value zero: complete at once
        drain = [(ACK_INIT_BULK, SPOUT_TASK, [v for r, x in zip(roots, init_values) for v in (r, x)])]
        for hop in range(1, 4):
            # hop h acks edge h-1 and anchors edge h (the last edge: nothing more); hops
            # beyond the tree's edges send strays
            acks = []
            for r in roots:
                e = edges[r]
                if hop <= len(e):
                    x = e[hop - 1] ^ (e[hop] if hop < len(e) else 0)
                else:
                    x = rng.getrandbits(64)
                if rng.random() < 0.08:
                    x = rng.choice(e)  # may zero the tree early: later acks are then strays
                acks.append(x)
            drain.append((ACK_BULK, [v for r, x in zip(roots, acks) for v in (r, x)], []))
        if rng.random() < 0.2:
            drain.insert(rng.randint(1, len(drain)), (ACK_BULK, [9_999, 5], []))  # other roots between
        if rng.random() < 0.15:
            drain[rng.randint(1, len(drain) - 1)][2].append(roots[0])  # a fail in one bulk
        if rng.random() < 0.2:
            early.append((ACK_ACK, roots[-1], rng.getrandbits(64)))
        msgs_by_drain.append(drain)

    def run(bulked: bool) -> tuple[AckerExecutor, list[Any]]:
        acker, out = _acker(clock, timeout_s=1.0)
        acker.rotated_at = clock()
        for m in early:
            _feed(acker, m)
        if seed % 2:
            acker.rotate(clock() + 1.0)  # the early acks in the older generation
        for drain in msgs_by_drain:
            if bulked:
                _feed(acker, *drain)
            else:
                for m in _singles(drain):
                    _feed(acker, m)
        return acker, out

    singles, out_single = run(bulked=False)
    bulked, out_bulk = run(bulked=True)
    assert _outcomes(out_bulk) == _outcomes(out_single), "the same outcomes in the same order"
    assert bulked.current == singles.current and bulked.previous == singles.previous
    assert bulked.stats.executed == singles.stats.executed
    assert bulked.stats.acked == singles.stats.acked and bulked.stats.failed == singles.stats.failed


def test_a_fold_stops_before_a_stray_ack_and_keeps_it_as_a_new_entry() -> None:
    acker, out = _acker()
    # tree 10: edges 1, 2 — the middle's ack zeroes it (1 ^ 1), so the sink's ack (2) is a
    # stray that a single ACK_ACK would keep as an entry of its own; tree 20 needs both.
    _feed(
        acker,
        (ACK_INIT_BULK, SPOUT_TASK, [10, 1, 20, 4]),
        (ACK_BULK, [10, 1, 20, 4 ^ 8], []),
        (ACK_BULK, [10, 2, 20, 8], []),
    )
    assert acker.folded == 4, "the init and the middle's acks folded; the sink's applied alone"
    assert _outcomes(out) == ([10, 20], [])
    assert acker.current == {10: [2, -1, False]}


def test_no_fold_when_an_entry_already_holds_a_root() -> None:
    acker, out = _acker()
    _feed(acker, (ACK_ACK, 20, 8))  # an ack that beat its init
    _feed(acker, (ACK_INIT_BULK, SPOUT_TASK, [10, 1, 20, 4]), (ACK_BULK, [10, 1, 20, 4], []))
    assert acker.folded == 0
    assert _outcomes(out) == ([10], []) and acker.current == {20: [8, SPOUT_TASK, False]}


# -- through the engine ------------------------------------------------------------------------


@pytest.mark.parametrize("chain", ["per-tuple", "batch"])
def test_a_chain_in_one_process_is_acked_by_folds_and_every_tree_completes_once(chain: str) -> None:
    """A 3-stage chain in one engine: every round's inits and acks reach the acker in the
    shape a fold takes, so every pair is applied by a fold; each tree is acked once."""
    if chain == "per-tuple":
        spout = items_spout(300).spec()
        middle = Relay.spec(inputs=[spout])
        sink = Relay.spec(inputs=[middle])
        engine = start_engine(topology(spout=spout, middle=middle, sink=sink), {"topology.acker.executors": 1})
        pump(engine)
        assert sorted(only(engine, "spout").acked) == list(range(300))
    else:
        engine = start_engine(BatchChain, {"topology.acker.executors": 1})
        pump(engine)
        assert sorted(only(engine, "spout").acked) == list(range(100))
    (acker,) = engine.ackers
    assert acker.stats.executed == 3 * len(only(engine, "spout").acked)
    assert acker.folded == acker.stats.executed, "every init and ack applied by a fold"
    assert not acker.current and not acker.previous


class RunSpout(Spout):
    """Emits ``lists`` lists of ``run`` numbers with one emit_many each, advancing the clock
    ``step_s`` between lists; records acks."""

    outputs = ["n"]
    run = 10
    lists = 3
    clock: FakeClock | None = None
    step_s = 0.0

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.sent = 0
        self.acked: list[int] = []

    def next_tuple(self) -> None:
        if self.sent >= self.run * self.lists:
            return
        ns = list(range(self.sent, self.sent + self.run))
        self.sent += self.run
        self.emit_many([[n] for n in ns], tup_ids=ns)
        if self.clock is not None:
            self.clock.advance(self.step_s)

    def ack(self, tup_id: Any) -> None:
        self.acked.append(tup_id)


class Hold(Bolt):
    """Holds every input; acks them when told, in the order given."""

    auto_ack = False

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.held: list[Tuple] = []

    def process(self, tup: Tuple) -> None:
        self.held.append(tup)


class Held(Topology):
    spout = RunSpout.spec()
    hold = Hold.spec(inputs=[spout])


def test_trees_of_several_emission_instants_get_each_their_own_latency() -> None:
    clock = FakeClock()
    RunSpout.clock, RunSpout.step_s = clock, 0.25
    try:
        engine = start_engine(Held, {"topology.acker.executors": 1, "squall.spout.batch": 100}, clock=clock)
        pump(engine)
    finally:
        RunSpout.clock, RunSpout.step_s = None, 0.0
    hold = only(engine, "hold")
    assert len(hold.held) == 30
    clock.advance(1.0)
    # Acked interleaved across the three lists (emitted at +0, +0.25, +0.5; now +1.75):
    # the spout sees their completions in this order in one message.
    order = [hold.held[i + 10 * k] for i in range(10) for k in range(3)]
    for t in order:
        hold.ack(t)
    spout_ex = engine.spouts[0]
    stats = spout_ex.stats
    before = len(stats.latencies_s)
    pump(engine)
    assert only(engine, "spout").acked == [t.values[0] for t in order]
    got = list(stats.latencies_s)[before:]
    assert got == pytest.approx([1.75, 1.5, 1.25] * 10)
    assert stats.latency_sum_s == pytest.approx(10 * (1.75 + 1.5 + 1.25))
    for latency in (1.75, 1.5, 1.25):
        bucket = sum(1 for bound in LATENCY_BOUNDS_S if bound < latency)
        assert stats.latency_buckets[bucket] >= 10


def test_trees_of_one_instant_completing_together_are_each_counted_and_sampled() -> None:
    """Completions in emission order (runs of trees of one instant, one of them failed
    before its tree completed): every completed tree has its sample, its share of the sum
    and its bucket, in order, as trees of distinct instants have."""
    clock = FakeClock()
    RunSpout.clock, RunSpout.step_s = clock, 0.25
    try:
        engine = start_engine(Held, {"topology.acker.executors": 1, "squall.spout.batch": 100}, clock=clock)
        pump(engine)
    finally:
        RunSpout.clock, RunSpout.step_s = None, 0.0
    hold = only(engine, "hold")
    clock.advance(1.0)
    hold.fail(hold.held[4])  # tree 4 fails first: its later completion is not an ack
    pump(engine)
    stats = engine.spouts[0].stats
    before_samples = len(stats.latencies_s)
    before_sum = stats.latency_sum_s
    before_buckets = list(stats.latency_buckets)
    for t in hold.held:
        hold.ack(t)
    pump(engine)
    expected = [1.75] * 9 + [1.5] * 10 + [1.25] * 10
    assert only(engine, "spout").acked == [t.values[0] for t in hold.held if t.values[0] != 4]
    assert list(stats.latencies_s)[before_samples:] == pytest.approx(expected)
    assert stats.latency_sum_s - before_sum == pytest.approx(sum(expected))
    added = [after - b for after, b in zip(stats.latency_buckets, before_buckets)]
    for latency, count in ((1.75, 9), (1.5, 10), (1.25, 10)):
        added[sum(1 for bound in LATENCY_BOUNDS_S if bound < latency)] -= count
    assert added == [0] * len(added), "each tree in its bucket once"


class BreakingSink:
    """Wraps a task's sink: raises on its ``at``-th call (a transfer layer that fails)."""

    def __init__(self, inner: Any, at: int) -> None:
        self.inner, self.at, self.calls = inner, at, 0

    def __call__(self, item: Any) -> None:
        self.calls += 1
        if self.calls == self.at:
            raise OSError("link down")
        self.inner(item)


def test_an_emit_many_cut_short_announces_only_the_trees_it_sent() -> None:
    engine = start_engine(Held, {"topology.acker.executors": 1, "squall.spout.batch": 100})
    (hold_task,) = engine.wiring.task_ranges["hold"]
    engine.wiring.sinks[hold_task] = BreakingSink(engine.wiring.sinks[hold_task], at=4)
    spout_ex = engine.spouts[0]
    (spout,) = spout_ex.instances.values()
    with pytest.raises(OSError):
        spout.next_tuple()  # the fourth tuple's send fails
    spout_ex.add_route_counts()  # what a step does after next_tuple: the inits go out
    (acker,) = engine.ackers
    (msg,) = [m for _task, m in acker.inbox]
    assert msg[0] == ACK_INIT_BULK and len(msg[2]) == 6, "three trees sent, three announced"
    assert set(msg[2][::2]) == set(spout_ex.pending), "exactly the pending trees"
    assert spout_ex.pending_by_task[next(iter(spout_ex.instances))] == 3


# -- emit_many to one task ---------------------------------------------------------------------


def test_a_route_knows_when_every_pick_is_one_and_the_same_task() -> None:
    from squall.supervisor.runtime.routing import Route, make_chooser
    from squall.topology.grouping import GroupingSpec

    def route(kind: str, tasks: list[int], fields: tuple[str, ...] = ()) -> Route:
        chooser = make_chooser(GroupingSpec(kind, fields), {"x": 0}, tasks, 1)
        assert chooser is not None
        return Route("c", "default", ("x",), [chooser], frozenset(), False)

    assert route("shuffle", [5]).only == [5]
    assert route("global", [7, 5]).only == [5]
    assert route("all", [5]).only == [5]
    assert route("shuffle", [5, 6]).only is None
    assert route("all", [5, 6]).only is None
    assert route("fields", [5], ("x",)).only is None, "a chooser that reads the values has no pick"
    one = route("shuffle", [5])
    assert one.pick is not None and one.pick() is one.only, "the list pick returns, as emit returns it"


class OneTaskSink(Bolt):
    def initialize(self, conf: dict, ctx: Any) -> None:
        self.seen: list[tuple[int, int]] = []

    def process_many(self, tups: list[Tuple]) -> None:
        self.seen.extend((t.task, t["n"]) for t in tups)


class Echo(Bolt):
    """Forwards each run with emit_many (paired anchors), recording what it returned."""

    outputs = ["n"]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.returned: list[list[int]] = []

    def process_many(self, tups: list[Tuple]) -> None:
        self.returned += self.emit_many([t.values for t in tups], anchors_each=tups)


class ToOneTask(Topology):
    spout = RunSpout.spec()
    echo = Echo.spec(inputs=[spout])
    sink = OneTaskSink.spec(inputs=[echo])


@pytest.mark.parametrize("acking", [0, 1], ids=["acking off", "acking on"])
def test_emit_many_to_one_task_delivers_each_tuple_once_and_returns_its_task(acking: int) -> None:
    engine = start_engine(ToOneTask, {"topology.acker.executors": acking, "squall.spout.batch": 100})
    pump(engine)
    (sink_task,) = engine.wiring.task_ranges["sink"]
    (echo_task,) = engine.wiring.task_ranges["echo"]
    echo = only(engine, "echo")
    assert echo.returned == [[sink_task]] * 30
    assert sorted(only(engine, "sink").seen) == [(echo_task, n) for n in range(30)]
    assert sorted(only(engine, "spout").acked) == list(range(30))
    echo_ex = next(ex for ex in engine.executors if ex.component == "echo")
    assert echo_ex.stats.transferred == 30 and dict(echo_ex.stats.emitted) == {"default": 30}


class TwoSpoutTasks(Topology):
    spout = RunSpout.spec(par=2)
    sink = OneTaskSink.spec(inputs=[spout])


@pytest.mark.parametrize("acking", [0, 1], ids=["acking off", "acking on"])
def test_a_one_task_batch_bolt_counts_what_each_source_sent(acking: int) -> None:
    """The one-task run is counted by one add when it comes from one source task, and per
    source when several feed one batch."""
    engine = start_engine(TwoSpoutTasks, {"topology.acker.executors": acking, "squall.spout.batch": 100})
    pump(engine)
    spout_tasks = sorted(engine.wiring.task_ranges["spout"])
    sink_ex = next(ex for ex in engine.executors if ex.component == "sink")
    assert dict(sink_ex.stats.received_from) == {t: 30 for t in spout_tasks}
    assert sorted(only(engine, "sink").seen) == sorted((t, n) for t in spout_tasks for n in range(30))


class EchoAndNothing(Echo):
    """Echo that also emits an empty list each time (it must send nothing, not an empty run)."""

    def process_many(self, tups: list[Tuple]) -> None:
        self.returned += self.emit_many([])
        super().process_many(tups)


class ToOneTaskWithEmpty(Topology):
    spout = RunSpout.spec()
    echo = EchoAndNothing.spec(inputs=[spout])
    sink = OneTaskSink.spec(inputs=[echo])


def test_an_empty_emit_many_to_one_task_sends_nothing() -> None:
    engine = start_engine(ToOneTaskWithEmpty, {"topology.acker.executors": 0, "squall.spout.batch": 100})
    pump(engine)
    _echoed_once(engine)


def test_an_empty_emit_many_to_another_worker_s_one_task_sends_no_empty_run() -> None:
    runs: list = []
    local = {e.id for e in ToOneTaskWithEmpty.spec.executors_with_ackers(0) if e.component != "sink"}
    engine = start_engine(
        ToOneTaskWithEmpty,
        {"topology.acker.executors": 0, "squall.spout.batch": 100},
        executor_ids=local,
        remote_sink=lambda _task: runs.append,
        remote_run_sink=lambda _task: lambda task, run: runs.append((task, run)),
    )
    pump(engine)
    (sink_task,) = engine.wiring.task_ranges["sink"]
    assert only(engine, "echo").returned == [[sink_task]] * 30
    assert runs and all(len(run.rows) > 0 for _task, run in runs), "no empty run reaches the outbox"
    assert sorted(n for _task, run in runs for (n,) in run.rows) == list(range(30))


def _echoed_once(engine: Any) -> None:
    (sink_task,) = engine.wiring.task_ranges["sink"]
    (echo_task,) = engine.wiring.task_ranges["echo"]
    assert only(engine, "echo").returned == [[sink_task]] * 30
    assert sorted(only(engine, "sink").seen) == [(echo_task, n) for n in range(30)]
    echo_ex = next(ex for ex in engine.executors if ex.component == "echo")
    assert echo_ex.stats.transferred == 30 and echo_ex.stats.errors == 0


# -- trees of one edge (a spout's tuple to one target task) -----------------------------------


@pytest.mark.parametrize("emits", ["emit", "emit_many"])
def test_a_tree_of_one_edge_announces_that_edge_and_each_tree_draws_its_own(emits: str) -> None:
    """A spout tuple sent to one target task is a tree of one edge: its init value is that
    edge's id, and every tree's edge is drawn for it alone (a constant or a repeated edge
    would pass the chain tests, since the XOR still cancels, but not this one)."""
    spout = items_spout(50).spec() if emits == "emit" else RunSpout.spec()
    engine = start_engine(
        topology(spout=spout, hold=Hold.spec(inputs=[spout])),
        {"topology.acker.executors": 1, "squall.spout.batch": 100},
    )
    engine.spouts[0].step()
    (hold_ex,) = [ex for ex in engine.executors if ex.component == "hold"]
    edges: dict[int, int] = {}
    for _task, tup in hold_ex.inbox:
        ((root, edge),) = tup.roots.items()
        edges[root] = edge
    (acker,) = engine.ackers
    inits: dict[int, int] = {}
    for _task, msg in acker.inbox:
        assert msg[0] == ACK_INIT_BULK
        inits.update(zip(msg[2][::2], msg[2][1::2]))
    assert len(edges) == (50 if emits == "emit" else 30)
    assert inits == edges, "each tree announced with its one edge's id"
    assert len(set(edges.values())) == len(edges) and 0 not in edges.values(), "an edge id per tree"
