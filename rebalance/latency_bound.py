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

from squall.rebalance.latency import MAX_UTILISATION
from squall.rebalance.latency_bound_arrival import ArrivalBounds
from squall.rebalance.latency_bound_removal import RemovalBounds
from squall.rebalance.latency_bound_terms import EXCESS_STEP, MARGIN, ExecutorEdges, Removal

__all__ = ["EXCESS_STEP", "MARGIN", "ExecutorEdges", "GainBound", "Removal"]


class GainBound(RemovalBounds, ArrivalBounds):
    """Bounds on trial moves against one state; :meth:`forget` the boards a move changed.

    Per board its terms are priced once (:meth:`State.board_slack`) and kept until a move
    is taken: a trial move leaves the state exactly as it was. The bounds on the board a
    move leaves are :class:`RemovalBounds`', those on the board it reaches
    :class:`ArrivalBounds`'; :meth:`skips` puts them together."""

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
