"""The pair greedy of rebalance/greedy.py as it was before it was made faster, kept as a
plain reading of the rules: the reference the equivalence test compares the fast one with.
Only this docstring and ``place_pairs`` (a loop over ``place_pair``: the call the schedulers
make now) differ from the original file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product

import numpy as np

from squall.rebalance.scorers import Scorer, best, best_id

# Relative slack on load limits: sums of floats must not fail a limit they meet exactly.
TOLERANCE = 1e-9
# Traffic costs are rounded to this many decimals (tuples/s) before comparing, so two
# placements equal in exact arithmetic tie instead of being split by rounding noise.
COST_DECIMALS = 6


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
    """Working state of one greedy run. Created, run and read by one scheduler call only."""

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
        self.where = np.full(len(loads), -1, dtype=np.int64)
        self._where: list[int] = [-1] * len(loads)  # mirror of `where` for scalar loops
        self.bin_load = np.zeros(n_bins) if bin_load is None else bin_load.astype(float).copy()
        self.bin_count = np.zeros(n_bins, dtype=np.int64)
        self.bin_group = np.zeros((n_bins, max(1, len(group_limit))), dtype=np.int64)
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
        self.pair_chain: tuple[Scorer[PairChoice], ...] = (
            Scorer("least traffic", "the objective: traffic crossing bins", lambda c: c.cost),
            Scorer("fewest moves", "equal traffic is no reason to move what is placed", lambda c: c.moves),
            Scorer("current place", "a rebalance should move as little as possible", lambda c: c.off_hint),
            Scorer("lightest peak", "among equals, keep the busier bin lighter", lambda c: c.peak),
        )
        self._hint_hits = np.zeros(n_bins, dtype=np.int64)

    # --- limits -----------------------------------------------------------------------------

    def _fitting(self, level: Level, load: float, count: int, group: int) -> np.ndarray:
        ok = level.bins & (self.bin_count + count <= self.item_limit)
        if level.load_limit:
            ok &= self.bin_load + load <= self.load_limit
        if level.group_limit:
            ok &= self.bin_group[:, group] + count <= self.group_limit[group]
        return ok

    def least_loaded(self, items: Sequence[int], max_level: int | None = None) -> tuple[int, int] | None:
        """(bin, level) of the least-loaded bin that can take all ``items`` (same group),
        trying the levels in order up to ``max_level``; None if none can."""
        load = float(sum(self.loads[i] for i in items))
        group = int(self.groups[items[0]])
        self._hint_hits[:] = 0
        for i in items:
            if self.hint[i] >= 0:
                self._hint_hits[self.hint[i]] += 1
        last = len(self.levels) - 1 if max_level is None else max_level
        for k, level in enumerate(self.levels[: last + 1]):
            ids = np.flatnonzero(self._fitting(level, load, len(items), group))
            if ids.size:
                return best_id(ids, self.bin_chain), k
        return None

    # --- moves ------------------------------------------------------------------------------

    def put(self, item: int, b: int, level: int = 0) -> None:
        old = self.where[item]
        if old >= 0:
            self.bin_load[old] -= self.loads[item]
            self.bin_count[old] -= 1
            self.bin_group[old, self.groups[item]] -= 1
        self.where[item] = b
        self._where[item] = b
        self.bin_load[b] += self.loads[item]
        self.bin_count[b] += 1
        self.bin_group[b, self.groups[item]] += 1
        if level > 0:
            self.relaxed.append((item, self.levels[level].name))

    def place_single(self, item: int) -> None:
        """The least-loaded bin that can take ``item``, relaxing levels as needed."""
        found = self.least_loaded([item])
        if found is None:
            raise AssertionError(f"no bin has room for item {item}: item limits are too small")
        self.put(item, *found)

    def place_pairs(self, firsts, seconds, weights) -> None:
        """place_pair for each pair, in order (what the fast greedy's loop must equal);
        the weights are the adjacency's, which place_pair reads itself."""
        for i, j in zip(firsts, seconds):
            self.place_pair(i, j)

    def place_pair(self, i: int, j: int) -> None:
        """Place a communicating pair (i is the source).

        Neither placed: both to the least-loaded bin that can take both; else i to the
        least-loaded bin that can take it, and j with it if it fits, else j to its own.
        One or both placed: candidates are their bins plus the least-loaded bin that can
        take the heavier one; every placement of the pair among the candidates is tried
        and the one with least traffic across bins kept (ties: :attr:`pair_chain`).
        """
        wi, wj = self.where[i], self.where[j]
        if wi < 0 and wj < 0:
            both = self.least_loaded([i, j], max_level=0)
            if both is not None:
                self.put(i, both[0])
                self.put(j, both[0])
                return
            self.place_single(i)
            b = int(self.where[i])
            if self._fitting(self.levels[0], float(self.loads[j]), 1, int(self.groups[j]))[b]:
                self.put(j, b)
            else:
                self.place_single(j)
            return
        heavier = i if self.loads[i] >= self.loads[j] else j
        cands = sorted({int(w) for w in (wi, wj) if w >= 0})
        star = self.least_loaded([heavier], max_level=0)
        if star is not None and star[0] not in cands:
            cands.append(star[0])
        conn_i, conn_j = self._connection(i, j), self._connection(j, i)  # once, not per choice
        choices = [c for a, b in product(cands, cands) if (c := self._choice(i, j, a, b, conn_i, conn_j)) is not None]
        if choices:
            pick = best(choices, self.pair_chain)
            if pick.a != wi:
                self.put(i, pick.a)
            if pick.b != wj:
                self.put(j, pick.b)
            return
        for item in (i, j):  # nothing fits together: the placed one stays
            if self.where[item] < 0:
                self.place_single(item)

    def _connection(self, item: int, other: int) -> tuple[float, dict[int, float]]:
        """Traffic of ``item`` with placed items other than ``other``: total, and per bin."""
        total = 0.0
        per_bin: dict[int, float] = {}
        where = self._where  # a list: indexing numpy scalars one by one is slow here
        for n, w in self.adj[item].items():
            b = where[n]
            if n != other and b >= 0:
                total += w
                per_bin[b] = per_bin.get(b, 0.0) + w
        return total, per_bin

    def _choice(
        self,
        i: int,
        j: int,
        a: int,
        b: int,
        conn_i: tuple[float, dict[int, float]],
        conn_j: tuple[float, dict[int, float]],
    ) -> PairChoice | None:
        wi, wj = int(self.where[i]), int(self.where[j])
        delta_load: dict[int, float] = {}
        delta_count: dict[int, int] = {}
        for item, old, new in ((i, wi, a), (j, wj, b)):
            if old == new:
                continue
            if old >= 0:
                delta_load[old] = delta_load.get(old, 0.0) - self.loads[item]
                delta_count[old] = delta_count.get(old, 0) - 1
            delta_load[new] = delta_load.get(new, 0.0) + self.loads[item]
            delta_count[new] = delta_count.get(new, 0) + 1
        first = self.levels[0]
        group = int(self.groups[i])
        for bin_, dc in delta_count.items():
            # Only what a bin gains is checked: a bin that loses items or load never breaks
            # a limit it did not break before.
            if dc > 0:
                if self.bin_count[bin_] + dc > self.item_limit[bin_] or not first.bins[bin_]:
                    return None
                if first.group_limit and self.bin_group[bin_, group] + dc > self.group_limit[group]:
                    return None
            if first.load_limit and delta_load[bin_] > 0:
                if self.bin_load[bin_] + delta_load[bin_] > self.load_limit[bin_]:
                    return None
        (ti, ci), (tj, cj) = conn_i, conn_j
        mutual = self.adj[i].get(j, 0.0)
        cost = (ti - ci.get(a, 0.0)) + (tj - cj.get(b, 0.0)) + (mutual if a != b else 0.0)
        moves = int(wi >= 0 and wi != a) + int(wj >= 0 and wj != b)
        off_hint = int(self.hint[i] >= 0 and self.hint[i] != a) + int(self.hint[j] >= 0 and self.hint[j] != b)
        touched = {a, b}
        peak = max((self.bin_load[x] + delta_load.get(x, 0.0)) / self.scale[x] for x in touched)
        return PairChoice(a, b, round(cost, COST_DECIMALS), moves, off_hint, float(peak))
