"""``emit_many`` as one call for a list of tuples: what a batch-aware component emits with.

The executor binds these per task in place of the user API's loop over ``emit`` (only when
the class overrides neither ``emit`` nor ``emit_many``: an override must see every tuple).
Guarantees, the same as ``emit`` gives each tuple:

* every tuple of the list is checked (declared stream, number of values) before any is
  sent, and a bad one raises ``EmitError`` naming the component, stream and fields: a list
  is sent whole or, for those errors, not at all;
* targets are chosen per tuple exactly as ``emit`` chooses them (the same choosers, so a
  shuffle continues its cycle across emit and emit_many), direct tasks checked as there;
* a spout's ``emit_many(tuples, tup_ids)`` starts one tree per tuple with a ``tup_id``, each
  counted in ``topology.max.spout.pending``; a bolt's ``anchors_each[i]`` anchors
  ``tuples[i]``; ``anchors`` anchors every tuple to the same inputs, through ``emit``.

What it saves is the Python frame of ``emit`` per tuple (and the user's loop around it);
the ``Tuple`` and the inbox item per target remain for local targets. Untracked tuples whose
route picks one target each (shuffle, global) have their targets picked for the whole list
first and go target by target (``_emit_rows``): to a task of another worker as one ``Rows``
per target and call (``wiring.run_sinks``), so no ``Tuple`` is built on the sending side for
a tuple that leaves the worker; to a local batch-aware bolt's task the same way, to its
inbox (``runs.RunInbox``, which builds the Tuples when it drains and reuses them); to
another local task as one ``Tuple`` per row, without the
per-tuple target loop (measured cheaper in one process too: 10,390 -> 9,175 instructions
per tuple of the batch-aware chain, acking off, ``benchmarks/engine_instructions.py``).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from squall.supervisor.runtime.layout import Rows
from squall.supervisor.runtime.messages import TREE_COMPLETE
from squall.supervisor.runtime.routing import Route
from squall.topology.component import Tuple, check_anchors_each
from squall.topology.errors import EmitError
from squall.topology.spec import DEFAULT_STREAM

if TYPE_CHECKING:
    from squall.supervisor.runtime.executor import BoltExecutor
    from squall.supervisor.runtime.spout_executor import SpoutExecutor

# As in executor.py: a Tuple without the ``__init__`` frame; every slot is set right after.
new_tuple = object.__new__


def random_ids(getrandbits: Callable[[int], int], n: int) -> array:
    """``n`` random 64-bit ids from ``getrandbits`` in one call: iterated with the tuples
    they go to, they cost no call per id (measured about half of ``getrandbits(64)`` each)."""
    return array("Q", getrandbits(64 * n).to_bytes(8 * n, "little"))


def _check_arity(executor: Any, routes: dict[str, Route], route: Route, stream: str | None, tuples: Any) -> None:
    """Raise the EmitError of the first tuple whose value count is not the stream's: one
    pass in C over the lengths, a Python loop only to name the culprit."""
    arity = route.arity
    lengths = set(map(len, tuples))
    if lengths and lengths != {arity}:
        for values in tuples:
            if len(values) != arity:
                executor._reject_emit(routes, stream, values)


def _emit_rows(
    out: list[list[int]],
    pick: Callable[[], list[int]],
    tuples: Any,
    sinks: dict[int, Callable[[tuple[int, Any]], None]],
    run_sinks: dict[int, Callable[[int, Rows], None]],
    component: str,
    stream: str,
    task: int,
    fields: dict[str, int],
    only: list[int] | None,
) -> None:
    """The untracked emit of ``tuples`` through a route whose ``pick`` gives one target per
    tuple: each target's rows, in order, as one ``Rows`` to its run sink when it has one
    (another worker's task, a local batch-aware bolt's), else one ``Tuple`` per row to its
    inbox. ``out`` gets every tuple's
    targets first (so an interrupted list counts the tuples whose targets were chosen).
    ``only``: the route's one target task whatever the values (``Route.only``), or None."""
    groups: Any
    if only is not None:  # one target task whatever the values: no pick per tuple
        if not len(tuples):
            return
        out += [only] * len(tuples)
        groups = ((only[0], tuples),)
    else:
        out += [pick() for _ in tuples]
        if not out:
            return
        first = out[0]
        if out.count(first) == len(out):  # one target for the whole list (a chain): C-level
            groups = ((first[0], tuples),)
        else:
            by_target: dict[int, list] = {}
            for values, targets in zip(tuples, out):
                rows = by_target.get(targets[0])
                if rows is None:
                    by_target[targets[0]] = [values]
                else:
                    rows.append(values)
            groups = by_target.items()
    for t, rows in groups:
        run_sink = run_sinks.get(t)
        if run_sink is not None:
            run_sink(t, Rows(component, stream, task, rows, fields))  # it copies the list
            continue
        sink = sinks[t]
        for values in rows:
            tup = new_tuple(Tuple)
            tup.component = component
            tup.stream = stream
            tup.task = task
            tup.values = values
            tup.fields = fields
            tup.roots = None
            tup.ack_val = 0
            tup.done = False
            sink((t, tup))


