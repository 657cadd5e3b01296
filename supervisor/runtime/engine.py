"""The executor engine: a topology's executors (all of them, or a worker's share) in one
process, driven by one thread.

Tuples between local executors go through in-memory deques; a tuple for a task that is not
local goes to ``remote_sink(task)`` (the worker's transfer layer). One ``run_once()`` lets
each spout emit a bounded batch, then drains the bolts in topological order, then the ackers;
timers (tick tuples, message timeouts, acker rotation) run between rounds. When any local
inbox holds more than ``squall.backpressure.high`` items, spouts stop emitting until it
drains (backpressure), so memory stays bounded when bolts are slower than spouts.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable, Iterable, Mapping

from squall.supervisor.runtime.acker import AckerExecutor
from squall.supervisor.runtime.executor import BoltExecutor, SpoutExecutor
from squall.supervisor.runtime.routing import Route, make_chooser
from squall.supervisor.runtime.stats import ComponentSummary, summarize
from squall.topology.component import SYSTEM_COMPONENT, TICK_STREAM, Context, Tuple
from squall.topology.grouping import DIRECT
from squall.topology.spec import ACKER_COMPONENT, SPOUT, ExecutorSpec, TopologySpec

Sink = Callable[[tuple[int, Any]], None]
DEFAULT_MESSAGE_TIMEOUT_S = 30.0
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
        # The topology config with the engine's overrides (``squall local --set``, the
        # worker's conf); without it, overrides would reach the engine but not the components.
        self.conf = {**spec.config, **(conf or {})}
        self.acker_tasks = acker_tasks
        self.tracking = bool(acker_tasks)
        self.local_tasks = local_tasks
        self.clock = clock
        self.seed = seed
        self.sinks: dict[int, Sink] = {}
        self.task_ranges = spec.task_ranges()
        self.task_to_component = {t: name for name, r in self.task_ranges.items() for t in r}

    def component_config(self, component: str) -> dict[str, Any]:
        """The config a component sees: the topology's with overrides, then its own."""
        return {**self.conf, **self.spec.component(component).config}

    def routes(self, component: str, task: int) -> dict[str, Route]:
        """For each output stream of ``component``, where ``task``'s tuples go."""
        out: dict[str, Route] = {}
        for stream in self.spec.component(component).outputs:
            choosers = []
            direct_tasks: set[int] = set()
            fields_index = {f: i for i, f in enumerate(stream.fields)}
            for sub, inp in self.spec.subscribers(component, stream.name):
                tasks = list(self.task_ranges[sub.name])
                if inp.grouping.type == DIRECT:
                    direct_tasks.update(tasks)
                    continue
                chooser = make_chooser(inp.grouping, fields_index, tasks, task, self.local_tasks)
                choosers.append(chooser)
            out[stream.name] = Route(component, stream.name, stream.fields, choosers, frozenset(direct_tasks), stream.direct)
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
    value = conf.get("topology.acker.executors")
    if value is None:
        return max(1, int(conf.get("topology.workers", 1)))
    return max(0, int(value))


