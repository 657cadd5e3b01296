"""What the HTTP side reads: an immutable copy of Nimbus's state, taken on the server loop.

The loop takes a :class:`Snapshot` between two events (a cheap copy: records shallow-copied,
placements shared because they are immutable values, the metrics window's samples copied as
references); the HTTP threads then render every page, the Prometheus text and the history
samples from it on their own, so rendering never runs on the loop and no thread touches
the live state or waits on a lock the loop holds.

Guarantees: a snapshot never changes after it is taken (the loop replaces records and
collections rather than editing the copies it handed out); it answers the reads the views
make of the state (``topologies``, ``supervisors``, ``rates``, ``metrics.latest``,
``live_nodes``, ``waiting_reason``, ``counters``, ``rebalances``, ``conf``, ``timeout``), as of
``now``, the loop's time when it was taken.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from squall.nimbus.metrics import MetricsWindow, Rates
from squall.nimbus.records import SupervisorRecord, TopologyRecord

if TYPE_CHECKING:
    from squall.nimbus.state import NimbusState


@dataclass(frozen=True)
class Snapshot:
    """See the module docstring."""

    now: float
    conf: dict[str, Any]
    timeout: float
    topologies: dict[str, TopologyRecord]
    supervisors: dict[str, SupervisorRecord]
    metrics: MetricsWindow
    waiting_reason: dict[str, str]
    counters: Counter[str]
    rebalances: Counter[tuple[str, str]]
    _rates: dict[str, Rates] = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @classmethod
    def of(cls, st: NimbusState, now: float) -> Snapshot:
        """Copy what the views read from ``st``; runs on the loop, between events."""
        return cls(
            now=now,
            conf=dict(st.conf),
            timeout=st.timeout,
            topologies={name: _copy_topology(rec) for name, rec in st.topologies.items()},
            supervisors={sid: copy.copy(sup) for sid, sup in st.supervisors.items()},
            metrics=st.metrics.copy(),
            waiting_reason=dict(st.waiting_reason),
            counters=Counter(st.counters),
            rebalances=Counter(st.rebalances),
        )

    def rates(self, topology: str) -> Rates:
        """The topology's rates over the copied window, computed once per snapshot."""
        with self._lock:  # several HTTP threads may ask at once; one computes
            if topology not in self._rates:
                self._rates[topology] = self.metrics.rates(topology)
            return self._rates[topology]

    def live_nodes(self, now: float) -> set[str]:
        return {s.id for s in self.supervisors.values() if s.alive(now, self.timeout)}


def _copy_topology(rec: TopologyRecord) -> TopologyRecord:
    out = copy.copy(rec)  # the placement is an immutable value: shared
    out.conf = dict(rec.conf)  # a finished rebalance edits the live record's conf in place
    return out
