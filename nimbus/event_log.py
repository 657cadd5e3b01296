"""The rebalance event log, as commands: every evaluation, applied or declined, is one event.

Guarantees: events are numbered here, continuing the store's sequence (``last_id`` from
``Store.last_event_id`` at start), so the same decisions replayed give the same ids; the
store writes them when the :class:`~squall.nimbus.commands.AddEvent` and
:class:`~squall.nimbus.commands.UpdateEvent` commands are carried out. ``counts`` holds the
evaluations by (topology, outcome) for Prometheus, in memory only.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from squall.nimbus.commands import AddEvent, UpdateEvent


class EventLog:
    """See the module docstring."""

    def __init__(self, last_id: int = 0) -> None:
        self.last_id = last_id
        self.counts: Counter[tuple[str, str]] = Counter()

    def add(self, topology: str, event: dict[str, Any]) -> AddEvent:
        """A new event (a JSON-able dict with a "decision"), counted, under the next id."""
        self.last_id += 1
        self.count(topology, str(event["decision"]))
        return AddEvent(self.last_id, topology, event)

    def update(self, event_id: int, changes: dict[str, Any]) -> UpdateEvent:
        """``changes`` merged into an event already added (the outcome of a move, a probation)."""
        return UpdateEvent(event_id, changes)

    def count(self, topology: str, outcome: str) -> None:
        self.counts[(topology, outcome)] += 1

    def forget(self, topology: str) -> None:
        """A removed topology's counts go (the store deletes its events with it)."""
        for key in [k for k in self.counts if k[0] == topology]:
            del self.counts[key]
