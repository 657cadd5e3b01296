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
"""

from __future__ import annotations

from collections import Counter, deque
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING

from squall.topology.component import TICK_SOURCE_TASK, TICK_STREAM, Tuple

if TYPE_CHECKING:
    from squall.supervisor.runtime.executor import BoltExecutor

_source_of = attrgetter("task")
_tuple_of = itemgetter(1)  # of an inbox item (target task, tuple)


def drain_runs(executor: BoltExecutor, items: list) -> None:
    """Hand ``items`` (``(task, tuple)`` inbox items) to the tasks' ``process_many`` by runs."""
    received_from = executor.stats.received_from
    if len(executor.instances) == 1:
        # The common case, one task: the batch is one run unless it holds a tick (ticks are
        # the only tuples from TICK_SOURCE_TASK). Built and counted by C-level passes.
        # One source task (a chain): a set of sources and one count, about 330 instructions
        # per tuple fewer than a listcomp and a Counter; several: a Counter, as before.
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
            return
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
