"""One placement on a :class:`~squall.rebalance.latency_network.Network`, priced by the
latency model and re-priced incrementally as executors and workers move.

A :class:`State` keeps the model's aggregates (per worker: work, visits, crossing items;
per board: its workers, link flows, stays) and caches the price of the placement as a sum
of per-board terms and per-edge terms (see :mod:`squall.rebalance.latency`). A move
(:meth:`State.move_executor`, :meth:`State.move_worker`) updates the aggregates of what it
touches and re-prices only the boards and edges whose terms read them, so trying a move
and undoing it costs a few boards and the moved executors' edges, not the whole placement.

Guarantees: :meth:`State.objective` after any sequence of moves equals a fresh pricing of
the same placement (``Network.state_of(state.to_assignment())``) up to float rounding
(a test checks it); every sum over a board's workers runs in ascending worker order, so the
same moves give the same floats; pure and deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from squall.rebalance.assignment import Assignment
from squall.rebalance.latency import (
    MAX_UTILISATION,
    SATURATED,
    SERVICE_SCV,
    throttle_delay,
    throttle_share,
)

if TYPE_CHECKING:
    from squall.rebalance.latency_network import Network, TopologyTerms

# What a trial move may write, saved to be written back (State._save, State._restore):
# per moving worker, per worker at an edge's end, per board (flows, cached terms), per
# board (its workers), per edge, then the two totals.
_Saved = tuple[
    list[tuple[int, float, float, float, float, float, int, int]],
    list[tuple[int, float, float, float]],
    list[tuple[int, float, float, float, float, dict[int, float], float, float]],
    list[tuple[int, set[int]]],
    list[tuple[int, float]],
    float,
    float,
]

_SCV_FACTOR = 1.0 + SERVICE_SCV  # queue_wait's factor, the same float

# Link utilisation at which a link's queue is treated as (almost) saturated.
SAT_LINK = 0.999


@dataclass
class BoardSlack:
    """A board's terms as a bound on a move's gain reads them (:meth:`State.board_slack`):
    per worker its time per root tuple before the quota's stops (:func:`worker_time`) and
    its CPU (cores), the board's utilisation, the quota's share of stopped time and the
    board's link terms."""

    time: dict[int, float] = field(default_factory=dict)
    cores: dict[int, float] = field(default_factory=dict)
    rho: float = 0.0
    share: float = 0.0
    link: float = 0.0
    bits: float = 0.0  # the size of an item on its link, in bits
    stays: float = 0.0  # stays on the board per root tuple, all its topologies (when share > 0)


def link_time(kappa: float, flow_bytes: float, bits: float, link_bps: float) -> float:
    """Transmission and queueing (M/M/1) on one way of a board's link, per root tuple (s),
    for ``kappa`` items per root tuple of ``bits`` each and ``flow_bytes`` bytes/s in all;
    it grows with both."""
    util = min(SAT_LINK, flow_bytes * 8.0 / link_bps)
    return kappa * bits / link_bps / (1.0 - util)


