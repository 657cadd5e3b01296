"""The batch-aware user API: ``process_many`` gets each task's run of an inbox batch and
``emit_many`` emits a list in one call, with the guarantees of ``process`` and ``emit``:
acking and failing per input, anchoring (paired, shared, or refused when it would be
silently dropped), the emit checks, max pending per tree, ticks in order, mixed per-tuple
and batch components in one topology, and an interrupted batch."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from squall import Bolt, Grouping, Spout, Stream, Topology, Tuple
from squall.topology import EmitError
from tests.runtime.runtime_helpers import FakeClock, by_task, instances, only, pump, start_engine, summary

NO_ACKERS = {"topology.acker.executors": 0}
ONE_ACKER = {"topology.acker.executors": 1}
BOTH = pytest.mark.parametrize("conf", [NO_ACKERS, ONE_ACKER], ids=["acking off", "acking on"])


class RunSpout(Spout):
    """Emits ``total`` numbers in runs of ``run`` with one emit_many call each, a tup_id per
    tuple (the number itself); records acks and fails."""

    outputs = ["n"]
    total = 100
    run = 10

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.next = 0
        self.acked: list[int] = []
        self.failed: list[int] = []
        self.calls = 0

    def next_tuple(self) -> None:
        if self.next >= self.total:
            return
        ns = list(range(self.next, min(self.next + self.run, self.total)))
        self.next = ns[-1] + 1
        self.calls += 1
        self.emit_many([[n] for n in ns], tup_ids=ns)

    def ack(self, tup_id: Any) -> None:
        self.acked.append(tup_id)

    def fail(self, tup_id: Any) -> None:
        self.failed.append(tup_id)


class ForwardMany(Bolt):
    """Forwards each input, each output anchored to its input (``anchors_each``)."""

    outputs = ["n"]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.runs: list[list[int]] = []

    def process_many(self, tups: list[Tuple]) -> None:
        self.runs.append([t["n"] for t in tups])
        self.emit_many([t.values for t in tups], anchors_each=tups)


class CountMany(Bolt):
    def initialize(self, conf: dict, ctx: Any) -> None:
        self.seen: list[int] = []
        self.calls = 0

    def process_many(self, tups: list[Tuple]) -> None:
        self.calls += 1
        self.seen.extend(t["n"] for t in tups)


class BatchChain(Topology):
    spout = RunSpout.spec()
    middle = ForwardMany.spec(inputs=[spout])
    sink = CountMany.spec(inputs=[middle])


@BOTH
def test_a_batch_chain_delivers_every_tuple_in_order_and_completes_every_tree(conf: dict) -> None:
    engine = start_engine(BatchChain, conf)
    pump(engine)
    spout, middle, sink = only(engine, "spout"), only(engine, "middle"), only(engine, "sink")
    assert sink.seen == list(range(100))
    assert sorted(spout.acked) == list(range(100)), "acking off: acked at once; on: each tree completed"
    assert spout.failed == []
    assert spout.calls == 10
    assert len(middle.runs) < 100, "runs, not one call per tuple"
    assert [n for run in middle.runs for n in run] == list(range(100))
    assert sink.calls < 100
    for name in ("spout", "middle"):
        s = summary(engine, name)
        assert s.emitted == 100 and s.transferred == 100 and s.errors == 0, name
    assert summary(engine, "sink").executed == 100
    (spout_task,) = by_task(engine, "spout")
    middle_ex = next(ex for ex in engine.executors if ex.component == "middle")
    assert dict(middle_ex.stats.received_from) == {spout_task: 100}
    if conf is ONE_ACKER:
        assert summary(engine, "middle").acked == 100 and summary(engine, "sink").acked == 100
        assert not engine.spouts[0].pending


class FailAfterOne(Bolt):
    """Forwards its run paired, then raises when the run holds a number ending in 7 — after
    acking the run's first input itself."""

    outputs = ["n"]

    def process_many(self, tups: list[Tuple]) -> None:
        self.emit_many([t.values for t in tups], anchors_each=tups)
        if any(t["n"] % 10 == 7 for t in tups):
            self.ack(tups[0])
            raise ValueError("a seven")


class FailingChain(Topology):
    spout = RunSpout.spec()
    middle = FailAfterOne.spec(inputs=[spout])
    sink = CountMany.spec(inputs=[middle])


