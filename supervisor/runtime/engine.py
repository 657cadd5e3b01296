"""The executor engine: a topology's executors (all of them, or a worker's share) in one
process, driven by one thread.

Tuples between local executors go through in-memory deques; a tuple for a task that is not
local goes to ``remote_sink(task)`` (the worker's transfer layer), and the rows of an
untracked ``emit_many`` for such a task, when the engine is given ``remote_run_sink``, to
``remote_run_sink(task)`` as one ``layout.Rows`` (no ``Tuple`` per row); so does such a list
for a local batch-aware bolt, to its inbox (``runs.RunInbox``: the Tuples are built when
it drains, and reused once nothing refers to them), and, acking off in an engine with a
``remote_sink``, for a local per-tuple bolt. A spout's untracked tuple for a task of
another worker goes, when the engine is given ``remote_row_sink``, to it as a row of the
run it joins (no ``Tuple``). One ``run_once()`` lets
each spout emit a bounded batch, then drains the bolts in topological order, then the ackers;
timers (tick tuples, message timeouts, acker rotation) run between rounds. When any local
inbox holds more than ``squall.backpressure.high`` items, spouts stop emitting until it
drains (backpressure), so memory stays bounded when bolts are slower than spouts.

Executors can move in and out of a running engine (live migration): ``remove_executor``
takes one out and returns its snapshot (``squall.supervisor.runtime.snapshot``: user state
through ``Component.snapshot``, queued items, a spout's pending trees, an acker's entries);
``add_executor`` builds one, initializes it, restores a snapshot and starts feeding it. The
sinks of the moved tasks switch between the local inbox and ``remote_sink`` and the routes
that depend on locality (local_or_shuffle) are rebuilt; nothing queued is lost. ``paused``
holds the spouts (no ``next_tuple``, no activate/deactivate callback) while bolts, ackers and
the delivery of tree outcomes to spouts (``ack``/``fail``) go on, so the engine drains.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from squall import config
from squall.supervisor.runtime import snapshot
from squall.supervisor.runtime.acker import AckerExecutor
from squall.supervisor.runtime.executor import BoltExecutor, Executor
from squall.supervisor.runtime.layout import Rows, RowSink
from squall.supervisor.runtime.routing import AckerChoice, Chooser, Route, make_chooser
from squall.supervisor.runtime.runs import RunInbox
from squall.supervisor.runtime.spout_executor import SpoutExecutor
from squall.supervisor.runtime.stats import ComponentSummary, CpuMeter, RoundClock, summarize
from squall.topology.component import (
    SYSTEM_COMPONENT,
    TICK_SOURCE_TASK,
    TICK_STREAM,
    Context,
    Tuple,
    declare_field_names,
)
from squall.topology.grouping import LOCAL_OR_SHUFFLE
from squall.topology.order import topological_order
from squall.topology.spec import ACKER_COMPONENT, ExecutorKind, ExecutorSpec, TopologySpec

log = logging.getLogger("squall.engine")
Sink = Callable[[tuple[int, Any]], None]
RunSink = Callable[[int, Rows], None]
TIMER_PERIOD_S = 0.05


class Wiring:
    """What every executor of one engine needs to route and track tuples."""

    def __init__(
        self,
        spec: TopologySpec,
        acker_tasks: list[int],
        local_tasks: frozenset[int],
        clock: Callable[[], float],
        seed: int,
        conf: Mapping[str, Any] | None = None,
    ) -> None:
        self.spec = spec
        # ``tup.word`` for every field the topology declares (Tuples built without __init__)
        declare_field_names(f for c in spec.components for s in c.outputs for f in s.fields)
        # The topology config with the engine's overrides (``squall local --set``, the
        # worker's conf); without it, overrides would reach the engine but not the components.
        self.conf = {**spec.config, **(conf or {})}
        self.acker_tasks = acker_tasks
        self.tracking = bool(acker_tasks)
        self.local_tasks = local_tasks
        # where spouts start their trees: an acker of this engine when it runs one
        self.acker_choice = AckerChoice(acker_tasks, local_tasks)
        self.clock = clock
        self.seed = seed
        self.sinks: dict[int, Sink] = {}
        # task -> the sink for a whole run of untracked tuples (``Rows``): the transfer
        # layer's for the tasks of other workers (when it takes runs), a local batch-aware
        # bolt's ``RunInbox.put_run`` for its tasks: an ``emit_many`` hands it its list
        # instead of a ``Tuple`` and an inbox item per row.
        self.run_sinks: dict[int, RunSink] = {}
        # task -> a local batch-aware bolt's ``RunInbox.put_run``: where the transfer codec
        # queues a received run whole (one inbox item, the Tuples built at the drain).
        self.inbox_run_sinks: dict[int, RunSink] = {}
        # task -> the transfer layer's sink for one untracked tuple as a row (``RowSink``),
        # for the tasks of other workers when it takes rows: a spout's per-tuple emit hands
        # it the values instead of a ``Tuple``.
        self.row_sinks: dict[int, RowSink] = {}
        # True in an engine that has other workers (a ``remote_sink``): runs arrive from them
        self.remote = False
        # CPU spent moving data to other workers (a worker's transfer layer shares its meter):
        # executors leave what it measures during their calls out of their own busy time.
        self.transfer_meter = CpuMeter()
        # The thread CPU clock of the executors' batches, read once per boundary in a round.
        self.round_clock = RoundClock()
        self.task_ranges = spec.task_ranges()
        self.task_to_component = {t: name for name, r in self.task_ranges.items() for t in r}
        self._stream_fields: dict[tuple[str, str], dict[str, int]] = {}

    def stream_fields(self, component: str, stream: str) -> dict[str, int]:
        """Field name -> index of a declared stream (one shared dict per stream)."""
        key = (component, stream)
        fields = self._stream_fields.get(key)
        if fields is None:
            declared = {s.name: s.fields for s in self.spec.component(component).outputs}
            fields = self._stream_fields[key] = {f: i for i, f in enumerate(declared[stream])}
        return fields

    def component_config(self, component: str) -> dict[str, Any]:
        """The config a component sees: the topology's with overrides, then its own."""
        return {**self.conf, **self.spec.component(component).config}

    def routes(self, component: str, task: int) -> dict[str, Route]:
        """For each output stream of ``component``, where ``task``'s tuples go."""
        out: dict[str, Route] = {}
        for stream in self.spec.component(component).outputs:
            choosers: list[Chooser] = []
            direct_tasks: set[int] = set()
            fields_index = {f: i for i, f in enumerate(stream.fields)}
            for sub, inp in self.spec.subscribers(component, stream.name):
                tasks = list(self.task_ranges[sub.name])
                chooser = make_chooser(inp.grouping, fields_index, tasks, task, self.local_tasks)
                if chooser is None:  # direct grouping: the emit names the task
                    direct_tasks.update(tasks)
                    continue
                choosers.append(chooser)
            out[stream.name] = Route(
                component, stream.name, stream.fields, choosers, frozenset(direct_tasks), stream.direct
            )
        return out

    def context(self, component: str, task: int) -> Context:
        comp = self.spec.component(component)
        return Context(
            topology=self.spec.name,
            component=component,
            task=task,
            component_tasks=list(self.task_ranges[component]),
            task_to_component=dict(self.task_to_component),
            outputs={s.name: s.fields for s in comp.outputs},
        )


