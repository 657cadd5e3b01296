"""Executors: a component's tasks, their inbox, and the emit/ack/fail they use. The base class
and the bolt executor live here; the spout executor in ``spout_executor``.

An executor is driven by its engine from one thread: ``step()`` (spouts) or ``drain()``
(bolts) runs a bounded batch and returns how much it did. Guarantees:

* every emit is checked against its stream's declaration (unknown stream, wrong number of
  values, direct task) and raises ``EmitError`` naming the component, stream and fields;
* with acking on, each tuple tree is tracked by the XOR acker: a spout's ``ack(tup_id)`` is
  called once the tree completes, ``fail(tup_id)`` when any bolt fails it or it times out;
* a bolt that raises in ``process`` fails its input (``auto_fail``), the error is logged once
  per task and exception type, and the executor keeps running;
* a bolt that defines ``process_many`` gets each task's run of an inbox batch in one call
  (``runs.drain_runs``) with the same guarantees for the whole run, and ``emit_many`` is
  one call for a list (``emit_many``), with the checks of ``emit``.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable, Sequence
from sys import getrefcount
from types import MethodType
from typing import TYPE_CHECKING, Any, NoReturn

from squall.supervisor.runtime.batches import requeue_rest, take_batch
from squall.supervisor.runtime.emit_many import make_bolt_emit_many
from squall.supervisor.runtime.layout import Rows
from squall.supervisor.runtime.messages import ACK_ACK, ACK_BULK, ACK_FAIL
from squall.supervisor.runtime.routing import Route
from squall.supervisor.runtime.runs import LOCAL_REFCOUNT, RunInbox, drain_runs, requeue_runs, take_runs
from squall.supervisor.runtime.stats import ExecutorStats
from squall.topology.component import TASK_LOGGER_PREFIX, TICK_STREAM, Bolt, Spout, Tuple
from squall.topology.errors import EmitError
from squall.topology.spec import DEFAULT_STREAM, ExecutorKind, ExecutorSpec

if TYPE_CHECKING:
    from squall.supervisor.runtime.engine import Wiring

log = logging.getLogger("squall.executor")

# Builds a Tuple without running ``Tuple.__init__`` (a Python frame); the emits set every
# slot right after, which costs about a third fewer instructions per tuple.
new_tuple = object.__new__


def task_class(cls: type) -> type:
    """A subclass of the component class ``cls`` for one task's instance, with the same
    name, qualified name, module and docstring and no attributes of its own: the executor
    sets its ``emit`` to the task's emit function (``Executor._bind_emit``), so that a
    component's ``self.emit(...)`` is a call of a class method, which the interpreter
    specialises (an instance attribute shadowing the method is looked up in the instance's
    dict on every call). Made only for a class that does not override ``emit``. A class
    that refuses a plain subclass (an ``__init_subclass__`` that requires arguments, a
    metaclass that wants more) is returned as it is: its instances get their ``emit`` as an
    instance attribute, as before."""
    namespace = {
        "__slots__": (),
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "_squall_task_class": True,
    }
    try:
        return type(cls)(cls.__name__, (cls,), namespace)
    except TypeError:
        return cls


class Executor:
    """What spout and bolt executors share: identity, instances, inbox, stats, error logging."""

    kind: ExecutorKind  # set by each subclass

    def __init__(self, spec: ExecutorSpec, cls: type[Spout] | type[Bolt], wiring: Wiring, salt: int = 0) -> None:
        self.spec = spec
        self.component = spec.component
        self.wiring = wiring
        self.inbox: deque = deque()
        self.stats = ExecutorStats(spec.component)
        self.tracking = wiring.tracking
        self._logged: set[tuple[int, str]] = set()
        # ``salt`` differs for an executor added live (moved here), so its root and edge ids
        # do not repeat those its previous incarnation drew for trees still in flight.
        self._getrandbits = random.Random(wiring.seed * 1_000_003 + spec.id + (salt << 64)).getrandbits
        self.first_error: tuple[int, str, BaseException] | None = None  # (task, where, error)
        self.emit_errors = 0  # EmitError raised by the component: a bug in the topology's code
        self._overrides_emit = cls.emit not in (Spout.emit, Bolt.emit)
        # ``emit_many`` is bound as one call only when the class keeps both emits of the
        # user API: an override of either must see every tuple, so the method's loop stays.
        self._binds_emit_many = not self._overrides_emit and cls.emit_many in (Spout.emit_many, Bolt.emit_many)
        # Every route the tasks' emits count into; ``add_route_counts`` moves their counts
        # into ``stats`` at the end of each batch (and of each call that may emit).
        self._routes: list[Route] = []
        self.instances: dict[int, Any] = {}
        for task in spec.tasks:
            # A class of its own per task when the executor binds ``emit`` (``task_class``).
            inst = cls() if self._overrides_emit else task_class(cls)()
            self._identify(inst, task)
            self._bind_emit(inst, task)
            self._bind(inst, task)
            self.instances[task] = inst

    def initialize(self) -> None:
        conf = self.wiring.component_config(self.component)
        try:
            for task, inst in self.instances.items():
                inst.initialize(dict(conf), self.wiring.context(self.component, task))
        finally:
            self.add_route_counts()

    def add_route_counts(self) -> None:
        """Add what the emits counted on their routes to ``stats.emitted`` and
        ``stats.transferred``. Called at the end of every ``step``/``drain`` and every other
        call into user code, so the stats are exact between rounds; an emit counts on its
        route (one slot increment) instead of updating two stats fields per tuple."""
        stats = self.stats
        for route in self._routes:
            if route.emitted or route.transferred:
                emitted, transferred = route.take_counts()
                stats.emitted[route.stream] += emitted
                stats.transferred += transferred

    def _bind(self, inst: Any, task: int) -> None:
        """Attach ack/fail (bolts); spouts keep their own ack/fail callbacks."""

    def _identify(self, inst: Any, task: int) -> None:
        """What streamparse and heronpy components read about themselves, and their logger."""
        inst.topology_name = self.wiring.spec.name
        inst.component_name = self.component
        inst.task_id = task
        inst.logger = logging.getLogger(f"{TASK_LOGGER_PREFIX}.{self.component}.{task}")
        inst._squall_report_error = lambda exc, task=task: self.record_error(task, exc, "raise_exception")

    def _bind_emit(self, inst: Any, task: int) -> None:
        routes = self._routes_of(task)  # one set per task: emit and emit_many share its choosers
        emit = self._make_emit(task, routes)  # takes the instance first, as a method does
        bound = MethodType(emit, inst)
        inst._squall_emit = bound
        if not self._overrides_emit:
            if "_squall_task_class" in type(inst).__dict__:
                # The method of the task's own class (``task_class``), not an attribute of
                # the instance: the interpreter specialises ``self.emit(...)`` on a method of
                # the class, never on an instance attribute (about 145 instructions per call).
                type(inst).emit = emit
            else:  # a class that refused a subclass: shadows the method, as before
                inst.emit = bound
        if self._binds_emit_many:
            inst.emit_many = self._make_emit_many(task, routes, bound)

    def rebind_emits(self) -> None:
        """Rebuild every task's emit: its routes depend on which tasks are local
        (local_or_shuffle), which changes when executors move in or out of the engine."""
        self.add_route_counts()  # the old routes' counts, before they are dropped
        self._routes = []
        for task, inst in self.instances.items():
            self._bind_emit(inst, task)

    def _reject_emit(self, routes: dict[str, Route], stream: str | None, values: Sequence[Any]) -> NoReturn:
        """Raise the EmitError for an emit whose stream is undeclared or whose value count is
        not the stream's field count (the emit closures check both inline, on the hot path,
        and call this only to build the message)."""
        name = stream or DEFAULT_STREAM
        route = routes.get(name)
        if route is None:
            declared = ", ".join(repr(s) for s in routes) or "none"
            raise EmitError(f"{self.component!r} emitted on undeclared stream {name!r} (declared: {declared})")
        raise EmitError(
            f"{self.component!r} emitted {len(values)} value(s) on stream {route.stream!r}, which declares "
            f"{route.arity} field(s): {list(route.fields)}"
        )

    def record_error(self, task: int, exc: BaseException, what: str) -> None:
        """Count an error of ``task`` raised in ``what``; the first one is kept for reports."""
        self.stats.errors += 1
        if isinstance(exc, EmitError):
            self.emit_errors += 1
        if self.first_error is None:
            self.first_error = (task, what, exc)

    def log_error_once(self, task: int, exc: BaseException, what: str) -> None:
        self.record_error(task, exc, what)
        key = (task, type(exc).__name__)
        if key in self._logged:
            return
        self._logged.add(key)
        log.error(
            "%s %r task %d raised in %s (further %s errors of this task are counted, not logged)",
            self.kind,
            self.component,
            task,
            what,
            type(exc).__name__,
            exc_info=exc,
        )

    def _routes_of(self, task: int) -> dict[str, Route]:
        """``task``'s routes, registered for ``add_route_counts``."""
        routes = self.wiring.routes(self.component, task)
        self._routes.extend(routes.values())
        return routes

    def _make_emit(self, task: int, routes: dict[str, Route]) -> Callable[..., list[int]]:
        raise NotImplementedError

    def _make_emit_many(
        self, task: int, routes: dict[str, Route], emit: Callable[..., list[int]]
    ) -> Callable[..., list[list[int]]]:
        raise NotImplementedError