def test_a_run_that_raises_fails_every_input_not_acked_logs_once_and_the_bolt_keeps_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # One spout call per round and a bolt batch of 5: runs of 5 (0-4, 5-9, ...).
    engine = start_engine(FailingChain, {**ONE_ACKER, "squall.spout.batch": 1, "squall.bolt.batch": 5})
    with caplog.at_level(logging.ERROR, logger="squall.executor"):
        pump(engine)
    spout = only(engine, "spout")
    bad_runs = [range(start, start + 5) for start in range(5, 100, 10)]  # 5-9, 15-19, ...
    acked_first = {r[0] for r in bad_runs}  # acked by the bolt before it raised
    failed = {n for r in bad_runs for n in r} - acked_first
    assert sorted(spout.failed) == sorted(failed)
    assert sorted(spout.acked) == sorted(set(range(100)) - failed)
    assert summary(engine, "middle").errors == 10
    messages = [r.getMessage() for r in caplog.records if "'middle'" in r.getMessage()]
    assert len(messages) == 1 and "process_many" in messages[0] and "ValueError" in messages[0]


class Unanchored(Bolt):
    """Emits without anchors (how: a class attribute)."""

    outputs = ["n"]
    how = "emit"

    def process_many(self, tups: list[Tuple]) -> None:
        if self.how == "emit":
            for t in tups:
                self.emit(t.values)
        elif self.how == "emit_many":
            self.emit_many([t.values for t in tups])
        else:  # unanchored on purpose
            self.emit_many([t.values for t in tups], anchors=())


def _unanchored_chain(how: str, auto_anchor: bool = True) -> type[Topology]:
    bolt = type("B", (Unanchored,), {"how": how, "auto_anchor": auto_anchor})

    class T(Topology):
        spout = RunSpout.spec()
        middle = bolt.spec(inputs=[spout])
        sink = CountMany.spec(inputs=[middle])

    return T


@pytest.mark.parametrize("how", ["emit", "emit_many"])
def test_an_emit_that_would_drop_anchoring_in_process_many_is_refused(how: str) -> None:
    engine = start_engine(_unanchored_chain(how), ONE_ACKER)
    pump(engine)
    assert only(engine, "sink").seen == [], "nothing emitted unanchored"
    assert sorted(only(engine, "spout").failed) == list(range(100)), "every input of the refused runs failed"
    middle_ex = next(ex for ex in engine.executors if ex.component == "middle")
    assert middle_ex.emit_errors == summary(engine, "middle").errors > 0
    task, where, error = middle_ex.first_error
    assert where == "process_many" and isinstance(error, EmitError)
    assert "bolt 'middle'" in str(error) and "anchors_each" in str(error)


@pytest.mark.parametrize(
    ("how", "conf", "auto_anchor"),
    [
        pytest.param("anchors=()", ONE_ACKER, True, id="anchors=() says unanchored on purpose"),
        pytest.param("emit", ONE_ACKER, False, id="auto_anchor off"),
        pytest.param("emit_many", NO_ACKERS, True, id="acking off"),
    ],
)
def test_an_unanchored_emit_in_process_many_is_allowed_when_asked_for(how: str, conf: dict, auto_anchor: bool) -> None:
    engine = start_engine(_unanchored_chain(how, auto_anchor), conf)
    pump(engine)
    assert only(engine, "sink").seen == list(range(100))
    assert summary(engine, "middle").errors == 0
    assert sorted(only(engine, "spout").acked) == list(range(100))


class FailSevens(Bolt):
    def process(self, tup: Tuple) -> None:
        if tup["n"] % 10 == 7:
            self.fail(tup)


class PairedThenFail(Topology):
    spout = RunSpout.spec()
    middle = ForwardMany.spec(inputs=[spout])
    sink = FailSevens.spec(inputs=[middle])


def test_anchors_each_anchors_each_output_to_its_own_input_only() -> None:
    engine = start_engine(PairedThenFail, ONE_ACKER)
    pump(engine)
    spout = only(engine, "spout")
    sevens = [n for n in range(100) if n % 10 == 7]
    assert sorted(spout.failed) == sevens, "a failed output fails its own input's tree, not the run's"
    assert sorted(spout.acked) == sorted(set(range(100)) - set(sevens))


class SharedAnchors(Bolt):
    """Emits two outputs per run, both anchored to every input of the run (``anchors=``)."""

    outputs = ["n"]

    def process_many(self, tups: list[Tuple]) -> None:
        self.emit_many([[tups[0]["n"]], [tups[-1]["n"]]], anchors=tups)


