"""Groupings turned into choosers: for each emitted tuple, the list of target tasks.

Guarantees (Storm's semantics):

* fields and partial_key use a stable hash (CRC-32 of the key's canonical bytes), so the same
  key goes to the same task in every process, on every board, in every run — unlike Python's
  salted ``hash()``;
* shuffle cycles through the target tasks in a shuffled order seeded by the source task, so
  load is even and the sequence is reproducible;
* global goes to the lowest task id; all to every task; none behaves as shuffle;
  local_or_shuffle prefers tasks in the same worker; direct sends to the task named in the
  emit, which must be a task of a direct subscriber.
"""

from __future__ import annotations

import itertools
import random
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import msgpack

from squall.topology.errors import EmitError
from squall.topology.grouping import (
    ALL,
    DIRECT,
    FIELDS,
    GLOBAL,
    LOCAL_OR_SHUFFLE,
    NONE,
    PARTIAL_KEY,
    SHUFFLE,
    GroupingSpec,
)

Chooser = Callable[[Sequence[Any]], list[int]]


def stable_hash(key: Sequence[Any]) -> int:
    """A 32-bit hash of a key that is the same in every process and run."""
    if len(key) == 1:
        v = key[0]
        if isinstance(v, str):
            return zlib.crc32(v.encode("utf-8", "surrogatepass"))
        if isinstance(v, bytes):
            return zlib.crc32(v)
    return zlib.crc32(msgpack.packb(list(key), use_bin_type=True))


def make_chooser(
    grouping: GroupingSpec,
    fields_index: dict[str, int],
    target_tasks: Sequence[int],
    source_task: int,
    local_tasks: frozenset[int] = frozenset(),
) -> Chooser | None:
    """A chooser for one subscription, or None for direct grouping (the emit names the task)."""
    tasks = sorted(target_tasks)
    kind = grouping.type
    if kind in (SHUFFLE, NONE):
        return _shuffle(tasks, source_task)
    if kind == LOCAL_OR_SHUFFLE:
        local = [t for t in tasks if t in local_tasks]
        return _shuffle(local or tasks, source_task)
    if kind == FIELDS:
        idx = [fields_index[f] for f in grouping.fields]
        n = len(tasks)
        if len(idx) == 1:
            (i,) = idx
            singles = [[t] for t in tasks]

            def fields_one(values: Sequence[Any]) -> list[int]:
                v = values[i]
                h = zlib.crc32(v.encode("utf-8", "surrogatepass")) if isinstance(v, str) else stable_hash((v,))
                return singles[h % n]

            return fields_one

        def fields_many(values: Sequence[Any]) -> list[int]:
            return [tasks[stable_hash([values[j] for j in idx]) % n]]

        return fields_many
    if kind == PARTIAL_KEY:
        return _partial_key([fields_index[f] for f in grouping.fields], tasks)
    if kind == ALL:
        return _constant(tasks)
    if kind == GLOBAL:
        return _constant([tasks[0]])
    if kind == DIRECT:
        return None
    raise ValueError(f"unknown grouping {kind!r}")  # pragma: no cover - GroupingSpec validates


def _shuffle(tasks: list[int], source_task: int) -> Chooser:
    order = [[t] for t in tasks]
    random.Random(source_task).shuffle(order)
    nxt = itertools.cycle(order).__next__

    def shuffle(_values: Sequence[Any]) -> list[int]:
        return nxt()

    # The same choice without the values and without a Python frame: ``Route.pick``.
    shuffle.pick = nxt  # type: ignore[attr-defined]
    shuffle.fanout = 1  # type: ignore[attr-defined]  # targets per pick: ``Route`` counts emits only
    shuffle.only = order[0] if len(order) == 1 else None  # type: ignore[attr-defined]  # see ``Route.only``
    return shuffle


def _constant(targets: list[int]) -> Chooser:
    def constant(_values: Sequence[Any]) -> list[int]:
        return targets

    constant.pick = itertools.repeat(targets).__next__  # type: ignore[attr-defined]
    constant.fanout = len(targets)  # type: ignore[attr-defined]
    constant.only = targets if len(targets) == 1 else None  # type: ignore[attr-defined]
    return constant


def _partial_key(idx: list[int], tasks: list[int]) -> Chooser:
    """Two candidate tasks per key (two hash seeds); pick the one this sender loaded less."""
    n = len(tasks)
    sent = [0] * n

    def choose(values: Sequence[Any]) -> list[int]:
        data = msgpack.packb([values[j] for j in idx], use_bin_type=True)
        a = zlib.crc32(data) % n
        b = zlib.crc32(data, 0x9E3779B9) % n
        k = a if sent[a] <= sent[b] else b
        sent[k] += 1
        return [tasks[k]]

    return choose


