"""From Nimbus's records to the schedulers' inputs and back: pure functions, no I/O.

* :func:`node_of` (:func:`nodes_of` for many) and :func:`workload_of` build ``squall.rebalance`` inputs (a node's slots
  are its ports; a workload's executors include the ackers, with measured load and traffic
  when the metrics window has them and zeros otherwise);
* :func:`current_of` is the assignment in force, restricted to the given live nodes;
* :func:`place` runs a scheduler by name for one topology and maps its worker labels to
  concrete ports with :func:`map_ports`;
* :func:`standby_caps` is the standby-first rule of a repair after a lost board: the
  workers to recreate go to the topology's standby boards (alive, free slots, none of its
  workers) when they have room for all of them;
* :func:`spread_caps` is the rule of a requested rebalance: a board that joined or came
  back (idle: alive, free ports, no worker of any topology) is used;
* :class:`DeclaredWorkers` turns a topology's placement into the ``WorkerAssignment`` s of
  every node in one pass, and hands back the same objects while nothing they carry changed,
  so pushing to hundreds of boards every tick costs one pass per topology, not one per board,
  and comparing with what was pushed last is an identity check.

Guarantees of :func:`map_ports`: every worker gets a port its node offers and no other
topology holds there, distinct per node; a worker keeps the port of the old worker on the
same node it shares most executors with (ties: the same label, then the lower port), so a
reassignment moves as few workers as it can.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from squall.config import SCHEDULER_PARAMS
from squall.messages import WorkerAssignment
from squall.nimbus.metrics import Rates
from squall.nimbus.profiles import (
    DEFAULT_FLUSH_S,
    FLUSH_MS_KEY,
    board_profile,
    cpu_wait_by_node,
    honest_load,
    topology_cores_by_node,
    workload_profile,
)
from squall.nimbus.records import Placement, Slot, SupervisorRecord, TopologyRecord
from squall.rebalance import Assignment, Executor, InfeasibleError, Node, SchedulerParams, Workload, get_scheduler
from squall.topology.spec import ExecutorKind

_MIN_CAPACITY_HZ = 1.0  # a Node needs capacity > 0; a board that reports 0 still has slots


def node_of(
    sup: SupervisorRecord, slot_cap: int | None = None, rates: Rates | None = None, measured: NodeFigures | None = None
) -> Node:
    """The board as the schedulers see it; with the topology's ``rates`` its profile for
    the latency model too (the topology's own workers' CPU is not background there).
    ``measured``: ``NodeFigures.of(rates)``, when the caller builds many nodes of the same
    rates (:func:`nodes_of`): each figure is then read once, not once per node."""
    if measured is None and rates is not None:
        measured = NodeFigures.of(rates)
    slots = len(sup.ports) if slot_cap is None else min(len(sup.ports), slot_cap)
    mine = measured.cores_by_node.get(sup.id, 0.0) if measured is not None else 0.0
    waited = measured.wait_by_node.get(sup.id, 0.0) if measured is not None else 0.0
    board = board_profile(
        sup.board,
        float(sup.clock_hz),
        sup.cores,
        sup.memory_mb,
        mine,
        float(getattr(sup, "link_mbit", 0.0) or 0.0),
        float(getattr(sup, "link_delay_ms", 0.0) or 0.0),
        waited,
    )
    # Memory is a hard limit for every scheduler: no more workers than the board's memory
    # holds at the measured worker size (a 1 GB board never gets a fifth 200 MB worker).
    worker_mb = measured.worker_mb if measured is not None else 0.0
    if worker_mb > 0 and sup.board is not None and board.memory_mb > 0:
        slots = min(slots, int(board.memory_mb // worker_mb))
    return Node(sup.id, slots, max(float(sup.capacity_hz), _MIN_CAPACITY_HZ), board)


def nodes_of(
    supervisors: Mapping[str, SupervisorRecord],
    names: Iterable[str],
    rates: Rates | None,
    slot_cap: Mapping[str, int] | None = None,
) -> list[Node]:
    """:func:`node_of` of each of ``names``, in order, reading ``rates`` once for all of them
    (once per node, as before, a repair at 500 boards read the 1,000 workers' figures
    500 times: a third of its time)."""
    caps = slot_cap or {}
    measured = NodeFigures.of(rates) if rates is not None else None
    return [node_of(supervisors[n], caps.get(n), rates, measured) for n in names]


@dataclass(frozen=True)
class NodeFigures:
    """What :func:`node_of` reads of a topology's rates, by node."""

    cores_by_node: dict[str, float]  # the topology's workers' process CPU there
    wait_by_node: dict[str, float]  # mean ms its loop threads waited for a CPU there
    worker_mb: float  # the largest RSS of its workers (0: not measured)

    @classmethod
    def of(cls, rates: Rates) -> NodeFigures:
        return cls(
            topology_cores_by_node(rates),
            cpu_wait_by_node(rates),
            max((w.rss_bytes for w in rates.workers.values()), default=0) / 2**20,
        )


