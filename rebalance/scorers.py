"""Tie-breakers as small named scorers, chained in order (lower key wins).

Each scorer carries a one-line ``why`` so a reader of a chain sees the policy, not just the
arithmetic. Two ways to apply a chain:

* :func:`best` over a handful of Python candidates (pair placements);
* :func:`best_id` over a numpy array of candidate ids (workers, nodes), filtering by each
  scorer in turn so the cost stays O(candidates) per scorer.

The final tie-break is always the candidate order itself (lowest id), so results never
depend on hash order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

C = TypeVar("C")


@dataclass(frozen=True)
class Scorer(Generic[C]):
    """A named sort key. ``key`` returns a number (lower is better) for one candidate, or
    an array of numbers for an array of candidates."""

    name: str
    why: str
    key: Callable[[C], Any]


def best(candidates: Sequence[C], chain: Sequence[Scorer[C]]) -> C:
    """The first candidate with the lowest keys, scorer by scorer."""
    if not candidates:
        raise ValueError("best() of no candidates")
    return min(candidates, key=lambda c: tuple(s.key(c) for s in chain))


def best_id(ids: np.ndarray, chain: Sequence[Scorer[np.ndarray]]) -> int:
    """The candidate id left after keeping, for each scorer, only the lowest-keyed ids.
    ``ids`` must be non-empty and ascending (the last-resort tie-break)."""
    for scorer in chain:
        if len(ids) == 1:
            break
        keys = np.asarray(scorer.key(ids))
        ids = ids[keys == keys.min()]
    return int(ids[0])
