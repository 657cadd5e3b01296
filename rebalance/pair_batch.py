"""Runs of placed pairs that the pair rule would leave where they are, found in numpy.

Once the first pairs have placed their items, nearly every pair the greedy of
:mod:`squall.rebalance.greedy` takes has both items placed and stays put (at 10,000
executors about 83,000 of 92,000 pairs over both phases): the rule only confirms the
placement. :class:`StayCheck` confirms a whole block of upcoming pairs at once against the
greedy's state as it is, and :meth:`squall.rebalance.greedy.PairGreedy.place_pairs` hands
only the pairs it cannot confirm to the Python rule (``place_pair``), recomputing the block
after any pair that moved something.

Guarantee: a pair reported as staying is one ``place_pair`` would leave exactly as it is
(no item moved, no state changed) — so the placements are those of the pair-by-pair loop,
bit for bit. The check is conservative: its traffic sums are recomputed from the
adjacency in another order than the greedy's running sums, so a pair stays only when every
other placement costs more than staying by a margin far above any rounding difference
(:data:`MARGIN` of the two items' whole traffic); anything closer, any tie for the third
candidate bin, any unplaced item goes to the Python rule, which decides as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from squall.rebalance.greedy import PairGreedy

# A placement is certainly no cheaper than staying when it costs more by this share of the
# two items' whole traffic. The greedy's running sums and these recomputed ones differ by a
# few ulps of that traffic per update (~1e-14 after a hundred updates); 1e-9 leaves room.
MARGIN = 1e-9
# Bins, in least-loaded order, looked at for each pair's third candidate (the least-loaded
# bin that can take the heavier item). When none of them fits, the pair goes to Python.
WINDOW = 16
# Largest per-item, per-bin traffic table kept (cells; 8 bytes each): phase 2 at 1,000
# workers on 250 boards needs 250,000; phase 1 at 10,000 executors would need 10 M and sums
# over each pair's neighbours instead.
DENSE_CELLS = 1_000_000

# towards(bins) -> (traffic of i, traffic of j) leaving for bins other than ``bins``, per
# pair, the pair's own edge left out.
Towards = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class StayCheck:
    """Confirms blocks of placed pairs against one :class:`PairGreedy`'s current state."""

    def __init__(self, greedy: PairGreedy, adjacency: Sequence[dict[int, float]], dense: bool = True) -> None:
        self.greedy = greedy
        # The adjacency as CSR arrays (same weights): every item's neighbours in one slice.
        degree = np.fromiter((len(row) for row in adjacency), dtype=np.int64, count=len(adjacency))
        self.indptr = np.zeros(len(adjacency) + 1, dtype=np.int64)
        np.cumsum(degree, out=self.indptr[1:])
        total = int(self.indptr[-1])
        self.indices = np.fromiter(chain.from_iterable(adjacency), dtype=np.int64, count=total)
        self.weights = np.fromiter(chain.from_iterable(row.values() for row in adjacency), dtype=float, count=total)
        self.degree = degree
        # Each item's whole traffic: the scale of every cost it takes part in.
        owner = np.repeat(np.arange(len(adjacency)), degree)
        self.traffic = np.bincount(owner, np.abs(self.weights), len(adjacency))
        # Small enough: each item's traffic with placed items, in all and per bin, as a
        # table kept current on every put (reads per pair instead of sums over neighbours).
        self.table: np.ndarray | None = None
        self.total = np.zeros(0)
        n_bins = len(greedy.item_limit)
        if dense and len(adjacency) * n_bins <= DENSE_CELLS:
            where = greedy.where
            bin_of = where[self.indices]
            placed = bin_of >= 0
            self.total = np.bincount(owner[placed], self.weights[placed], len(adjacency)).astype(float)
            self.table = np.zeros((len(adjacency), n_bins))
            np.add.at(self.table, (owner[placed], bin_of[placed]), self.weights[placed])

    def stays(self, sources: np.ndarray, destinations: np.ndarray) -> np.ndarray:
        """Per pair (i, j) of the block, True when ``place_pair(i, j)`` would change
        nothing in the greedy's current state; False means "ask the rule"."""
        g = self.greedy
        where = g.where
        wi, wj = where[sources], where[destinations]
        placed = (wi >= 0) & (wj >= 0)
        if not placed.any():
            return placed
        i, j = sources[placed], destinations[placed]
        wi, wj = wi[placed], wj[placed]
        n = len(i)
        mutual, towards = (self._dense_traffic if self.table is not None else self._gathered_traffic)(i, j, wi, wj)
        ai_wi, aj_wi = towards(wi)
        ai_wj, aj_wj = towards(wj)
        apart = wi != wj
        stay = ai_wi + aj_wj + np.where(apart, mutual, 0.0)
        need = stay + MARGIN * (self.traffic[i] + self.traffic[j])
        # (bin of i, bin of j, i's cost there, j's cost there) of every other placement.
        options = [(wj, wi, ai_wj, aj_wi)]  # the swap
        if g._by_load:
            star, known = self._third(i, j)
            ai_s, aj_s = towards(np.where(star >= 0, star, -2))
            options += [
                (wi, wi, ai_wi, aj_wi),
                (wj, wj, ai_wj, aj_wj),
                (star, wi, ai_s, aj_wi),
                (star, wj, ai_s, aj_wj),
                (wi, star, ai_wi, aj_s),
                (wj, star, ai_wj, aj_s),
                (star, star, ai_s, aj_s),
            ]
            # With no third bin (or the third bin their own), a pair sharing a bin stays:
            # place_pair returns before pricing anything.
            early = ~apart & known & ((star < 0) | (star == wi))
        else:
            # No bin can take one more item: only the swap keeps every bin's count, and
            # place_pair returns at once for a pair sharing a bin.
            known = np.ones(n, dtype=bool)
            early = ~apart
        settled = known.copy()
        for a, b, cost_a, cost_b in options:
            real = (a >= 0) & (b >= 0) & ~((a == wi) & (b == wj))
            cost = cost_a + cost_b + np.where(a != b, mutual, 0.0)
            # A placement that may be cheaper unsettles the pair unless it breaks a limit.
            cheaper = np.flatnonzero(settled & real & (cost < need))
            if cheaper.size:
                settled[cheaper] = self._breaks_a_limit(
                    i[cheaper], j[cheaper], wi[cheaper], wj[cheaper], a[cheaper], b[cheaper]
                )
        settled |= early
        out = np.zeros(len(sources), dtype=bool)
        out[placed] = settled
        return out

    def _gathered_traffic(
        self, i: np.ndarray, j: np.ndarray, wi: np.ndarray, wj: np.ndarray
    ) -> tuple[np.ndarray, Towards]:
        """(adj[i][j] per pair, ``towards``) from the items' adjacency rows, summed here."""
        n = len(i)
        items = np.concatenate((i, j))
        partner = np.concatenate((j, i))
        # Each item's placed neighbours other than its partner: their bins and weights.
        degree = self.degree[items]
        owner = np.repeat(np.arange(2 * n), degree)
        starts = np.repeat(self.indptr[items] - (np.cumsum(degree) - degree), degree)
        slot = starts + np.arange(int(degree.sum()))
        neighbour = self.indices[slot]
        weight = self.weights[slot]
        bin_of = self.greedy.where[neighbour]
        is_partner = neighbour == partner[owner]
        # adj[i][j] per pair: the one entry of i's row naming j (0.0 when there is none).
        mutual = np.bincount(owner, np.where(is_partner, weight, 0.0), 2 * n)[:n]
        weight = np.where((bin_of >= 0) & ~is_partner, weight, 0.0)
        total = np.bincount(owner, weight, 2 * n)

        def towards(bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            both = np.concatenate((bins, bins))
            inside = np.bincount(owner, np.where(bin_of == both[owner], weight, 0.0), 2 * n)
            away = total - inside
            return away[:n], away[n:]

        return mutual, towards

    def _dense_traffic(
        self, i: np.ndarray, j: np.ndarray, wi: np.ndarray, wj: np.ndarray
    ) -> tuple[np.ndarray, Towards]:
        """(adj[i][j] per pair, ``towards``) read from the per-item, per-bin table."""
        assert self.table is not None
        table = self.table
        adj = self.greedy.adj
        mutual = np.fromiter((adj[a].get(b, 0.0) for a, b in zip(i.tolist(), j.tolist())), dtype=float, count=len(i))
        # Both items are placed, so each one's total holds the pair's own edge: take it out.
        total_i = self.total[i] - mutual
        total_j = self.total[j] - mutual

        def towards(bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            at = np.maximum(bins, 0)  # -1/-2 (no bin): any column; such options are never read
            inside_i = table[i, at] - np.where(bins == wj, mutual, 0.0)
            inside_j = table[j, at] - np.where(bins == wi, mutual, 0.0)
            return total_i - inside_i, total_j - inside_j

        return mutual, towards

    def moved(self, item: int, old: int, new: int) -> None:
        """Keep the table current: ``item`` went from bin ``old`` (-1: unplaced) to ``new``."""
        if self.table is None:
            return
        row = slice(self.indptr[item], self.indptr[item + 1])
        neighbour, weight = self.indices[row], self.weights[row]
        if old >= 0:
            self.table[neighbour, old] -= weight
        else:
            self.total[neighbour] += weight
        self.table[neighbour, new] += weight

    def _third(self, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(third candidate bin, known) per pair: the least-loaded bin that can take the
        heavier item at the first level (-1 if none), as ``PairGreedy._star`` finds it;
        ``known`` False where it cannot be told here (a tie for the least load, or no fit
        among the first :data:`WINDOW` bins while more are open)."""
        g = self.greedy
        loads = g.loads
        heavier = np.where(loads[i] >= loads[j], i, j)
        window = g._by_load[:WINDOW]
        keys = np.array([k for k, _ in window])
        bins = np.array([b for _, b in window], dtype=np.int64)
        level = g.levels[0]
        load = loads[heavier][:, None] + 0.0
        fits = np.broadcast_to(level.bins[bins] & (g.bin_count[bins] + 1 <= g.item_limit[bins]), (len(i), len(bins)))
        if level.load_limit:
            fits = fits & (g.bin_load[bins][None, :] + load <= g.load_limit[bins][None, :])
        if level.group_limit:
            group = g.groups[heavier][:, None]
            fits = fits & (g.bin_group[bins[None, :], group] + 1 <= g.group_limit[group])
        any_fit = fits.any(axis=1)
        first = np.argmax(fits, axis=1)
        lowest = keys[first]
        tied = (fits & (keys[None, :] == lowest[:, None])).sum(axis=1) > 1
        whole = len(g._by_load) <= WINDOW
        # A bin past the window could tie with the lowest one found.
        cut = np.zeros(len(i), dtype=bool) if whole else keys[-1] == lowest
        star = np.where(any_fit, bins[first], -1)
        known = np.where(any_fit, ~tied & ~cut, whole)
        return star, known

    def _breaks_a_limit(
        self, i: np.ndarray, j: np.ndarray, wi: np.ndarray, wj: np.ndarray, a: np.ndarray, b: np.ndarray
    ) -> np.ndarray:
        """Whether putting i (on ``wi``) on ``a`` and j (on ``wj``) on ``b`` breaks a limit
        of the first level: ``PairGreedy._peak_if_fits`` is None, its checks and float
        operations (each bin's load change summed in the same order) per pair."""
        g = self.greedy
        level = g.levels[0]
        load_i, load_j = g.loads[i], g.loads[j]
        move_i, move_j = a != wi, b != wj
        group = g.groups[i]
        broken = np.zeros(len(i), dtype=bool)
        for x in (a, b):
            count = (
                (move_i & (a == x)).astype(np.int64) + (move_j & (b == x)) - (move_i & (wi == x)) - (move_j & (wj == x))
            )
            load = np.zeros(len(i))
            load = np.where(move_i & (wi == x), load - load_i, load)
            load = np.where(move_i & (a == x), load + load_i, load)
            load = np.where(move_j & (wj == x), load - load_j, load)
            load = np.where(move_j & (b == x), load + load_j, load)
            gains = count > 0
            broken |= gains & ((g.bin_count[x] + count > g.item_limit[x]) | ~level.bins[x])
            if level.group_limit:
                broken |= gains & (g.bin_group[x, group] + count > g.group_limit[group])
            if level.load_limit:
                broken |= (load > 0) & (g.bin_load[x] + load > g.load_limit[x])
        return broken
