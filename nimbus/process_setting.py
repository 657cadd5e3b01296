"""A process-wide interpreter setting that several owners in one process may change at once.

Nimbus changes settings that belong to the whole process (the GC thresholds, the GIL's switch
interval), and tests run several servers in one process. :class:`SharedSetting` counts its
holders: the first :meth:`~SharedSetting.acquire` saves the current value and sets the new
one, later ones only count, and the last :meth:`~SharedSetting.release` puts back what the
first found. Thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedSetting(Generic[T]):
    def __init__(self, read: Callable[[], T], write: Callable[[T], None]) -> None:
        self._read, self._write = read, write
        self._lock = threading.Lock()
        self._holders = 0
        self._saved: T | None = None

    def acquire(self, value_from_saved: Callable[[T], T]) -> None:
        """Hold the setting; the first holder sets ``value_from_saved(current value)``."""
        with self._lock:
            if self._holders == 0:
                self._saved = self._read()
                self._write(value_from_saved(self._saved))
            self._holders += 1

    def release(self) -> None:
        """Let go; the last holder restores the value the first one found."""
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._saved is not None:
                self._write(self._saved)
                self._saved = None
