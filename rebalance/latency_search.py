"""The ``latency`` scheduler: search placements that minimise the latency model's prediction.

:class:`Network` holds the model's constants for a set of workloads on a set of nodes and
prices a placement (:class:`State`) as a sum of per-worker, per-board and per-edge terms
(see :mod:`squall.rebalance.latency`), so a move re-prices only what it touches.

:func:`schedule` starts from several seeds — the current placement, ``online`` with
beta = 1 (use every board it may) and ``round_robin`` — and improves each by local moves:
an executor to another worker (a neighbour's, the least busy one, or a new worker on the
least busy board with a free slot) and a worker to another board. Moves are tried in a
fixed order and the best improving one is taken, so the result is deterministic. The
objective is lexicographic: first the excess over the hard limits (board utilisation
above ``MAX_UTILISATION``, memory), then predicted latency. The number of boards used
falls out of it: there is no beta.

Guarantees: every executor placed once; at most ``min(workers, executors)`` workers per
topology and no more workers on a board than its free slots; a placement within the hard
limits is returned whenever a seed or a move finds one (else the least violating one, as
``online`` places load above capacity when it must).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from squall.rebalance import online, round_robin
from squall.rebalance.assignment import Assignment
from squall.rebalance.errors import InfeasibleError
from squall.rebalance.latency import (
    MAX_UTILISATION,
    BoardTerms,
    Prediction,
    board_terms,
    flush_wait,
    queue_wait,
    throttle_delay,
    throttle_share,
)
from squall.rebalance.model import Node, Workload
from squall.rebalance.params import SchedulerParams
from squall.rebalance.prepare import Request, scheduler, worker_budget
from squall.rebalance.relabel import keep_worker_ids

MAX_PASSES = 12
# A move must save this share of the predicted latency: smaller gains are within the
# model's noise, and chasing them costs passes (and could cycle on rounding).
IMPROVEMENT = 1e-3
NEIGHBOUR_WORKERS = 3  # an executor is tried in the workers of its 3 busiest neighbours
CANDIDATE_BOARDS = 8  # boards tried for a worker move on a large cluster (least busy first)
SEARCH_EVERY_SEED_UP_TO = 400  # executors: above this only the best seed is improved
DATA, TO_ACKER, FROM_ACKER = 0, 1, 2


@dataclass(frozen=True)
class _Topo:
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
        self.topos: list[_Topo] = []
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
        for t, wl in enumerate(self.workloads):
            self._add_topology(t, wl)
        # Per edge what a move adds or takes away: (src, dst, rate, rate x weight, bytes/s,
        # topology), computed once instead of at every move.
        self.edge_terms: list[tuple[int, int, float, float, float, int]] = [
            (s, d, rate, rate * kappa, rate * self.topos[self.ex_topo[s]].item_bytes, self.ex_topo[s])
            for s, d, rate, kappa, _kind in self.edges
        ]

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
        for e in wl.executors:
            lam, cycles = rate_of.get(e.id, (0.0, 0.0))
            g = len(self.ex_key)
            self.gid[(name, e.id)] = g
            self.ex_key.append((name, e.id))
            self.ex_topo.append(t)
            self.ex_rate.append(lam)
            self.ex_cycles.append(lam * cycles)
            self.ex_acker.append(e.id in ackers)
            self.ex_source.append(e.id in sources)
            self.adjacent.append([])
        ack_rate = sum(self.ex_rate[g] for g in range(first, len(self.ex_key)) if self.ex_acker[g])
        into = math.fsum(r for s, d, r in wl.traffic if d in ackers and s not in ackers)
        out = math.fsum(r for s, d, r in wl.traffic if s in ackers and d not in ackers)
        for s, d, r in wl.traffic:
            gs, gd = self.gid[(name, s)], self.gid[(name, d)]
            if d in ackers and s not in ackers:
                kind, kappa = TO_ACKER, (1.0 / into if into > 0 else 0.0)
            elif s in ackers and d not in ackers:
                kind, kappa = FROM_ACKER, (1.0 / out if out > 0 else 0.0)
            else:
                kind, kappa = DATA, 1.0 / source_rate
            k = len(self.edges)
            self.edges.append((gs, gd, r, kappa, kind))
            self.adjacent[gs].append(k)
            self.adjacent[gd].append(k)
        self.topos.append(
            _Topo(
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
            wanted = sorted(set(assignment.workers_of(wl.topology)) | set((labels or {}).get(wl.topology, ())))
            for label in wanted:
                gw_of[(t, label)] = len(worker_ids)
                worker_ids.append((t, label))
                has = assignment.executors_on(wl.topology, label) if label in assignment.workers_of(wl.topology) else ()
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


class State:
    """A placement and the aggregates that price it; moves update them in place."""

    def __init__(
        self, net: Network, worker_ids: list[tuple[int, int]], worker_node: list[int], exec_worker: list[int]
    ) -> None:
        self.net = net
        self.worker_ids = worker_ids
        self.worker_node = worker_node
        self.exec_worker = exec_worker
        nw = len(worker_ids)
        self.w_na = [0.0] * nw  # cycles/s of non-acker work
        self.w_nav = [0.0] * nw  # non-acker visits/s
        self.w_ak = [0.0] * nw
        self.w_akv = [0.0] * nw
        self.w_cross = [0.0] * nw  # items/s crossing the worker's boundary
        self.w_outk = [0.0] * nw  # items leaving the worker per root tuple (rate x weight)
        self.w_ink = [0.0] * nw  # items entering the worker per root tuple
        self.w_src = [0.0] * nw  # root tuples/s its spouts emit
        self.w_count = [0] * nw
        nn = len(net.nodes)
        self.on_node: list[set[int]] = [set() for _ in range(nn)]
        self.out_bytes = [0.0] * nn
        self.in_bytes = [0.0] * nn
        self.out_kappa = [0.0] * nn  # sum of rate x weight of edges leaving the board
        self.in_kappa = [0.0] * nn
        self.stays_in: list[dict[int, float]] = [{} for _ in range(nn)]  # per topology: entries per root tuple
        for g, w in enumerate(exec_worker):
            self._add_exec(g, w, +1)
        for w, n in enumerate(worker_node):
            if n >= 0 and self.w_count[w]:
                self.on_node[n].add(w)
        self._link_delta: dict[tuple[int, int], float] = {}  # (board, 0 out / 1 in) -> items/s
        self.members: list[set[int]] = [set() for _ in range(nw)]
        for g, w in enumerate(exec_worker):
            self.members[w].add(g)
        for k in range(len(net.edges)):
            self._edge(k, +1)
        self._link_delta.clear()
        # Cached terms, so a move re-prices only the boards and edges it touches.
        terms_of = [self._node_terms(n) for n in range(nn)]
        self.node_lat = [lat for lat, _ in terms_of]
        self.node_exc = [exc for _, exc in terms_of]
        self.edge_lat = [self.edge_delay(k) for k in range(len(net.edges))]
        self.total_lat = math.fsum(self.node_lat) + math.fsum(self.edge_lat)
        self.total_exc = math.fsum(self.node_exc)

    # -- aggregates --------------------------------------------------------------------

    def _add_exec(self, g: int, w: int, sign: int) -> None:
        net = self.net
        if net.ex_acker[g]:
            self.w_ak[w] += sign * net.ex_cycles[g]
            self.w_akv[w] += sign * net.ex_rate[g]
        else:
            self.w_na[w] += sign * net.ex_cycles[g]
            self.w_nav[w] += sign * net.ex_rate[g]
        if net.ex_source[g]:
            self.w_src[w] += sign * net.ex_rate[g]
        self.w_count[w] += sign

    def _edge(self, k: int, sign: int) -> None:
        s, d, rate, rk, item_bytes, t = self.net.edge_terms[k]
        exec_worker = self.exec_worker
        ws, wd = exec_worker[s], exec_worker[d]
        if ws == wd:
            return
        if sign < 0:
            rate, rk, item_bytes = -rate, -rk, -item_bytes
        self.w_cross[ws] += rate
        self.w_cross[wd] += rate
        self.w_outk[ws] += rk
        self.w_ink[wd] += rk
        ns, nd = self.worker_node[ws], self.worker_node[wd]
        if ns != nd and ns >= 0 and nd >= 0:
            stays = self.stays_in[nd]
            stays[t] = stays.get(t, 0.0) + rk
            self.out_bytes[ns] += item_bytes
            self.in_bytes[nd] += item_bytes
            self.out_kappa[ns] += rk
            self.in_kappa[nd] += rk
            if self.net.has_links:  # net change of each board's link flows during one move
                delta = self._link_delta
                delta[(ns, 0)] = delta.get((ns, 0), 0.0) + rate
                delta[(nd, 1)] = delta.get((nd, 1), 0.0) + rate

    # -- pricing -----------------------------------------------------------------------

    def worker_cores(self, w: int) -> float:
        n = self.worker_node[w]
        if n < 0 or not self.w_count[w]:
            return 0.0
        topo = self.net.topos[self.worker_ids[w][0]]
        cycles = self.w_na[w] + self.w_ak[w] + topo.overhead_hz + topo.transfer_cycles * self.w_cross[w] / 2.0
        return cycles / self.net.terms[n].clock_hz

    def rho(self, n: int) -> float:
        t = self.net.terms[n]
        return (math.fsum(self.worker_cores(w) for w in sorted(self.on_node[n])) + t.background_cores) / t.cores

    def workers_count(self, n: int) -> int:
        return len(self.on_node[n])

    def memory_mb(self, n: int, foreign: int = 0) -> float:
        net = self.net
        own = math.fsum(net.topos[self.worker_ids[w][0]].worker_mb for w in self.on_node[n])
        if foreign and self.on_node[n]:
            own += foreign * max(net.topos[self.worker_ids[w][0]].worker_mb for w in self.on_node[n])
        return own

    def _worker_latency(self, w: int, u: float, rho_n: float, terms: BoardTerms) -> float:
        """Worker ``w``'s time per root tuple: its visits (service and the wait for the
        worker's one thread), its items' wait in the batch before they are sent, and the
        wait for a CPU each time an item (or the spout's next emission) wakes it. The
        loop's own CPU (``o``) counts in the thread's utilisation but not as per-item
        time: most of it is spent waking for timers and heartbeats, not moving items
        (spread over items, it overestimated every measured point)."""
        topo = self.net.topos[self.worker_ids[w][0]]
        wall = 1.0 / terms.clock_hz  # seconds per cycle of service
        visits = self.w_nav[w] + self.w_akv[w]
        if visits <= 0:
            return 0.0
        mean_s = (self.w_na[w] + self.w_ak[w]) * wall / visits
        busy = u if u > rho_n else rho_n
        wait = queue_wait(mean_s, busy)
        value = (self.w_na[w] * wall + self.w_nav[w] * wait) / topo.source_rate
        if topo.ack_rate > 0:
            value += (self.w_ak[w] * wall + self.w_akv[w] * wait) / topo.ack_rate
        if self.w_outk[w] > 0:
            value += self.w_outk[w] * flush_wait(topo.flush_s, mean_s, busy)
        if terms.wake_wait_s > 0:
            # Only an item's arrival wakes the worker for a tuple already in flight: a
            # spout's tuple is timed from its emission, after the wake-up's wait.
            value += self.w_ink[w] * terms.wake_wait_s
        return value

    def _mean_item_bits(self, n: int) -> float:
        sizes = [self.net.topos[self.worker_ids[w][0]].item_bytes for w in self.on_node[n]]
        return 8.0 * (max(sizes) if sizes else 0.0)

    def edge_delay(self, k: int) -> float:
        s, d, rate, kappa, _kind = self.net.edges[k]
        ws, wd = self.exec_worker[s], self.exec_worker[d]
        if ws == wd:
            return 0.0
        net = self.net
        topo = net.topos[net.ex_topo[s]]
        ns, nd = self.worker_node[ws], self.worker_node[wd]
        delay = topo.transfer_cycles / net.terms[nd].clock_hz
        if ns != nd:
            # A board's link delay is its share of a round trip to another board (what a
            # ping measures: rtt(A, B) = d(A) + d(B)), so one way is half the sum. Charging
            # the sum doubled every cross-board hop against the emulated and measured links.
            delay += (net.terms[ns].link_delay_s + net.terms[nd].link_delay_s) / 2.0
        return rate * kappa * delay

    def latency_by_topology(self) -> list[float]:
        out = [0.0] * len(self.net.topos)
        links = 0.0
        for n in range(len(self.net.nodes)):
            for t, v in self.node_latency(n).items():
                if t < 0:
                    links += v
                else:
                    out[t] += v
        for k, (s, _d, _r, _kappa, _kind) in enumerate(self.net.edges):
            out[self.net.ex_topo[s]] += self.edge_delay(k)
        if links and out:
            # Link terms mix topologies on a shared board; they go to every topology in
            # proportion to its share of the total (exact with one topology).
            total = math.fsum(out) or 1.0
            out = [v + links * (v / total) for v in out]
        return out

    def excess(self) -> float:
        return math.fsum(self._board(n)[1] for n in range(len(self.net.nodes)))

    def node_latency(self, n: int) -> dict[int, float]:
        """Seconds per topology index from the board's workers; -1: its link queues."""
        return self._board(n)[0]

    def objective(self) -> tuple[float, float]:
        """(excess over the hard limits, summed latency in s), from the cached terms."""
        return (round(self.total_exc, 9), self.total_lat)

    def _node_terms(self, n: int) -> tuple[float, float]:
        """(latency seconds, excess) of board ``n``, all topologies together."""
        per_topology, exc = self._board(n)
        return sum(per_topology.values()), exc

    def _board(self, n: int) -> tuple[dict[int, float], float]:
        """Board ``n``'s latency seconds per topology index (-1: its link queues) and its
        excess over the hard limits. The search's hot path: each worker's CPU is computed
        once, and sums run over a sorted order so the result is deterministic."""
        members = self.on_node[n]
        if not members:
            return {}, 0.0
        net = self.net
        terms = net.terms[n]
        clock = terms.clock_hz
        order = sorted(members)
        cores = []
        for w in order:
            topo = net.topos[self.worker_ids[w][0]]
            cores.append(
                (self.w_na[w] + self.w_ak[w] + topo.overhead_hz + topo.transfer_cycles * self.w_cross[w] / 2.0) / clock
            )
        rho_n = (sum(cores) + terms.background_cores) / terms.cores
        lat: dict[int, float] = {}
        stays: dict[int, float] = {}
        mem = 0.0
        for w, u in zip(order, cores):
            t = self.worker_ids[w][0]
            mem += net.topos[t].worker_mb
            lat[t] = lat.get(t, 0.0) + self._worker_latency(w, u, rho_n, terms)
            if self.w_src[w] > 0:  # a root tuple's first stay is on its spout's board
                stays[t] = stays.get(t, 0.0) + self.w_src[w] / net.topos[t].source_rate
        share = throttle_share(terms, rho_n)
        if share > 0:
            entered = self.stays_in[n]
            for t in sorted(lat):
                lat[t] += throttle_delay(terms, share, stays.get(t, 0.0) + entered.get(t, 0.0), lat[t])
        if terms.link_bps > 0:
            # Transmission and queueing on the board's link, each way; the edges' weights
            # (kappa) are summed over topologies, so the term is kept apart (-1).
            bits = self._mean_item_bits(n)
            for flow_bytes, kappa in ((self.out_bytes[n], self.out_kappa[n]), (self.in_bytes[n], self.in_kappa[n])):
                if kappa > 0:
                    util = min(SAT_LINK, flow_bytes * 8.0 / terms.link_bps)
                    lat[-1] = lat.get(-1, 0.0) + kappa * bits / terms.link_bps / (1.0 - util)
        exc = max(0.0, rho_n - MAX_UTILISATION)
        if terms.memory_mb > 0:
            exc += max(0.0, mem - terms.memory_mb) / terms.memory_mb
        return lat, exc

    def _refresh(self, nodes: set[int], edges: Sequence[int]) -> None:
        for n in nodes:
            if n < 0:
                continue
            lat, exc = self._node_terms(n)
            self.total_lat += lat - self.node_lat[n]
            self.total_exc += exc - self.node_exc[n]
            self.node_lat[n], self.node_exc[n] = lat, exc
        for k in edges:
            value = self.edge_delay(k)
            self.total_lat += value - self.edge_lat[k]
            self.edge_lat[k] = value

    def _links_changed(self) -> set[int]:
        """Boards whose link flows changed since the last call (the move just made)."""
        changed = {n for (n, _way), d in self._link_delta.items() if abs(d) > 1e-12}
        self._link_delta.clear()
        return changed

    # -- moves -------------------------------------------------------------------------

    def move_executor(self, g: int, w: int) -> int:
        """Move executor ``g`` to worker ``w`` (placed); returns its old worker."""
        old = self.exec_worker[g]
        if old == w:
            return old
        edges = self.net.adjacent[g]
        touched = {self.worker_node[old], self.worker_node[w]}
        for k in edges:
            self._edge(k, -1)
        self._add_exec(g, old, -1)
        self.members[old].discard(g)
        if not self.w_count[old]:
            self.on_node[self.worker_node[old]].discard(old)
        self.exec_worker[g] = w
        self._add_exec(g, w, +1)
        self.members[w].add(g)
        self.on_node[self.worker_node[w]].add(w)
        for k in edges:
            self._edge(k, +1)
        self._refresh(touched | self._links_changed(), edges)
        return old

    def move_worker(self, w: int, n: int) -> int:
        """Put worker ``w`` on board ``n``; returns its old board."""
        old = self.worker_node[w]
        if old == n:
            return old
        edges = sorted({k for g in self.members[w] for k in self.net.adjacent[g]})
        touched = {old, n}
        for k in edges:
            self._edge(k, -1)
        if old >= 0:
            self.on_node[old].discard(w)
        self.worker_node[w] = n
        if self.w_count[w] and n >= 0:
            self.on_node[n].add(w)
        for k in edges:
            self._edge(k, +1)
        self._refresh(touched | self._links_changed(), edges)
        return old

    def to_assignment(self) -> Assignment:
        net = self.net
        executor_worker = {}
        worker_node = {}
        for g, w in enumerate(self.exec_worker):
            t, label = self.worker_ids[w]
            name = net.topos[t].name
            executor_worker[(name, net.ex_key[g][1])] = label
            worker_node[(name, label)] = net.nodes[self.worker_node[w]].id
        return Assignment.of(executor_worker, worker_node)


SAT_LINK = 0.999


def _place(req: Request, params: SchedulerParams, current: Assignment | None) -> Assignment:
    """Place ``workloads`` on ``nodes`` minimising predicted latency (see module doc)."""
    budget = worker_budget(req, params)
    net = Network(req.workloads, req.nodes)
    seeds: list[Assignment] = []
    names = [w.topology for w in req.workloads]
    if all(req.hint.has_executor(w.topology, e.id) for w in req.workloads for e in w.executors):
        if all(len(req.hint.workers_of(t)) <= budget[t] for t in names):
            seeds.append(req.hint)
    spread = replace(params, beta=1.0, strict=False)
    for make in (
        lambda: online.schedule(req.workloads, req.nodes, spread, current),
        lambda: round_robin.schedule(req.workloads, req.nodes, params, current),
    ):
        try:
            seeds.append(make().restrict(names))
        except InfeasibleError:
            continue
    if not seeds:
        raise InfeasibleError("no seed placement: not enough free slots")
    free = dict(req.free)
    scored: list[tuple[tuple[float, float], int, State]] = []
    for seed in seeds:
        labels = {t: _labels(seed, t, budget[t]) for t in names}
        state = net.state_of(seed, labels)
        scored.append((state.objective(), len(scored), state))
    scored.sort(key=lambda x: (x[0], x[1]))
    to_improve = [s for _, _, s in scored]
    if len(net.ex_key) > SEARCH_EVERY_SEED_UP_TO:
        to_improve = to_improve[:1]
    best: tuple[tuple[float, float], int, State] | None = None
    for k, state in enumerate(to_improve):
        _improve(state, free)
        key = (state.objective(), k, state)
        if best is None or key[:2] < best[:2]:
            best = key
    assert best is not None
    return keep_worker_ids(req.hint, best[2].to_assignment())


# No up-front load check: above capacity it returns the least violating placement (module doc).
schedule = scheduler(_place, load_check=False)


def _labels(seed: Assignment, topology: str, budget: int) -> list[int]:
    used = sorted(seed.workers_of(topology))
    fresh = (x for x in range(budget + len(used)) if x not in set(used))
    return used + [next(fresh) for _ in range(max(0, budget - len(used)))]


def _better(new: tuple[float, float], old: tuple[float, float]) -> bool:
    if new[0] < old[0] - 1e-12:
        return True
    return new[0] <= old[0] + 1e-12 and new[1] < old[1] * (1.0 - IMPROVEMENT) - 1e-15


def _free_slots(state: State, free: Mapping[str, int]) -> list[int]:
    return [free.get(n.id, 0) - state.workers_count(k) for k, n in enumerate(state.net.nodes)]


def _improve(state: State, free: Mapping[str, int]) -> None:
    """Passes of best-improving moves until a pass changes nothing (at most MAX_PASSES).

    The first pass tries every executor and every worker. A later pass tries only those
    near what the previous pass moved (:func:`_near`): elsewhere nothing a move is priced
    from changed, so a pass over everything would price the same moves again and decline
    them again (on the speed benchmark's workloads the second full pass found no move at
    all and took as long as the first). The moves taken, and their order, are those of
    full passes whenever the full pass would have taken nothing outside that region."""
    net = state.net
    executors: Sequence[int] = range(len(net.ex_key))
    workers: Sequence[int] = range(len(state.worker_ids))
    for _ in range(MAX_PASSES):
        changed = False
        moved: set[int] = set()  # workers that gained, lost or changed board in this pass
        boards: set[int] = set()  # the boards they were and are on
        shifted: set[int] = set()  # executors moved (by an executor or a worker move)
        current = state.objective()
        least_busy = _least_busy_workers(state)
        spare = _spare_worker(state, free)
        for g in executors:
            best, best_w = current, -1
            for w in _executor_candidates(state, g, least_busy, spare):
                old = state.exec_worker[g]
                placed_here = state.worker_node[w] < 0
                if placed_here:
                    state.move_worker(w, _least_busy_board(state, free))
                state.move_executor(g, w)
                value = state.objective()
                state.move_executor(g, old)
                if placed_here:
                    _unplace(state, w)
                if _better(value, best):
                    best, best_w = value, w
            if best_w >= 0:
                if state.worker_node[best_w] < 0:
                    state.move_worker(best_w, _least_busy_board(state, free))
                moved.update((state.exec_worker[g], best_w))
                boards.update((state.worker_node[state.exec_worker[g]], state.worker_node[best_w]))
                shifted.add(g)
                _vacate(state, g, best_w)
                spare = _spare_worker(state, free)
                current = best
                changed = True
        for w in workers:
            if not state.w_count[w]:
                continue
            best, best_n = current, -1
            for n in _board_candidates(state, w, free):
                old = state.move_worker(w, n)
                value = state.objective()
                state.move_worker(w, old)
                if _better(value, best):
                    best, best_n = value, n
            if best_n >= 0:
                moved.add(w)
                boards.update((state.worker_node[w], best_n))
                shifted.update(state.members[w])
                state.move_worker(w, best_n)
                current = best
                changed = True
        if not changed:
            return
        executors, workers = _near(state, moved, boards, shifted)


def _near(state: State, moved: set[int], boards: set[int], shifted: set[int]) -> tuple[list[int], list[int]]:
    """(executors, workers), each ascending, whose moves the next pass prices again after
    the executors ``shifted`` moved and the workers ``moved`` changed on ``boards``: every
    worker on one of those boards (its board's load and queueing changed), every executor
    in one of them, and every executor with an edge to a shifted one (its hops' costs
    changed)."""
    workers = set(moved)
    for n in boards:
        if n >= 0:
            workers.update(state.on_node[n])
    executors: set[int] = set()
    net = state.net
    for w in workers:
        executors.update(state.members[w])
    for g in shifted:
        executors.add(g)
        for k in net.adjacent[g]:
            s, d = net.edges[k][0], net.edges[k][1]
            executors.add(d if s == g else s)
    return sorted(executors), sorted(workers)


def _vacate(state: State, g: int, w: int) -> None:
    old = state.move_executor(g, w)
    if not state.w_count[old]:
        _unplace(state, old)


def _unplace(state: State, w: int) -> None:
    """An empty worker gives its board slot back (it is never started)."""
    if state.w_count[w]:
        return
    state.move_worker(w, -1)


def _least_busy_workers(state: State) -> dict[int, list[int]]:
    """Per topology, its placed workers from the least busy, as at the start of a pass.
    Taken once per pass, not per executor: a pass over 10,000 executors would otherwise
    price every worker 10,000 times. A candidate is only proposed here; every move is
    priced exactly before it is taken."""
    by_topology: dict[int, list[tuple[float, int]]] = {}
    for w, (t, _label) in enumerate(state.worker_ids):
        if state.w_count[w]:
            by_topology.setdefault(t, []).append((state.worker_cores(w), w))
    return {t: [w for _c, w in sorted(rows)] for t, rows in by_topology.items()}


def _spare_worker(state: State, free: Mapping[str, int]) -> dict[int, int]:
    """Per topology, its first empty worker, when some board has a free slot for it (else
    empty). Trying a move undoes it, so this changes only when a move is taken: it is
    taken again then, not for every executor (a pass over all workers and boards each)."""
    if not any(s > 0 for s in _free_slots(state, free)):
        return {}
    spare: dict[int, int] = {}
    for w, (t, _label) in enumerate(state.worker_ids):
        if not state.w_count[w] and t not in spare:
            spare[t] = w
    return spare


def _executor_candidates(
    state: State, g: int, least_busy: Mapping[int, Sequence[int]], spare: Mapping[int, int]
) -> list[int]:
    net = state.net
    t = net.ex_topo[g]
    mine = state.exec_worker[g]
    out: list[int] = []
    weights: dict[int, float] = {}
    for k in net.adjacent[g]:
        s, d, rate, _kappa, _kind = net.edges[k]
        other = state.exec_worker[d if s == g else s]
        if other != mine:
            weights[other] = weights.get(other, 0.0) + rate
    out.extend(sorted(weights, key=lambda w: (-weights[w], w))[:NEIGHBOUR_WORKERS])
    for w in least_busy.get(t, ()):
        if w != mine and state.w_count[w]:
            out.append(w)
            break
    if state.w_count[mine] > 1 and t in spare:
        out.append(spare[t])
    seen: set[int] = set()
    return [w for w in out if not (w in seen or seen.add(w))]  # type: ignore[func-returns-value]


def _least_busy_board(state: State, free: Mapping[str, int]) -> int:
    slots = _free_slots(state, free)
    options = [n for n in range(len(state.net.nodes)) if slots[n] > 0]
    return min(options, key=lambda n: (state.rho(n), n))


def _board_candidates(state: State, w: int, free: Mapping[str, int]) -> list[int]:
    slots = _free_slots(state, free)
    mine = state.worker_node[w]
    options = [n for n in range(len(state.net.nodes)) if n != mine and slots[n] > 0]
    if len(options) > CANDIDATE_BOARDS:
        options = sorted(options, key=lambda n: (state.rho(n), n))[:CANDIDATE_BOARDS]
    return options
