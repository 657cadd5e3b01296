"""A batch-aware bolt's drain: each task's run of an inbox batch goes to ``process_many``.

Guarantees (those of ``process``, for a whole run):

* a run is the tuples of one task in an inbox batch, in arrival order, cut by tick tuples:
  a tick reaches ``process_tick`` after every tuple queued before it and before any queued
  after it, as in the per-tuple loop; the runs between two ticks go task by task;
* after ``process_many`` returns, every input of the run not yet acked or failed is acked
  (``auto_ack``, acking on); if it raises, every such input is failed (``auto_fail``), the
  error is logged once per task and exception type, and the executor keeps running;
* while it runs there is no current tuple (``in_run``): an emit that relies on
  ``auto_anchor`` raises ``EmitError`` instead of emitting unanchored;
* ``received_from`` is counted per source task; a batch interrupted by an exception that is
  not a user error (those are caught per run) puts every item whose run did not reach user
  code back at the front of the inbox, in order, and those are not counted.

A batch-aware bolt's inbox is a ``RunInbox``: besides ``(task, Tuple)`` items it takes
``(task, Rows)`` items, the untracked rows of one source task and stream for one task, as a
frame from another worker carries them (``put_run``; the transfer codec hands a run over
whole, so the receiving worker builds neither an inbox item per tuple nor, until the
drain, a ``Tuple``). The inbox's length counts tuples, a ``Rows`` item as its rows, so
backpressure, the worker's intake bound and ``queued`` see what they saw with one item per
tuple, and a drain takes items up to ``limit`` tuples (``take_runs``).

The ``Tuple``s a drain builds from ``Rows`` are reused: after ``process_many`` returns, those
nothing else refers to (not the run's list, which the bolt may keep, nor any of them; told
by their reference counts, so a tuple the bolt kept, or a list of them, is never touched)
go to the inbox's ``pool`` (at most ``POOL_LIMIT``), and the next runs' Tuples are taken
from it before new ones are made: a Tuple's allocation and deallocation cost about 1,100
instructions, its reuse about 150.
"""

from __future__ import annotations

from collections import Counter, deque
from itertools import chain, compress, repeat
from operator import attrgetter, itemgetter
from sys import getrefcount
from typing import TYPE_CHECKING, Any

from squall.supervisor.runtime.batches import take_batch
from squall.supervisor.runtime.layout import Rows
from squall.topology.component import TICK_SOURCE_TASK, TICK_STREAM, Tuple

if TYPE_CHECKING:
    from squall.supervisor.runtime.executor import BoltExecutor

_source_of = attrgetter("task")
_tuple_of = itemgetter(1)  # of an inbox item (target task, tuple)
new_tuple = object.__new__  # a Tuple without its __init__ frame; every slot is set after
POOL_LIMIT = 4096  # spare Tuples a batch-aware bolt's inbox keeps for its next runs


def _sole_refcount() -> int:
    """What ``getrefcount`` gives, in ``_unshared``'s pipeline, for an object only the list
    it filters refers to: measured the same way, not assumed (the figure is an
    implementation detail of CPython's, and ``compress`` holds the item it is deciding on)."""
    seen: list[int] = []
    probe = [object()]
    for _ in compress(probe, map(seen.append, map(getrefcount, probe))):  # append gives None: keeps nothing
        pass
    return seen[0]


def _unshared(tups: list[Tuple]) -> Any:
    """The tuples of ``tups`` nothing but ``tups`` refers to, in order (an iterator)."""
    return compress(tups, map(_is_sole, map(getrefcount, tups)))


def _local_refcount() -> int:
    """What ``getrefcount(x)`` gives for an object only a local variable refers to."""
    probe: list = []
    return getrefcount(probe)


_SOLE = _sole_refcount()
_LOCAL = _local_refcount()
LOCAL_REFCOUNT = _LOCAL  # for the per-tuple drain of runs (``BoltExecutor._drain_rows``)
_is_sole = _SOLE.__eq__


class RunInbox(deque):
    """A batch-aware bolt's inbox: a deque of inbox items whose ``len`` counts tuples (a
    ``(task, Rows)`` item as its rows). ``extra`` is the rows beyond one per ``Rows`` item;
    only ``put_run`` and ``take_runs`` change it (a ``Rows`` item is never queued another
    way, and holds at least two rows: ``extra`` is 0 exactly when none is queued)."""

    def __init__(self) -> None:
        super().__init__()
        self.extra = 0
        self.pool: list[Tuple] = []  # Tuples of handled runs nothing refers to any more
        self.reused = 0  # Tuples taken from the pool, in all

    def __len__(self) -> int:
        return deque.__len__(self) + self.extra

    def put_run(self, task: int, run: Rows) -> None:
        """Queue the untracked rows of ``run`` for ``task`` as one item, after what is
        queued. The list is copied (the caller may reuse it); the values lists are not, as
        a ``Tuple`` keeps its ``values``."""
        n = len(run.rows)
        if n > 1:
            self.append((task, Rows(run.component, run.stream, run.task, list(run.rows), run.fields)))
            self.extra += n - 1
        elif n:  # a run of one is queued as its tuple: a Rows item always holds more
            self.append((task, run_tuples(run)[0]))


