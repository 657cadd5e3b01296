"""heronpy's metric types, and the registry ``TopologyContext.register_metric`` fills.

Squall does not ship these to a metrics manager as Heron does: ``squall local`` prints each
registered metric's value once, when it ends (``registered_values``). On a cluster they stay
in the worker (docs/porting.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_registry_lock = threading.Lock()
_registry: dict[str, IMetric] = {}


class IMetric:
    """A metric: ``get_value_and_reset()`` returns the value since the last call."""

    def get_value_and_reset(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement get_value_and_reset()")


class CountMetric(IMetric):
    def __init__(self) -> None:
        self.value = 0

    def incr(self, to_add: int = 1) -> None:
        self.value += to_add

    def get_value_and_reset(self) -> int:
        value, self.value = self.value, 0
        return value


class MultiCountMetric(IMetric):
    def __init__(self) -> None:
        self.value: dict[str, CountMetric] = {}

    def add_key(self, key: str) -> None:
        self.value.setdefault(key, CountMetric())

    def incr(self, key: str, to_add: int = 1) -> None:
        self.value.setdefault(key, CountMetric()).incr(to_add)

    def get_value_and_reset(self) -> dict[str, int]:
        return {key: metric.get_value_and_reset() for key, metric in self.value.items()}


class IReducer:
    def init(self) -> Any:
        raise NotImplementedError

    def reduce(self, value: Any) -> None:
        raise NotImplementedError

    def extract(self) -> Any:
        raise NotImplementedError


class MeanReducer(IReducer):
    def init(self) -> None:
        self.total = 0.0
        self.count = 0

    def reduce(self, value: float) -> None:
        self.total += value
        self.count += 1

    def extract(self) -> float | None:
        return self.total / self.count if self.count else None


class ReducedMetric(IMetric):
    def __init__(self, reducer_cls: Callable[[], IReducer]) -> None:
        self.reducer = reducer_cls()
        self.reducer.init()

    def update(self, value: Any) -> None:
        self.reducer.reduce(value)

    def get_value_and_reset(self) -> Any:
        value = self.reducer.extract()
        self.reducer.init()
        return value


class MultiReducedMetric(IMetric):
    def __init__(self, reducer: Callable[[], IReducer]) -> None:
        self.reducer = reducer
        self.value: dict[str, ReducedMetric] = {}

    def add_key(self, key: str) -> None:
        self.value.setdefault(key, ReducedMetric(self.reducer))

    def update(self, key: str, value: Any) -> None:
        self.value.setdefault(key, ReducedMetric(self.reducer)).update(value)

    def get_value_and_reset(self) -> dict[str, Any]:
        return {key: metric.get_value_and_reset() for key, metric in self.value.items()}


class AssignableMetrics(IMetric):
    def __init__(self, init_val: Any) -> None:
        self.value = init_val

    def update(self, value: Any) -> None:
        self.value = value

    def get_value_and_reset(self) -> Any:
        return self.value


class MultiAssignableMetrics(IMetric):
    def __init__(self) -> None:
        self.value: dict[str, AssignableMetrics] = {}

    def update(self, key: str, value: Any) -> None:
        self.value.setdefault(key, AssignableMetrics(value)).update(value)

    def get_value_and_reset(self) -> dict[str, Any]:
        return {key: metric.get_value_and_reset() for key, metric in self.value.items()}


def register(name: str, metric: IMetric) -> None:
    """Keep ``metric`` under ``name`` (a later registration under the same name replaces it)."""
    if not isinstance(metric, IMetric):
        raise TypeError(f"metric {name!r} must be an IMetric, got {type(metric).__name__}")
    with _registry_lock:
        _registry[name] = metric


def registered_values() -> dict[str, Any]:
    """Every registered metric's value, read (and reset) now."""
    with _registry_lock:
        return {name: metric.get_value_and_reset() for name, metric in sorted(_registry.items())}