class Route:
    """Where one output stream of one source task goes, and how many tuples went there.

    ``emitted`` and ``transferred`` are counted by the emit that uses the route (a slot
    increment is cheaper per emit than the executor's per-stream dict); the executor adds
    them to its stats and zeroes them with ``take_counts`` at the end of every batch. An emit
    through ``pick`` counts only ``emitted``: it always reaches ``fanout`` tasks.
    """

    __slots__ = (
        "component",
        "stream",
        "fields",
        "arity",
        "choosers",
        "direct_tasks",
        "direct",
        "fast",
        "pick",
        "fanout",
        "only",
        "emitted",
        "transferred",
    )

    def __init__(
        self,
        component: str,
        stream: str,
        fields: tuple[str, ...],
        choosers: list[Chooser],
        direct_tasks: frozenset[int],
        direct: bool,
    ) -> None:
        self.component = component
        self.stream = stream
        self.fields = {f: i for i, f in enumerate(fields)}
        self.arity = len(fields)
        self.choosers = choosers
        self.direct_tasks = direct_tasks
        self.direct = direct
        # The common case — one subscriber, not direct — skips every check on the hot path.
        self.fast: Chooser | None = choosers[0] if len(choosers) == 1 and not direct else None
        # When that one chooser ignores the values (shuffle, all, global): a C-level callable
        # with no arguments, one Python call less per emit.
        self.pick: Callable[[], list[int]] | None = getattr(self.fast, "pick", None)
        self.fanout: int = getattr(self.fast, "fanout", 0) if self.pick is not None else 0
        # When ``pick`` always returns one and the same one-task list (a shuffle or global
        # to a single task): that list. ``emit_many`` then takes the task's sink once per
        # list instead of choosing per tuple (a pick of this route changes no state).
        self.only: list[int] | None = getattr(self.fast, "only", None) if self.pick is not None else None
        self.emitted = 0  # emits since the last take_counts
        self.transferred = 0  # targets of the emits that did not go through pick, same period

    def take_counts(self) -> tuple[int, int]:
        """(emitted, transferred) since the last call, and start again from zero."""
        emitted, transferred = self.emitted, self.transferred + self.emitted * self.fanout
        self.emitted = self.transferred = 0
        return emitted, transferred

    def targets(self, values: Sequence[Any], direct_task: int | None) -> list[int]:
        if self.direct:
            if direct_task is None:
                raise EmitError(f"{self.component!r}: stream {self.stream!r} is direct, so emit needs direct_task=")
            if direct_task not in self.direct_tasks:
                raise EmitError(
                    f"{self.component!r}: direct_task {direct_task} does not subscribe to stream "
                    f"{self.stream!r} (subscribed tasks: {sorted(self.direct_tasks)})"
                )
            return [direct_task]
        if direct_task is not None:
            raise EmitError(f"{self.component!r}: direct_task given but stream {self.stream!r} is not declared direct")
        choosers = self.choosers
        if len(choosers) == 1:
            return choosers[0](values)
        out: list[int] = []
        for c in choosers:
            out.extend(c(values))
        return out


class AckerChoice:
    """Which acker a spout's new tree goes to: one in the spout's own worker when it has one.

    Every sender finds a tree's acker the same way, by its root id: the acker at index
    ``root % len(acker_tasks)`` of ``acker_tasks`` (Storm's rule), so bolts, ackers and every
    worker agree on it without being told. The choice is the spout's: it draws its root ids
    so that they map to an acker local to its engine. ``remap[i]`` is the acker index a
    draw that fell on index ``i`` moves to: ``i`` itself when acker ``i`` is local or no
    acker is, else one of the local ackers (spread over them by ``i``). ``moves`` says
    whether any index moves; without a local acker, or with every acker local, it is False
    and roots are drawn as before.

    A spout draws a root from 63 random bits ``r`` as ``r - r % n + remap[r % n]`` (``n``
    ackers; the emits inline it): below 2**63 + n, so it fits the wire's uint64, and it maps
    to a local acker whenever there is one. A tree's acker never changes after its
    root is drawn: ``update`` (executors moved in or out) changes only where *new* roots
    go, so trees in flight across a move of the spout or of an acker still meet their acker
    (it takes its entries along in its snapshot).
    """

    __slots__ = ("acker_tasks", "remap", "moves", "local")

    def __init__(self, acker_tasks: Sequence[int], local_tasks: frozenset[int] = frozenset()) -> None:
        self.acker_tasks = list(acker_tasks)
        # updated in place: the spouts' emit closures hold this list
        self.remap: list[int] = list(range(len(self.acker_tasks)))
        self.moves = False
        self.local: list[int] = []  # indices of the local ackers
        self.update(local_tasks)

    def update(self, local_tasks: frozenset[int]) -> None:
        """Recompute the choice for the engine's tasks now (after executors moved)."""
        n = len(self.acker_tasks)
        local = [i for i, task in enumerate(self.acker_tasks) if task in local_tasks]
        self.local = local
        if not local or len(local) == n:
            self.remap[:] = range(n)
            self.moves = False
            return
        self.remap[:] = [i if i in local else local[i % len(local)] for i in range(n)]
        self.moves = True
