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
from squall.supervisor.runtime.emit_many import make_spout_emit_many
from squall.supervisor.runtime.executor import Executor, new_tuple
from squall.supervisor.runtime.layout import Rows
from squall.supervisor.runtime.messages import ACK_INIT, ACK_INIT_BULK, TREE_COMPLETE, TREE_FAILED, TREES_DONE
from squall.supervisor.runtime.routing import Route
from squall.supervisor.runtime.stats import LATENCY_BOUNDS_S
from squall.topology.component import Spout, Tuple
from squall.topology.errors import EmitError
from squall.topology.spec import DEFAULT_STREAM, ExecutorKind, ExecutorSpec

if TYPE_CHECKING:
    from squall.supervisor.runtime.engine import Wiring

# A spout that cannot say when it next has a tuple is asked again after this long when it
# emitted nothing (Storm's default spout wait strategy sleeps 1 ms).
SPOUT_WAIT_S = 0.001

_INF = float("inf")


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
        # Trees started since they were last announced, per task and acker (by index in
        # ``acker_tasks``): [root, xor, root, xor, ...]. ``send_inits`` announces them at the
        # end of every step (and of every other call into user code) as one message per
        # task and acker; an emit appends two ints instead of sending a message.
        self.inits_out: dict[int, list[list[int]]] = {t: [[] for _ in wiring.acker_tasks] for t in spec.tasks}
        super().__init__(spec, cls, wiring, salt)

    def add_route_counts(self) -> None:
        """The routes' counts (``Executor.add_route_counts``), and the trees started since
        the last call announced to their ackers (``send_inits``); called at the end of every
        ``step`` and every other call into user code, so nothing waits past a round."""
        super().add_route_counts()
        self.send_inits()

    def send_inits(self) -> None:
        """One message per task and acker for the trees started since the last call: the
        single ``ACK_INIT`` for one, ``ACK_INIT_BULK`` for several; counted in
        ``sent_control`` per tree, as the single messages were. Each message gets a list of
        its own (a remote sink keeps the item as it is until its batch is sent)."""
        ackers = self.wiring.acker_tasks
        sinks = self.wiring.sinks
        sent_control = self.stats.sent_control
        for task, per_acker in self.inits_out.items():
            for i, pairs in enumerate(per_acker):
                if not pairs:
                    continue
                per_acker[i] = []
                a = ackers[i]
                sent_control[a] += len(pairs) >> 1
                if len(pairs) == 2:
                    sinks[a]((a, (ACK_INIT, pairs[0], pairs[1], task)))
                else:
                    sinks[a]((a, (ACK_INIT_BULK, task, pairs)))

    def _make_emit(self, task: int, routes: dict[str, Route]) -> Callable[..., list[int]]:
        default = routes.get(DEFAULT_STREAM)
        sinks = self.wiring.sinks
        component = self.component
        tracking = self.tracking
        getrandbits = self._getrandbits
        pending = self.pending
        pending_by_task = self.pending_by_task
        untracked_acks = self.untracked_acks
        clock = self.wiring.clock
        inits = self.inits_out[task]  # per acker; its lists are replaced as they are sent
        n_ackers = len(inits)
        choice = self.wiring.acker_choice  # read per tree: executors move in and out
        remap = choice.remap  # updated in place
        # task -> the transfer layer's row sink, for the tasks of other workers (the engine
        # keeps it as executors move); each stream's head names this task's runs there, and
        # only a route with one target task (``Route.only``) uses it: one head per target
        row_sinks = self.wiring.row_sinks
        remote = self.wiring.remote  # only an engine with other workers has row sinks
        heads = {r.stream: Rows(component, r.stream, task, [], r.fields) for r in routes.values()}
        executor = self

        # tup_id second, as in streamparse and heronpy; need_task_ids is accepted for them
        # (the task ids are always returned).
        def emit(_inst, values, tup_id=None, stream=None, direct_task=None, need_task_ids=False, anchors=None):
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
                    if choice.moves:  # a root that maps to an acker in this worker
                        root = getrandbits(63)
                        i = root % n_ackers
                        root += remap[i] - i
                    else:
                        root = getrandbits(64)
                    fields = route.fields
                    if targets is route.only:  # one target task, always (see Route.only): no loop
                        t = targets[0]
                        # The tree's one edge, its init value: the root id itself, random
                        # and drawn for this tree alone like any edge (one draw, not two:
                        # about 600 instructions), unless it was moved to a local acker's
                        # index (then its low bits are not random).
                        edge = getrandbits(64) if choice.moves else root
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
                        pending[root] = (task, tup_id, clock())
                        pending_by_task[task] += 1
                        pairs = inits[root % n_ackers] if n_ackers > 1 else inits[0]
                        pairs.append(root)
                        pairs.append(edge)
                        return targets
                    xor = 0
                    for t in targets:
                        edge = getrandbits(64)
                        xor = xor ^ edge if xor else edge  # a 64-bit XOR allocates: not with 0
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
                        # one acker (the common case): no ``root % n``, a multi-digit division
                        pairs = inits[root % n_ackers] if n_ackers > 1 else inits[0]
                        pairs.append(root)
                        pairs.append(xor)
                    else:  # nobody subscribed: the tree is complete at once (Storm does the same)
                        executor.inbox.append((task, (TREE_COMPLETE, root)))
                    return targets
                # Acking off: Storm acks at once, after next_tuple returns.
                untracked_acks.append((task, tup_id))
            if targets is route.only:  # one target task, always (see Route.only): no loop
                t = targets[0]
                # ``remote``, a bool fixed when the engine is built: in one process the check
                # is one jump (a dict's truth test is a C call, ``PyObject_IsTrue``)
                if remote:
                    put_row = row_sinks.get(t)
                    if put_row is not None:
                        # a task of another worker: the values join the run the frame carries
                        # them in (``Outbox.put_row``), no Tuple built only to be taken apart
                        put_row(t, values, heads[name])
                        return targets
                tup = new_tuple(Tuple)  # as below
                tup.component = component
                tup.stream = name
                tup.task = task
                tup.values = values
                tup.fields = route.fields
                tup.roots = None
                tup.ack_val = 0
                tup.done = False
                sinks[t]((t, tup))
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
            for t in targets:
                sinks[t]((t, tup))
            return targets

        return emit

    def _make_emit_many(
        self, task: int, routes: dict[str, Route], emit: Callable[..., list[int]]
    ) -> Callable[..., list[list[int]]]:
        return make_spout_emit_many(self, task, routes)

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
        clock, meter = self.wiring.round_clock, self.wiring.transfer_meter
        transfer_before = meter.cpu_s
        started = clock.start()
        n = self._deliver_outcomes()
        if self.active and allow_emit:
            n += self._next_tuples()
        self.add_route_counts()
        clock.charge(self.stats, started, meter.cpu_s - transfer_before)
        return n

    def _next_tuples(self) -> int:
        """Return the tuples emitted. Call each task's next_tuple until its calls emitted ``squall.spout.batch`` tuples
        (so at most that many calls), stopping a task at its first call that emits nothing,
        raises, or leaves it at ``max_pending``. Counting tuples, not calls, keeps a round of
        a spout that emits runs (``emit_many``) about as long as a per-tuple spout's, so what
        a round leaves in flight stays small, and in the CPU's caches; the emit count
        replaces the loop counter, so a per-tuple spout pays nothing for it."""
        n = 0
        max_pending = self.max_pending
        pending_by_task = self.pending_by_task
        # Only a tracked emit adds to pending_by_task, so without acking the bound is
        # checked once per task, not after every call.
        watched = max_pending if self.tracking else None
        batch = self.batch
        for task, inst in self.instances.items():
            if max_pending is not None and pending_by_task[task] >= max_pending:
                continue
            next_tuple = inst.next_tuple
            start = self.emit_count
            stop = start + batch
            while True:
                before = self.emit_count
                try:
                    next_tuple()
                except Exception as exc:  # a user bug in next_tuple must not stop the spout
                    self.log_error_once(task, exc, "next_tuple")
                    break
                count = self.emit_count
                if count == before or count >= stop:
                    break  # nothing to emit now (let the others run), or a batch emitted
                if watched is not None and pending_by_task[task] >= watched:
                    break
            n += self.emit_count - start
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
        """Call ``ack``/``fail`` for every tree outcome queued (single or ``TREES_DONE``, in
        order); counters updated once. A bulk interrupted by an exception that is not a
        user error (those are caught per callback) is not queued again: its trees not
        reached stay pending and time out."""
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
        # The bucket of the latency before and its bounds: the next latency in (lo, hi] is in
        # the same bucket (what ``bisect_left`` gives), found by two float compares instead
        # of a bisection (about 500 instructions by rich compares of floats).
        bounds = LATENCY_BOUNDS_S
        n_bounds = len(bounds)
        bucket = n_bounds
        lo = bounds[-1]
        hi = _INF
        only_task = -1
        only_ack = None
        if len(instances) == 1:
            ((only_task, only),) = instances.items()
            only_ack = only.ack
        item = None
        try:
            for item in items:
                msg = item[1]
                kind = msg[0]
                if kind == TREES_DONE:
                    completed, failed_roots = msg[1], msg[2]
                elif kind == TREE_COMPLETE:
                    completed, failed_roots = (msg[1],), ()
                elif kind == TREE_FAILED:
                    completed, failed_roots = (), (msg[1],)
                else:
                    continue
                if only_ack is not None:
                    # One task (the common case): its callback bound once, its pending count
                    # taken down once per message.
                    done = 0
                    # Trees one emit_many started share their emission instant (one float
                    # object): their latency and its bucket are computed once per instant,
                    # and the bucket and the latency sum updated once per instant too.
                    emitted_at = None
                    latency = 0.0
                    same = 0  # trees of the current instant after its first, not yet counted
                    try:
                        for root in completed:
                            entry = pending_pop(root, None)
                            if entry is None:
                                continue  # already timed out and failed
                            done += 1
                            if entry[2] is not emitted_at:
                                if same:
                                    buckets[bucket] += same
                                    latency_sum += latency * same
                                    same = 0
                                emitted_at = entry[2]
                                latency = now - emitted_at
                                if not lo < latency <= hi:
                                    bucket = bisect_left(bounds, latency)
                                    lo = bounds[bucket - 1] if bucket else -_INF
                                    hi = bounds[bucket] if bucket < n_bounds else _INF
                                buckets[bucket] += 1
                                latency_sum += latency
                            else:
                                same += 1
                            latencies(latency)
                            try:
                                only_ack(entry[1])
                            except Exception as exc:  # a user bug in a callback must not stop the spout
                                self.log_error_once(entry[0], exc, "ack")
                    finally:
                        if same:
                            buckets[bucket] += same
                            latency_sum += latency * same
                        pending_by_task[only_task] -= done
                        n += done
                        acked += done
                    completed = ()
                for root in completed:
                    entry = pending_pop(root, None)
                    if entry is None:
                        continue  # already timed out and failed
                    task, tup_id, emitted_at = entry
                    pending_by_task[task] -= 1
                    n += 1
                    acked += 1
                    latency = now - emitted_at
                    latency_sum += latency
                    latencies(latency)
                    buckets[bisect_left(LATENCY_BOUNDS_S, latency)] += 1
                    try:
                        instances[task].ack(tup_id)
                    except Exception as exc:  # a user bug in a callback must not stop the spout
                        self.log_error_once(task, exc, "ack")
                for root in failed_roots:
                    entry = pending_pop(root, None)
                    if entry is None:
                        continue  # already timed out and failed
                    task, tup_id, _ = entry
                    pending_by_task[task] -= 1
                    n += 1
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