def make_bolt_emit_many(
    executor: BoltExecutor, task: int, routes: dict[str, Route], emit: Callable[..., list[int]]
) -> Callable[..., list[list[int]]]:
    """Task ``task``'s ``emit_many``; ``emit`` is its per-tuple emit (same routes), used for
    one set of anchors for every tuple and for an anchor that is not a single-root tuple."""
    default = routes.get(DEFAULT_STREAM)
    sinks = executor.wiring.sinks
    run_sinks = executor.wiring.run_sinks
    component = executor.component
    tracking = executor.tracking
    getrandbits = executor._getrandbits

    def emit_many(tuples, stream=None, anchors=None, direct_task=None, need_task_ids=False, anchors_each=None):
        route = default if stream is None else routes.get(stream)
        if route is None:
            executor._reject_emit(routes, stream, ())
        if anchors_each is not None:
            check_anchors_each(component, tuples, anchors, anchors_each)
        _check_arity(executor, routes, route, stream, tuples)
        if tracking and anchors_each is None:
            # One set of anchors for every tuple (streamparse's emit_many), or the current
            # tuple: emit's own path (which refuses an unanchored emit inside process_many).
            return [emit(values, stream, anchors, direct_task) for values in tuples]
        fields = route.fields
        name = route.stream
        pick = route.pick if direct_task is None else None
        fast = route.fast if direct_task is None else None
        out: list[list[int]] = []
        append = out.append
        by_emit = 0  # tuples sent through ``emit``, which counts them on the route itself
        transferred = 0
        # One target task whatever the values (a shuffle or global to one task, the common
        # case in one process): its sink taken once for the list, no choice per tuple.
        only = route.only if pick is not None else None
        if only is not None:
            only_task = only[0]
            only_sink = sinks[only_task]
        try:
            if not tracking:
                if pick is not None and route.fanout == 1:
                    _emit_rows(out, pick, tuples, sinks, run_sinks, component, name, task, fields, only)
                    return out
                for values in tuples:
                    if pick is not None:
                        targets = pick()
                    else:
                        targets = fast(values) if fast is not None else route.targets(values, direct_task)
                        transferred += len(targets)
                    # Tuple(component, name, task, values, fields), inlined as in emit.
                    tup = new_tuple(Tuple)
                    tup.component = component
                    tup.stream = name
                    tup.task = task
                    tup.values = values
                    tup.fields = fields
                    tup.roots = None
                    tup.ack_val = 0
                    tup.done = False
                    for t in targets:
                        sinks[t]((t, tup))
                    append(targets)
                return out
            if pick is not None and route.fanout == 1:
                # One target per tuple (shuffle, global): the edge ids drawn in one call.
                edges = random_ids(getrandbits, len(tuples))
                if only is not None:  # one target task (a chain): no choice per tuple
                    for values, anchor, edge in zip(tuples, anchors_each, edges):
                        roots_in = anchor.roots if anchor.__class__ is Tuple else None
                        if not roots_in or len(roots_in) != 1:
                            by_emit += 1  # emit's general path, as below
                            append(emit(values, stream, anchor, direct_task))
                            continue
                        (root,) = roots_in
                        # A 64-bit XOR allocates an int: skipped while the value is 0
                        ack_val = anchor.ack_val
                        anchor.ack_val = ack_val ^ edge if ack_val else edge
                        tup = new_tuple(Tuple)
                        tup.component = component
                        tup.stream = name
                        tup.task = task
                        tup.values = values
                        tup.fields = fields
                        tup.roots = {root: edge}
                        tup.ack_val = 0
                        tup.done = False
                        only_sink((only_task, tup))
                        append(only)
                    return out
                for values, anchor, edge in zip(tuples, anchors_each, edges):
                    roots_in = anchor.roots if anchor.__class__ is Tuple else None
                    if not roots_in or len(roots_in) != 1:
                        by_emit += 1  # emit's general path, as below
                        append(emit(values, stream, anchor, direct_task))
                        continue
                    (root,) = roots_in
                    ack_val = anchor.ack_val
                    anchor.ack_val = ack_val ^ edge if ack_val else edge
                    tup = new_tuple(Tuple)
                    tup.component = component
                    tup.stream = name
                    tup.task = task
                    tup.values = values
                    tup.fields = fields
                    tup.roots = {root: edge}
                    tup.ack_val = 0
                    tup.done = False
                    targets = pick()
                    t = targets[0]
                    sinks[t]((t, tup))
                    append(targets)
                return out
            for values, anchor in zip(tuples, anchors_each):
                roots_in = anchor.roots if anchor.__class__ is Tuple else None
                if not roots_in or len(roots_in) != 1:
                    # Several anchors, several roots, or an untracked input: emit's general
                    # path, which counts on the route itself.
                    by_emit += 1
                    append(emit(values, stream, anchor, direct_task))
                    continue
                (root,) = roots_in
                if pick is not None:
                    targets = pick()
                else:
                    targets = fast(values) if fast is not None else route.targets(values, direct_task)
                    transferred += len(targets)
                for t in targets:
                    edge = getrandbits(64)
                    ack_val = anchor.ack_val
                    anchor.ack_val = ack_val ^ edge if ack_val else edge
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
                append(targets)
            return out
        finally:
            # One entry in ``out`` per tuple sent (an interrupted list counts what it sent).
            route.emitted += len(out) - by_emit
            route.transferred += transferred

    return emit_many


