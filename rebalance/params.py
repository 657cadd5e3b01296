"""Tuning knobs shared by every scheduler (each reads the ones it needs)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from squall.rebalance.errors import InvalidInputError


@dataclass(frozen=True)
class SchedulerParams:
    """Parameters of the schedulers, validated on construction.

    alpha (online phase 1, offline): executors per worker are capped at
        M = ceil(E/W) + ceil(alpha x (E - W + 1 - ceil(E/W))); 0 spreads evenly, 1 packs.
        Default 0.0: a Squall worker is one Python process, so executors packed into one
        worker share one interpreter lock; the seed paper's own sweep (0..0.2) found the
        lowest latency at the low end.
    beta (online phase 2, partition): how many nodes to use, from the fewest that fit
        (0) to min(N, workers) (1). Default 0.5, the original's middle setting.
    gamma (online phase 1): a worker's load is capped at gamma x total_load / W (>= 1).
        Default 1.5: tight enough to stop one worker taking a whole pipeline, loose enough
        that the traffic greedy still has room to co-locate pairs.
    delta (online phase 2, partition): a topology's workers per node are capped at
        ceil(W/n) + ceil(delta x (W - n + 1 - ceil(W/n))) for n nodes in use. Default 0.5:
        half way between an even spread and "slots are the only limit".
    epsilon (offline): from component index floor(epsilon x components) on, empty slots
        are preferred. Default 0.5: the first half of the pipeline follows its inputs, the
        second half fans out so every slot gets used.
    strict: raise :class:`InfeasibleError` instead of shrinking the worker count to the
        free slots or placing load above capacity (see docs/rebalance.md, "Raise or report").
    """

    alpha: float = 0.0
    beta: float = 0.5
    gamma: float = 1.5
    delta: float = 0.5
    epsilon: float = 0.5
    strict: bool = False

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "delta", "epsilon"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise InvalidInputError(f"{name} must be a number in [0, 1], got {value!r}")
        if isinstance(self.gamma, bool) or not isinstance(self.gamma, (int, float)) or not self.gamma >= 1.0:
            raise InvalidInputError(f"gamma must be a number >= 1, got {self.gamma!r}")
        if self.gamma == float("inf"):
            raise InvalidInputError("gamma must be finite")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
