"""The XOR acker (Storm's algorithm): tracks each tuple tree with one 64-bit value.

Every edge of a tree gets a random 64-bit id. The spout reports the XOR of the edges it
emitted (ACK_INIT); each bolt, when it acks a tuple, reports the tuple's edge XOR the edges it
anchored on it (ACK_ACK). Each edge thus enters the value twice and the value is zero exactly
when every tuple of the tree was acked — in O(1) memory per tree whatever its size.

Messages may arrive in any order (an ack can beat the init across workers); a tree completes
only once its init has arrived and its value is zero. A failure is reported to the spout as
soon as its task is known. Entries older than the message timeout are forgotten (the spout
times them out itself), in rotating buckets so no entry is scanned twice.

Senders bulk their messages (``messages.py``): a bolt's acks and fails of one drain come as
one ``ACK_BULK``, a spout task's new trees of one step as one ``ACK_INIT_BULK``, and the
outcomes of one drain go to each spout task as one ``TREES_DONE``. A bulk is applied pair by
pair in its order, so a tree completes (or fails) exactly where its single messages would
have completed it, also in the middle of a bulk; the entries and their snapshot are those
of the single messages. An init bulk followed by ack bulks for exactly its roots (a chain's
round in one process) is folded: their values XORed root by root, the entries touched once,
with the same result (``_fold``).
"""

from __future__ import annotations

from collections import deque
from itertools import repeat
from operator import xor
from typing import TYPE_CHECKING

from squall.supervisor.runtime.batches import requeue_rest, take_batch
from squall.supervisor.runtime.messages import (
    ACK_ACK,
    ACK_BULK,
    ACK_FAIL,
    ACK_INIT,
    ACK_INIT_BULK,
    ACKER_COMPONENT,
    TREE_COMPLETE,
    TREE_FAILED,
    TREES_DONE,
)
from squall.supervisor.runtime.stats import ExecutorStats
from squall.topology.spec import ExecutorKind, ExecutorSpec

if TYPE_CHECKING:
    from squall.supervisor.runtime.engine import Wiring

_NO_SPOUT = -1
_NONE: list[int] = []  # read-only: a task with no outcome of one kind