def workload_of(rec: TopologyRecord, rates: Rates | None = None) -> Workload:
    """The measured workload: traffic (tuples and acker items), the honest load (each
    worker's whole process CPU attributed to its executors) and the latency profile."""
    executors = rec.executors()
    rates = rates or Rates()
    ids = {e.id for e in executors}
    load = honest_load(rates)
    spouts = [e.id for e in executors if rec.spec.kind_of(e.component) == ExecutorKind.SPOUT]
    ackers = [e.id for e in executors if rec.spec.kind_of(e.component) == ExecutorKind.ACKER]
    return Workload(
        topology=rec.name,
        workers=rec.workers,
        executors=tuple(Executor(e.id, e.component, (e.first_task, e.last_task)) for e in executors),
        traffic=tuple((s, d, r) for (s, d), r in sorted(rates.traffic.items()) if s in ids and d in ids),
        load_hz=tuple(load.get(e.id, 0.0) for e in executors),
        edges=rec.spec.component_edges(),
        profile=workload_profile(rates, ids, spouts, ackers, flush_s_of(rec.conf)),
    )


def flush_s_of(conf: dict[str, Any]) -> float:
    """The topology's transfer flush delay in seconds (the workers' default when unset or
    not a positive number)."""
    value = conf.get(FLUSH_MS_KEY)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return DEFAULT_FLUSH_S
    return min(float(value), 1e3) / 1e3


def current_of(records: Iterable[TopologyRecord], live_nodes: set[str]) -> Assignment:
    """The placed workers of ``records`` that sit on ``live_nodes``."""
    executor_worker: dict[tuple[str, int], int] = {}
    worker_node: dict[tuple[str, int], str] = {}
    for rec in records:
        for ex, slot in rec.placement.items():
            if slot.node in live_nodes:
                executor_worker[(rec.name, ex)] = slot.worker
                worker_node[(rec.name, slot.worker)] = slot.node
    return Assignment.of(executor_worker, worker_node)


def scheduler_params(conf: Mapping[str, object]) -> SchedulerParams:
    """The topology's ``topology.scheduler.params`` (validated at submit), else defaults."""
    raw = conf.get(SCHEDULER_PARAMS)
    return SchedulerParams(**raw) if isinstance(raw, dict) else SchedulerParams()


def place(
    rec: TopologyRecord,
    rates: Rates | None,
    supervisors: Mapping[str, SupervisorRecord],
    live: set[str],
    others: Iterable[TopologyRecord],
    keep_current: bool,
    scheduler: str | None = None,
    reserved: Mapping[str, set[int]] | None = None,
    slot_cap: Mapping[str, int] | None = None,
    workload: Workload | None = None,
) -> Placement:
    """A new placement for ``rec`` over the ``live`` supervisors.

    ``others`` (every other placed topology) keep their workers; with ``keep_current`` the
    scheduler gets ``rec``'s live workers as its starting point (repair after a node
    failure), otherwise it places from scratch (submit, rebalance). ``slot_cap`` shows the
    scheduler fewer slots on some nodes (:func:`standby_caps`). ``workload``: what
    :func:`workload_of` gives for ``rec`` and ``rates``, when the caller has it (it costs
    ~0.2 s at 5,000 executors). Raises ``InfeasibleError`` (no slot) or ``InvalidInputError``
    (bad parameters).
    """
    others = [o for o in others if o.name != rec.name]
    nodes = nodes_of(supervisors, sorted(live), rates, slot_cap)
    current = current_of(others + ([rec] if keep_current else []), live)
    schedule = get_scheduler(scheduler or rec.scheduler).schedule
    workload = workload if workload is not None else workload_of(rec, rates)
    result = schedule([workload], nodes, scheduler_params(rec.conf), current)
    mine = result.restrict([rec.name])
    taken: dict[str, set[int]] = {n: set(ports) for n, ports in (reserved or {}).items()}
    for o in others:
        for slot in o.placement.values():
            taken.setdefault(slot.node, set()).add(slot.port)
    ports_of = {n: supervisors[n].ports for n in live}
    return map_ports(rec.name, mine, rec.placement, ports_of, taken)


