"""Waiting for a condition in the benchmarks that drive a local cluster.

``wait(check)`` calls ``check`` every ``interval_s`` until it returns something truthy, which
it returns; after ``timeout_s`` it raises ``TimeoutError`` naming what it waited for. The
interval bounds how late a measured moment is seen (``recovery_times.py`` polls every 20 ms
for that reason).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait(check: Callable[[], Any], timeout_s: float = 120.0, interval_s: float = 0.1, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(interval_s)
    raise TimeoutError(f"gave up waiting for {what or getattr(check, '__name__', 'a condition')} after {timeout_s} s")