class Engine:
    """Runs the executors of ``spec`` whose ids are in ``executor_ids`` (default: all)."""

    def __init__(
        self,
        spec: TopologySpec,
        classes: Mapping[str, type],
        conf: Mapping[str, Any] | None = None,
        executor_ids: Iterable[int] | None = None,
        remote_sink: Callable[[int], Sink] | None = None,
        clock: Callable[[], float] = time.monotonic,
        seed: int = 0,
    ) -> None:
        self.spec = spec
        self.conf = {**spec.config, **(conf or {})}
        self.clock = clock
        ackers = acker_count(spec, self.conf)
        all_executors = spec.executors_with_ackers(ackers)
        wanted = set(e.id for e in all_executors) if executor_ids is None else set(executor_ids)
        local = [e for e in all_executors if e.id in wanted]
        local_tasks = frozenset(t for e in local for t in e.tasks)
        acker_tasks = [e.first_task for e in all_executors if e.component == ACKER_COMPONENT]
        self.wiring = Wiring(spec, acker_tasks, local_tasks, clock, seed, self.conf)
        self.message_timeout_s = float(self.conf.get("topology.message.timeout.secs", DEFAULT_MESSAGE_TIMEOUT_S))
        self.backpressure_high = int(self.conf.get("squall.backpressure.high", 10_000))
        self.drain_limit = int(self.conf.get("squall.bolt.batch", 1_000))

        # Inboxes exist before executors, because building an executor's emit needs sinks.
        inboxes: dict[int, deque] = {}
        for e in local:
            box: deque = deque()
            for t in e.tasks:
                inboxes[t] = box
        for e in all_executors:
            for t in e.tasks:
                if t in inboxes:
                    self.wiring.sinks[t] = inboxes[t].append
                elif remote_sink is not None:
                    self.wiring.sinks[t] = remote_sink(t)
                else:
                    self.wiring.sinks[t] = _unreachable(t)

        self.spouts: list[SpoutExecutor] = []
        self.bolts: list[BoltExecutor] = []
        self.ackers: list[AckerExecutor] = []
        order = {name: i for i, name in enumerate(_topological_order(spec))}
        for e in sorted(local, key=lambda e: (order.get(e.component, len(order)), e.id)):
            if e.component == ACKER_COMPONENT:
                ex: Any = AckerExecutor(e, self.wiring, self.message_timeout_s)
                self.ackers.append(ex)
            elif spec.component(e.component).kind == SPOUT:
                ex = SpoutExecutor(e, classes[e.component], self.wiring)
                self.spouts.append(ex)
            else:
                ex = BoltExecutor(e, classes[e.component], self.wiring)
                self.bolts.append(ex)
            ex.inbox = inboxes[e.first_task]
        self.executors = [*self.spouts, *self.bolts, *self.ackers]
        self._inboxes = [ex.inbox for ex in self.executors]
        self._ticks = self._tick_schedule()
        self._next_timers = 0.0
        self.started_at: float | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, activate: bool = True) -> None:
        for ex in self.executors:
            ex.initialize()
        self.started_at = self.clock()
        if activate:
            self.activate()

    def activate(self) -> None:
        for s in self.spouts:
            s.activate()

    def deactivate(self) -> None:
        for s in self.spouts:
            s.deactivate()

    def run_once(self) -> int:
        """One round: spouts emit a batch (unless backpressured), bolts and ackers drain."""
        allow_emit = not self.backpressured()
        done = 0
        for s in self.spouts:
            done += s.step(allow_emit)
        limit = self.drain_limit
        for b in self.bolts:
            done += b.drain(limit)
        for a in self.ackers:
            done += a.drain(limit)
        now = self.clock()
        if now >= self._next_timers:
            self.run_timers(now)
            self._next_timers = now + TIMER_PERIOD_S
        return done

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

    def _tick_schedule(self) -> list[list[Any]]:
        ticks = []
        for b in self.bolts:
            freq = self.wiring.component_config(b.component).get("topology.tick.tuple.freq.secs")
            if freq:
                ticks.append([b, float(freq), self.clock() + float(freq)])
        return ticks

    def run_timers(self, now: float) -> None:
        for entry in self._ticks:
            bolt, freq, due = entry
            if now >= due:
                tick = Tuple(SYSTEM_COMPONENT, TICK_STREAM, -1, [freq], {"freq": 0})
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


def _topological_order(spec: TopologySpec) -> list[str]:
    """Components from sources to sinks (cycles broken by name), so a round drains downstream
    bolts after the ones that feed them."""
    indegree = {c.name: 0 for c in spec.components}
    for c in spec.components:
        for i in c.inputs:
            if i.component != c.name:
                indegree[c.name] += 1
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(indegree):
        ready = sorted(n for n, d in indegree.items() if d == 0 and n not in placed)
        if not ready:  # a cycle: take the first unplaced name
            ready = [sorted(n for n in indegree if n not in placed)[0]]
        for n in ready:
            placed.add(n)
            order.append(n)
            for c in spec.components:
                for i in c.inputs:
                    if i.component == n and c.name not in placed and c.name != n:
                        indegree[c.name] -= 1
    return order


def _unreachable(task: int) -> Sink:
    def sink(_item: tuple[int, Any]) -> None:
        raise RuntimeError(f"task {task} is not local and this engine has no transfer layer")

    return sink
