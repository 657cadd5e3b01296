"""heronpy's process-wide counters: ``incr(key)``, ``safe_incr(key)`` (thread-safe).

They are registered as the metric ``__auto__``; ``squall local`` prints them when it ends.
``init`` is accepted for heronpy code that calls it; it registers nothing more.
"""

from __future__ import annotations

import threading
from typing import Any

from squall.compat.heronpy.api.metrics import MultiCountMetric, register

metricsContainer = MultiCountMetric()
root_name = "__auto__"
lock = threading.Lock()
register(root_name, metricsContainer)


def incr(key: str, to_add: int = 1) -> None:
    metricsContainer.incr(key, to_add)


def safe_incr(key: str, to_add: int = 1) -> None:
    with lock:
        metricsContainer.incr(key, to_add)


def init(metrics_collector: Any, metrics_bucket: Any) -> None:
    """Heron registers the counters with its metrics collector here; Squall already has."""