class SharedThenFail(Topology):
    spout = RunSpout.spec()
    middle = SharedAnchors.spec(inputs=[spout])
    sink = FailSevens.spec(inputs=[middle])


def test_shared_anchors_tie_every_input_of_the_run_to_each_output() -> None:
    # Runs of 8 (one spout call of 8 per round, bolt batch 8): the outputs are each run's
    # first and last number; a run with one ending in 7 (0-7, 40-47, 80-87) has one output
    # failed, which fails every input of that run.
    class Spout8(RunSpout):
        run = 8

    class T(Topology):
        spout = Spout8.spec()
        middle = SharedAnchors.spec(inputs=[spout])
        sink = FailSevens.spec(inputs=[middle])

    engine = start_engine(T, {**ONE_ACKER, "squall.spout.batch": 1, "squall.bolt.batch": 8})
    pump(engine)
    spout = only(engine, "spout")
    runs = [list(range(s, min(s + 8, 100))) for s in range(0, 100, 8)]
    bad = [r for r in runs if r[0] % 10 == 7 or r[-1] % 10 == 7]
    assert bad, "the test needs a run whose output fails"
    assert sorted(spout.failed) == sorted(n for r in bad for n in r), "the whole run's trees fail with one output"
    assert len(spout.acked) + len(spout.failed) == 100


class Checks(Bolt):
    outputs = [Stream(fields=["a", "b"]), Stream(fields=["x"], name="side", direct=True)]

    def process(self, tup: Tuple) -> None:
        pass


class Words(Spout):
    outputs = ["word"]


class RecordMany(Bolt):
    def initialize(self, conf: dict, ctx: Any) -> None:
        self.seen: list[list[Any]] = []

    def process_many(self, tups: list[Tuple]) -> None:
        self.seen.extend(t.values for t in tups)


class EmitChecks(Topology):
    words = Words.spec()
    checks = Checks.spec(inputs=[words])
    direct = RecordMany.spec(inputs={checks["side"]: Grouping.DIRECT}, par=2)


@pytest.mark.parametrize(
    ("component", "call", "message"),
    [
        pytest.param(
            "checks",
            lambda b: b.emit_many([[1, 2], [1]]),
            r"'checks' emitted 1 value\(s\) on stream 'default', which declares 2 field\(s\): \['a', 'b'\]",
            id="bolt, one tuple of the list with too few values",
        ),
        pytest.param(
            "checks",
            lambda b: b.emit_many([[1, 2]], stream="nope"),
            r"'checks' emitted on undeclared stream 'nope' \(declared: 'default', 'side'\)",
            id="bolt, undeclared stream",
        ),
        pytest.param(
            "checks",
            lambda b: b.emit_many([[1]], stream="side"),
            r"'checks': stream 'side' is direct, so emit needs direct_task=",
            id="bolt, direct stream without a task",
        ),
        pytest.param(
            "checks",
            lambda b: b.emit_many([[1]], stream="side", direct_task=1),
            r"'checks': direct_task 1 does not subscribe to stream 'side'",
            id="bolt, direct task that does not subscribe",
        ),
        pytest.param(
            "checks",
            lambda b: b.emit_many([[1, 2]], direct_task=3),
            r"'checks': direct_task given but stream 'default' is not declared direct",
            id="bolt, direct task on a stream that is not direct",
        ),
        pytest.param(
            "checks",
            lambda b: b.emit_many([[1, 2], [3, 4]], anchors_each=[]),
            r"'checks' emit_many: 2 tuples but 0 anchors_each",
            id="bolt, anchors_each of another length",
        ),
        pytest.param(
            "checks",
            lambda b: b.emit_many([[1, 2]], anchors=[], anchors_each=[[]]),
            r"'checks' emit_many: give anchors= .* or anchors_each=, not both",
            id="bolt, both kinds of anchors",
        ),
        pytest.param(
            "words",
            lambda s: s.emit_many([["a"], ["b", "c"]], tup_ids=[1, 2]),
            r"'words' emitted 2 value\(s\) on stream 'default', which declares 1 field\(s\): \['word'\]",
            id="spout, one tuple of the list with too many values",
        ),
        pytest.param(
            "words",
            lambda s: s.emit_many([["a"]], stream="nope"),
            r"'words' emitted on undeclared stream 'nope' \(declared: 'default'\)",
            id="spout, undeclared stream",
        ),
        pytest.param(
            "words",
            lambda s: s.emit_many([["a"], ["b"]], tup_ids=[1]),
            r"'words' emit_many: 2 tuples but 1 tup_ids",
            id="spout, tup_ids of another length",
        ),
    ],
)
@BOTH
def test_emit_many_makes_every_check_of_emit_and_sends_nothing_when_one_fails(
    conf: dict, component: str, call: Any, message: str
) -> None:
    engine = start_engine(EmitChecks, conf)
    (inst,) = by_task(engine, component).values()
    with pytest.raises(EmitError, match=message):
        call(inst)
    assert not any(ex.inbox for ex in engine.executors), "nothing was sent"
    for ex in [*engine.spouts, *engine.bolts]:
        ex.add_route_counts()
    assert summary(engine, component).emitted == 0


