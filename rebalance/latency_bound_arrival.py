"""The ``latency`` search's bounds on board ``b``'s side of a move to a placed worker on
another board: a cheap form that does not price the target worker
(:meth:`ArrivalBounds.cheap_gain`) and the loose-then-refined form
(:meth:`ArrivalBounds.gain`). Why each is sound: :mod:`squall.rebalance.latency_bound`."""

from __future__ import annotations

import math

from squall.rebalance.latency import SATURATED
from squall.rebalance.latency_bound_terms import BoundTerms, ExecutorEdges
from squall.rebalance.latency_state import worker_time


class ArrivalBounds(BoundTerms):
    """Bounds on what a move to a worker on another board saves there, with ``g``'s edges."""

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