def make_spout_emit_many(
    executor: SpoutExecutor, task: int, routes: dict[str, Route]
) -> Callable[..., list[list[int]]]:
    """Task ``task``'s ``emit_many``: the spout emit's work for each tuple, in one frame."""
    default = routes.get(DEFAULT_STREAM)
    sinks = executor.wiring.sinks
    run_sinks = executor.wiring.run_sinks
    component = executor.component
    tracking = executor.tracking
    getrandbits = executor._getrandbits
    pending = executor.pending
    pending_by_task = executor.pending_by_task
    untracked_acks = executor.untracked_acks
    clock = executor.wiring.clock
    inits = executor.inits_out[task]  # per acker; its lists are replaced as they are sent
    n_ackers = len(inits)
    choice = executor.wiring.acker_choice  # as in the spout's emit: roots for a local acker
    remap = choice.remap

    def emit_many(tuples, tup_ids=None, stream=None, direct_task=None, need_task_ids=False):
        route = default if stream is None else routes.get(stream)
        if route is None:
            executor._reject_emit(routes, stream, ())
        if tup_ids is not None and len(tup_ids) != len(tuples):
            raise EmitError(f"{component!r} emit_many: {len(tuples)} tuples but {len(tup_ids)} tup_ids")
        _check_arity(executor, routes, route, stream, tuples)
        fields = route.fields
        name = route.stream
        pick = route.pick if direct_task is None else None
        fast = route.fast if direct_task is None else None
        out: list[list[int]] = []
        append = out.append
        transferred = 0
        started = 0  # trees started, added to pending_by_task once
        bulk_ids: array | None = None  # the one acker's init pairs, when every tuple of the list starts a tree
        only = route.only if pick is not None else None  # as in the bolt's emit_many
        if only is not None:
            only_task = only[0]
            only_sink = sinks[only_task]
        try:
            if tup_ids is None or not tracking:
                if pick is not None and route.fanout == 1:
                    _emit_rows(out, pick, tuples, sinks, run_sinks, component, name, task, fields, only)
                    return out
                for values in tuples:
                    if pick is not None:
                        targets = pick()
                    else:
                        targets = fast(values) if fast is not None else route.targets(values, direct_task)
                        transferred += len(targets)
                    tup = new_tuple(Tuple)
                    tup.component = component
                    tup.stream = name
                    tup.task = task
                    tup.values = values
                    tup.fields = fields
                    tup.roots = None
                    tup.ack_val = 0
                    tup.done = False
                    for t in targets:
                        sinks[t]((t, tup))
                    append(targets)
                return out
            now = clock()  # one instant for the list: its trees start together
            moves = choice.moves
            if pick is not None and route.fanout == 1:
                # One target per tuple (shuffle, global): the ids drawn in one call.
                if n_ackers == 1 and not moves and None not in tup_ids:
                    # Every tuple starts a tree of one edge, whose id is the root id itself
                    # (random and drawn for this tree alone, as an edge id must be): one id
                    # per tree. The one acker's pairs (root, root) are built from the ids
                    # in C and added in one call (below, for the trees sent); no index, no
                    # append per tree.
                    ids = random_ids(getrandbits, len(tuples))
                    bulk_ids = array("Q", bytes(16 * len(ids)))
                    bulk_ids[::2] = ids
                    bulk_ids[1::2] = ids
                    if only is not None:
                        for values, tup_id, root in zip(tuples, tup_ids, ids):
                            tup = new_tuple(Tuple)
                            tup.component = component
                            tup.stream = name
                            tup.task = task
                            tup.values = values
                            tup.fields = fields
                            tup.roots = {root: root}
                            tup.ack_val = 0
                            tup.done = False
                            only_sink((only_task, tup))
                            pending[root] = (task, tup_id, now)
                            append(only)
                        return out
                    for values, tup_id, root in zip(tuples, tup_ids, ids):
                        tup = new_tuple(Tuple)
                        tup.component = component
                        tup.stream = name
                        tup.task = task
                        tup.values = values
                        tup.fields = fields
                        tup.roots = {root: root}
                        tup.ack_val = 0
                        tup.done = False
                        targets = pick()
                        t = targets[0]
                        sinks[t]((t, tup))
                        pending[root] = (task, tup_id, now)
                        append(targets)
                    return out
                ids = random_ids(getrandbits, 2 * len(tuples))
                for values, tup_id, root, edge in zip(tuples, tup_ids, ids[::2], ids[1::2]):
                    targets = pick()
                    t = targets[0]
                    tup = new_tuple(Tuple)
                    tup.component = component
                    tup.stream = name
                    tup.task = task
                    tup.values = values
                    tup.fields = fields
                    tup.ack_val = 0
                    tup.done = False
                    if tup_id is None:
                        tup.roots = None
                        sinks[t]((t, tup))
                        append(targets)
                        continue
                    if moves:  # 63 of the 64 bits, moved to a local acker's index
                        root >>= 1
                        i = root % n_ackers
                        root += remap[i] - i
                    tup.roots = {root: edge}
                    sinks[t]((t, tup))
                    pending[root] = (task, tup_id, now)
                    started += 1
                    pairs = inits[root % n_ackers] if n_ackers > 1 else inits[0]
                    pairs.append(root)
                    pairs.append(edge)
                    append(targets)
                return out
            for values, tup_id in zip(tuples, tup_ids):
                if pick is not None:
                    targets = pick()
                else:
                    targets = fast(values) if fast is not None else route.targets(values, direct_task)
                    transferred += len(targets)
                if tup_id is None:
                    tup = new_tuple(Tuple)
                    tup.component = component
                    tup.stream = name
                    tup.task = task
                    tup.values = values
                    tup.fields = fields
                    tup.roots = None
                    tup.ack_val = 0
                    tup.done = False
                    for t in targets:
                        sinks[t]((t, tup))
                    append(targets)
                    continue
                if moves:
                    root = getrandbits(63)
                    i = root % n_ackers
                    root += remap[i] - i
                else:
                    root = getrandbits(64)
                xor = 0
                for t in targets:
                    edge = getrandbits(64)
                    xor = xor ^ edge if xor else edge  # a 64-bit XOR allocates: not with 0
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
                pending[root] = (task, tup_id, now)
                started += 1
                if targets:
                    pairs = inits[root % n_ackers] if n_ackers > 1 else inits[0]
                    pairs.append(root)
                    pairs.append(xor)
                else:  # nobody subscribed: the tree is complete at once, as in emit
                    executor.inbox.append((task, (TREE_COMPLETE, root)))
                append(targets)
            return out
        finally:
            emitted = len(out)  # one entry per tuple sent (an interrupted list counts what it sent)
            if bulk_ids is not None:
                started = emitted
                inits[0].extend(bulk_ids[: 2 * emitted])
            route.emitted += emitted
            route.transferred += transferred
            executor.emit_count += emitted
            pending_by_task[task] += started
            if tup_ids is not None and not tracking:
                # Acking off: Storm acks at once, after next_tuple returns (as emit does).
                untracked_acks.extend([(task, i) for i in tup_ids[:emitted] if i is not None])

    return emit_many