class AckerExecutor:
    kind = ExecutorKind.ACKER

    def __init__(self, spec: ExecutorSpec, wiring: Wiring, timeout_s: float) -> None:
        self.spec = spec
        self.component = ACKER_COMPONENT
        self.wiring = wiring
        self.inbox: deque = deque()
        self.stats = ExecutorStats(ACKER_COMPONENT)
        # root -> [xor value, spout task or _NO_SPOUT, failed]
        self.current: dict[int, list] = {}
        self.previous: dict[int, list] = {}
        self.rotate_every_s = max(timeout_s, 0.001)
        self.rotated_at = wiring.clock()
        # inits and acks applied by ``_fold`` (counted in ``stats.executed`` like the others)
        self.folded = 0

    def initialize(self) -> None:
        pass

    def drain(self, limit: int) -> int:
        """Apply up to ``limit`` queued messages (a bulk message is one item: its acks, fails
        or inits are applied in order, as its single messages would be); then notify each
        spout task of the trees that completed or failed, in one message per task. The
        lookups are inlined: this loop runs once per message of every tree. Messages queued
        while it runs wait for the next call. Returns the messages applied (a bulk counts
        its contents), as ``executed`` counts them."""
        inbox = self.inbox
        if not inbox:
            return 0
        # batches flushed by a notice are transfer CPU
        clock, meter = self.wiring.round_clock, self.wiring.transfer_meter
        transfer_before = meter.cpu_s
        started = clock.start()
        items = take_batch(inbox, limit)
        current = self.current
        previous = self.previous
        # spout task -> roots whose tree completed / failed in this batch, sent at the end
        completed: dict[int, list[int]] = {}
        failed: dict[int, list[int]] = {}
        # the last spout task that completed a tree in an ACK_BULK and its list in
        # ``completed`` (lists there are only appended to): trees complete in about the order
        # their spout emitted them, so a compare per tree instead of a dict lookup
        done_task = _NO_SPOUT
        done: list[int] = []
        n = 0
        item = None
        skip_to = 0  # items before this index were applied by a fold
        try:
            for pos, item in enumerate(items):
                if pos < skip_to:
                    continue
                msg = item[1]
                kind = msg[0]
                if kind == ACK_INIT_BULK and pos + 1 < len(items) and items[pos + 1][1][0] == ACK_BULK:
                    end = self._fold(items, pos, completed)
                    if end:
                        pairs_folded = (end - pos) * (len(msg[2]) >> 1)  # every message: the same roots
                        n += pairs_folded
                        self.folded += pairs_folded
                        item = items[end - 1]
                        skip_to = end
                        continue
                if kind == ACK_BULK:
                    pairs = msg[1]
                    n += len(pairs) >> 1
                    for root, x in zip(pairs[::2], pairs[1::2]):
                        e = current.get(root)
                        if e is None:
                            e = previous.get(root) if previous else None
                            if e is None:  # an ack that beat its tree's init
                                current[root] = [x, _NO_SPOUT, False]
                                continue
                        v = e[0] ^ x
                        e[0] = v
                        if v or e[1] == _NO_SPOUT:
                            continue
                        # complete (an entry whose spout is known is never marked failed:
                        # a failure is reported and forgotten as soon as both are known)
                        if current.pop(root, None) is None:
                            previous.pop(root, None)
                        task = e[1]
                        if task != done_task:
                            done = completed.setdefault(task, [])
                            done_task = task
                        done.append(root)
                    for root in msg[2]:
                        n += 1
                        self._fail(root, failed)
                elif kind == ACK_INIT_BULK:
                    task = msg[1]
                    pairs = msg[2]
                    n += len(pairs) >> 1
                    for root, x in zip(pairs[::2], pairs[1::2]):
                        if not previous:
                            # the common case, a new tree: one dict operation
                            new = [x, task, False]
                            e = current.setdefault(root, new)
                            if e is new:
                                if x:
                                    continue
                                del current[root]  # an init of value zero: complete at once
                                completed.setdefault(task, []).append(root)
                                continue
                        else:
                            e = current.get(root)
                            if e is None:
                                e = previous.get(root)
                                if e is None:
                                    if x:
                                        current[root] = [x, task, False]
                                    else:
                                        completed.setdefault(task, []).append(root)
                                    continue
                        self._settle(root, e, x, task, completed, failed)
                else:
                    n += 1
                    root = msg[1]
                    if kind == ACK_ACK:
                        e = current.get(root)
                        if e is None:
                            e = previous.get(root)
                            if e is None:
                                current[root] = [msg[2], _NO_SPOUT, False]
                                continue
                        e[0] ^= msg[2]
                        if e[0] == 0 and e[1] != _NO_SPOUT:
                            self._settle(root, e, 0, e[1], completed, failed)
                    elif kind == ACK_INIT:
                        e = current.get(root)
                        if e is None:
                            e = previous.get(root)
                        if e is None:
                            e = current[root] = [0, _NO_SPOUT, False]
                        self._settle(root, e, msg[2], msg[3], completed, failed)
                    elif kind == ACK_FAIL:
                        self._fail(root, failed)
                    else:
                        n -= 1
        except BaseException:  # a notice that raised is sent below; what was not reached stays queued
            requeue_rest(inbox, items, item)
            raise
        finally:
            self._notify(completed, failed)
        self.stats.executed += n
        clock.charge(self.stats, started, meter.cpu_s - transfer_before)
        return n

    def _fold(self, items: list, start: int, completed: dict[int, list[int]]) -> int:
        """Apply ``items[start]`` (an ``ACK_INIT_BULK``) and the ``ACK_BULK`` items right after
        it that ack exactly the same roots in the same order, with no fails, in one pass:
        each root's values XORed together first (C-level passes over the lists), then one
        update of the entries. Returns the index after the last item applied, or 0 when the
        items do not have that shape (the loop then applies them one by one).

        This is the shape a chain in one process sends in every round: a spout task's
        trees of a step, then each bolt's acks of the same tuples in the same order. The
        result is exactly that of the single messages in order: the fold requires roots
        that are distinct and that no entry of either generation holds (so each message
        acts on the entry the previous one left), stops before an ack that would follow a
        value of zero (a tree complete there: a later ack for it would be a stray, a new
        entry), and then completes the trees whose value is zero, in the roots' order, and
        keeps the others, as the last message would have left them."""
        init = items[start][1]
        pairs = init[2]
        roots = pairs[::2]
        acc = pairs[1::2]
        if 0 in acc or len(set(roots)) != len(roots):
            return 0
        current = self.current
        previous = self.previous
        if not current.keys().isdisjoint(roots) or (previous and not previous.keys().isdisjoint(roots)):
            return 0
        size = len(pairs)
        end = start + 1
        limit = len(items)
        # The last ack bulk's values, not yet XORed into ``acc``: when it is the last one the
        # fold takes, a compare tells whether every tree is complete (``acc ^ last`` all
        # zero exactly when ``acc == last``) without a XOR per tree, each of which allocates
        # a 64-bit int (about 250 instructions).
        last: list[int] | None = None
        while end < limit:
            msg = items[end][1]
            if msg[0] != ACK_BULK or msg[2] or len(msg[1]) != size:
                break
            if last is not None:
                acc = list(map(xor, acc, last))
                last = None
                if 0 in acc:  # a tree complete here: a later ack for it is a stray
                    break
            acks = msg[1]
            if acks[::2] != roots:
                break
            last = acks[1::2]
            end += 1
        if end == start + 1:
            return 0
        task = init[1]
        if last is not None:
            if acc == last:  # every tree complete (the common case)
                completed.setdefault(task, []).extend(roots)
                return end
            acc = list(map(xor, acc, last))
        if 0 not in acc:  # none complete: one new entry per tree, as its init left it
            current.update(zip(roots, map(list, zip(acc, repeat(task), repeat(False)))))
        elif not any(acc):  # every tree complete (the common case)
            completed.setdefault(task, []).extend(roots)
        else:
            done = completed.setdefault(task, [])
            for root, value in zip(roots, acc):
                if value:
                    current[root] = [value, task, False]
                else:
                    done.append(root)
        return end

    def _settle(
        self, root: int, e: list, x: int, task: int, completed: dict[int, list[int]], failed: dict[int, list[int]]
    ) -> None:
        """Apply an init's (or a zeroing ack's) value ``x`` and spout ``task`` to entry ``e``
        of ``root``; forget the tree and list its outcome if it is now known."""
        e[0] ^= x
        e[1] = task
        if e[2]:
            failed.setdefault(task, []).append(root)
        elif e[0] == 0:
            completed.setdefault(task, []).append(root)
        else:
            return
        if self.current.pop(root, None) is None:
            self.previous.pop(root, None)

    def _fail(self, root: int, failed: dict[int, list[int]]) -> None:
        """Mark ``root``'s tree failed; report it now if its spout is known."""
        current = self.current
        e = current.get(root)
        if e is None:
            e = self.previous.get(root)
            if e is None:  # a failure that beat the init: reported when the init arrives
                current[root] = [0, _NO_SPOUT, True]
                return
        e[2] = True
        task = e[1]
        if task == _NO_SPOUT:
            return
        failed.setdefault(task, []).append(root)
        if current.pop(root, None) is None:
            self.previous.pop(root, None)

    def _notify(self, completed: dict[int, list[int]], failed: dict[int, list[int]]) -> None:
        """One message per spout task for this batch's outcomes: the single form for one
        outcome, ``TREES_DONE`` for several; counted in ``sent_control`` per outcome."""
        if not completed and not failed:
            return
        sinks = self.wiring.sinks
        stats = self.stats
        tasks = [*completed, *(t for t in failed if t not in completed)]
        for task in tasks:
            ok = completed.get(task, _NONE)
            bad = failed.get(task, _NONE)
            count = len(ok) + len(bad)
            stats.acked += len(ok)
            stats.failed += len(bad)
            stats.sent_control[task] += count
            if count == 1:
                msg: tuple = (TREE_COMPLETE, ok[0]) if ok else (TREE_FAILED, bad[0])
            else:
                msg = (TREES_DONE, ok if ok is not _NONE else [], bad if bad is not _NONE else [])
            sinks[task]((task, msg))

    def next_rotation(self) -> float | None:
        """When ``rotate`` next has something to forget; None while no entry is kept."""
        return self.rotated_at + self.rotate_every_s if self.current or self.previous else None

    def rotate(self, now: float) -> None:
        """Forget trees older than two rotation periods (the spout has timed them out)."""
        if now - self.rotated_at >= self.rotate_every_s:
            self.previous = self.current
            self.current = {}
            self.rotated_at = now