def worker_time(
    topo: TopologyTerms,
    wall: float,
    wake_wait_s: float,
    u: float,
    rho: float,
    na: float,
    nav: float,
    ak: float,
    akv: float,
    outk: float,
    ink: float,
) -> float:
    """A worker's time per root tuple (s) before its board's quota stops, from its
    aggregates (cycles/s ``na``/``ak`` and visits/s ``nav``/``akv`` of its non-acker and
    acker executors, items per root tuple leaving ``outk`` and entering ``ink``), its CPU
    ``u`` and its board's utilisation ``rho``, at ``wall`` seconds per cycle: its visits
    (service and the wait for its one thread), its items' wait in the batch before they
    are sent, and the wait for a CPU each time an item wakes it."""
    visits = nav + akv
    if visits <= 0:
        return 0.0
    mean_s = (na + ak) * wall / visits
    # queue_wait and flush_wait written out (the search's hottest call): the same float
    # operations, on the utilisation clamped once.
    busy = u if u > rho else rho
    if busy < 0.0:
        busy = 0.0
    elif busy > SATURATED:
        busy = SATURATED
    wait = busy * mean_s * _SCV_FACTOR / (2.0 * (1.0 - busy))
    value = (na * wall + nav * wait) / topo.source_rate
    if topo.ack_rate > 0:
        value += (ak * wall + akv * wait) / topo.ack_rate
    if outk > 0:
        flush_s = topo.flush_s
        if flush_s > 0:
            batched = busy / (1.0 - busy) * mean_s
            value += outk * (flush_s if batched > flush_s else batched)
    if wake_wait_s > 0:
        # Only an item's arrival wakes the worker for a tuple already in flight: a
        # spout's tuple is timed from its emission, after the wait.
        value += ink * wake_wait_s
    return value


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
        # Boards re-priced by the moves since the caller last cleared it: the only boards
        # whose terms a move changes beyond float rounding (see _refresh).
        self.refreshed: set[int] = set()
        self.members: list[set[int]] = [set() for _ in range(nw)]
        for g, w in enumerate(exec_worker):
            self.members[w].add(g)
        self._edges(range(len(net.edges)), +1, track=False)
        # Cached terms, so a move re-prices only the boards and edges it touches.
        terms_of = [self._node_terms(n) for n in range(nn)]
        self.node_lat = [lat for lat, _ in terms_of]
        self.node_exc = [exc for _, exc in terms_of]
        self.edge_lat = self._edge_delays()
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

    def _edges(self, edges: Sequence[int], sign: int, track: bool = True) -> None:
        """Add (``sign`` +1) or take away (-1) the crossing terms of ``edges``, in order.
        One call per move rather than per edge, with the lists bound once: this loop is
        most of what a trial move costs. The float operations and their order are those
        of one edge at a time. ``track``: note each board's net change of link flows for
        :meth:`_links_changed` (a move's; not when the state is built)."""
        edge_terms = self.net.edge_terms
        exec_worker, worker_node = self.exec_worker, self.worker_node
        w_cross, w_outk, w_ink = self.w_cross, self.w_outk, self.w_ink
        stays_in, out_bytes, in_bytes = self.stays_in, self.out_bytes, self.in_bytes
        out_kappa, in_kappa = self.out_kappa, self.in_kappa
        delta = self._link_delta if self.net.has_links and track else None
        for k in edges:
            s, d, rate, rk, item_bytes, t = edge_terms[k]
            ws, wd = exec_worker[s], exec_worker[d]
            if ws == wd:
                continue
            if sign < 0:
                rate, rk, item_bytes = -rate, -rk, -item_bytes
            w_cross[ws] += rate
            w_cross[wd] += rate
            w_outk[ws] += rk
            w_ink[wd] += rk
            ns, nd = worker_node[ws], worker_node[wd]
            if ns != nd and ns >= 0 and nd >= 0:
                stays = stays_in[nd]
                stays[t] = stays.get(t, 0.0) + rk
                out_bytes[ns] += item_bytes
                in_bytes[nd] += item_bytes
                out_kappa[ns] += rk
                in_kappa[nd] += rk
                if delta is not None:  # net change of each board's link flows during one move
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

    def _mean_item_bits(self, n: int) -> float:
        sizes = [self.net.topos[self.worker_ids[w][0]].item_bytes for w in self.on_node[n]]
        return 8.0 * (max(sizes) if sizes else 0.0)

    def edge_delay(self, k: int) -> float:
        s, d, _rate, _kappa, _kind = self.net.edges[k]
        ws, wd = self.exec_worker[s], self.exec_worker[d]
        if ws == wd:
            return 0.0
        return self.hop_delay(k, self.worker_node[ws], self.worker_node[wd])

    def _edge_delays(self) -> list[float]:
        """Every edge's :meth:`edge_delay`, in one pass: :meth:`hop_delay`'s float
        expression written out (``rate x kappa`` is the edge's precomputed term), the
        lists bound once (a state prices tens of thousands of edges)."""
        net = self.net
        exec_worker, worker_node = self.exec_worker, self.worker_node
        transfer = [topo.transfer_cycles for topo in net.topos]
        clock = [terms.clock_hz for terms in net.terms]
        link = [terms.link_delay_s for terms in net.terms]
        out = []
        for s, d, _rate, rk, _bytes, t in net.edge_terms:
            ws, wd = exec_worker[s], exec_worker[d]
            if ws == wd:
                out.append(0.0)
                continue
            ns, nd = worker_node[ws], worker_node[wd]
            delay = transfer[t] / clock[nd]
            if ns != nd:
                delay += (link[ns] + link[nd]) / 2.0
            out.append(rk * delay)
        return out

    def hop_delay(self, k: int, ns: int, nd: int) -> float:
        """Edge ``k``'s delay per root tuple (s) between two workers, the source's on
        board ``ns`` and the destination's on ``nd``."""
        net = self.net
        s, _d, rate, kappa, _kind = net.edges[k]
        topo = net.topos[net.ex_topo[s]]
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

    def board_slack(self, n: int) -> BoardSlack:
        """What of board ``n``'s latency terms a move onto it could at most take away
        (:mod:`squall.rebalance.latency_bound` reads it; the board is priced once more)."""
        detail = BoardSlack()
        self._board(n, detail)
        return detail

    def _board(self, n: int, detail: BoardSlack | None = None) -> tuple[dict[int, float], float]:
        """Board ``n``'s latency seconds per topology index (-1: its link queues) and its
        excess over the hard limits. The search's hot path: each worker's CPU is computed
        once, the lists are bound once, and sums run over a sorted order so the result is
        deterministic.

        Per worker, its time per root tuple: its visits (service and the wait for the
        worker's one thread), its items' wait in the batch before they are sent, and the
        wait for a CPU each time an item (or the spout's next emission) wakes it. The
        loop's own CPU (``o``) counts in the thread's utilisation but not as per-item
        time: most of it is spent waking for timers and heartbeats, not moving items
        (spread over items, it overestimated every measured point).

        With ``detail``, also fills in each worker's time and CPU, the board's
        utilisation, the quota's share and the link terms, in the same arithmetic."""
        members = self.on_node[n]
        if not members:
            return {}, 0.0
        net = self.net
        topos = net.topos
        worker_ids = self.worker_ids
        w_na, w_ak, w_nav, w_akv = self.w_na, self.w_ak, self.w_nav, self.w_akv
        w_cross, w_outk, w_ink, w_src = self.w_cross, self.w_outk, self.w_ink, self.w_src
        terms = net.terms[n]
        clock = terms.clock_hz
        order = sorted(members)
        cores = []
        for w in order:
            topo = topos[worker_ids[w][0]]
            cores.append((w_na[w] + w_ak[w] + topo.overhead_hz + topo.transfer_cycles * w_cross[w] / 2.0) / clock)
        rho_n = (sum(cores) + terms.background_cores) / terms.cores
        lat: dict[int, float] = {}
        stays: dict[int, float] = {}
        mem = 0.0
        wall = 1.0 / clock  # seconds per cycle of service
        wake_wait_s = terms.wake_wait_s
        for w, u in zip(order, cores):
            t = worker_ids[w][0]
            topo = topos[t]
            mem += topo.worker_mb
            value = worker_time(
                topo, wall, wake_wait_s, u, rho_n, w_na[w], w_nav[w], w_ak[w], w_akv[w], w_outk[w], w_ink[w]
            )
            lat[t] = lat.get(t, 0.0) + value
            if detail is not None:
                detail.time[w] = value
                detail.cores[w] = u
            if w_src[w] > 0:  # a root tuple's first stay is on its spout's board
                stays[t] = stays.get(t, 0.0) + w_src[w] / topo.source_rate
        share = throttle_share(terms, rho_n)
        if share > 0:
            entered = self.stays_in[n]
            for t in sorted(lat):
                lat[t] += throttle_delay(terms, share, stays.get(t, 0.0) + entered.get(t, 0.0), lat[t])
                if detail is not None:
                    detail.stays += stays.get(t, 0.0) + entered.get(t, 0.0)
        if terms.link_bps > 0:
            # Transmission and queueing on the board's link, each way; the edges' weights
            # (kappa) are summed over topologies, so the term is kept apart (-1).
            bits = self._mean_item_bits(n)
            for flow_bytes, kappa in ((self.out_bytes[n], self.out_kappa[n]), (self.in_bytes[n], self.in_kappa[n])):
                if kappa > 0:
                    lat[-1] = lat.get(-1, 0.0) + link_time(kappa, flow_bytes, bits, terms.link_bps)
            if detail is not None:
                detail.bits = bits
        if detail is not None:
            detail.rho = rho_n
            detail.share = share
            detail.link = lat.get(-1, 0.0)
        exc = max(0.0, rho_n - MAX_UTILISATION)
        if terms.memory_mb > 0:
            exc += max(0.0, mem - terms.memory_mb) / terms.memory_mb
        return lat, exc

    def _refresh(self, nodes: set[int], edges: Sequence[int]) -> None:
        """Re-price ``nodes`` (a move's two boards and those whose link flows it changed)
        and ``edges``. A board elsewhere keeps its terms: an edge from a moved executor to
        it crosses to it before and after, the same items and flows (taken away and added
        back, so equal up to float rounding)."""
        self.refreshed.update(nodes)
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
        self._edges(edges, -1)
        self._add_exec(g, old, -1)
        self.members[old].discard(g)
        if not self.w_count[old]:
            self.on_node[self.worker_node[old]].discard(old)
        self.exec_worker[g] = w
        self._add_exec(g, w, +1)
        self.members[w].add(g)
        self.on_node[self.worker_node[w]].add(w)
        self._edges(edges, +1)
        self._refresh(touched | self._links_changed(), edges)
        return old

    def move_worker(self, w: int, n: int) -> int:
        """Put worker ``w`` on board ``n``; returns its old board."""
        old = self.worker_node[w]
        if old == n:
            return old
        edges = self._worker_edges(w)
        touched = {old, n}
        self._edges(edges, -1)
        if old >= 0:
            self.on_node[old].discard(w)
        self.worker_node[w] = n
        if self.w_count[w] and n >= 0:
            self.on_node[n].add(w)
        self._edges(edges, +1)
        self._refresh(touched | self._links_changed(), edges)
        return old

    # -- pricing a move without keeping it ----------------------------------------------

    def price_executor_move(self, g: int, w: int, board: int = -1) -> tuple[float, float]:
        """The objective with executor ``g`` in worker ``w`` (an empty ``w`` first put on
        ``board``); the state is left exactly as it was.

        Trying a move by making it and making the reverse move cost as much again, and the
        reverse move's float sums only came back to the old values within rounding. Here
        every value the move can write is saved first and written back after: the
        aggregates of the workers at both ends of the executor's edges, the terms of their
        boards, the edges' delays and the totals."""
        return self.price_executor_move_at(g, w, board, -1)[0]

    def price_executor_move_at(
        self, g: int, w: int, board: int, watch: int
    ) -> tuple[tuple[float, float], tuple[float, float]]:
        """:meth:`price_executor_move`, and board ``watch``'s cached (latency, excess)
        terms with the move made ((0, 0) for ``watch`` -1): what that board gives."""
        old = self.exec_worker[g]
        if old == w:
            return self.objective(), (self.node_lat[watch], self.node_exc[watch]) if watch >= 0 else (0.0, 0.0)
        edges = self.net.adjacent[g]
        saved = self._save((old, w), board, edges)
        if board >= 0:
            self.move_worker(w, board)
        self.move_executor(g, w)
        value = self.objective()
        watched = (self.node_lat[watch], self.node_exc[watch]) if watch >= 0 else (0.0, 0.0)
        self._restore(saved)
        self.members[w].discard(g)
        self.members[old].add(g)
        self.exec_worker[g] = old
        return value, watched

    def price_worker_move(self, w: int, n: int) -> tuple[float, float]:
        """The objective with worker ``w`` on board ``n``; the state is left exactly as
        it was (see :meth:`price_executor_move`)."""
        if self.worker_node[w] == n:
            return self.objective()
        edges = self._worker_edges(w)
        saved = self._save((w,), n, edges)
        self.move_worker(w, n)
        value = self.objective()
        self._restore(saved)
        return value

    def _worker_edges(self, w: int) -> list[int]:
        adjacent = self.net.adjacent
        return sorted({k for g in self.members[w] for k in adjacent[g]})

    def _edge_workers(self, edges: Sequence[int]) -> set[int]:
        """The workers at either end of ``edges``."""
        ends = self.net.edge_ends
        exec_worker = self.exec_worker
        workers = set()
        for k in edges:
            s, d = ends[k]
            workers.add(exec_worker[s])
            workers.add(exec_worker[d])
        return workers

    def _save(self, movers: tuple[int, ...], board: int, edges: Sequence[int]) -> _Saved:
        """Every value a move of ``movers`` (workers that gain or lose an executor or
        change board; an empty one onto ``board``) over ``edges`` writes: all of the
        movers' aggregates and their boards' worker sets; the crossing terms of every
        worker at an end of ``edges``, and the flows and cached terms of their boards."""
        worker_node = self.worker_node
        w_cross, w_outk, w_ink = self.w_cross, self.w_outk, self.w_ink
        ends = self._edge_workers(edges)
        ends.update(movers)
        nodes = {worker_node[x] for x in ends}
        nodes.add(board)
        nodes.discard(-1)
        slots = {worker_node[x] for x in movers}
        slots.add(board)
        slots.discard(-1)
        per_mover = [
            (
                x,
                self.w_na[x],
                self.w_nav[x],
                self.w_ak[x],
                self.w_akv[x],
                self.w_src[x],
                self.w_count[x],
                worker_node[x],
            )
            for x in movers
        ]
        per_end = [(x, w_cross[x], w_outk[x], w_ink[x]) for x in ends]
        out_bytes, in_bytes, out_kappa, in_kappa = self.out_bytes, self.in_bytes, self.out_kappa, self.in_kappa
        stays_in, node_lat, node_exc = self.stays_in, self.node_lat, self.node_exc
        per_node = [
            (n, out_bytes[n], in_bytes[n], out_kappa[n], in_kappa[n], stays_in[n].copy(), node_lat[n], node_exc[n])
            for n in nodes
        ]
        per_slot = [(n, self.on_node[n].copy()) for n in slots]
        edge_lat = self.edge_lat
        per_edge = [(k, edge_lat[k]) for k in edges]
        return per_mover, per_end, per_node, per_slot, per_edge, self.total_lat, self.total_exc

    def _restore(self, saved: _Saved) -> None:
        per_mover, per_end, per_node, per_slot, per_edge, self.total_lat, self.total_exc = saved
        w_na, w_nav, w_ak, w_akv, w_src = self.w_na, self.w_nav, self.w_ak, self.w_akv, self.w_src
        w_count, worker_node = self.w_count, self.worker_node
        for x, na, nav, ak, akv, src, count, node in per_mover:
            w_na[x], w_nav[x], w_ak[x], w_akv[x], w_src[x], w_count[x], worker_node[x] = (
                na,
                nav,
                ak,
                akv,
                src,
                count,
                node,
            )
        w_cross, w_outk, w_ink = self.w_cross, self.w_outk, self.w_ink
        for x, cross, outk, ink in per_end:
            w_cross[x], w_outk[x], w_ink[x] = cross, outk, ink
        out_bytes, in_bytes, out_kappa, in_kappa = self.out_bytes, self.in_bytes, self.out_kappa, self.in_kappa
        stays_in, node_lat, node_exc = self.stays_in, self.node_lat, self.node_exc
        for n, ob, ib, ok, ik, stays, lat, exc in per_node:
            out_bytes[n], in_bytes[n], out_kappa[n], in_kappa[n] = ob, ib, ok, ik
            stays_in[n], node_lat[n], node_exc[n] = stays, lat, exc
        on_node = self.on_node
        for n, on in per_slot:
            on_node[n] = on
        edge_lat = self.edge_lat
        for k, value in per_edge:
            edge_lat[k] = value

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
