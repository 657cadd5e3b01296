"""The spout executor: asks its spouts for tuples, starts their trees, and calls back
``ack``/``fail`` once each tree completes, fails or times out.

Guarantees, beside those of ``executor.Executor``:

* with ``topology.max.spout.pending`` set, a task is not asked for a tuple while that many of
  its trees are in flight;
* a tree's root is acked or failed exactly once: a tree that outlives the message timeout is
  failed, and a late outcome for it is ignored;
* a task that cannot say when it next has a tuple is asked again after ``SPOUT_WAIT_S``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from squall import config
from squall.supervisor.runtime.batches import requeue_rest, take_batch
from squall.supervisor.runtime.executor import Executor, new_tuple
from squall.supervisor.runtime.messages import ACK_INIT, TREE_COMPLETE, TREE_FAILED
from squall.supervisor.runtime.stats import LATENCY_BOUNDS_S, BusyTimer
from squall.topology.component import Spout, Tuple
from squall.topology.errors import EmitError
from squall.topology.spec import DEFAULT_STREAM, ExecutorKind, ExecutorSpec

if TYPE_CHECKING:
    from squall.supervisor.runtime.engine import Wiring

# A spout that cannot say when it next has a tuple is asked again after this long when it
# emitted nothing (Storm's default spout wait strategy sleeps 1 ms).
SPOUT_WAIT_S = 0.001


class SpoutExecutor(Executor):
    kind = ExecutorKind.SPOUT

    def __init__(self, spec: ExecutorSpec, cls: type[Spout], wiring: Wiring, salt: int = 0) -> None:
        # root id -> (task, tup_id, emitted_at); insertion order is emission order, which
        # makes timeout scans stop at the first young entry.
        self.pending: dict[int, tuple[int, Any, float]] = {}
        self.pending_by_task: dict[int, int] = {t: 0 for t in spec.tasks}
        self.untracked_acks: list[tuple[int, Any]] = []
        self.active = False
        self.emit_count = 0
        conf = wiring.component_config(spec.component)
        self.max_pending = conf.get(config.MAX_SPOUT_PENDING)
        self.batch = int(conf.get(config.SPOUT_BATCH, config.DEFAULT_SPOUT_BATCH))
        # ACK_INITs sent per acker (by index in ``acker_tasks``) since ``add_route_counts``
        # last moved them into ``stats.sent_control``: a list item increment per tracked emit
        # instead of a defaultdict update.
        self.inits_sent = [0] * len(wiring.acker_tasks)
        super().__init__(spec, cls, wiring, salt)

    def add_route_counts(self) -> None:
        """The routes' counts (``Executor.add_route_counts``) and the ACK_INITs counted per
        acker, into ``stats``; called at the same points, so ``sent_control`` is exact
        between rounds too."""
        super().add_route_counts()
        inits = self.inits_sent
        if any(inits):
            sent_control = self.stats.sent_control
            for i, count in enumerate(inits):
                if count:
                    sent_control[self.wiring.acker_tasks[i]] += count
                    inits[i] = 0

    def _make_emit(self, task: int) -> Callable[..., list[int]]:
        routes = self._routes_of(task)
        default = routes.get(DEFAULT_STREAM)
        sinks = self.wiring.sinks
        component = self.component
        tracking = self.tracking
        getrandbits = self._getrandbits
        pending = self.pending
        pending_by_task = self.pending_by_task
        untracked_acks = self.untracked_acks
        clock = self.wiring.clock
        acker_tasks = self.wiring.acker_tasks
        n_ackers = len(acker_tasks)
        inits_sent = self.inits_sent
        executor = self

        # tup_id second, as in streamparse and heronpy; need_task_ids is accepted for them
        # (the task ids are always returned).
        def emit(values, tup_id=None, stream=None, direct_task=None, need_task_ids=False, anchors=None):
            route = default if stream is None else routes.get(stream)
            if route is None or len(values) != route.arity:
                executor._reject_emit(routes, stream, values)
            if anchors is not None:
                raise EmitError(f"spout {component!r}: anchors are for bolts; spouts pass tup_id=")
            if direct_task is None and route.pick is not None:
                targets = route.pick()
            else:
                if direct_task is None and route.fast is not None:
                    targets = route.fast(values)
                else:
                    targets = route.targets(values, direct_task)
                route.transferred += len(targets)
            route.emitted += 1
            executor.emit_count += 1
            name = route.stream
            if tup_id is not None:
                if tracking:
                    root = getrandbits(64)
                    xor = 0
                    fields = route.fields
                    for t in targets:
                        edge = getrandbits(64)
                        xor ^= edge
                        # Tuple(component, name, task, values, fields, {root: edge}) without
                        # the __init__ frame: every slot of Tuple is set here.
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
                    pending[root] = (task, tup_id, clock())
                    pending_by_task[task] += 1
                    if targets:
                        i = root % n_ackers
                        inits_sent[i] += 1
                        a = acker_tasks[i]
                        sinks[a]((a, (ACK_INIT, root, xor, task)))
                    else:  # nobody subscribed: the tree is complete at once (Storm does the same)
                        executor.inbox.append((task, (TREE_COMPLETE, root)))
                    return targets
                # Acking off: Storm acks at once, after next_tuple returns.
                untracked_acks.append((task, tup_id))
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
            for t in targets:
                sinks[t]((t, tup))
            return targets

        return emit

    def activate(self) -> None:
        if not self.active:
            self.active = True
            for task, inst in self.instances.items():
                self._call(task, inst.activate, "activate")
            self.add_route_counts()

    def deactivate(self) -> None:
        if self.active:
            self.active = False
            for task, inst in self.instances.items():
                self._call(task, inst.deactivate, "deactivate")
            self.add_route_counts()

    def _call(self, task: int, fn: Callable[..., Any], what: str, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # a user bug in a callback must not stop the spout
            self.log_error_once(task, exc, what)

    def step(self, allow_emit: bool = True) -> int:
        """Deliver tree outcomes to the spout, then call next_tuple up to a batch per task."""
        busy = BusyTimer(self.wiring.transfer_meter)
        n = self._deliver_outcomes()
        if self.active and allow_emit:
            n += self._next_tuples()
        self.add_route_counts()
        self.stats.busy_s += busy.busy_s()
        return n

    def _next_tuples(self) -> int:
        """Call each task's next_tuple up to ``squall.spout.batch`` times, stopping a task at
        its first call that emits nothing, raises, or leaves it at ``max_pending``."""
        n = 0
        max_pending = self.max_pending
        pending_by_task = self.pending_by_task
        # Only a tracked emit adds to pending_by_task, so without acking the bound is
        # checked once per task, not after every call.
        watched = max_pending if self.tracking else None
        batch = range(self.batch)
        for task, inst in self.instances.items():
            if max_pending is not None and pending_by_task[task] >= max_pending:
                continue
            next_tuple = inst.next_tuple
            for _ in batch:
                before = self.emit_count
                try:
                    next_tuple()
                except Exception as exc:  # a user bug in next_tuple must not stop the spout
                    self.log_error_once(task, exc, "next_tuple")
                    break
                if self.emit_count == before:
                    break  # nothing to emit now; let the others run
                n += 1
                if watched is not None and pending_by_task[task] >= watched:
                    break
            if self.untracked_acks:
                self._ack_untracked()
        return n

    def next_emission(self, now: float) -> float | None:
        """When ``step`` may next get a tuple from ``next_tuple``: the earliest of the tasks'
        ``next_tuple_due()`` (``now + SPOUT_WAIT_S`` for a task that cannot say). Tasks at
        ``topology.max.spout.pending`` are skipped (an ack frees them, and it arrives as an
        item); None when deactivated or every task waits for acks."""
        if not self.active:
            return None
        due: float | None = None
        max_pending = self.max_pending
        for task, inst in self.instances.items():
            if max_pending is not None and self.pending_by_task[task] >= max_pending:
                continue
            try:
                when = inst.next_tuple_due()
            except Exception as exc:  # a user bug costs a 1 ms wait, never the worker
                self.log_error_once(task, exc, "next_tuple_due")
                when = None
            if when.__class__ not in (float, int) or when != when:  # None, NaN or not a number
                when = now + SPOUT_WAIT_S
            if due is None or when < due:
                due = when
        return due

    def _ack_untracked(self) -> None:
        acks, self.untracked_acks[:] = list(self.untracked_acks), []
        for task, tup_id in acks:
            self.stats.acked += 1
            self._call(task, self.instances[task].ack, "ack", tup_id)

    def _deliver_outcomes(self) -> int:
        """Call ``ack``/``fail`` for every tree outcome queued; counters updated once."""
        inbox = self.inbox
        if not inbox:
            return 0
        n = 0
        acked = 0
        failed = 0
        now = self.wiring.clock()
        items = take_batch(inbox, len(inbox))  # outcomes queued by a callback: next step
        pending_pop = self.pending.pop
        pending_by_task = self.pending_by_task
        instances = self.instances
        stats = self.stats
        latencies = stats.latencies_s.append
        buckets = stats.latency_buckets
        latency_sum = 0.0
        item = None
        try:
            for item in items:
                kind, root = item[1]
                entry = pending_pop(root, None)
                if entry is None:
                    continue  # already timed out and failed
                task, tup_id, emitted_at = entry
                pending_by_task[task] -= 1
                n += 1
                if kind == TREE_COMPLETE:
                    acked += 1
                    latency = now - emitted_at
                    latency_sum += latency
                    latencies(latency)
                    buckets[bisect_left(LATENCY_BOUNDS_S, latency)] += 1
                    try:
                        instances[task].ack(tup_id)
                    except Exception as exc:  # a user bug in a callback must not stop the spout
                        self.log_error_once(task, exc, "ack")
                elif kind == TREE_FAILED:
                    failed += 1
                    self._call(task, instances[task].fail, "fail", tup_id)
        except BaseException:
            requeue_rest(inbox, items, item)
            raise
        finally:
            stats.acked += acked
            stats.failed += failed
            stats.latency_count += acked
            stats.latency_sum_s += latency_sum
        return n

    def expire(self, now: float, timeout_s: float) -> int:
        """Fail every pending tree older than ``timeout_s``; return how many."""
        cutoff = now - timeout_s
        expired = []
        for root, (_task, _tup_id, emitted_at) in self.pending.items():
            if emitted_at > cutoff:
                break
            expired.append(root)
        for root in expired:
            task, tup_id, _ = self.pending.pop(root)
            self.pending_by_task[task] -= 1
            self.stats.failed += 1
            self._call(task, self.instances[task].fail, "fail", tup_id)
        if expired:
            self.add_route_counts()  # a fail() callback may emit
        return len(expired)