def standby_caps(
    rec: TopologyRecord,
    supervisors: Mapping[str, SupervisorRecord],
    live: set[str],
    others: Iterable[TopologyRecord],
    reserved: Mapping[str, set[int]] | None = None,
) -> dict[str, int] | None:
    """Slot caps that make a repair of ``rec`` put the workers it must recreate on its
    standby boards, or None when the rule does not apply.

    A standby board is alive, has a free port (not held by another topology or a migration)
    and runs none of ``rec``'s surviving workers — MicroSpark's standby workers, and what
    the online scheduler's beta leaves unused. When the standby boards' free ports can take
    every worker to recreate, each board that keeps a surviving worker is capped at the
    workers it already runs (other topologies' and ``rec``'s survivors), so the scheduler
    sees free slots only on standby boards. When they cannot (or there is none), None: the
    scheduler places over every live board as it would.
    """
    held, other_workers = _held(rec, others, reserved)
    surviving: dict[str, set[int]] = {}
    for slot in rec.placement.values():
        if slot.node in live and slot.port in supervisors[slot.node].ports:
            surviving.setdefault(slot.node, set()).add(slot.port)
    need = min(rec.workers, len(rec.executors())) - sum(len(p) for p in surviving.values())
    standby_free = sum(len(set(supervisors[n].ports) - held.get(n, set())) for n in live if n not in surviving)
    if need <= 0 or not surviving or standby_free < need:
        return None
    return {n: len(other_workers.get(n, ())) + len(ports) for n, ports in surviving.items()}