def acker_count(spec: TopologySpec, conf: Mapping[str, Any]) -> int:
    """``topology.acker.executors``; by default one per worker, as Storm does."""
    value = conf.get(config.ACKERS)
    if value is None:
        return max(1, int(conf.get(config.WORKERS, 1)))
    return max(0, int(value))


class Engine:
    """Runs the executors of ``spec`` whose ids are in ``executor_ids`` (default: all).

    ``states`` (executor id -> snapshot) are restored at ``start()``, after ``initialize()``
    and before any tuple: a worker launched to take over moved executors gets them this way.
    """

    def __init__(
        self,
        spec: TopologySpec,
        classes: Mapping[str, type],
        conf: Mapping[str, Any] | None = None,
        executor_ids: Iterable[int] | None = None,
        remote_sink: Callable[[int], Sink] | None = None,
        remote_run_sink: Callable[[int], RunSink] | None = None,
        remote_row_sink: Callable[[int], RowSink] | None = None,
        clock: Callable[[], float] = time.monotonic,
        seed: int = 0,
        states: Mapping[int, bytes] | None = None,
    ) -> None:
        self.spec = spec
        self.classes = classes
        self.conf = {**spec.config, **(conf or {})}
        self.clock = clock
        self.remote_sink = remote_sink
        self.remote_run_sink = remote_run_sink  # optional: a run of emit_many in one call
        self.remote_row_sink = remote_row_sink  # optional: a spout's untracked tuple as a row
        ackers = acker_count(spec, self.conf)
        self.all_executors = spec.executors_with_ackers(ackers)
        self._executor_specs = {e.id: e for e in self.all_executors}
        wanted = set(self._executor_specs) if executor_ids is None else set(executor_ids)
        local = [e for e in self.all_executors if e.id in wanted]
        local_tasks = frozenset(t for e in local for t in e.tasks)
        acker_tasks = [e.first_task for e in self.all_executors if e.component == ACKER_COMPONENT]
        self.wiring = Wiring(spec, acker_tasks, local_tasks, clock, seed, self.conf)
        self.wiring.remote = remote_sink is not None
        self.message_timeout_s = float(self.conf.get(config.MESSAGE_TIMEOUT, config.DEFAULT_MESSAGE_TIMEOUT_S))
        self.backpressure_high = int(self.conf.get(config.BACKPRESSURE_HIGH, config.DEFAULT_BACKPRESSURE_HIGH))
        self.drain_limit = int(self.conf.get(config.BOLT_BATCH, config.DEFAULT_BOLT_BATCH))
        order = topological_order((c.name for c in spec.components), spec.component_edges())
        self._order = {name: i for i, name in enumerate(order)}
        self._locality_matters = any(inp.grouping.type == LOCAL_OR_SHUFFLE for c in spec.components for inp in c.inputs)
        self.active = False
        self.paused = False  # live migration: spouts held, everything else drains
        self.started_at: float | None = None
        self._states = dict(states or {})

        # Inboxes exist before executors, because building an executor's emit needs sinks.
        for e in self.all_executors:
            for t in e.tasks:
                self._route_remote(t)
        self.by_id: dict[int, Any] = {}
        for e in local:
            self._build(e, salt=0)
        self._ticks: list[list[Any]] = []
        self._arrange()
        self._next_timers = 0.0

    def _remote(self, task: int) -> Sink:
        return self.remote_sink(task) if self.remote_sink is not None else _unreachable(task)

    def _route_remote(self, task: int) -> None:
        """Point ``task``'s sinks at the transfer layer (it is not, or no longer, local)."""
        self.wiring.sinks[task] = self._remote(task)
        self.wiring.inbox_run_sinks.pop(task, None)
        if self.remote_sink is not None and self.remote_run_sink is not None:
            self.wiring.run_sinks[task] = self.remote_run_sink(task)
        else:
            self.wiring.run_sinks.pop(task, None)  # a local bolt's inbox, if it was: no more
        if self.remote_sink is not None and self.remote_row_sink is not None:
            self.wiring.row_sinks[task] = self.remote_row_sink(task)

    def _build(self, e: ExecutorSpec, salt: int) -> Any:
        """Create executor ``e`` with its own inbox and point its tasks' sinks at it."""
        kind = self.spec.kind_of(e.component)
        if kind == ExecutorKind.ACKER:
            ex: Any = AckerExecutor(e, self.wiring, self.message_timeout_s)
        elif kind == ExecutorKind.SPOUT:
            ex = SpoutExecutor(e, self.classes[e.component], self.wiring, salt)
        else:
            ex = BoltExecutor(e, self.classes[e.component], self.wiring, salt)
        for t in e.tasks:
            self.wiring.sinks[t] = ex.inbox.append
            self.wiring.run_sinks.pop(t, None)
            self.wiring.row_sinks.pop(t, None)
            if isinstance(ex.inbox, RunInbox):
                self.wiring.inbox_run_sinks[t] = ex.inbox.put_run
                self.wiring.run_sinks[t] = ex.inbox.put_run
        self.by_id[e.id] = ex
        return ex

    def _arrange(self) -> None:
        """Order the executors (spouts, bolts from sources to sinks, ackers) and refresh the
        lists the loop reads; tick timers of bolts that stay are kept as they are."""
        order = self._order
        local = sorted(self.by_id.values(), key=lambda ex: (order.get(ex.component, len(order)), ex.spec.id))
        self.spouts: list[SpoutExecutor] = [ex for ex in local if ex.kind == ExecutorKind.SPOUT]
        self.bolts: list[BoltExecutor] = [ex for ex in local if ex.kind == ExecutorKind.BOLT]
        self.ackers: list[AckerExecutor] = [ex for ex in local if ex.kind == ExecutorKind.ACKER]
        self.executors: list[Executor | AckerExecutor] = [*self.spouts, *self.bolts, *self.ackers]
        self._inboxes = [ex.inbox for ex in self.executors]
        kept = {id(entry[0]): entry for entry in self._ticks}
        self._ticks = [kept.get(id(b)) or entry for b in self.bolts for entry in self._tick_entries(b)]

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, activate: bool = True) -> None:
        for ex in self.executors:
            ex.initialize()
        now = self.clock()
        for eid, data in self._states.items():
            held = self.by_id.get(eid)
            if held is not None:
                self._restore(held, data, now)
        self._states = {}
        self.started_at = now
        if activate:
            self.activate()

    def activate(self) -> None:
        self.active = True
        for s in self.spouts:
            s.activate()

    def deactivate(self) -> None:
        self.active = False
        for s in self.spouts:
            s.deactivate()

    # -- live migration ----------------------------------------------------------------

    def local_executor_ids(self) -> frozenset[int]:
        return frozenset(self.by_id)

    def add_executor(self, executor_id: int, state: bytes | None = None) -> None:
        """Start running executor ``executor_id`` here: build it, ``initialize()`` it (if the
        engine has started), restore ``state`` (a ``remove_executor`` snapshot: user state,
        queued items, pending trees or acker entries), then switch its tasks' sinks to its
        inbox. A spout is activated if the engine is active. A snapshot that does not decode
        is logged and the executor starts empty."""
        if executor_id in self.by_id:
            raise ValueError(f"executor {executor_id} already runs in this engine")
        e = self._executor_specs.get(executor_id)
        if e is None:
            raise ValueError(f"topology {self.spec.name!r} has no executor {executor_id}")
        ex = self._build(e, salt=int.from_bytes(os.urandom(8), "big"))
        if self.started_at is not None:
            try:
                ex.initialize()
            except Exception:  # the caller reports it; the engine stays as it was
                del self.by_id[executor_id]
                for t in e.tasks:
                    self._route_remote(t)
                raise
        self._relocalize()
        self._arrange()
        if self.started_at is None:
            if state is not None:
                self._states[executor_id] = state
            return
        if state is not None:
            self._restore(ex, state, self.clock())
        if self.active and ex.kind == ExecutorKind.SPOUT:
            ex.activate()

    def remove_executor(self, executor_id: int) -> bytes:
        """Stop running executor ``executor_id`` here and return its snapshot; its tasks'
        sinks go to ``remote_sink`` from now on. Queued items leave inside the snapshot, so
        the caller must hand it to the new owner (``add_executor``) for nothing to be lost."""
        ex = self.by_id.pop(executor_id, None)
        if ex is None:
            raise ValueError(f"executor {executor_id} does not run in this engine")
        data = snapshot.take(ex, self.clock())
        for t in ex.spec.tasks:
            self._route_remote(t)
        self._relocalize()
        self._arrange()
        return data

    def _restore(self, ex: Any, data: bytes, now: float) -> None:
        try:
            snapshot.restore(ex, data, now)
        except (snapshot.SnapshotError, KeyError, TypeError, ValueError) as exc:
            log.error("executor %d (%s): state not restored, it starts empty: %s", ex.spec.id, ex.component, exc)

    def _relocalize(self) -> None:
        self.wiring.local_tasks = frozenset(t for ex in self.by_id.values() for t in ex.spec.tasks)
        self.wiring.acker_choice.update(self.wiring.local_tasks)
        if self._locality_matters:
            for ex in self.by_id.values():
                if ex.kind != ExecutorKind.ACKER:
                    ex.rebind_emits()

    def queued(self) -> int:
        """Items waiting in local inboxes."""
        return sum(len(box) for box in self._inboxes)

    # -- the loop ----------------------------------------------------------------------

    def run_once(self) -> int:
        """One round: spouts emit a batch (unless paused or backpressured), bolts and ackers
        drain, then spouts take the outcomes the ackers sent them (without emitting)."""
        allow_emit = not self.paused and not self.backpressured()
        done = 0
        # The round's thread CPU (two readings, each a system call) is shared among its batches.
        round_clock = self.wiring.round_clock
        round_clock.open_round()
        try:
            for s in self.spouts:
                done += s.step(allow_emit)
            limit = self.drain_limit
            for b in self.bolts:
                done += b.drain(limit)
            if self.ackers:
                for a in self.ackers:
                    done += a.drain(limit)
                # Trees the ackers just completed for a spout of this engine: its ack() now, not
                # one round later (the round that finds it would be one more loop round per tree).
                for s in self.spouts:
                    if s.inbox:
                        done += s.step(False)
        finally:
            round_clock.close_round()
        now = self.clock()
        if now >= self._next_timers:
            self.run_timers(now)
            self._next_timers = now + TIMER_PERIOD_S
        return done

    def next_due(self, now: float) -> float | None:
        """The earliest instant at which ``run_once`` has something to do if no item arrives
        from outside: ``now`` while an inbox holds items; a spout's next emission (unless
        paused or backpressured); the next timer that has work — a tick, a pending tree's
        timeout, an acker rotation. None: nothing at all until an item arrives (a
        deactivated topology with nothing in flight)."""
        if any(self._inboxes):
            return now
        due: float | None = None
        if not self.paused and not self.backpressured():
            for s in self.spouts:
                when = s.next_emission(now)
                if when is not None and (due is None or when < due):
                    due = when
        timers = [entry[2] for entry in self._ticks]
        timeout = self.message_timeout_s
        timers += [next(iter(s.pending.values()))[2] + timeout for s in self.spouts if s.pending]
        timers += [when for a in self.ackers if (when := a.next_rotation()) is not None]
        if timers:
            when = max(min(timers), self._next_timers)  # run_once runs timers no sooner
            if due is None or when < due:
                due = when
        return due

    def backpressured(self) -> bool:
        high = self.backpressure_high
        for box in self._inboxes:
            if len(box) > high:
                return True
        return False

    def run(self, seconds: float, idle_sleep_s: float = 0.0005) -> None:
        """Run rounds for ``seconds`` of the engine's clock, sleeping briefly when idle."""
        deadline = self.clock() + seconds
        while self.clock() < deadline:
            if not self.run_once():
                time.sleep(idle_sleep_s)

    def drain(self, timeout_s: float = 5.0) -> bool:
        """Deactivate spouts and run until nothing is queued or pending; True if it emptied."""
        self.deactivate()
        deadline = self.clock() + timeout_s
        while self.clock() < deadline:
            if not self.run_once() and self.idle():
                return True
            if not self.idle():
                continue
            time.sleep(0.0005)
        return self.idle()

    def idle(self) -> bool:
        return not any(self._inboxes) and not any(s.pending for s in self.spouts)

    # -- timers ------------------------------------------------------------------------

    def _tick_entries(self, bolt: BoltExecutor) -> list[list[Any]]:
        """[bolt, period, next due] for a bolt with tick tuples, else nothing."""
        freq = self.wiring.component_config(bolt.component).get(config.TICK_FREQ)
        return [[bolt, float(freq), self.clock() + float(freq)]] if freq else []

    def run_timers(self, now: float) -> None:
        for entry in self._ticks:
            bolt, freq, due = entry
            if now >= due:
                tick = Tuple(SYSTEM_COMPONENT, TICK_STREAM, TICK_SOURCE_TASK, [freq], {"freq": 0})
                for task in bolt.instances:
                    bolt.inbox.append((task, tick))
                entry[2] = due + freq if due + freq > now else now + freq
        for s in self.spouts:
            s.expire(now, self.message_timeout_s)
        for a in self.ackers:
            a.rotate(now)

    # -- reporting ---------------------------------------------------------------------

    def summary(self) -> list[ComponentSummary]:
        """Counts per component (user components first, by name), latencies in ms."""
        by_component: dict[str, list] = {}
        kinds: dict[str, str] = {}
        for ex in self.executors:
            by_component.setdefault(ex.component, []).append(ex.stats)
            kinds[ex.component] = ex.kind
        names = sorted(by_component, key=lambda n: (n.startswith("__"), n))
        return [summarize(n, kinds[n], by_component[n]) for n in names]


def _unreachable(task: int) -> Sink:
    def sink(_item: tuple[int, Any]) -> None:
        raise RuntimeError(f"task {task} is not local and this engine has no transfer layer")

    return sink
