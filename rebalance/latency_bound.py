"""An upper bound on what moving one executor can gain, so the ``latency`` search skips
the trial moves it could never take (:func:`squall.rebalance.latency_search._improve`).

At 10,000 executors the search priced 55,475 trial moves and took 70: nearly all of its
time confirmed that the seed is locally best. A move is taken only if it saves more than
``IMPROVEMENT`` of the predicted latency (and the placement is within the hard limits);
a trial whose gain provably cannot reach that is skipped, unpriced.

**Why the bound is sound.** Moving executor ``g`` from worker ``A`` on board ``a`` to a
placed worker ``B`` on another board ``b`` re-prices board ``a``, board ``b`` and ``g``'s
edges, and nothing else: a third board ``c`` holding a neighbour ``h`` of ``g`` sees the
edge ``g``-``h`` cross from ``a`` to ``c`` before and from ``b`` to ``c`` after — the same
crossing items, link flows and stays for ``c``'s workers. So the gain is
``(L_a - L_a') + (L_b - L_b') + sum over g's edges (e_k - e_k')``, and:

* ``L_a - L_a'`` (board ``a``) is the same for every ``b != a``: with ``g`` gone, ``a``'s
  workers, flows and stays do not depend on where ``g`` went. :meth:`GainBound.removal`
  bounds it without pricing a move: ``L_a`` less a lower bound on ``L_a'`` — every worker's
  time at ``a``'s utilisation after the move (``A``'s with ``g`` taken out of its
  aggregates, the others' unchanged), the quota's stops on them at the share after, and
  on the stays after, at least the stays now less ``g``'s as a spout and all its items
  in (leaving, ``g`` ends no other stay on ``a``), plus the link terms after. When that
  is not enough the search prices one move of ``g`` off its board exactly and reads the
  gain there (:meth:`State.price_executor_move_at`).
* ``e_k' >= 0``, so the edges give at most their current delays; when that is not enough
  the delays after are computed (:meth:`State.hop_delay`).
* Board ``b``: if ``B``'s CPU does not fall (``g``'s cycles at least pay for the crossing
  items that become internal to ``B``: ``c_g + transfer x (T_g - 2 r_B) / 2 >= 0``, with
  ``T_g`` the items/s on ``g``'s edges and ``r_B`` those to executors in ``B``), the board's
  utilisation does not fall either, and every other worker on ``b`` keeps its aggregates,
  so its time (queue wait and batching wait both grow with utilisation) does not fall. Per
  topology ``t`` the board's term is ``(1 + f) W_t + f x wait_full x S_t`` plus the link
  terms, with the quota's share ``f`` non-decreasing in utilisation and ``W_t, S_t >= 0``;
  hence ``L_b - L_b' <= (1 + f) x (time_B - time_B') + f x wait_full x E_b + links_b -
  links_b'``, where ``time_B'`` is ``B``'s time with ``g`` in it (the model's own
  :func:`worker_time` on ``B``'s aggregates after the move), ``E_b`` the rate x weight from
  ``g`` to executors on ``b`` (the only stays on ``b`` that can end: ``g`` no longer enters
  ``b`` from outside; at most all of ``g``'s) and ``links_b'`` the link terms after (>= 0).

Each bound is first taken in its cheap form (what cannot be negative after left out) and
refined only when that form is not enough to skip the move.

**Above the hard limits** the search takes any move that lowers the excess. Under the same
premise board ``b``'s excess cannot fall (its utilisation does not, its workers stay), and
board ``a``'s excess after the move is, like its latency term, the same for every ``b != a``
(read from the same trial; or known to be 0, with no trial, when ``a`` is within the limits
now and its utilisation after, :meth:`GainBound.removal`'s, is under the limit by the margin:
its memory cannot grow, see :meth:`GainBound.removal_within_limits`). Board ``b``'s excess
rises by at least ``max(0, rho_b' - limit) - max(0, rho_b - limit)`` (its memory is the
same: ``B`` is placed before and after), with ``rho_b'`` :meth:`GainBound.gain`'s
utilisation after. So a move is skipped if it raises the two boards' excess together by
more than the objective's rounding of it (``b`` already above the limit and the move adds
more there than it takes off ``a``: a move the search could never take, since the excess
comes first), or if neither board breaks a limit before or after (the excess is then unchanged: the sums add
exact zeros) and the latency bound holds. (One
limit: a board the move does not touch is still re-priced when float rounding leaves its
link flows changed by more than 1e-12 items/s; its excess can then move in its last bits,
and if that crosses the objective's 9th decimal the unpruned search would take the move
for an "improvement" made of rounding. The latency bound within the limits has no such case:
an excess that rounds to 0 cannot fall.)

A move to another worker on ``g``'s own board is bounded apart
(:meth:`GainBound.within_board`: only that board and ``g``'s edges change): within the hard
limits, and above them when that board is within them now — its excess is 0 now and at
least 0 after, and no other board's changes, so the move cannot lower the objective's
excess (the same rounding limit as above) and the latency bound decides. When any premise
fails (an empty worker, ``B``'s CPU would fall) no bound is
given and the move is priced exactly. A skipped move could not have been taken, nor have
become the best candidate, so the search takes the same moves in the same order and returns
the same placement (a test compares it with the unpruned search on random workloads, and
checks the bound against every exact price). The bound is computed in floats from the same
cached terms; a skip also needs a margin of a millionth of the threshold, far above their
rounding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from squall.rebalance.latency import MAX_UTILISATION, SATURATED, throttle_share
from squall.rebalance.latency_state import BoardSlack, State, link_time, worker_time

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


class GainBound:
    """Bounds on trial moves against one state; :meth:`forget` the boards a move changed.

    Per board its terms are priced once (:meth:`State.board_slack`) and kept until a move
    is taken: a trial move leaves the state exactly as it was."""

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

    def _far(self, g: int, edges: ExecutorEdges) -> list[tuple[int, int, bool, float, float, int, float, float]]:
        """``edges.hops`` with what :meth:`hops_after` reads of the other end per hop (see
        :class:`ExecutorEdges`), read once per executor rather than once per candidate."""
        net = self.state.net
        worker_node, terms = self.state.worker_node, net.terms
        transfer = net.topos[net.ex_topo[g]].transfer_cycles  # g's edges are its topology's
        far = []
        for k, other, out, rk, item_bytes in edges.hops:
            there = worker_node[other]
            there_terms = terms[there]
            delay = transfer / there_terms.clock_hz if out else 0.0
            far.append((k, other, out, rk, item_bytes, there, delay, there_terms.link_delay_s))
        edges.far = far
        return far

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

    def hops_after(self, g: int, w: int, edges: ExecutorEdges) -> tuple[tuple[float, float, float, float], float]:
        """(:meth:`_with_board` for ``w``'s board ``b``, the delays of ``g``'s edges with
        ``g`` in ``w``), in one pass over ``g``'s hops. Each delay is
        :meth:`State.hop_delay`'s float expression written out (``rate x kappa`` is the
        hop's ``rk``), summed in the hops' order, so the values are the same floats."""
        state = self.state
        net = state.net
        b = state.worker_node[w]
        terms_b = net.terms[b]
        link_b = terms_b.link_delay_s
        # An edge into g (on b): its delay at the destination's clock, b's.
        into_b = net.topos[net.ex_topo[g]].transfer_cycles / terms_b.clock_hz
        to_b = from_b = bytes_to_b = bytes_from_b = 0.0
        delays = 0.0  # none to executors in w
        far = edges.far if edges.far is not None else self._far(g, edges)
        for _k, other, out, rk, item_bytes, there, out_delay, link_there in far:
            if there == b:
                if out:
                    to_b += rk
                    bytes_to_b += item_bytes
                else:
                    from_b += rk
                    bytes_from_b += item_bytes
            if other != w:
                # g the source: the transfer at the other end's clock (_far has it).
                delay = out_delay if out else into_b
                if there != b:
                    delay += (link_b + link_there) / 2.0  # (a sum of two floats: either order)
                delays += rk * delay
        return (to_b, from_b, bytes_to_b, bytes_from_b), delays

    def skips(
        self, g: int, w: int, removal: Removal, edges: ExecutorEdges, current: tuple[float, float], improvement: float
    ) -> bool:
        """Whether moving ``g`` to worker ``w`` provably cannot be taken by a search at
        objective ``current`` that asks a move to save ``improvement`` of the latency
        (see the module docstring; False when it cannot tell)."""
        limit = current[1] * improvement * (1.0 - MARGIN)
        a = self.state.worker_node[self.state.exec_worker[g]]
        if self.state.worker_node[w] == a:
            if current[0] != 0.0 and self.state.node_exc[a] != 0.0:
                return False  # the move could lower the board's excess: priced exactly
            # Above the limits elsewhere, a board within them now cannot lower the excess
            # (0 now, at least 0 after; no other board is re-priced): the latency decides.
            within = self.within_board(g, w, edges, limit)
            return within is not None and within <= limit
        if current[0] == 0.0 and self.cheap_gain(g, w, removal.gain, edges, limit):
            return True
        found = self.gain(g, w, removal.gain, edges, limit)
        if found is None:
            return False
        most, rho_after = found
        if current[0] == 0.0:
            return most <= limit
        rise = removal.excess_after - removal.excess  # g's own board's excess, after less before
        if rise > EXCESS_STEP:
            self.excess_skips += 1
            return True  # g's own board breaks the limits by more; w's cannot make up for it
        # w's board: its utilisation does not fall (gain's premise) and its memory does not
        # change (w is placed), so its excess rises by at least its utilisation's excess.
        rho_before = self._boards[self.state.worker_node[w]].rho
        rise += max(0.0, rho_after - MAX_UTILISATION) - max(0.0, rho_before - MAX_UTILISATION)
        if rise > EXCESS_STEP:
            self.excess_skips += 1
            return True  # w's board goes further above the limits than g's comes down
        return (
            removal.excess == 0.0 == removal.excess_after
            and self.state.node_exc[self.state.worker_node[w]] == 0.0
            and rho_after <= MAX_UTILISATION * (1.0 - MARGIN)
            and most <= limit
        )

    def _board(self, n: int) -> BoardSlack:
        board = self._boards.get(n)
        if board is None:
            board = self._boards[n] = self.state.board_slack(n)
        return board

    def removal(self, g: int, edges: ExecutorEdges, quick: bool = False) -> float:
        """An upper bound on what moving ``g`` off its board, to any other board, saves on
        that board (s), without pricing the move: the board's latency term now less the
        sum of its workers' times after — each at the board's utilisation after, ``g``'s
        worker with ``g`` taken out of its aggregates (as :meth:`gain` puts it in) — and of
        the quota's stops after at the share after, on those times and on a lower bound of
        the stays after (see there); the link terms after are left out when ``g``'s worker
        empties. The search prices the exact trial when this is not enough.

        With ``quick`` a looser bound that prices one worker instead of every worker of
        the board: ``g``'s worker after as above, the others at a utilisation ``rho_y``
        no higher than the board's after the move (:meth:`_quick_board`, made once per
        board and worker ``y`` and kept until a move re-prices the board), the quota's
        share at ``rho_y``; the stays and link terms as above. A worker's time does not
        fall with its board's utilisation (its queue and batching waits grow with it),
        nor does the share, and the stays' term is at least 0, so what is subtracted is
        no more than without ``quick``: the bound is at least that one."""
        state = self.state
        net = state.net
        mine = state.exec_worker[g]
        a = state.worker_node[mine]
        board = self._board(a)
        terms = net.terms[a]
        wall = 1.0 / terms.clock_hz
        u_mine, after = 0.0, 0.0  # g's worker empties: it is no longer on the board
        if state.w_count[mine] > 1:
            topo = net.topos[state.worker_ids[mine][0]]
            na, nav, ak, akv = state.w_na[mine], state.w_nav[mine], state.w_ak[mine], state.w_akv[mine]
            if net.ex_acker[g]:
                ak -= net.ex_cycles[g]
                akv -= net.ex_rate[g]
            else:
                na -= net.ex_cycles[g]
                nav -= net.ex_rate[g]
            inside = edges.rate_to.get(mine, 0.0)
            cross = state.w_cross[mine] - edges.rate + 2.0 * inside
            u_mine = (na + ak + topo.overhead_hz + topo.transfer_cycles * cross / 2.0) / terms.clock_hz
            out_mine, in_mine = edges.out_to.get(mine, 0.0), edges.in_from.get(mine, 0.0)
            outk = state.w_outk[mine] - (edges.out - out_mine) + in_mine
            ink = state.w_ink[mine] - (edges.into - in_mine) + out_mine
        rho = board.rho + (u_mine - board.cores[mine]) / terms.cores
        self.removal_rho = rho
        if state.w_count[mine] > 1:
            after = worker_time(topo, wall, terms.wake_wait_s, u_mine, rho, na, nav, ak, akv, outk, ink)
        if quick:
            table = self._quick.get(a)
            if table is None:
                table = self._quick_board(a)
            share, others = table[mine]
            after += others
        else:
            topos, worker_ids = net.topos, state.worker_ids
            w_na, w_nav, w_ak, w_akv = state.w_na, state.w_nav, state.w_ak, state.w_akv
            w_outk, w_ink = state.w_outk, state.w_ink
            for x, u in board.cores.items():
                if x != mine:
                    after += worker_time(
                        topos[worker_ids[x][0]],
                        wall,
                        terms.wake_wait_s,
                        u,
                        rho,
                        w_na[x],
                        w_nav[x],
                        w_ak[x],
                        w_akv[x],
                        w_outk[x],
                        w_ink[x],
                    )
            share = throttle_share(terms, rho)
        if share > 0:
            # The quota's stops after: (1 + f') W' + f' x wait_full x S', with S' at least
            # the stays now less g's own as a spout and all its items in (g leaving the
            # board ends no other stay; the stays it starts there are left out).
            spout = net.ex_rate[g] / net.topos[net.ex_topo[g]].source_rate if net.ex_source[g] else 0.0
            stays = max(0.0, board.stays - spout - edges.into)
            after += share * (after + terms.throttle_wait_full_s * stays)
        if state.w_count[mine] > 1:  # (an emptied worker could change the size of an item on the link)
            after += self._links_after(a, board, edges, arrives=False, with_board=edges.own)
        return state.node_lat[a] - after

    def _quick_board(self, n: int) -> dict[int, tuple[float, float]]:
        """Per worker ``y`` of board ``n``: (the quota's share at ``rho_y``, the sum over
        the board's other workers ``x`` of ``T_x(rho_y)``), with ``rho_y`` at most the
        board's utilisation after any one executor of ``y`` leaves it (see
        :meth:`removal`'s ``quick``). ``y``'s CPU falls by at most its own (it empties)
        and, when it keeps a member, by at most ``max over its executors h of (c_h +
        transfer x R_h / 2) / clock`` (``c_h`` its cycles/s, ``R_h`` the items/s on its
        edges: ``y``'s crossing items fall by at most ``R_h``); no other worker's CPU
        changes."""
        state = self.state
        net = state.net
        board = self._board(n)
        terms = net.terms[n]
        drops = self._drop
        if drops is None:
            drops = self._drop = [
                cycles + net.topos[t].transfer_cycles * rate / 2.0
                for cycles, t, rate in zip(net.ex_cycles, net.ex_topo, net.edge_rates())
            ]
        clock = terms.clock_hz
        wall = 1.0 / clock
        topos, worker_ids, members, w_count = net.topos, state.worker_ids, state.members, state.w_count
        w_na, w_nav, w_ak, w_akv, w_outk, w_ink = (
            state.w_na,
            state.w_nav,
            state.w_ak,
            state.w_akv,
            state.w_outk,
            state.w_ink,
        )
        table: dict[int, tuple[float, float]] = {}
        for y, u_y in board.cores.items():
            drop = u_y
            if w_count[y] > 1:
                worst = max(drops[h] for h in members[y]) / clock
                if worst < drop:
                    drop = worst
            rho = board.rho - drop / terms.cores
            others = 0.0
            for x, u in board.cores.items():
                if x != y:
                    others += worker_time(
                        topos[worker_ids[x][0]],
                        wall,
                        terms.wake_wait_s,
                        u,
                        rho,
                        w_na[x],
                        w_nav[x],
                        w_ak[x],
                        w_akv[x],
                        w_outk[x],
                        w_ink[x],
                    )
            table[y] = (throttle_share(terms, rho), others)
        self._quick[n] = table
        return table

    def removal_within_limits(self, g: int, edges: ExecutorEdges) -> Removal | None:
        """:meth:`removal` with the board's excess before and after, for a search above
        the hard limits: both 0 when ``g``'s board is within them now (utilisation and
        memory) and its utilisation after, :meth:`removal`'s, is below the limit by the
        margin (its memory cannot grow: it keeps its workers or loses one). Else None,
        and the search reads them from an exact trial."""
        state = self.state
        gain = self.removal(g, edges)
        if state.node_exc[state.worker_node[state.exec_worker[g]]] != 0.0:
            return None
        if self.removal_rho > MAX_UTILISATION * (1.0 - MARGIN):
            return None
        return Removal(gain, 0.0, 0.0)

    def cheap_gain(self, g: int, w: int, removal: float, edges: ExecutorEdges, enough: float) -> bool:
        """Whether a bound no lower than :meth:`gain`'s first (loose) form, and made without
        pricing ``w`` after the move, is at most ``enough`` (False when it cannot tell: the
        search then asks :meth:`gain`).

        Why it is sound: under :meth:`gain`'s premises (``w`` placed on another board, its
        CPU not falling), with no acker executor in ``w`` nor ``g`` an acker, ``w``'s
        service and queue wait per root tuple, ``(na (1 + h(busy)) x wall) / source_rate``
        (its visits' mean service times their number is ``na x wall``; ``h`` increasing),
        do not fall: ``na`` grows by ``g``'s cycles and ``busy`` by the premise. Its
        batching wait is at least 0 after and its wake-up waits fall by at most those of
        the items from ``w`` to ``g`` (``out_w``: internal after; ``g``'s other items in
        become ``w``'s). So ``w``'s time falls by at most its batching wait now plus
        ``out_w x wake_wait``, and :meth:`gain`'s ``(1 + f) (before - after)`` by at most
        ``(1 + f)`` times that; the loose form's other terms are taken as they are."""
        if removal + edges.delays > enough:
            return False  # every other term is at least 0: it cannot tell (1,000 executors, mostly)
        state = self.state
        net = state.net
        b = state.worker_node[w]
        if b < 0 or b == state.worker_node[state.exec_worker[g]] or net.ex_acker[g]:
            return False
        if state.w_akv[w] != 0.0 or state.w_ak[w] != 0.0:
            return False
        batches = self._batch.get(b)
        if batches is None:
            batches = self._batches(b)
        batch = batches.get(w)
        if batch is None:
            return False
        board = self._boards[b]  # made by _batches
        terms = net.terms[b]
        share = board.share
        # The loose form of gain() with w's time after bounded as above.
        most = (
            removal
            + (1.0 + share) * (batch + edges.out_to.get(w, 0.0) * terms.wake_wait_s)
            + share * terms.throttle_wait_full_s * edges.out
            + board.link
            + edges.delays
        )
        if most > enough:
            return False
        # gain()'s premise: w's CPU does not fall (then neither do the board's utilisation
        # and its other workers' waits), as gain() computes it.
        topo = net.topos[state.worker_ids[w][0]]
        cross = state.w_cross[w] + edges.rate - 2.0 * edges.rate_to.get(w, 0.0)
        na = state.w_na[w] + net.ex_cycles[g]
        u = (na + state.w_ak[w] + topo.overhead_hz + topo.transfer_cycles * cross / 2.0) / terms.clock_hz
        return u >= board.cores[w]

    def _batches(self, n: int) -> dict[int, float]:
        """Per placed worker of board ``n`` its batching wait per root tuple now, as
        :func:`worker_time` prices it (kept with the board's terms: :meth:`forget`)."""
        state = self.state
        net = state.net
        board = self._board(n)
        terms = net.terms[n]
        wall = 1.0 / terms.clock_hz
        out: dict[int, float] = {}
        for x, u in board.cores.items():
            visits = state.w_nav[x] + state.w_akv[x]
            flush_s = net.topos[state.worker_ids[x][0]].flush_s
            outk = state.w_outk[x]
            if visits <= 0 or outk <= 0 or flush_s <= 0:
                out[x] = 0.0
                continue
            busy = u if u > board.rho else board.rho
            busy = min(max(busy, 0.0), SATURATED)
            batched = busy / (1.0 - busy) * ((state.w_na[x] + state.w_ak[x]) * wall / visits)
            out[x] = outk * (flush_s if batched > flush_s else batched)
        self._batch[n] = out
        return out

    def gain(
        self, g: int, w: int, removal: float, edges: ExecutorEdges, enough: float = -math.inf
    ) -> tuple[float, float] | None:
        """(An upper bound on the latency (s) moving ``g`` to the placed worker ``w`` on
        another board saves, given ``removal``, a bound on the gain on ``g``'s board of
        moving it off that board; ``w``'s board's utilisation after the move), or None
        when the premises of the module's proof do not hold. A looser bound is returned
        as soon as it is at most ``enough``."""
        state = self.state
        net = state.net
        b = state.worker_node[w]
        if b < 0 or b == state.worker_node[state.exec_worker[g]]:
            return None
        board = self._boards.get(b)
        if board is None:
            board = self._board(b)
        before = board.time.get(w)
        if before is None:
            return None
        terms = net.terms[b]
        topo = net.topos[state.worker_ids[w][0]]
        # w's aggregates with g in it (the model's sums, as State.move_executor makes them).
        na, nav, ak, akv = state.w_na[w], state.w_nav[w], state.w_ak[w], state.w_akv[w]
        if net.ex_acker[g]:
            ak += net.ex_cycles[g]
            akv += net.ex_rate[g]
        else:
            na += net.ex_cycles[g]
            nav += net.ex_rate[g]
        inside = edges.rate_to.get(w, 0.0)
        cross = state.w_cross[w] + edges.rate - 2.0 * inside
        u = (na + ak + topo.overhead_hz + topo.transfer_cycles * cross / 2.0) / terms.clock_hz
        u_before = board.cores[w]
        if u < u_before:
            return None  # w's CPU falls: so could the board's, and its other workers' waits
        rho = board.rho + (u - u_before) / terms.cores
        out_w, in_w = edges.out_to.get(w, 0.0), edges.in_from.get(w, 0.0)
        outk = state.w_outk[w] - in_w + edges.out - out_w
        ink = state.w_ink[w] - out_w + edges.into - in_w
        after = worker_time(topo, 1.0 / terms.clock_hz, terms.wake_wait_s, u, rho, na, nav, ak, akv, outk, ink)
        share = board.share
        wait_full = terms.throttle_wait_full_s
        on_b = (1.0 + share) * (before - after)
        # First with what cannot be negative after the move left out (the stays that end
        # counted as all of g's items out, the link terms and g's edges' delays after):
        # enough for most moves, and cheap.
        loose = removal + on_b + share * wait_full * edges.out + board.link + edges.delays
        if loose <= enough:
            return loose, rho
        with_b, delays = self.hops_after(g, w, edges)  # delays: g's edges' after the move
        stays = share * wait_full * with_b[0]
        # Then with the stays and delays after, the link terms after still left out.
        without_links = removal + on_b + stays + board.link + edges.delays - delays
        if without_links <= enough:
            return without_links, rho
        links = board.link - self._links_after(b, board, edges, arrives=True, with_board=with_b)
        return removal + on_b + stays + links + edges.delays - delays, rho

    def within_board(self, g: int, w: int, edges: ExecutorEdges, enough: float = -math.inf) -> float | None:
        """An upper bound on the latency (s) moving ``g`` to the placed worker ``w`` on its
        own board saves, or None when ``w`` is not a placed worker of ``g``'s topology there. A looser bound
        is returned as soon as it is at most ``enough``.

        Why it is sound: only board ``a`` and ``g``'s edges are re-priced. Every edge of
        ``g`` to another board still crosses between the same two boards, so no board's
        link flows, and no board's stays entered from outside, change; on ``a`` only
        ``g``'s worker ``A`` and ``w`` change their aggregates (an edge to a third worker
        crosses before and after), and the spouts' stays move between two workers of one
        topology (their sum ``S_t`` is unchanged). So with ``W``/``W'`` the sum of ``a``'s
        workers' times before/after (after: the model's :func:`worker_time` on ``A`` and
        ``w``'s aggregates after, every worker at the utilisation after) and ``f``/``f'``
        the quota's share before/after, ``L_a = (1 + f) W + f x wait_full x S + links``
        and ``L_a' = (1 + f') W' + f' x wait_full x S + links'``. If ``f' >= f`` the gain
        on ``a`` is at most ``(1 + f) W - (1 + f') W' + links - links'``, else at most
        ``L_a - (1 + f') W' - links'`` (``f' x wait_full x S >= 0`` left out); ``links'``
        is ``links`` while ``A`` keeps a member (the board's workers, so its item size,
        are the same) and taken as 0 when ``A`` empties. ``g``'s edges save the delays of
        those to ``w`` (internal after) and pay those to ``A`` (crossing after); the
        others keep theirs. Within the hard limits that is all a move can gain, so the
        search reads it only there (above them it prices the move)."""
        state = self.state
        net = state.net
        mine = state.exec_worker[g]
        a = state.worker_node[mine]
        if w == mine or state.worker_node[w] != a or state.worker_ids[w][0] != net.ex_topo[g]:
            return None
        board = self._board(a)
        if w not in board.time:
            return None
        terms = net.terms[a]
        wall = 1.0 / terms.clock_hz
        acker, cycles, rate = net.ex_acker[g], net.ex_cycles[g], net.ex_rate[g]
        rate_to, out_to, in_from = edges.rate_to, edges.out_to, edges.in_from
        topos, worker_ids = net.topos, state.worker_ids
        # w with g in it (as GainBound.gain puts it in).
        topo_w = topos[worker_ids[w][0]]
        na, nav, ak, akv = state.w_na[w], state.w_nav[w], state.w_ak[w], state.w_akv[w]
        if acker:
            ak += cycles
            akv += rate
        else:
            na += cycles
            nav += rate
        cross = state.w_cross[w] + edges.rate - 2.0 * rate_to.get(w, 0.0)
        u_w = (na + ak + topo_w.overhead_hz + topo_w.transfer_cycles * cross / 2.0) / terms.clock_hz
        outk = state.w_outk[w] - in_from.get(w, 0.0) + edges.out - out_to.get(w, 0.0)
        ink = state.w_ink[w] - out_to.get(w, 0.0) + edges.into - in_from.get(w, 0.0)
        after_w = (na, nav, ak, akv, outk, ink)
        # g's worker without it (as GainBound.removal takes it out); emptied: off the board.
        keeps = state.w_count[mine] > 1
        u_mine = 0.0
        after_mine = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        if keeps:
            topo_m = topos[worker_ids[mine][0]]
            na, nav, ak, akv = state.w_na[mine], state.w_nav[mine], state.w_ak[mine], state.w_akv[mine]
            if acker:
                ak -= cycles
                akv -= rate
            else:
                na -= cycles
                nav -= rate
            cross = state.w_cross[mine] - edges.rate + 2.0 * rate_to.get(mine, 0.0)
            u_mine = (na + ak + topo_m.overhead_hz + topo_m.transfer_cycles * cross / 2.0) / terms.clock_hz
            outk = state.w_outk[mine] - (edges.out - out_to.get(mine, 0.0)) + in_from.get(mine, 0.0)
            ink = state.w_ink[mine] - (edges.into - in_from.get(mine, 0.0)) + out_to.get(mine, 0.0)
            after_mine = (na, nav, ak, akv, outk, ink)
        rho = board.rho + (u_mine - board.cores[mine] + u_w - board.cores[w]) / terms.cores
        w_na, w_nav, w_ak, w_akv = state.w_na, state.w_nav, state.w_ak, state.w_akv
        w_outk, w_ink = state.w_outk, state.w_ink
        after = 0.0  # W'
        for x, u in board.cores.items():
            if x == w:
                u, aggregates = u_w, after_w
            elif x == mine:
                if not keeps:
                    continue
                u, aggregates = u_mine, after_mine
            else:
                aggregates = (w_na[x], w_nav[x], w_ak[x], w_akv[x], w_outk[x], w_ink[x])
            after += worker_time(topos[worker_ids[x][0]], wall, terms.wake_wait_s, u, rho, *aggregates)
        share = throttle_share(terms, rho)
        links_after = board.link if keeps else 0.0
        if share >= board.share:
            on_a = (1.0 + board.share) * sum(board.time.values()) - (1.0 + share) * after
            on_a += board.link - links_after
        else:
            on_a = state.node_lat[a] - (1.0 + share) * after - links_after
        edge_lat = state.edge_lat
        saved = 0.0  # the delays of g's edges to w: internal after the move
        for k, other, _out, _rk, _bytes in edges.hops:
            if other == w:
                saved += edge_lat[k]
        if on_a + saved <= enough:
            return on_a + saved
        paid = 0.0  # ... less those of its edges to its own worker: crossing after
        for k, other, _out, _rk, _bytes in edges.hops:
            if other == mine:
                paid += state.hop_delay(k, a, a)
        return on_a + saved - paid
