"""The latency model's constants for a set of workloads on a set of boards.

:class:`Network` turns workloads (executors, traffic, profiles) and nodes into plain
indexed arrays the search reads: per executor (by *gid*, its position over all topologies)
its rate, cycles/s and role; per edge its endpoints, rate and weight (kappa: its share of
a root tuple's path); per topology its :class:`TopologyTerms`; per board its
:class:`~squall.rebalance.latency.BoardTerms`. :meth:`Network.state_of` makes the
:class:`~squall.rebalance.latency_state.State` that prices a placement over them, and
:meth:`Network.prediction` reads a state back as the model's :class:`Prediction`.

Guarantees: read-only once built (states and the search never write it); indices are
deterministic (topologies by name, executors in workload order, nodes by id); every default
used for a missing profile is named in :attr:`Network.assumptions`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from squall.rebalance.assignment import Assignment
from squall.rebalance.errors import InfeasibleError
from squall.rebalance.latency import MAX_UTILISATION, BoardTerms, Prediction, board_terms
from squall.rebalance.latency_state import State
from squall.rebalance.model import Node, Workload

# An edge's kind: data between executors, items into an acker, items out of one.
DATA, TO_ACKER, FROM_ACKER = 0, 1, 2


@dataclass(frozen=True)
class TopologyTerms:
    """A topology's constants as the model uses them (defaults applied)."""

    name: str
    source_rate: float
    ack_rate: float
    overhead_hz: float
    transfer_cycles: float
    item_bytes: float
    worker_mb: float
    flush_s: float
    measured: bool