def take_runs(inbox: RunInbox, limit: int, split: bool = False) -> tuple[list, int]:
    """Items from the front of ``inbox``, removed from it, in order, up to ``limit`` tuples
    (a ``Rows`` item counted as its rows; the last item taken may pass the limit, so a run
    longer than the limit is still taken), and the tuples they hold: more than the items
    exactly when a ``Rows`` item was taken. With ``split`` (a per-tuple bolt's drain) the
    run that crosses the limit is cut there instead, its rest left at the front (as its
    ``Tuple`` when one row is left), so exactly ``limit`` tuples are taken when as many
    are queued."""
    if not inbox.extra:  # no run queued: one item per tuple
        items = take_batch(inbox, limit)
        return items, len(items)
    popleft = inbox.popleft
    items = []
    n = 0
    while n < limit and deque.__len__(inbox):
        item = popleft()
        items.append(item)
        if type(item[1]) is Rows:
            run = item[1]
            k = len(run.rows)
            inbox.extra -= k - 1
            if split and n + k > limit:
                m = limit - n
                task = item[0]
                taken = Rows(run.component, run.stream, run.task, run.rows[:m], run.fields)
                # a row taken alone as its Tuple: ``n > len(items)`` tells a drain that a Rows
                # item is among them
                items[-1] = (task, taken if m > 1 else run_tuples(taken)[0])
                requeue_runs(inbox, [(task, Rows(run.component, run.stream, run.task, run.rows[m:], run.fields))])
                k = m
            n += k
        else:
            n += 1
    return items, n


def requeue_runs(inbox: RunInbox, rest: list) -> None:
    """Put ``rest`` (items taken by ``take_runs``) back at the front of ``inbox``, in order,
    counting the rows of its ``Rows`` items again in ``extra`` (a run of one row goes back
    as its ``Tuple``: a ``Rows`` item holds two or more)."""
    back = []
    extra = 0
    for item in rest:
        if type(item[1]) is Rows:
            n = len(item[1].rows)
            if n == 1:
                item = (item[0], run_tuples(item[1])[0])
            elif n:
                extra += n - 1
            else:
                continue
        back.append(item)
    inbox.extendleft(reversed(back))
    inbox.extra += extra


def run_tuples(run: Rows, inbox: RunInbox | None = None) -> list[Tuple]:
    """The untracked ``Tuple``s of ``run``, in order, as the engine's emits build them; those
    of ``inbox``'s pool first (taken out of it, counted in its ``reused``; every slot is set
    again), then new ones."""
    component, stream, source, fields = run.component, run.stream, run.task, run.fields
    rows = run.rows
    made: Any = map(new_tuple, repeat(Tuple))  # as many as zip asks for: it stops with the rows
    if inbox is not None and inbox.pool:
        pool = inbox.pool
        k = min(len(rows), len(pool))
        reused = pool[-k:]
        del pool[-k:]
        inbox.reused += k
        made = chain(reused, made)
    tups: list[Tuple] = []
    append = tups.append
    for values, tup in zip(rows, made):
        tup.component = component
        tup.stream = stream
        tup.task = source
        tup.values = values
        tup.fields = fields
        tup.roots = None
        tup.ack_val = 0
        tup.done = False
        append(tup)
    return tups


def _expand(items: list) -> list:
    """``items`` with every ``(task, Rows)`` item as one ``(task, Tuple)`` item per row."""
    out: list = []
    for item in items:
        if type(item[1]) is Rows:
            task = item[0]
            out += [(task, tup) for tup in run_tuples(item[1])]
        else:
            out.append(item)
    return out