def spread_caps(
    rec: TopologyRecord,
    supervisors: Mapping[str, SupervisorRecord],
    live: set[str],
    others: Iterable[TopologyRecord],
    proposed: Mapping[int, Slot],
    reserved: Mapping[str, set[int]] | None = None,
) -> dict[str, int] | None:
    """Slot caps that make a requested rebalance of ``rec`` use an idle board (alive, a free
    port, no worker of any topology: one that joined or came back), or None when the
    ``proposed`` placement already uses one or there is none.

    Each board that is not idle is capped at the workers other topologies hold there plus an
    even share, ceil(W / boards with a free port), of ``rec``'s workers, so the scheduler
    has to spread onto idle boards (Storm's EvenScheduler would leave them idle).
    """
    held, other_workers = _held(rec, others, reserved)
    mine = {s.node for s in rec.placement.values()}
    open_boards = [n for n in sorted(live) if set(supervisors[n].ports) - held.get(n, set())]
    idle = [n for n in open_boards if n not in mine and not other_workers.get(n)]
    if not idle or any(s.node in idle for s in proposed.values()):
        return None
    share = -(-min(rec.workers, len(rec.executors())) // len(open_boards))
    return {n: len(other_workers.get(n, ())) + share for n in open_boards if n not in idle}


def _held(
    rec: TopologyRecord, others: Iterable[TopologyRecord], reserved: Mapping[str, set[int]] | None
) -> tuple[dict[str, set[int]], dict[str, set[tuple[str, int]]]]:
    """node -> ports held by other topologies and migrations; node -> other topologies' workers."""
    held: dict[str, set[int]] = {n: set(ports) for n, ports in (reserved or {}).items()}
    other_workers: dict[str, set[tuple[str, int]]] = {}
    for o in others:
        if o.name == rec.name:
            continue
        for slot in o.placement.values():
            held.setdefault(slot.node, set()).add(slot.port)
            other_workers.setdefault(slot.node, set()).add((o.name, slot.worker))
    return held, other_workers


def map_ports(
    topology: str,
    new: Assignment,
    old: Mapping[int, Slot],
    ports_of: Mapping[str, list[int]],
    taken: Mapping[str, set[int]],
) -> Placement:
    """Concrete ports for the workers of ``new`` (see the module docstring)."""
    old_workers: dict[tuple[str, int], set[int]] = {}
    old_label: dict[tuple[str, int], int] = {}
    for ex, slot in old.items():
        old_workers.setdefault((slot.node, slot.port), set()).add(ex)
        old_label[(slot.node, slot.port)] = slot.worker
    free = {n: set(ports) - taken.get(n, set()) for n, ports in ports_of.items()}
    workers = [
        (w, new.node_of_worker(topology, w), set(new.executors_on(topology, w))) for w in new.workers_of(topology)
    ]
    # Old workers by node: a new worker is compared with those on its own node only (with
    # every old worker, a repair at 500 boards made 1,000,000 comparisons). The candidates
    # are sorted on all their fields below, so the order they are found in changes nothing.
    old_on: dict[str, list[tuple[int, set[int]]]] = {}
    for (onode, port), oexecs in old_workers.items():
        old_on.setdefault(onode, []).append((port, oexecs))
    candidates = []
    for w, node, execs in workers:
        for port, oexecs in old_on.get(node, ()):
            if port not in free.get(node, ()):
                continue
            overlap = len(execs & oexecs)
            same = old_label[(node, port)] == w
            if overlap or same:
                candidates.append((-overlap, not same, port, w, node))
    port_of: dict[int, int] = {}
    for _, _, port, w, node in sorted(candidates):
        if w not in port_of and port in free[node]:
            port_of[w] = port
            free[node].discard(port)
    for w, node, _ in workers:
        if w in port_of:
            continue
        if not free.get(node):
            raise InfeasibleError(f"node {node!r} has no free port left for worker {w} of {topology!r}")
        port_of[w] = min(free[node])
        free[node].discard(port_of[w])
    return Placement((ex, Slot(w, node, port_of[w])) for w, node, execs in workers for ex in execs)


class DeclaredWorkers:
    """Per topology: node -> its ``WorkerAssignment`` s (by port), built once per change.

    :meth:`of` returns the cached lists while the topology's placement (the same dict
    object, its size and the record's ``version``), its activation, its worker conf and the
    hosts of its nodes are unchanged, and rebuilds them otherwise. Every worker of one build
    shares one ``placement`` map (executor -> "host:port"); callers must not mutate what
    they get.
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple[Any, ...], dict[str, Any], dict[str, list[WorkerAssignment]]]] = {}

    def of(self, rec: TopologyRecord, host_of: Callable[[str], str]) -> dict[str, list[WorkerAssignment]]:
        nodes = {s.node for s in rec.placement.values()}
        hosts = tuple(sorted((n, host_of(n)) for n in nodes))
        key = (id(rec.placement), len(rec.placement), rec.version, rec.workers_running_active, hosts)
        conf = rec.worker_conf()
        cached = self._cache.get(rec.name)
        if cached is not None and cached[0] == key and cached[1] == conf:
            return cached[2]
        host = dict(hosts)
        where = {ex: f"{host[s.node]}:{s.port}" for ex, s in sorted(rec.placement.items())}
        per_node: dict[str, list[WorkerAssignment]] = {}
        for (node, port), execs in sorted(rec.worker_slots().items()):
            per_node.setdefault(node, []).append(
                WorkerAssignment(
                    topology=rec.name,
                    port=port,
                    executors=execs,
                    placement=where,
                    active=rec.workers_running_active,
                    assignment_version=rec.version,
                    conf=conf,
                )
            )
        self._cache[rec.name] = (key, conf, per_node)
        return per_node

    def retain(self, names: Iterable[str]) -> None:
        """Keep only the entries of ``names`` (the topologies that still exist)."""
        keep = set(names)
        for name in [n for n in self._cache if n not in keep]:
            del self._cache[name]