def test_emit_many_on_a_direct_stream_reaches_the_named_task() -> None:
    engine = start_engine(EmitChecks, NO_ACKERS)
    (checks,) = by_task(engine, "checks").values()
    direct = by_task(engine, "direct")
    task = max(direct)
    assert checks.emit_many([[1], [2]], stream="side", direct_task=task) == [[task], [task]]
    pump(engine)
    assert direct[task].seen == [[1], [2]]
    assert direct[min(direct)].seen == []


class Both(Bolt):
    """Defines process and process_many: process_many wins."""

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.per_tuple = 0
        self.per_run = 0

    def process(self, tup: Tuple) -> None:
        self.per_tuple += 1

    def process_many(self, tups: list[Tuple]) -> None:
        self.per_run += len(tups)


class Forward(Bolt):
    outputs = ["n"]

    def process(self, tup: Tuple) -> None:
        self.emit(tup.values)


class Collect(Bolt):
    def initialize(self, conf: dict, ctx: Any) -> None:
        self.seen: list[int] = []

    def process(self, tup: Tuple) -> None:
        self.seen.append(tup["n"])


class Mixed(Topology):
    """batch spout -> per-tuple bolt (shuffle, 2) -> batch bolt (fields, 2 executors of 2
    tasks each) -> per-tuple sink; a bolt with both methods beside."""

    spout = RunSpout.spec()
    forward = Forward.spec(inputs=[spout], par=2)
    middle = ForwardMany.spec(inputs={forward: Grouping.fields("n")}, par=2, tasks=4)
    sink = Collect.spec(inputs=[middle])
    both = Both.spec(inputs=[spout])


@BOTH
def test_per_tuple_and_batch_components_mix_in_one_topology(conf: dict) -> None:
    engine = start_engine(Mixed, conf)
    pump(engine)
    spout = only(engine, "spout")
    assert sorted(only(engine, "sink").seen) == list(range(100))
    assert sorted(spout.acked) == list(range(100)) and spout.failed == []
    per_task = {task: [n for run in inst.runs for n in run] for task, inst in by_task(engine, "middle").items()}
    assert sorted(n for ns in per_task.values() for n in ns) == list(range(100))
    assert sum(1 for ns in per_task.values() if ns) >= 2, "fields grouping spread the numbers"
    both = only(engine, "both")
    assert both.per_run == 100 and both.per_tuple == 0, "process_many wins over process"


class TickingMany(Bolt):
    def initialize(self, conf: dict, ctx: Any) -> None:
        self.events: list[Any] = []

    def process_many(self, tups: list[Tuple]) -> None:
        self.events.append([t["n"] for t in tups])

    def process_tick(self, tup: Tuple) -> None:
        self.events.append("tick")


class Ticking(Topology):
    spout = RunSpout.spec()
    bolt = TickingMany.spec(inputs=[spout], config={"topology.tick.tuple.freq.secs": 1})


@BOTH
def test_ticks_go_to_process_tick_in_their_place_between_runs(conf: dict) -> None:
    clock = FakeClock()
    engine = start_engine(Ticking, {**conf, "squall.spout.batch": 1}, clock=clock)
    spout = engine.spouts[0]
    spout.step()  # 0-9 queued
    clock.advance(1.5)
    engine.run_timers(clock())  # a tick queued after them
    spout.step()  # 10-19 queued after the tick
    bolt_ex = next(ex for ex in engine.executors if ex.component == "bolt")
    bolt_ex.drain(1000)
    assert only(engine, "bolt").events == [list(range(10)), "tick", list(range(10, 20))]