def drain_runs(executor: BoltExecutor, items: list, with_rows: bool = False) -> None:
    """Hand ``items`` (``(task, tuple)`` inbox items, and ``(task, Rows)`` ones when
    ``with_rows``) to the tasks' ``process_many`` by runs."""
    received_from = executor.stats.received_from
    if len(executor.instances) == 1:
        # The common case, one task: the batch is one run unless it holds a tick (ticks are
        # the only tuples from TICK_SOURCE_TASK). Built and counted by C-level passes, a
        # run from another worker (``Rows``) by one loop that builds its Tuples into the list.
        # One source task (a chain): a set of sources and one count, about 330 instructions
        # per tuple fewer than a listcomp and a Counter; several: a Counter, as before.
        if with_rows:
            inbox: RunInbox = executor.inbox  # type: ignore[assignment]  # with_rows: a RunInbox
            tups = []
            for item in items:
                if type(item[1]) is Rows:
                    tups += run_tuples(item[1], inbox)
                else:
                    tups.append(item[1])
        else:
            tups = list(map(_tuple_of, items))
        sources = set(map(_source_of, tups))
        if TICK_SOURCE_TASK not in sources:
            if len(sources) == 1:
                (source_task,) = sources
                received_from[source_task] += len(tups)
            else:
                for source_task, n in Counter(map(_source_of, tups)).items():
                    received_from[source_task] += n
            (task,) = executor.instances
            _process_run(executor, task, tups)
            if with_rows and getrefcount(tups) == _LOCAL and len(inbox.pool) < POOL_LIMIT:
                # The bolt kept neither the list nor (per tuple) a tuple: reuse them. A tuple
                # of a local item is still referred to by that item (never taken).
                inbox.pool += _unshared(tups)
            return
    if with_rows:
        items = _expand(items)  # several tasks, or a tick: the per-item loop below
    runs: dict[int, list[Tuple]] = {}
    handed: list[tuple[int, list[Tuple]]] = []  # what reached user code, for an interruption
    last_task = None
    last_run: list[Tuple] = []
    # received_from by runs of one source task, as in the per-tuple loops
    source = 0
    count = 0
    item = None
    try:
        for item in items:
            task, tup = item[0], item[1]
            if tup.stream == TICK_STREAM:
                _hand_runs(executor, runs, handed)
                runs = {}
                last_task = None
                handed.append((task, [tup]))
                executor._tick(task, tup)
                continue
            if tup.task == source:
                count += 1
            else:
                if count:
                    received_from[source] += count
                source = tup.task
                count = 1
            if task == last_task:
                last_run.append(tup)
                continue
            run = runs.get(task)
            if run is None:
                run = runs[task] = []
            run.append(tup)
            last_task = task
            last_run = run
        _hand_runs(executor, runs, handed)
    except BaseException:
        _requeue_unhanded(executor.inbox, items, handed, item, received_from)
        raise
    finally:
        if count:
            received_from[source] += count


def _hand_runs(executor: BoltExecutor, runs: dict[int, list[Tuple]], handed: list[tuple[int, list[Tuple]]]) -> None:
    for task, run in runs.items():
        handed.append((task, run))
        _process_run(executor, task, run)


def _process_run(executor: BoltExecutor, task: int, run: list[Tuple]) -> None:
    executor.in_run = True
    try:
        executor.instances[task].process_many(run)
    except Exception as exc:  # a user bug fails its run, never the executor
        executor.log_error_once(task, exc, "process_many")
        if executor.auto_fail:
            fail = executor.fail
            for tup in run:
                fail(tup)  # skips those already acked or failed, and untracked ones
        return
    finally:
        executor.in_run = False
    if executor.auto_ack and executor.tracking:
        _ack_run(executor, run)


def _ack_run(executor: BoltExecutor, run: list[Tuple]) -> None:
    """Ack every input of ``run`` not acked or failed yet: its (root, xor) pairs join its
    ackers' lists (sent once at the end of the drain), inlined as in the per-tuple loop;
    ``acked`` is added once per run."""
    acks_out = executor.acks_out
    n_ackers = len(acks_out)
    acked = 0
    if n_ackers == 1:
        # One acker (the common case): its list taken once, no ``root % n`` per root.
        only = acks_out[0]
        for tup in run:
            if tup.done:
                continue
            roots = tup.roots
            if roots:
                tup.done = True
                acked += 1
                ack_val = tup.ack_val
                for root in roots:  # keys and a lookup: fewer instructions than items()
                    only.append(root)
                    # a sink's tuples anchor nothing: no XOR (a 64-bit one allocates)
                    only.append(roots[root] ^ ack_val if ack_val else roots[root])
        executor.stats.acked += acked
        return
    for tup in run:
        if tup.done:
            continue
        roots = tup.roots
        if roots:
            tup.done = True
            acked += 1
            ack_val = tup.ack_val
            for root, edge in roots.items():
                pairs = acks_out[root % n_ackers]
                pairs.append(root)
                pairs.append(edge ^ ack_val)
    executor.stats.acked += acked


def _requeue_unhanded(
    inbox: deque,
    items: list,
    handed: list[tuple[int, list[Tuple]]],
    reached: object,
    received_from: dict[int, int],
) -> None:
    """Put back, in order, every item whose run (or tick) did not reach user code, and take
    back the ``received_from`` counts of those the loop had counted (up to ``reached``).
    Items are told apart by (task, tuple identity): one untracked tuple sent to two tasks
    of this executor is one object in two items."""
    done = {(task, id(tup)) for task, run in handed for tup in run}
    rest = []
    counted = reached is not None
    for item in items:
        if (item[0], id(item[1])) not in done:
            rest.append(item)
            if counted and item[1].stream != TICK_STREAM:
                received_from[item[1].task] -= 1
        if item is reached:
            counted = False
    inbox.extendleft(reversed(rest))