class BoltExecutor(Executor):
    kind = ExecutorKind.BOLT

    def __init__(self, spec: ExecutorSpec, cls: type[Bolt], wiring: Wiring, salt: int = 0) -> None:
        self.current: Tuple | None = None
        # True while ``process_many`` runs: there is no current tuple to auto-anchor to.
        self.in_run = False
        # A bolt that defines ``process_many`` is handed runs; it wins over ``process``.
        self.processes_runs = getattr(cls, "process_many", Bolt.process_many) is not Bolt.process_many
        # A bolt that holds tuples past ``process`` (BatchingBolt) acks them itself.
        self.auto_ack = bool(cls.auto_ack) and not getattr(cls, "holds_tuples", False)
        self.auto_anchor = bool(cls.auto_anchor)
        self.auto_fail = bool(cls.auto_fail)
        # Acks and fails for each acker (by index in ``acker_tasks``) since they were last
        # sent: [root, xor, root, xor, ...] and [root, ...]. A drain sends them at its end as
        # one message per acker (``send_acks``); an ack or fail outside a drain at once.
        self.acks_out: list[list[int]] = [[] for _ in wiring.acker_tasks]
        self.fails_out: list[list[int]] = [[] for _ in wiring.acker_tasks]
        self.draining = False
        # Tuples ``_drain_rows`` made for the rows of queued runs, in all: one per drain, and
        # one more after each row whose Tuple the bolt kept (the others are reused).
        self.run_tuples_made = 0
        super().__init__(spec, cls, wiring, salt)
        if self.processes_runs or (not self.tracking and wiring.remote):
            # It takes a frame's run whole (``RunInbox.put_run``, the transfer codec's run sink):
            # a batch-aware bolt, and with acking off, in an engine with other workers to hear
            # from, a per-tuple one too (``_drain_rows``). Acking on, a per-tuple bolt's runs
            # are tracked and come one item per tuple; in one process its inbox stays a plain
            # deque, whose ``len`` costs no Python call (about 275 instructions per tuple of
            # the one-process chain, whose rounds are short: ``engine_instructions.py``).
            self.inbox = RunInbox()

    def _bind(self, inst: Any, task: int) -> None:
        inst.ack = self.ack
        inst.fail = self.fail

    def _make_emit(self, task: int, routes: dict[str, Route]) -> Callable[..., list[int]]:
        # This emit and SpoutExecutor's are near copies on purpose (the checks, the target
        # choice, the counting, the inlined Tuple). Sharing their untracked tail as one
        # function costs a Python call per emit: measured +937 instructions per tuple of the
        # one-process 3-stage chain, acking off (19,015 against 18,078, +5.2%, cachegrind; two
        # emits per tuple), well beyond the noise of instruction counts (about 0.4% from run
        # to run). Sharing only the route lookup and target choice, the smallest common
        # part, as one function costs nearly as much: +767 instructions per tuple acking off
        # (18,757 against 17,990, +4.3%) and +839 acking on (51,115 against 50,276, +1.7%),
        # ``python benchmarks/engine_instructions.py``.
        default = routes.get(DEFAULT_STREAM)
        sinks = self.wiring.sinks
        component = self.component
        tracking = self.tracking
        auto_anchor = self.auto_anchor
        getrandbits = self._getrandbits
        executor = self

        def emit(_inst, values, stream=None, anchors=None, direct_task=None, need_task_ids=False, tup_id=None):
            route = default if stream is None else routes.get(stream)
            if route is None or len(values) != route.arity:
                executor._reject_emit(routes, stream, values)
            if tup_id is not None:
                raise EmitError(f"bolt {component!r}: tup_id is for spouts; bolts anchor with anchors=[...]")
            if direct_task is None and route.pick is not None:
                targets = route.pick()
            else:
                if direct_task is None and route.fast is not None:
                    targets = route.fast(values)
                else:
                    targets = route.targets(values, direct_task)
                route.transferred += len(targets)
            route.emitted += 1
            name = route.stream
            if tracking:
                if anchors is None:
                    # The common case: anchored on the tuple being processed, which carries
                    # one root (a chain): one edge per target, no lists built.
                    current = executor.current
                    if not auto_anchor or current is None or not current.roots:
                        if current is None and auto_anchor and executor.in_run:
                            executor.reject_unanchored()
                        anchored = ()
                    else:
                        roots_in = current.roots
                        if len(roots_in) == 1:
                            (root,) = roots_in
                            fields = route.fields
                            if targets is route.only:  # one target task, always: no loop
                                t = targets[0]
                                edge = getrandbits(64)
                                ack_val = current.ack_val
                                current.ack_val = ack_val ^ edge if ack_val else edge
                                tup = new_tuple(Tuple)  # as below
                                tup.component = component
                                tup.stream = name
                                tup.task = task
                                tup.values = values
                                tup.fields = fields
                                tup.roots = {root: edge}
                                tup.ack_val = 0
                                tup.done = False
                                sinks[t]((t, tup))
                                return targets
                            for t in targets:
                                edge = getrandbits(64)
                                # A 64-bit XOR allocates an int: skipped while the value is 0
                                ack_val = current.ack_val
                                current.ack_val = ack_val ^ edge if ack_val else edge
                                # Tuple(component, name, task, values, fields, {root: edge})
                                # without the __init__ frame (see SpoutExecutor's emit).
                                tup = new_tuple(Tuple)
                                tup.component = component
                                tup.stream = name
                                tup.task = task
                                tup.values = values
                                tup.fields = fields
                                tup.roots = {root: edge}
                                tup.ack_val = 0
                                tup.done = False
                                sinks[t]((t, tup))
                            return targets
                        anchored = (current,)
                elif isinstance(anchors, Tuple):
                    anchored = (anchors,) if anchors.roots else ()
                else:
                    anchored = [a for a in anchors if a.roots]
                if anchored:
                    fields = route.fields
                    for t in targets:
                        edge = getrandbits(64)
                        roots: dict[int, int] = {}
                        for a in anchored:
                            for r in a.roots:
                                roots[r] = roots.get(r, 0) ^ edge
                            a.ack_val ^= edge
                        sinks[t]((t, Tuple(component, name, task, values, fields, roots)))
                    return targets
            # Tuple(component, name, task, values, route.fields), inlined as above.
            tup = new_tuple(Tuple)
            tup.component = component
            tup.stream = name
            tup.task = task
            tup.values = values
            tup.fields = route.fields
            tup.roots = None
            tup.ack_val = 0
            tup.done = False
            if targets is route.only:  # one target task, always (see Route.only): no loop
                t = targets[0]
                sinks[t]((t, tup))
                return targets
            for t in targets:
                sinks[t]((t, tup))
            return targets

        return emit

    def _make_emit_many(
        self, task: int, routes: dict[str, Route], emit: Callable[..., list[int]]
    ) -> Callable[..., list[list[int]]]:
        return make_bolt_emit_many(self, task, routes, emit)

    def reject_unanchored(self) -> NoReturn:
        """Raise the EmitError for an emit without anchors inside ``process_many`` while
        acking is on and ``auto_anchor`` is set: anchoring it to nothing would drop the
        reliability the bolt asked for without a word."""
        raise EmitError(
            f"bolt {self.component!r}: an emit inside process_many has no current tuple to anchor to; "
            "pass anchors= (or emit_many(..., anchors_each=tups) to pair outputs with inputs), "
            "anchors=() to emit unanchored on purpose, or set auto_anchor = False"
        )

    def ack(self, tup: Tuple) -> None:
        if tup.done or not tup.roots:
            return
        tup.done = True
        self.stats.acked += 1
        out = self.acks_out
        n = len(out)
        ack_val = tup.ack_val
        for root, edge in tup.roots.items():
            pairs = out[root % n]
            pairs.append(root)
            pairs.append(edge ^ ack_val)
        if not self.draining:
            self.send_acks()

    def fail(self, tup: Tuple) -> None:
        if tup.done or not tup.roots:
            return
        tup.done = True
        self.stats.failed += 1
        out = self.fails_out
        n = len(out)
        for root in tup.roots:
            out[root % n].append(root)
        if not self.draining:
            self.send_acks()

    def send_acks(self) -> None:
        """Send the acks and fails gathered for each acker as one message: the single form
        for one, ``ACK_BULK`` for several. ``sent_control`` counts them one per root, as the
        single messages were counted. Each message gets lists of its own (a remote sink
        keeps the item as it is until its batch is sent)."""
        acks_out = self.acks_out
        fails_out = self.fails_out
        ackers = self.wiring.acker_tasks
        for i, pairs in enumerate(acks_out):
            fails = fails_out[i]
            if not pairs and not fails:
                continue
            acks_out[i] = []
            fails_out[i] = []
            count = (len(pairs) >> 1) + len(fails)
            a = ackers[i]
            self.stats.sent_control[a] += count
            if count == 1:
                msg: tuple = (ACK_ACK, pairs[0], pairs[1]) if pairs else (ACK_FAIL, fails[0])
            else:
                msg = (ACK_BULK, pairs, fails)
            self.wiring.sinks[a]((a, msg))

    def drain(self, limit: int) -> int:
        """Process up to ``limit`` queued tuples; return how many. Items queued while it
        runs (a bolt that emits to itself) wait for the next call."""
        inbox = self.inbox
        if not inbox:
            return 0
        clock, meter = self.wiring.round_clock, self.wiring.transfer_meter
        transfer_before = meter.cpu_s
        started = clock.start()
        if type(inbox) is RunInbox:
            # n: tuples, a run from another worker as its rows
            items, n = take_runs(inbox, limit, not self.processes_runs)
        else:
            items = take_batch(inbox, limit)
            n = len(items)
        self.draining = True  # acks and fails gathered, sent once at the end
        try:
            if self.processes_runs:
                drain_runs(self, items, n > len(items))
            elif self.auto_ack and self.tracking:
                self._drain_acking(items)
            elif n > len(items):  # a run queued whole: acking off, a RunInbox
                self._drain_rows(items)
            else:
                self._drain_plain(items)
        finally:
            self.current = None
            self.in_run = False
            self.draining = False
            self.add_route_counts()
            self.send_acks()
        self.stats.executed += n
        clock.charge(self.stats, started, meter.cpu_s - transfer_before)
        return n

    def _drain_plain(self, items: list) -> None:
        """The loop without auto-ack: each tuple is processed; ``current`` is kept only when
        acking is on (an explicit ``ack`` needs no ``current``, auto-anchoring does)."""
        instances = self.instances
        keep_current = self.tracking
        # received_from by runs of one source task (see ``_drain_acking``)
        source = 0  # any value: the first item's run starts at 1 whatever its task
        run = 0
        item = None
        try:
            for item in items:
                task, tup = item
                if tup.stream == TICK_STREAM:
                    self._tick(task, tup)
                    continue
                if tup.task == source:
                    run += 1
                else:
                    if run:
                        self.stats.received_from[source] += run
                    source = tup.task
                    run = 1
                if keep_current:
                    self.current = tup
                try:
                    instances[task].process(tup)
                except Exception as exc:  # a user bug fails its tuple, never the executor
                    self.log_error_once(task, exc, "process")
                    if self.auto_fail:
                        self.fail(tup)
        except BaseException:
            requeue_rest(self.inbox, items, item)
            raise
        finally:
            if run:
                self.stats.received_from[source] += run

    def _drain_rows(self, items: list) -> None:
        """``_drain_plain`` for a batch that holds ``(task, Rows)`` items (acking off: only a
        ``RunInbox`` takes them, and a per-tuple bolt has one only then). A run's rows reach
        ``process`` one by one, in order, each as an untracked ``Tuple`` with every slot set
        as the emits set them; the ``Tuple`` is reused for the next row when nothing but
        this loop refers to it after ``process`` returns (told by its reference count, as
        ``runs.drain_runs`` tells it: a tuple the bolt kept, in any container, attribute or
        a logged error's traceback, is never touched again), so a run costs one ``Tuple``,
        not one per row, and no inbox item per row. Interrupted (not a user error), the rows
        not handed over go back to the front of the inbox, then the items after, in order."""
        instances = self.instances
        received_from = self.stats.received_from
        auto_fail = self.auto_fail
        source = 0  # received_from by runs of one source task, as in ``_drain_plain``
        run = 0
        item = None
        spare = None  # a Tuple of an earlier row nothing refers to any more
        rows: list = []
        component = stream = ""
        fields: dict[str, int] = {}
        done = 0  # rows of the current Rows item handed to ``process``
        try:
            for item in items:
                task, tup = item
                if type(tup) is Rows:
                    if run:
                        received_from[source] += run
                        run = 0
                    rows = tup.rows
                    done = 0
                    source = tup.task
                    component, stream, fields = tup.component, tup.stream, tup.fields
                    process = instances[task].process
                    if spare is None:
                        spare = new_tuple(Tuple)
                        self.run_tuples_made += 1
                    tup = spare
                    spare = None
                    for values in rows:
                        # every slot, each time: ``process`` may have set any of them
                        tup.component = component
                        tup.stream = stream
                        tup.task = source
                        tup.values = values
                        tup.fields = fields
                        tup.roots = None
                        tup.ack_val = 0
                        tup.done = False
                        done += 1
                        try:
                            process(tup)
                        except Exception as exc:  # a user bug fails its tuple, never the executor
                            self.log_error_once(task, exc, "process")
                            if auto_fail:
                                self.fail(tup)  # untracked: counted nowhere, as in the plain loop
                        if getrefcount(tup) != LOCAL_REFCOUNT:  # kept by the bolt: a new one for the next row
                            tup = new_tuple(Tuple)
                            self.run_tuples_made += 1
                    spare = tup
                    received_from[source] += done
                    done = 0
                    rows = []  # handed over whole: nothing of it to put back
                    continue
                if tup.stream == TICK_STREAM:
                    self._tick(task, tup)
                    continue
                if tup.task == source:
                    run += 1
                else:
                    if run:
                        received_from[source] += run
                    source = tup.task
                    run = 1
                try:
                    instances[task].process(tup)
                except Exception as exc:  # a user bug fails its tuple, never the executor
                    self.log_error_once(task, exc, "process")
                    if auto_fail:
                        self.fail(tup)
        except BaseException:
            if done:
                received_from[source] += done
            # the items after the one in progress (found by identity: items are distinct)
            rest = items[next(i for i, it in enumerate(items) if it is item) + 1 :] if item is not None else items[:]
            if item is not None and type(item[1]) is Rows and done < len(rows):
                # stopped inside a run: its rows not handed to ``process`` go back first
                rest.insert(0, (item[0], Rows(component, stream, source, rows[done:], fields)))
            requeue_runs(self.inbox, rest)  # type: ignore[arg-type]  # Rows: a RunInbox
            raise
        finally:
            if run:
                received_from[source] += run

    def _drain_acking(self, items: list) -> None:
        """The loop with auto-ack, the ack inlined: per tuple its (root, xor) pairs join its
        ackers' lists (``acks_out``, sent by ``send_acks`` at the end of the drain), without
        a method call; ``acked`` is added once per batch."""
        instances = self.instances
        acks_out = self.acks_out
        n_ackers = len(acks_out)
        # One acker (the common case): its list taken once, no ``root % n`` per root (a
        # division of a multi-digit int). The list is replaced only by ``send_acks``, which
        # does not run while ``draining`` is set.
        only = acks_out[0] if n_ackers == 1 else None
        acked = 0
        # received_from is counted by runs of tuples from one source task, added once per
        # run: an inbox holds runs (a spout task emits a batch, a frame carries one
        # worker's tuples), and a compare costs a fraction of a defaultdict update.
        source = 0  # any value: the first item's run starts at 1 whatever its task
        run = 0
        item = None
        try:
            for item in items:
                task, tup = item
                if tup.stream == TICK_STREAM:
                    self._tick(task, tup)
                    continue
                if tup.task == source:
                    run += 1
                else:
                    if run:
                        self.stats.received_from[source] += run
                    source = tup.task
                    run = 1
                self.current = tup
                try:
                    instances[task].process(tup)
                except Exception as exc:  # a user bug fails its tuple, never the executor
                    self.log_error_once(task, exc, "process")
                    if self.auto_fail:
                        self.fail(tup)
                    continue
                if tup.done:
                    continue
                roots = tup.roots
                if roots:
                    tup.done = True
                    acked += 1
                    ack_val = tup.ack_val
                    if only is not None:
                        for root in roots:  # keys and a lookup: fewer instructions than items()
                            only.append(root)
                            # a sink's tuples anchor nothing: no XOR (a 64-bit one allocates)
                            only.append(roots[root] ^ ack_val if ack_val else roots[root])
                        continue
                    for root, edge in roots.items():
                        pairs = acks_out[root % n_ackers]
                        pairs.append(root)
                        pairs.append(edge ^ ack_val)
        except BaseException:
            requeue_rest(self.inbox, items, item)
            raise
        finally:
            stats = self.stats
            if run:
                stats.received_from[source] += run
            stats.acked += acked

    def _tick(self, task: int, tup: Tuple) -> None:
        try:
            self.instances[task].process_tick(tup)
        except Exception as exc:  # a user bug must not stop the executor
            self.log_error_once(task, exc, "process_tick")