class Network:
    """The model's constants for ``workloads`` on ``nodes`` (indices are positions)."""

    def __init__(self, workloads: Sequence[Workload], nodes: Sequence[Node]) -> None:
        self.assumptions: set[str] = set()
        self.nodes = tuple(sorted(nodes, key=lambda n: n.id))
        self.node_index = {n.id: k for k, n in enumerate(self.nodes)}
        self.terms: list[BoardTerms] = [board_terms(n, self.assumptions) for n in self.nodes]
        self.has_links = any(t.link_bps > 0 for t in self.terms)
        self.workloads = tuple(sorted(workloads, key=lambda w: w.topology))
        self.topos: list[TopologyTerms] = []
        self.ex_key: list[tuple[str, int]] = []  # gid -> (topology, executor id)
        self.ex_topo: list[int] = []
        self.ex_cycles: list[float] = []  # cycles/s of work (rate x service cycles)
        self.ex_rate: list[float] = []
        self.ex_acker: list[bool] = []
        self.ex_source: list[bool] = []
        self.gid: dict[tuple[str, int], int] = {}
        # edges: (src gid, dst gid, rate, weight kappa, kind)
        self.edges: list[tuple[int, int, float, float, int]] = []
        self.adjacent: list[list[int]] = []  # gid -> edge indices
        self.edge_ends: list[tuple[int, int]] = []  # per edge (src, dst)
        # Per edge what a move adds or takes away: (src, dst, rate, rate x weight, bytes/s,
        # topology), computed once (as each edge is read) instead of at every move.
        self.edge_terms: list[tuple[int, int, float, float, float, int]] = []
        for t, wl in enumerate(self.workloads):
            self._add_topology(t, wl)
        self._edge_rates: list[float] | None = None

    def edge_rates(self) -> list[float]:
        """Per executor (gid) the items/s on its edges, self-loops left out (they never
        cross a worker's boundary), summed in its adjacency's order: the same float as a
        pass over :attr:`adjacent`. It does not depend on a placement, so it is summed once,
        on first use (a prediction never needs it)."""
        if self._edge_rates is None:
            rates = [0.0] * len(self.ex_key)
            # Edges in index order: the order each executor's adjacency lists them in.
            for s, d, r, _rk, _bytes, _t in self.edge_terms:
                if s != d:
                    rates[s] += r
                    rates[d] += r
            self._edge_rates = rates
        return self._edge_rates

    def _add_topology(self, t: int, wl: Workload) -> None:
        p = wl.profile
        name = wl.topology
        ackers = set(p.ackers) if p else {e.id for e in wl.executors if e.component == "__acker"}
        sources = set(p.sources) if p else set()
        rate_of: dict[int, tuple[float, float]] = {}
        if p is not None:
            rate_of = {e.id: (e.rate, e.service_cycles) for e in p.executors}
        else:
            self.assumptions.add(f"topology {name}: no profile; service from load, rates from traffic")
            inflow: dict[int, float] = {}
            for _s, d, r in wl.traffic:
                inflow[d] = inflow.get(d, 0.0) + r
            for e, load in zip(wl.executors, wl.load_hz):
                lam = inflow.get(e.id, 0.0)
                rate_of[e.id] = (lam, load / lam if lam > 0 else 0.0)
        source_rate = p.source_rate if p is not None else 0.0
        measured = source_rate > 0
        if not measured:
            self.assumptions.add(f"topology {name}: no source rate measured; latency is per unit rate")
            source_rate = 1.0
        first = len(self.ex_key)
        gid_of: dict[int, int] = {}  # executor id -> gid, for the edges below (no key tuples)
        for e in wl.executors:
            lam, cycles = rate_of.get(e.id, (0.0, 0.0))
            g = len(self.ex_key)
            self.gid[(name, e.id)] = g
            gid_of[e.id] = g
            self.ex_key.append((name, e.id))
            self.ex_topo.append(t)
            self.ex_rate.append(lam)
            self.ex_cycles.append(lam * cycles)
            self.ex_acker.append(e.id in ackers)
            self.ex_source.append(e.id in sources)
            self.adjacent.append([])
        ack_rate = sum(self.ex_rate[g] for g in range(first, len(self.ex_key)) if self.ex_acker[g])
        edges, adjacent, edge_ends, edge_terms = self.edges, self.adjacent, self.edge_ends, self.edge_terms
        item_bytes = p.item_bytes if p else 0.0
        data = 1.0 / source_rate
        if not ackers:  # every edge carries data (the sums below would be over nothing)
            for s, d, r in wl.traffic:
                gs, gd = gid_of[s], gid_of[d]
                k = len(edges)
                edges.append((gs, gd, r, data, DATA))
                edge_ends.append((gs, gd))
                edge_terms.append((gs, gd, r, r * data, r * item_bytes, t))
                adjacent[gs].append(k)
                adjacent[gd].append(k)
        else:
            into = math.fsum(r for s, d, r in wl.traffic if d in ackers and s not in ackers)
            out = math.fsum(r for s, d, r in wl.traffic if s in ackers and d not in ackers)
            to_acker = 1.0 / into if into > 0 else 0.0
            from_acker = 1.0 / out if out > 0 else 0.0
            for s, d, r in wl.traffic:
                gs, gd = gid_of[s], gid_of[d]
                if d in ackers and s not in ackers:
                    kind, kappa = TO_ACKER, to_acker
                elif s in ackers and d not in ackers:
                    kind, kappa = FROM_ACKER, from_acker
                else:
                    kind, kappa = DATA, data
                k = len(edges)
                edges.append((gs, gd, r, kappa, kind))
                edge_ends.append((gs, gd))
                edge_terms.append((gs, gd, r, r * kappa, r * item_bytes, t))
                adjacent[gs].append(k)
                adjacent[gd].append(k)
        self.topos.append(
            TopologyTerms(
                name=name,
                source_rate=source_rate,
                ack_rate=ack_rate,
                overhead_hz=p.worker_overhead_hz if p else 0.0,
                transfer_cycles=p.transfer_cycles_per_item if p else 0.0,
                item_bytes=p.item_bytes if p else 0.0,
                worker_mb=p.worker_memory_mb if p else 0.0,
                flush_s=p.flush_s if p else 0.0,
                measured=measured,
            )
        )

    # -- states ------------------------------------------------------------------------

    def state_of(self, assignment: Assignment, labels: Mapping[str, Sequence[int]] | None = None) -> State:
        """A state for ``assignment`` (every executor of the workloads must be in it).
        ``labels`` adds empty worker labels per topology (for the search to fill)."""
        worker_ids: list[tuple[int, int]] = []  # gw -> (topology index, label)
        gw_of: dict[tuple[int, int], int] = {}
        worker_node: list[int] = []
        for t, wl in enumerate(self.workloads):
            placed = set(assignment.workers_of(wl.topology))  # once: it is a scan of every worker row
            wanted = sorted(placed | set((labels or {}).get(wl.topology, ())))
            for label in wanted:
                gw_of[(t, label)] = len(worker_ids)
                worker_ids.append((t, label))
                has = assignment.executors_on(wl.topology, label) if label in placed else ()
                worker_node.append(self.node_index[assignment.node_of_worker(wl.topology, label)] if has else -1)
        exec_worker = []
        for g, (name, ex) in enumerate(self.ex_key):
            if not assignment.has_executor(name, ex):
                raise InfeasibleError(f"topology {name!r}: executor {ex} is not placed")
            exec_worker.append(gw_of[(self.ex_topo[g], assignment.worker_of(name, ex))])
        return State(self, worker_ids, worker_node, exec_worker)

    def prediction(self, state: State, extra_workers: Mapping[str, int] | None = None) -> Prediction:
        latency: dict[str, float | None] = {}
        per_topo = state.latency_by_topology()
        for t, topo in enumerate(self.topos):
            latency[topo.name] = per_topo[t] * 1e3 if topo.measured else None
        used = {n for n in state.worker_node if n >= 0}
        extra = extra_workers or {}
        utilisation = {self.nodes[n].id: state.rho(n) for n in sorted(used)}
        workers_on = {self.nodes[n].id: state.workers_count(n) + extra.get(self.nodes[n].id, 0) for n in sorted(used)}
        violations = []
        for n in sorted(used):
            rho = state.rho(n)
            if rho > MAX_UTILISATION:
                violations.append(f"board {self.nodes[n].id}: utilisation {rho:.2f} > {MAX_UTILISATION}")
            mem = state.memory_mb(n, extra.get(self.nodes[n].id, 0))
            if self.terms[n].memory_mb > 0 and mem > self.terms[n].memory_mb:
                violations.append(
                    f"board {self.nodes[n].id}: workers need {mem:.0f} MB of {self.terms[n].memory_mb:.0f} MB"
                )
        return Prediction(
            latency, utilisation, workers_on, tuple(violations), tuple(sorted(self.assumptions)), excess=state.excess()
        )