@pytest.mark.parametrize("run", [10, 30])
def test_max_spout_pending_counts_each_tree_of_an_emit_many(run: int) -> None:
    class Runs(RunSpout):
        pass

    Runs.run = run

    class T(Topology):
        spout = Runs.spec()
        sink = CountMany.spec(inputs=[spout])

    engine = start_engine(T, {**ONE_ACKER, "topology.max.spout.pending": 25})
    spout_ex = engine.spouts[0]
    spout_ex.step()
    (task,) = spout_ex.pending_by_task
    # next_tuple is not called again once 25 trees are pending; a call may pass the bound by
    # its own list (the bound is checked between calls, as Storm checks it).
    expected = 30
    assert spout_ex.pending_by_task[task] == len(spout_ex.pending) == expected
    assert only(engine, "spout").calls == expected // run
    pump(engine)
    assert sorted(only(engine, "spout").acked) == list(range(100))


@pytest.mark.parametrize(("spout_batch", "calls"), [(25, 3), (64, 7), (3, 1)])
def test_a_spout_round_ends_after_its_batch_of_tuples_not_of_calls(spout_batch: int, calls: int) -> None:
    engine = start_engine(BatchChain, {**NO_ACKERS, "squall.spout.batch": spout_batch})
    engine.spouts[0].step()
    assert only(engine, "spout").calls == calls, "runs of 10 until the round's tuples reach the batch"


class ShuffleTwice(Spout):
    """emit and emit_many alternately, to a shuffled bolt of 2 tasks."""

    outputs = ["n"]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.done = False

    def next_tuple(self) -> None:
        if self.done:
            return
        self.done = True
        for i in range(0, 40, 4):
            self.emit([i])
            self.emit_many([[i + 1], [i + 2], [i + 3]])


class Shuffled(Topology):
    spout = ShuffleTwice.spec()
    sink = CountMany.spec(inputs=[spout], par=2)


def test_emit_and_emit_many_share_the_shuffle_cycle() -> None:
    engine = start_engine(Shuffled, NO_ACKERS)
    pump(engine)
    seen = [inst.seen for inst in instances(engine, "sink")]
    assert sorted(seen[0] + seen[1]) == list(range(40))
    # One cycle over both tasks, whichever emit picks: the i-th tuple sent goes to the task
    # the cycle is at, so one task gets the even numbers and the other the odd ones.
    assert sorted({n % 2 for n in seen[0]} | {2 + n % 2 for n in seen[1]}) in ([0, 3], [1, 2])


class OverridesEmit(Spout):
    """A spout with its own emit: emit_many must go through it for every tuple."""

    outputs = ["n"]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.through_emit = 0
        self.done = False

    def emit(self, values, tup_id=None, stream=None, direct_task=None, need_task_ids=False):
        self.through_emit += 1
        return super().emit(values, tup_id, stream, direct_task, need_task_ids)

    def next_tuple(self) -> None:
        if not self.done:
            self.done = True
            self.emit_many([[1], [2], [3]], tup_ids=[1, 2, 3])


class Overriding(Topology):
    spout = OverridesEmit.spec()
    sink = CountMany.spec(inputs=[spout])


def test_a_class_that_overrides_emit_sees_every_tuple_of_emit_many() -> None:
    engine = start_engine(Overriding, ONE_ACKER)
    pump(engine)
    assert only(engine, "spout").through_emit == 3
    assert only(engine, "sink").seen == [1, 2, 3]


class Stop(BaseException):
    """An interrupt (not an Exception: user errors are caught per run)."""


class InterruptingMany(Bolt):
    def initialize(self, conf: dict, ctx: Any) -> None:
        self.seen: list[int] = []
        self.runs: list[list[int]] = []

    def process_many(self, tups: list[Tuple]) -> None:
        self.seen.extend(t["n"] for t in tups)
        self.runs.append([t["n"] for t in tups])
        if any(t["n"] == 0 for t in tups):
            raise Stop


class Interrupted(Topology):
    spout = RunSpout.spec()
    bolt = InterruptingMany.spec(inputs=[spout], par=1, tasks=2)


