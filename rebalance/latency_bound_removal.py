"""The ``latency`` search's bounds on board ``a``'s side of a move: what moving an executor
off its board saves there (:meth:`RemovalBounds.removal`, in a quick and an exact-per-worker
form), and what a move to another worker on its own board can save
(:meth:`RemovalBounds.within_board`). Why each is sound: :mod:`squall.rebalance.latency_bound`."""

from __future__ import annotations

import math

from squall.rebalance.latency import MAX_UTILISATION, BoardTerms, throttle_share
from squall.rebalance.latency_bound_terms import MARGIN, BoundTerms, ExecutorEdges, Removal
from squall.rebalance.latency_state import BoardSlack, worker_time


class RemovalBounds(BoundTerms):
    """Bounds on what a move saves on the board it leaves, or within that board."""

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
            after = self._others_time(board, terms, rho, mine, after)
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
        members, w_count = state.members, state.w_count
        table: dict[int, tuple[float, float]] = {}
        for y, u_y in board.cores.items():
            drop = u_y
            if w_count[y] > 1:
                worst = max(drops[h] for h in members[y]) / clock
                if worst < drop:
                    drop = worst
            rho = board.rho - drop / terms.cores
            table[y] = (throttle_share(terms, rho), self._others_time(board, terms, rho, y, 0.0))
        self._quick[n] = table
        return table

    def _others_time(self, board: BoardSlack, terms: BoardTerms, rho: float, skip: int, start: float) -> float:
        """``start`` plus the time of every placed worker of the board but ``skip``, each
        with its aggregates now and at utilisation ``rho`` (:func:`worker_time`), added in
        the board's worker order (so the same floats as a loop written in place)."""
        state = self.state
        topos, worker_ids = state.net.topos, state.worker_ids
        w_na, w_nav, w_ak, w_akv = state.w_na, state.w_nav, state.w_ak, state.w_akv
        w_outk, w_ink = state.w_outk, state.w_ink
        wall, wake = 1.0 / terms.clock_hz, terms.wake_wait_s
        total = start
        for x, u in board.cores.items():
            if x != skip:
                t = topos[worker_ids[x][0]]
                total += worker_time(t, wall, wake, u, rho, w_na[x], w_nav[x], w_ak[x], w_akv[x], w_outk[x], w_ink[x])
        return total

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
