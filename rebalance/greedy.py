"""The pair greedy shared by both phases of the online scheduler.

Phase 1 places executors (items) on workers (bins); phase 2 places workers (items) on
nodes (bins). Both walk the item pairs by traffic, descending, and apply the same rules
(see :meth:`PairGreedy.place_pair`). What differs is passed in: per-bin item limits (M, or
free slots), per-bin load limits (the gamma cap, or node capacity), an optional per-group
limit (the delta cap per topology), how load is compared (absolute, or as a share of
capacity) and a ladder of :class:`Level` s saying which limits may be relaxed, in order,
when nothing fits.

Guarantees: deterministic (every choice ends in a fixed tie-break chain, see
:mod:`squall.rebalance.scorers`); the item limit of a bin is never exceeded; the other
limits are exceeded only at a relaxed level, recorded in :attr:`PairGreedy.relaxed`.

Speed (the same choices, found faster): the working state is kept as Python lists (scalar
reads in the pair loop cost a tenth of numpy's), its numpy form built only when read (by
callers and the vectorised search over every bin); open bins are kept sorted by (scaled
load, items, id), so the least-loaded bin that fits, with its tie-breaks, is usually the
first entry that fits instead of a pass over every bin; pair placements are scored as plain
tuples; and :meth:`PairGreedy.place_pairs` runs the pair loop, recognising a pair already
placed that the rule would leave where it is (most pairs, once the first few thousand have
placed their items) without ranking its placements. Every sum is taken in the same order
as before, so costs are bit-for-bit the ones the plain greedy computed
(``tests/rebalance/legacy_pair_greedy.py``; an equivalence test compares the two).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from squall.rebalance.scorers import Scorer, best_id

# Relative slack on load limits: sums of floats must not fail a limit they meet exactly.
TOLERANCE = 1e-9
# Traffic costs are rounded to this many decimals (tuples/s) before comparing, so two
# placements equal in exact arithmetic tie instead of being split by rounding noise.
COST_DECIMALS = 6
# The sorted scan of least_loaded gives up after this many bins that do not fit and asks
# numpy instead: beyond that a vectorised pass over all bins is cheaper.
SCAN_LIMIT = 48


@dataclass(frozen=True)
class Level:
    """One rung of the relaxation ladder: which bins are allowed and which limits hold."""

    name: str
    bins: np.ndarray  # bool per bin
    load_limit: bool
    group_limit: bool


@dataclass(frozen=True)
class PairChoice:
    """A candidate placement (a, b) of a pair, with what the scorers compare."""

    a: int
    b: int
    cost: float
    moves: int
    off_hint: int
    peak: float


class PairGreedy:
    """Working state of one greedy run. Created, run and read by one scheduler call only.

    Read by callers: ``where`` (bin per item, -1 unplaced), ``bin_load``, ``bin_count``,
    ``loads`` (numpy arrays; the first three a copy of the state when read) and
    ``relaxed``; changed only through :meth:`put`.
    """

    def __init__(
        self,
        loads: np.ndarray,
        groups: np.ndarray,
        adjacency: Sequence[dict[int, float]],
        item_limit: np.ndarray,
        load_limit: np.ndarray,
        group_limit: np.ndarray,
        scale: np.ndarray,
        levels: Sequence[Level],
        hint: np.ndarray,
        bin_load: np.ndarray | None = None,
    ) -> None:
        self.loads = loads
        self.groups = groups
        self.adj = adjacency
        self.item_limit = item_limit
        self.load_limit = load_limit * (1 + TOLERANCE)
        self.group_limit = group_limit
        self.scale = scale
        self.levels = levels
        self.hint = hint
        n_bins = len(item_limit)
        self.relaxed: list[tuple[int, str]] = []
        self.bin_chain: tuple[Scorer[np.ndarray], ...] = (
            Scorer(
                "least loaded",
                "spread CPU demand; nodes compare their share of capacity",
                lambda ids: self.bin_load[ids] / self.scale[ids],
            ),
            Scorer("current place", "a rebalance should move as little as possible", lambda ids: -self._hint_hits[ids]),
            Scorer("fewest items", "with equal (or unmeasured) load, spread by count", lambda ids: self.bin_count[ids]),
        )
        # The pair chain, in the order of the key tuple _choice returns (lower wins, then
        # the first candidate): kept as scorers so the policy reads the same as before.
        self.pair_chain: tuple[Scorer[PairChoice], ...] = (
            Scorer("least traffic", "the objective: traffic crossing bins", lambda c: c.cost),
            Scorer("fewest moves", "equal traffic is no reason to move what is placed", lambda c: c.moves),
            Scorer("current place", "a rebalance should move as little as possible", lambda c: c.off_hint),
            Scorer("lightest peak", "among equals, keep the busier bin lighter", lambda c: c.peak),
        )
        self._hint_hits = np.zeros(n_bins, dtype=np.int64)
        # Python mirrors of the arrays for scalar work (same float64 values, same arithmetic).
        self._where: list[int] = [-1] * len(loads)
        self._loads: list[float] = [float(x) for x in loads]
        self._groups: list[int] = [int(g) for g in groups]
        self._hint: list[int] = [int(h) for h in hint]
        self._item_limit: list[int] = [int(x) for x in item_limit]
        self._load_limit: list[float] = self.load_limit.tolist()
        self._group_limit: list[int] = [int(x) for x in group_limit]
        self._scale: list[float] = [float(x) for x in scale]
        self._bin_load: list[float] = ([0.0] * n_bins) if bin_load is None else bin_load.astype(float).tolist()
        self._bin_count: list[int] = [0] * n_bins
        self._bin_group: list[list[int]] = [[0] * max(1, len(group_limit)) for _ in range(n_bins)]
        self._level_bins: list[list[bool]] = [[bool(x) for x in level.bins] for level in levels]
        # Bins that can take one more item, by (scaled load, items, id): the order of
        # bin_chain's keys but "current place", kept current by put(). A full bin fits
        # nothing, so leaving it out keeps scans short.
        self._by_load: list[tuple[float, int, int]] = sorted(
            (self._key(b), self._bin_count[b], b) for b in range(n_bins) if self._item_limit[b] > 0
        )
        # Per item, its traffic with placed items: in all, and per bin. Kept current by
        # put() (a move touches the moved item's neighbours only), so a pair's candidates
        # are priced without walking both items' neighbours again for every pair.
        self._conn_total: list[float] = [0.0] * len(loads)
        self._conn: list[dict[int, float]] = [{} for _ in range(len(loads))]

    # The state as numpy arrays, built from the Python lists when read (rarely: a numpy
    # search, the empty-worker fill, the result): writing both forms on every put cost
    # more than all the reads. Each read is a new array, a copy of the state at that time.

    @property
    def where(self) -> np.ndarray:
        """Bin per item, -1 if unplaced."""
        return np.array(self._where, dtype=np.int64)

    @property
    def bin_load(self) -> np.ndarray:
        """Load per bin (unscaled)."""
        return np.array(self._bin_load, dtype=float)

    @property
    def bin_count(self) -> np.ndarray:
        """Items per bin."""
        return np.array(self._bin_count, dtype=np.int64)

    @property
    def bin_group(self) -> np.ndarray:
        """Items per bin and group (bins x groups)."""
        return np.array(self._bin_group, dtype=np.int64)

    def _key(self, b: int) -> float:
        return self._bin_load[b] / self._scale[b]

    # --- limits -----------------------------------------------------------------------------

    def _fitting(self, level: Level, load: float, count: int, group: int) -> np.ndarray:
        ok = level.bins & (self.bin_count + count <= self.item_limit)
        if level.load_limit:
            ok &= self.bin_load + load <= self.load_limit
        if level.group_limit:
            ok &= np.array([g[group] for g in self._bin_group], dtype=np.int64) + count <= self.group_limit[group]
        return ok

    def _fits(self, k: int, b: int, load: float, count: int, group: int) -> bool:
        """Whether bin ``b`` can take ``count`` items of ``load`` at level ``k`` (scalar
        form of :meth:`_fitting`)."""
        level = self.levels[k]
        if not self._level_bins[k][b] or self._bin_count[b] + count > self._item_limit[b]:
            return False
        if level.load_limit and not self._bin_load[b] + load <= self._load_limit[b]:
            return False
        if level.group_limit and self._bin_group[b][group] + count > self._group_limit[group]:
            return False
        return True

    def least_loaded(self, items: Sequence[int], max_level: int | None = None) -> tuple[int, int] | None:
        """(bin, level) of the least-loaded bin that can take all ``items`` (same group),
        trying the levels in order up to ``max_level``; None if none can."""
        loads = self._loads
        load = 0.0
        for i in items:
            load += loads[i]
        group = self._groups[items[0]]
        last = len(self.levels) - 1 if max_level is None else max_level
        for k in range(last + 1):
            found = self._scan(k, items, load, group)
            if found is None:
                found = self._vector_search(k, items, load, group)
            if found >= 0:
                return found, k
        return None

    def _scan(self, k: int, items: Sequence[int], load: float, group: int) -> int | None:
        """The bin by walking bins in (load, items, id) order; None when the walk would be
        long. The first bin that fits is the least loaded, and among the bins tied with it
        at that load the one with the fewest items and the lowest id: :attr:`bin_chain`
        without its "current place" key, which only a bin some item is on now can win."""
        count = len(items)
        fits = self._fits
        for seen, entry in enumerate(self._by_load):
            if seen >= SCAN_LIMIT:
                return None
            if fits(k, entry[2], load, count, group):
                break
        else:
            return -1  # every bin seen, none fits at this level
        key, _, b = entry
        hint = self._hint
        hits: dict[int, int] = {}
        for i in items:
            h = hint[i]
            if h >= 0:
                hits[h] = hits.get(h, 0) + 1
        if not hits:
            return b
        # Bins some item is on now, tied with b at the lowest load: the most such items
        # win, then the fewest items, then the lowest id (b itself has the fewest of all).
        bin_count = self._bin_count
        tied = [
            (-n, bin_count[h], h)
            for h, n in hits.items()
            if h == b or (self._key(h) == key and fits(k, h, load, count, group))
        ]
        return min(tied)[2] if tied else b

    def _vector_search(self, k: int, items: Sequence[int], load: float, group: int) -> int:
        """The bin by one numpy pass over every bin (the original search); -1 if none fits."""
        ids = np.flatnonzero(self._fitting(self.levels[k], load, len(items), group))
        if not ids.size:
            return -1
        self._hint_hits[:] = 0
        for i in items:
            if self._hint[i] >= 0:
                self._hint_hits[self._hint[i]] += 1
        return best_id(ids, self.bin_chain)

    # --- moves ------------------------------------------------------------------------------

    def _change_bin(self, b: int, load: float, count: int) -> None:
        """Add ``load`` and ``count`` to bin ``b``, keeping ``_by_load`` in order."""
        by_load = self._by_load
        if self._bin_count[b] < self._item_limit[b]:
            del by_load[bisect_left(by_load, (self._key(b), self._bin_count[b], b))]
        value = self._bin_load[b] + load
        self._bin_load[b] = value
        self._bin_count[b] += count
        if self._bin_count[b] < self._item_limit[b]:
            insort(by_load, (self._key(b), self._bin_count[b], b))

    def put(self, item: int, b: int, level: int = 0) -> None:
        load = self._loads[item]
        group = self._groups[item]
        old = self._where[item]
        if old >= 0:
            # The same float operation as before: bin_load[old] -= load.
            self._change_bin(old, -load, -1)
            self._bin_group[old][group] -= 1
        self._where[item] = b
        conn = self._conn
        # Two loops, not one test per neighbour: most puts place an item for the first time.
        if old < 0:
            total = self._conn_total
            for n, w in self.adj[item].items():
                total[n] += w
                per_bin = conn[n]
                per_bin[b] = per_bin.get(b, 0.0) + w
        else:
            for n, w in self.adj[item].items():
                per_bin = conn[n]
                left = per_bin[old] - w
                if left:
                    per_bin[old] = left
                else:
                    del per_bin[old]
                per_bin[b] = per_bin.get(b, 0.0) + w
        self._change_bin(b, load, 1)
        self._bin_group[b][group] += 1
        if level > 0:
            self.relaxed.append((item, self.levels[level].name))

    def place_single(self, item: int) -> None:
        """The least-loaded bin that can take ``item``, relaxing levels as needed."""
        found = self.least_loaded([item])
        if found is None:
            raise AssertionError(f"no bin has room for item {item}: item limits are too small")
        self.put(item, *found)

    def place_pairs(self, firsts: Sequence[int], seconds: Sequence[int], weights: Sequence[float]) -> None:
        """:meth:`place_pair` for each pair (``firsts[k]``, ``seconds[k]``), in order.
        ``weights[k]`` must be the pair's adjacency entry, both ways round (the adjacency
        symmetric, as :func:`squall.rebalance.traffic.undirected` builds it, and
        :func:`squall.rebalance.traffic.pair_weights` gives its entries per row).

        The same choices: a pair both of whose items are placed is first checked here, with
        the float expressions of :meth:`_stays` written out, and goes to :meth:`place_pair`
        only when the check cannot say it stays (every other pair goes there directly).
        Saves a method call or two, the attribute reads and the adjacency reads per pair,
        which is most of a placed pair's cost."""
        where, loads = self._where, self._loads
        conn, total = self._conn, self._conn_total
        by_load = self._by_load  # the same list object for the greedy's life
        place_pair, star_of, apart_stays = self.place_pair, self._star, self._apart_stays
        fits = self._peak_if_fits
        for i, j, w in zip(firsts, seconds, weights):
            wi = where[i]
            wj = where[j]
            if wi < 0 or wj < 0:
                place_pair(i, j)
                continue
            if not by_load:
                # No bin can take one more item: only the swap is priced (_stays, room False).
                if wi == wj:
                    continue
                conn_i, conn_j = conn[i], conn[j]
                ti = total[i] - w
                tj = total[j] - w
                x = conn_i.get(wj)
                if x is not None:
                    x -= w
                y = conn_j.get(wi)
                if y is not None:
                    y -= w
                stay = (ti - conn_i.get(wi, 0.0)) + (tj - conn_j.get(wj, 0.0)) + w
                swap = (ti - (0.0 if x is None else x)) + (tj - (0.0 if y is None else y)) + w
                if swap < stay and fits(i, j, wj, wi) is not None:
                    place_pair(i, j)
                continue
            star = star_of(i if loads[i] >= loads[j] else j)
            if wi == wj:
                if star < 0 or star == wi:
                    continue  # both in one bin and no other candidate: they stay
                place_pair(i, j)
                continue
            if not apart_stays(i, j, wi, wj, star, total[i] - w, total[j] - w, w, w, w, conn[i], conn[j]):
                place_pair(i, j)

    def place_pair(self, i: int, j: int) -> None:
        """Place a communicating pair (i is the source).

        Neither placed: both to the least-loaded bin that can take both; else i to the
        least-loaded bin that can take it, and j with it if it fits, else j to its own.
        One or both placed: candidates are their bins plus the least-loaded bin that can
        take the heavier one; every placement of the pair among the candidates is tried
        and the one with least traffic across bins kept (ties: :attr:`pair_chain`).
        """
        where = self._where
        wi, wj = where[i], where[j]
        if wi < 0 and wj < 0:
            both = self.least_loaded([i, j], max_level=0)
            if both is not None:
                self.put(i, both[0])
                self.put(j, both[0])
                return
            self.place_single(i)
            b = where[i]
            if self._fits(0, b, self._loads[j], 1, self._groups[j]):
                self.put(j, b)
            else:
                self.place_single(j)
            return
        loads = self._loads
        heavier = i if loads[i] >= loads[j] else j
        both_placed = wi >= 0 and wj >= 0
        if both_placed and not self._by_load:
            # No bin can take one more item (every bin full): the least-loaded search
            # finds nothing, and of the placements only a swap can keep every bin's count.
            if wi == wj or self._stays(i, j, wi, wj, -1, room=False):
                return
            star = -1
        else:
            star = self._star(heavier)
            if both_placed:
                if wi == wj and (star < 0 or star == wi):
                    return  # both in one bin and no other candidate: they stay
                if self._stays(i, j, wi, wj, star, room=True):
                    return
        if both_placed and wi != wj:
            cands = [wi, wj] if wi < wj else [wj, wi]
        else:
            cands = [wi if wi >= 0 else wj]
        if star >= 0 and star not in cands:
            cands.append(star)
        # Each item's traffic with placed items other than the pair's other item: in all
        # (ti, tj) and per candidate bin (ci, cj) — no other bin is ever read.
        conn_i, conn_j = self._conn[i], self._conn[j]
        ci = {b: conn_i[b] for b in cands if b in conn_i}
        cj = {b: conn_j[b] for b in cands if b in conn_j}
        ti, tj = self._conn_total[i], self._conn_total[j]
        adj_i = self.adj[i]
        if wj >= 0:
            w = adj_i.get(j)
            if w is not None:
                ti -= w
                if wj in ci:
                    ci[wj] -= w
        if wi >= 0:
            w = self.adj[j].get(i)
            if w is not None:
                tj -= w
                if wi in cj:
                    cj[wi] -= w
        # Every placement's (cost, moves, off_hint) first — cheap — then the limits and the
        # peak only for the best of them: a placement whose first three keys are worse
        # than a feasible one's can never be picked.
        mutual = adj_i.get(j, 0.0)
        hint_i, hint_j = self._hint[i], self._hint[j]
        side_j = [(tj - cj.get(b, 0.0), int(wj >= 0 and wj != b), int(hint_j >= 0 and hint_j != b), b) for b in cands]
        keyed = []
        order = 0
        for a in cands:
            away_i = ti - ci.get(a, 0.0)
            moves_i = int(wi >= 0 and wi != a)
            off_i = int(hint_i >= 0 and hint_i != a)
            for away_j, moves_j, off_j, b in side_j:
                cost = away_i + away_j + (mutual if a != b else 0.0)
                keyed.append((round(cost, COST_DECIMALS), moves_i + moves_j, off_i + off_j, order, a, b))
                order += 1
        keyed.sort()
        pick: tuple | None = None
        for cost, moves, off_hint, _order, a, b in keyed:
            if pick is not None and (cost, moves, off_hint) > pick[:3]:
                break
            peak = self._peak_if_fits(i, j, a, b)
            # Strictly better only: the first of equals (in candidate order) wins, as min() did.
            if peak is not None and (pick is None or peak < pick[3]):
                pick = (cost, moves, off_hint, peak, a, b)
        if pick is not None:
            if pick[4] != wi:
                self.put(i, pick[4])
            if pick[5] != wj:
                self.put(j, pick[5])
            return
        for item in (i, j):  # nothing fits together: the placed one stays
            if where[item] < 0:
                self.place_single(item)

    def _star(self, item: int) -> int:
        """The least-loaded bin that can take ``item`` at the first level, -1 if none:
        :meth:`least_loaded` of one item without its generality (the pair rule's third
        candidate, asked for nearly every pair)."""
        load = 0.0 + self._loads[item]  # least_loaded's sum of one load
        group = self._groups[item]
        # _scan's walk for one item at the first level, its limit checks written out; a
        # long walk goes to numpy.
        bins_ok = self._level_bins[0]
        level = self.levels[0]
        check_load, check_group = level.load_limit, level.group_limit
        bin_count, item_limit = self._bin_count, self._item_limit
        bin_load, load_limit = self._bin_load, self._load_limit
        bin_group, group_limit = self._bin_group, self._group_limit
        for seen, (key, _, b) in enumerate(self._by_load):
            if seen >= SCAN_LIMIT:
                return self._vector_search(0, (item,), load, group)
            if (
                bins_ok[b]
                and bin_count[b] + 1 <= item_limit[b]
                and (not check_load or bin_load[b] + load <= load_limit[b])
                and (not check_group or bin_group[b][group] + 1 <= group_limit[group])
            ):
                # The one bin that can beat b: the item's own, if it fits at b's load.
                h = self._hint[item]
                if h >= 0 and h != b and self._key(h) == key and self._fits(0, h, load, 1, group):
                    return h
                return b
        return -1

    def _stays(self, i: int, j: int, wi: int, wj: int, star: int, room: bool) -> bool:
        """Whether the pair rule would leave a pair already placed (i on ``wi``, j on
        ``wj``) where it is, decided without ranking the placements: most pairs, once the
        first few thousand have placed their items, end so (at 10,000 executors 83,000 of
        92,000 pairs over both phases).

        True only when it is certain: every other placement among the candidates (``wi``,
        ``wj`` and ``star`` if >= 0) costs at least as much before rounding — so no less
        after it, ``round`` being monotonic, and the current placement wins a tie, having
        no moves — or breaks a limit. The costs are the float expressions
        :meth:`place_pair` ranks, term for term. With ``room`` False no bin can take one
        more item, so a placement that puts both in one bin is not even priced. False
        means "rank them all", not "they move"."""
        adj_i = self.adj[i]
        w_ij = adj_i.get(j)
        w_ji = self.adj[j].get(i)
        conn_i, conn_j = self._conn[i], self._conn[j]
        ti, tj = self._conn_total[i], self._conn_total[j]
        if w_ij is not None:
            ti -= w_ij
        if w_ji is not None:
            tj -= w_ji
        mutual = 0.0 if w_ij is None else w_ij
        if not room:
            # Only the swap (i to wj, j to wi) keeps every bin's count: the loop below
            # with the other placements left out, written out (most of phase 2's pairs).
            x = conn_i.get(wj)
            if x is not None and w_ij is not None:
                x -= w_ij
            y = conn_j.get(wi)
            if y is not None and w_ji is not None:
                y -= w_ji
            stay = (ti - conn_i.get(wi, 0.0)) + (tj - conn_j.get(wj, 0.0)) + mutual
            swap = (ti - (0.0 if x is None else x)) + (tj - (0.0 if y is None else y)) + mutual
            return not (swap < stay and self._peak_if_fits(i, j, wj, wi) is not None)
        if wi != wj:
            return self._apart_stays(i, j, wi, wj, star, ti, tj, w_ij, w_ji, mutual, conn_i, conn_j)
        cands: tuple[int, ...] = (wi,) if wi == wj else (wi, wj)
        if star >= 0 and star != wi and star != wj:
            cands += (star,)
        away_i: list[float] = []
        away_j: list[float] = []
        for b in cands:
            # Each item's traffic with placed items in b, less the pair's own edge.
            x = conn_i.get(b)
            if x is None:
                x = 0.0
            elif b == wj and w_ij is not None:
                x -= w_ij
            away_i.append(ti - x)
            y = conn_j.get(b)
            if y is None:
                y = 0.0
            elif b == wi and w_ji is not None:
                y -= w_ji
            away_j.append(tj - y)
        stay = away_i[0] + away_j[cands.index(wj)] + (mutual if wi != wj else 0.0)
        for a, cost_i in zip(cands, away_i):
            for b, cost_j in zip(cands, away_j):
                if (a == wi and b == wj) or (a == b and not room):
                    continue
                cost = cost_i + cost_j + (mutual if a != b else 0.0)
                if cost < stay and self._peak_if_fits(i, j, a, b) is not None:
                    return False
        return True

    def _apart_stays(
        self,
        i: int,
        j: int,
        wi: int,
        wj: int,
        star: int,
        ti: float,
        tj: float,
        w_ij: float | None,
        w_ji: float | None,
        mutual: float,
        conn_i: dict[int, float],
        conn_j: dict[int, float],
    ) -> bool:
        """:meth:`_stays` with room, for a pair placed apart (most of phase 1's pairs): its
        loop over the placements written out, each cost the same float expression. The
        placements are checked in another order; the answer ("no cheaper placement that
        fits") does not depend on it."""
        x = conn_i.get(wi)
        ai_wi = ti - (0.0 if x is None else x)
        x = conn_i.get(wj)
        if x is None:
            x = 0.0
        elif w_ij is not None:
            x -= w_ij
        ai_wj = ti - x
        y = conn_j.get(wi)
        if y is None:
            y = 0.0
        elif w_ji is not None:
            y -= w_ji
        aj_wi = tj - y
        y = conn_j.get(wj)
        aj_wj = tj - (0.0 if y is None else y)
        stay = ai_wi + aj_wj + mutual
        fits = self._peak_if_fits
        if ai_wi + aj_wi + 0.0 < stay and fits(i, j, wi, wi) is not None:
            return False
        if ai_wj + aj_wi + mutual < stay and fits(i, j, wj, wi) is not None:
            return False
        if ai_wj + aj_wj + 0.0 < stay and fits(i, j, wj, wj) is not None:
            return False
        if star < 0 or star == wi or star == wj:
            return True
        x = conn_i.get(star)
        ai_s = ti - (0.0 if x is None else x)
        y = conn_j.get(star)
        aj_s = tj - (0.0 if y is None else y)
        if ai_wi + aj_s + mutual < stay and fits(i, j, wi, star) is not None:
            return False
        if ai_wj + aj_s + mutual < stay and fits(i, j, wj, star) is not None:
            return False
        if ai_s + aj_wi + mutual < stay and fits(i, j, star, wi) is not None:
            return False
        if ai_s + aj_wj + mutual < stay and fits(i, j, star, wj) is not None:
            return False
        return not (ai_s + aj_s + 0.0 < stay and fits(i, j, star, star) is not None)

    def _peak_if_fits(self, i: int, j: int, a: int, b: int) -> float | None:
        """The busier of bins ``a`` and ``b`` (scaled load) once i is on a and j on b —
        the last of the :attr:`pair_chain` keys — or None if a limit of the first level
        breaks."""
        where = self._where
        loads = self._loads
        wi, wj = where[i], where[j]
        delta_load: dict[int, float] = {}
        delta_count: dict[int, int] = {}
        for item, old, new in ((i, wi, a), (j, wj, b)):
            if old == new:
                continue
            if old >= 0:
                delta_load[old] = delta_load.get(old, 0.0) - loads[item]
                delta_count[old] = delta_count.get(old, 0) - 1
            delta_load[new] = delta_load.get(new, 0.0) + loads[item]
            delta_count[new] = delta_count.get(new, 0) + 1
        first = self.levels[0]
        bins_ok = self._level_bins[0]
        bin_load = self._bin_load
        group = self._groups[i]
        for bin_, dc in delta_count.items():
            # Only what a bin gains is checked: a bin that loses items or load never breaks
            # a limit it did not break before.
            if dc > 0:
                if self._bin_count[bin_] + dc > self._item_limit[bin_] or not bins_ok[bin_]:
                    return None
                if first.group_limit and self._bin_group[bin_][group] + dc > self._group_limit[group]:
                    return None
            if first.load_limit and delta_load[bin_] > 0:
                if bin_load[bin_] + delta_load[bin_] > self._load_limit[bin_]:
                    return None
        scale = self._scale
        peak = (bin_load[a] + delta_load.get(a, 0.0)) / scale[a]
        if b != a:
            other = (bin_load[b] + delta_load.get(b, 0.0)) / scale[b]
            if other > peak:
                peak = other
        return peak
