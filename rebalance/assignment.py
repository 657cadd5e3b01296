"""The Assignment value: executor -> worker and worker -> node, for one or more topologies.

It is the contract between Nimbus and the supervisors. Guarantees:

* frozen, hashable, equal by value (rows are kept sorted), so tests compare whole
  assignments with ``==``;
* consistent: every executor's worker is on exactly one node, and every worker listed
  hosts at least one executor (an empty worker is never started);
* worker ids are ints unique within a topology; they are labels, not slot numbers — the
  supervisor picks the port.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from squall.rebalance.errors import InvalidInputError

ExecutorKey = tuple[str, int]  # (topology, executor id)
WorkerKey = tuple[str, int]  # (topology, worker id)


@dataclass(frozen=True)
class Assignment:
    """``executors`` rows are (topology, executor id, worker id); ``workers`` rows are
    (topology, worker id, node id). Build it with :meth:`of` from two mappings."""

    executors: tuple[tuple[str, int, int], ...]
    workers: tuple[tuple[str, int, str], ...]
    _worker_of: dict[ExecutorKey, int] = field(init=False, repr=False, compare=False, hash=False)
    _node_of_worker: dict[WorkerKey, str] = field(init=False, repr=False, compare=False, hash=False)
    _on_worker: dict[WorkerKey, tuple[int, ...]] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        executors = tuple(sorted((str(t), int(e), int(w)) for t, e, w in self.executors))
        workers = tuple(sorted((str(t), int(w), str(n)) for t, w, n in self.workers))
        worker_of: dict[ExecutorKey, int] = {}
        for t, e, w in executors:
            if (t, e) in worker_of:
                raise InvalidInputError(f"topology {t!r}: executor {e} assigned twice")
            worker_of[(t, e)] = w
        node_of: dict[WorkerKey, str] = {}
        for t, w, n in workers:
            if (t, w) in node_of:
                raise InvalidInputError(f"topology {t!r}: worker {w} placed on two nodes")
            node_of[(t, w)] = n
        on_worker: dict[WorkerKey, list[int]] = {}
        for t, e, w in executors:
            if (t, w) not in node_of:
                raise InvalidInputError(f"topology {t!r}: executor {e} is on worker {w}, which has no node")
            on_worker.setdefault((t, w), []).append(e)
        for key in node_of:
            if key not in on_worker:
                raise InvalidInputError(f"topology {key[0]!r}: worker {key[1]} hosts no executor")
        object.__setattr__(self, "executors", executors)
        object.__setattr__(self, "workers", workers)
        object.__setattr__(self, "_worker_of", worker_of)
        object.__setattr__(self, "_node_of_worker", node_of)
        object.__setattr__(self, "_on_worker", {k: tuple(v) for k, v in on_worker.items()})

    @classmethod
    def of(cls, executor_worker: Mapping[ExecutorKey, int], worker_node: Mapping[WorkerKey, str]) -> Assignment:
        """Build from {(topology, executor): worker} and {(topology, worker): node}."""
        return cls(
            tuple((t, e, w) for (t, e), w in executor_worker.items()),
            tuple((t, w, n) for (t, w), n in worker_node.items()),
        )

    @classmethod
    def empty(cls) -> Assignment:
        return cls((), ())

    # --- lookups ----------------------------------------------------------------------------

    def topologies(self) -> tuple[str, ...]:
        return tuple(sorted({t for t, _, _ in self.workers}))

    def has_executor(self, topology: str, executor: int) -> bool:
        return (topology, executor) in self._worker_of

    def worker_of(self, topology: str, executor: int) -> int:
        return self._worker_of[(topology, executor)]

    def node_of(self, topology: str, executor: int) -> str:
        return self._node_of_worker[(topology, self._worker_of[(topology, executor)])]

    def node_of_worker(self, topology: str, worker: int) -> str:
        return self._node_of_worker[(topology, worker)]

    def executors_on(self, topology: str, worker: int) -> tuple[int, ...]:
        """Executor ids on a worker, ascending; empty if the worker does not exist."""
        return self._on_worker.get((topology, worker), ())

    def workers_of(self, topology: str) -> tuple[int, ...]:
        return tuple(w for t, w, _ in self.workers if t == topology)

    def workers_on(self, node: str) -> tuple[WorkerKey, ...]:
        """(topology, worker) pairs placed on a node, sorted."""
        return tuple((t, w) for t, w, n in self.workers if n == node)

    def nodes_used(self) -> tuple[str, ...]:
        return tuple(sorted({n for _, _, n in self.workers}))

    def rows(self) -> tuple[tuple[str, int, int, str], ...]:
        """(topology, executor, worker, node) for every executor, sorted."""
        return tuple((t, e, w, self._node_of_worker[(t, w)]) for t, e, w in self.executors)

    # --- combining --------------------------------------------------------------------------

    def restrict(self, topologies: Iterable[str]) -> Assignment:
        """Only the rows of the given topologies (this assignment itself when it holds no
        other: it is immutable, and a copy of 10,000 rows costs a sort)."""
        keep = set(topologies)
        if all(r[0] in keep for r in self.workers):
            return self  # (every executor's worker has a row: __post_init__ checks it)
        return Assignment(
            tuple(r for r in self.executors if r[0] in keep), tuple(r for r in self.workers if r[0] in keep)
        )

    def without(self, topologies: Iterable[str]) -> Assignment:
        """Every row except those of the given topologies."""
        drop = set(topologies)
        return Assignment(
            tuple(r for r in self.executors if r[0] not in drop),
            tuple(r for r in self.workers if r[0] not in drop),
        )

    def merge(self, other: Assignment) -> Assignment:
        """Union of two assignments over disjoint topologies (the non-empty one itself when
        the other is empty: both are immutable)."""
        if not other.executors and not other.workers:
            return self
        if not self.executors and not self.workers:
            return other
        overlap = set(self.topologies()) & set(other.topologies())
        if overlap:
            raise InvalidInputError(f"cannot merge: both assignments hold topologies {sorted(overlap)}")
        return Assignment(self.executors + other.executors, self.workers + other.workers)

    def moved(self, other: Assignment) -> tuple[ExecutorKey, ...]:
        """Executors of ``other`` whose (worker, node) differs here, or that are new: what a
        rebalance from ``self`` to ``other`` has to move."""
        out = []
        for t, e, w, n in other.rows():
            if (t, e) not in self._worker_of or self._worker_of[(t, e)] != w or self.node_of(t, e) != n:
                out.append((t, e))
        return tuple(out)

    # --- JSON -------------------------------------------------------------------------------

    def to_dict(self) -> list[dict[str, Any]]:
        """The row list of ``squall schedule --json``."""
        return [{"topology": t, "executor": e, "worker": w, "node": n} for t, e, w, n in self.rows()]

    @classmethod
    def from_dict(cls, data: Sequence[Mapping[str, Any]], where: str = "assignment") -> Assignment:
        if not isinstance(data, list | tuple):
            raise InvalidInputError(f"{where}: expected a list of rows, got {type(data).__name__}")
        ex: dict[ExecutorKey, int] = {}
        wn: dict[WorkerKey, str] = {}
        for k, row in enumerate(data):
            at = f"{where}[{k}]"
            if not isinstance(row, Mapping):
                raise InvalidInputError(f"{at}: expected an object")
            for key, typ in (("topology", str), ("executor", int), ("worker", int), ("node", str)):
                if key not in row:
                    raise InvalidInputError(f"{at}.{key}: missing field")
                if not isinstance(row[key], typ) or isinstance(row[key], bool):
                    raise InvalidInputError(f"{at}.{key}: expected {typ.__name__}, got {row[key]!r}")
            t, e, w, n = row["topology"], row["executor"], row["worker"], row["node"]
            if (t, e) in ex:
                raise InvalidInputError(f"{at}: executor {e} of {t!r} listed twice")
            if wn.get((t, w), n) != n:
                raise InvalidInputError(f"{at}: worker {w} of {t!r} is on both {wn[(t, w)]!r} and {n!r}")
            ex[(t, e)] = w
            wn[(t, w)] = n
        return cls.of(ex, wn)