@BOTH
def test_an_interrupted_batch_requeues_the_runs_that_did_not_reach_user_code(conf: dict) -> None:
    engine = start_engine(Interrupted, {**conf, "squall.spout.batch": 30, "squall.bolt.batch": 1000})
    with pytest.raises(Stop):
        for _ in range(100):
            engine.run_once()
    bolt_ex = next(ex for ex in engine.executors if ex.component == "bolt")
    tasks = sorted(bolt_ex.instances)
    # The first run (the task that got 0) was interrupted; the other task's run of the batch
    # never reached user code: it is queued again, in order, before what came later.
    queued = [tup["n"] for _task, tup in bolt_ex.inbox]
    (stopped,) = [r for t in tasks for r in by_task(engine, "bolt")[t].runs]
    other = sorted(set(range(30)) - set(stopped))
    assert queued[: len(other)] == other and len(other) == 15
    pump(engine)
    by_t = by_task(engine, "bolt")
    seen = sorted(n for t in tasks for n in by_t[t].seen)
    assert seen == list(range(100)), "each tuple handed to user code once"
    (spout_task,) = by_task(engine, "spout")
    assert dict(bolt_ex.stats.received_from) == {spout_task: 100}, "each counted once"
    spout = only(engine, "spout")
    if conf is ONE_ACKER:
        # The interrupted run was neither acked nor failed (its trees are left to the timeout).
        assert sorted(spout.acked) == sorted(set(range(100)) - set(stopped)) and spout.failed == []
    else:
        assert sorted(spout.acked) == list(range(100))


# -- emit_many to another worker's tasks -------------------------------------------------


def _remote_engine(
    topology: type[Topology], conf: dict, local_components: set[str], local_ids: frozenset[int] = frozenset()
) -> tuple[Any, list, list]:
    """An engine running only the executors of ``local_components`` (and ``local_ids``); what
    it sends to the others is captured: (engine, items through the per-tuple sink, (task,
    Rows) through the run sink)."""
    local = {e.id for e in topology.spec.executors_with_ackers(1) if e.component in local_components} | set(local_ids)
    items: list = []
    runs: list = []
    engine = start_engine(
        topology,
        conf,
        executor_ids=local,
        remote_sink=lambda _task: items.append,
        remote_run_sink=lambda _task: lambda task, run: runs.append((task, run)),
    )
    pump(engine)
    return engine, items, runs


def test_emit_many_to_another_worker_sends_each_list_as_one_run_without_tuples() -> None:
    engine, items, runs = _remote_engine(Shuffled, NO_ACKERS, {"spout"})
    (spout_task,) = by_task(engine, "spout")
    assert len(runs) == 10 * 2, "each emit_many of 3 splits between the 2 tasks the cycle is at"
    for _task, run in runs:
        assert (run.component, run.stream, run.task, run.fields) == ("spout", "default", spout_task, {"n": 0})
    single = {item[1].values[0] for item in items}
    assert single == set(range(0, 40, 4)), "emit still sends a Tuple per target"
    by_target: dict[int, list[int]] = {}
    for task, run in runs:
        by_target.setdefault(task, []).extend(values[0] for values in run.rows)
    for t, tup in items:
        by_target.setdefault(t, []).append(tup.values[0])
    assert sorted(n for ns in by_target.values() for n in ns) == list(range(40))
    # the shuffle's one cycle goes on through emit_many's runs: one task even, the other odd
    assert sorted({n % 2 for n in by_target[min(by_target)]} | {2 + n % 2 for n in by_target[max(by_target)]}) in (
        [0, 3],
        [1, 2],
    )
    s = summary(engine, "spout")
    assert s.emitted == 40 and s.transferred == 40 and s.errors == 0


def test_emit_many_splits_a_list_between_a_local_task_and_another_worker_s() -> None:
    # one sink task local, the other remote: the local one gets tuples, the remote one runs
    local_sink = next(e for e in Shuffled.spec.executors_with_ackers(1) if e.component == "sink")
    engine, items, runs = _remote_engine(Shuffled, NO_ACKERS, {"spout"}, frozenset({local_sink.id}))
    (local_inst,) = instances(engine, "sink")
    remote = [values[0] for task, run in runs for values in run.rows] + [tup.values[0] for _t, tup in items]
    assert {task for task, _ in runs} == {t for t, _ in items} and local_sink.first_task not in {t for t, _ in runs}
    assert sorted(local_inst.seen + remote) == list(range(40)) and len(local_inst.seen) == 20
    assert summary(engine, "spout").transferred == 40


def test_a_tracked_emit_many_to_another_worker_still_sends_tuples_with_their_roots() -> None:
    engine, items, runs = _remote_engine(BatchChain, ONE_ACKER, {"spout"})
    assert runs == [], "a tracked list needs a root per tuple: tuple by tuple"
    data = [tup for _t, tup in items if isinstance(tup, Tuple)]
    assert len(data) == summary(engine, "spout").emitted > 0
    assert all(tup.roots for tup in data)
