"""What the ``latency`` search's bounds read (:mod:`squall.rebalance.latency_bound`): an
executor's edges for its current placement, and per board the terms priced once and kept
until a move re-prices that board. The proof that the bounds are sound is in
:mod:`squall.rebalance.latency_bound`; this module only gathers and caches terms, it bounds
nothing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from squall.rebalance.latency_state import BoardSlack, State, link_time

# A skip needs the bound this far under the threshold (relative): rounding of the cached
# terms is ~1e-16 of them, so this keeps every skip sound with a wide margin.
MARGIN = 1e-6
# The objective's excess is rounded to 9 decimals: a rise of more than two steps of that
# rounding cannot round away.
EXCESS_STEP = 2e-9


class Removal(NamedTuple):
    """What moving an executor off its board to any other board does to that board
    (read from one exact trial: the same for every other board, see the module doc). A
    tuple: one is made per executor the search visits, and a frozen dataclass costs
    several times as much to make."""

    gain: float  # its latency term before less after
    excess: float  # its excess over the hard limits before
    excess_after: float  # ... and after


@dataclass(slots=True)
class ExecutorEdges:
    """Executor ``g``'s edges as the bound reads them, for its current placement
    (self-loops left out: they never cross a worker's boundary)."""

    rate_to: dict[int, float] = field(default_factory=dict)  # worker -> items/s to and from g
    out_to: dict[int, float] = field(default_factory=dict)  # worker -> rate x weight from g
    in_from: dict[int, float] = field(default_factory=dict)  # worker -> rate x weight into g
    g: int = -1  # the executor, and the state whose placement :attr:`hops` is made from
    state: State | None = None
    # The hops with the other end's board, the hop's transfer delay there when g is the
    # source (else 0) and that board's link delay: what every refined gain reads per hop.
    # Built by GainBound.hops_after on its first call for g (most executors need none).
    far: list[tuple[int, int, bool, float, float, int, float, float]] | None = None
    rate: float = 0.0  # items/s on g's edges
    out: float = 0.0  # rate x weight of g's edges out
    into: float = 0.0  # ... and in
    bytes_out: float = 0.0  # bytes/s of g's edges out
    bytes_in: float = 0.0  # ... and in
    delays: float = 0.0  # g's edges' current delays
    # GainBound._with_board for g's own board (removal's link terms read it), made in the
    # same pass.
    own: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    made: list[tuple[int, int, bool, float, float]] | None = None

    @property
    def hops(self) -> list[tuple[int, int, bool, float, float]]:
        """(edge, the other end's worker, g the source, rate x weight, bytes/s) per hop, in
        the adjacency's order; made on the first read (most visits never read it: a bound
        in its loose form needs only the sums), against the placement of the visit (a
        trial move leaves it as it was)."""
        if self.made is None:
            assert self.state is not None
            g, net, ew = self.g, self.state.net, self.state.exec_worker
            made = []
            for k in net.adjacent[g]:
                s, d, _rate, rk, item_bytes, _t = net.edge_terms[k]
                if s != d:
                    made.append((k, ew[d], True, rk, item_bytes) if s == g else (k, ew[s], False, rk, item_bytes))
            self.made = made
        return self.made


class BoundTerms:
    """The terms every bound reads, against one state: per board its
    :meth:`State.board_slack` (priced once, kept until a move is taken: a trial move leaves
    the state exactly as it was), an executor's edges (:meth:`edges_of`) and a board's link
    terms after a move (:meth:`_links_after`). :meth:`forget` the boards a move changed."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._boards: dict[int, BoardSlack] = {}
        # Per board what removal(quick=True) reads (see there), kept and dropped with _boards.
        self._quick: dict[int, dict[int, tuple[float, float]]] = {}
        self._drop: list[float] | None = None  # per executor: see _quick_board
        self._batch: dict[int, dict[int, float]] = {}  # per board: see _batches
        self.removal_rho = 0.0  # the board's utilisation after, of the last removal()
        self.skipped = 0  # trial moves skipped, for the benchmarks' and tests' counts
        self.excess_skips = 0  # skips() answers True because a board's excess rises (tests)

    def forget(self, boards: Iterable[int] | None = None) -> None:
        """Drop the terms kept for ``boards`` (all when None): those a move re-priced
        (:attr:`State.refreshed`). Another board's terms are unchanged by the move up to
        float rounding (:meth:`State._refresh`), far under the ``MARGIN`` a skip needs."""
        if boards is None:
            self._boards.clear()
            self._quick.clear()
            self._batch.clear()
            return
        for n in boards:
            self._boards.pop(n, None)
            self._quick.pop(n, None)
            self._batch.pop(n, None)

    def _board(self, n: int) -> BoardSlack:
        board = self._boards.get(n)
        if board is None:
            board = self._boards[n] = self.state.board_slack(n)
        return board

    def edges_of(self, g: int) -> ExecutorEdges:
        """``g``'s edges as :class:`ExecutorEdges` for the current placement: one pass over
        its adjacency, every sum in the adjacency's order (the search's per-executor
        set-up; the sums are kept in locals and the record made once at the end; the
        per-hop tuples are made only if read, :attr:`ExecutorEdges.hops`)."""
        state = self.state
        net = state.net
        exec_worker, worker_node, edge_lat, edge_terms = (
            state.exec_worker,
            state.worker_node,
            state.edge_lat,
            net.edge_terms,
        )
        a = worker_node[exec_worker[g]]
        rate_to: dict[int, float] = {}
        out_to: dict[int, float] = {}
        in_from: dict[int, float] = {}
        delays = rate_sum = out_sum = into = bytes_out = bytes_in = 0.0
        to_a = from_a = bytes_to_a = bytes_from_a = 0.0  # with executors on g's board
        for k in net.adjacent[g]:
            delays += edge_lat[k]
            s, d, rate, rk, item_bytes, _t = edge_terms[k]
            if s == d:
                continue
            rate_sum += rate
            if s == g:
                other = exec_worker[d]
                out_to[other] = out_to.get(other, 0.0) + rk
                out_sum += rk
                bytes_out += item_bytes
                if worker_node[other] == a:
                    to_a += rk
                    bytes_to_a += item_bytes
            else:
                other = exec_worker[s]
                in_from[other] = in_from.get(other, 0.0) + rk
                into += rk
                bytes_in += item_bytes
                if worker_node[other] == a:
                    from_a += rk
                    bytes_from_a += item_bytes
            rate_to[other] = rate_to.get(other, 0.0) + rate
        own = (to_a, from_a, bytes_to_a, bytes_from_a)
        return ExecutorEdges(
            rate_to, out_to, in_from, g, state, None, rate_sum, out_sum, into, bytes_out, bytes_in, delays, own
        )

    def _links_after(
        self,
        n: int,
        board: BoardSlack,
        edges: ExecutorEdges,
        arrives: bool,
        with_board: tuple[float, float, float, float] | None = None,
    ) -> float:
        """Board ``n``'s link terms once ``g`` arrives on it (``arrives``) or leaves it for
        another board: its edges to and from boards other than ``n`` start (or stop)
        using ``n``'s link, those to and from ``n`` stop (or start). ``with_board``:
        :meth:`_with_board` for ``n``, when the caller has it."""
        state = self.state
        link_bps = state.net.terms[n].link_bps
        if link_bps <= 0:
            return 0.0
        sign = 1.0 if arrives else -1.0
        to_n, from_n, bytes_to_n, bytes_from_n = with_board or self._with_board(n, edges)
        out_kappa = state.out_kappa[n] + sign * (edges.out - to_n - from_n)
        out_bytes = state.out_bytes[n] + sign * (edges.bytes_out - bytes_to_n - bytes_from_n)
        in_kappa = state.in_kappa[n] + sign * (edges.into - from_n - to_n)
        in_bytes = state.in_bytes[n] + sign * (edges.bytes_in - bytes_from_n - bytes_to_n)
        total = 0.0
        for flow_bytes, kappa in ((out_bytes, out_kappa), (in_bytes, in_kappa)):
            if kappa > 0:
                total += link_time(kappa, max(0.0, flow_bytes), board.bits, link_bps)
        return total

    def _with_board(self, n: int, edges: ExecutorEdges) -> tuple[float, float, float, float]:
        """(rate x weight from g, into g, bytes/s from g, into g) of g's edges with
        executors on board ``n``."""
        to_n = from_n = bytes_to_n = bytes_from_n = 0.0
        worker_node = self.state.worker_node
        for _k, other, out, rk, item_bytes in edges.hops:
            if worker_node[other] == n:
                if out:
                    to_n += rk
                    bytes_to_n += item_bytes
                else:
                    from_n += rk
                    bytes_from_n += item_bytes
        return to_n, from_n, bytes_to_n, bytes_from_n
