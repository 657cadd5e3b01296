"""What the HTTP side reads: an immutable copy of Nimbus's state, published by the server loop.

The loop publishes a :class:`Snapshot` after each batch of events that changed the state (a
cheap copy: records shallow-copied, placements shared because they are immutable values, the
metrics window's samples copied as references; ``benchmarks/nimbus_core.py`` prints its
cost); the HTTP threads take the latest one published and render every page, the Prometheus
text and the history samples from it on their own, so rendering never runs on the loop, and
no reader touches the live state, waits on a lock the loop holds or waits for the loop at all.

Guarantees: a snapshot never changes after it is taken (the loop replaces records and
collections rather than editing the copies it handed out); it answers the reads the views
make of the state (``topologies``, ``supervisors``, ``rates``, ``metrics.latest``,
``live_nodes``, ``waiting_reason``, ``counters``, ``rebalances``, ``conf``, ``timeout``), as of
``now``, the loop's time when it was taken.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from squall.nimbus.metrics import MetricsWindow, Rates
from squall.nimbus.records import SupervisorRecord, TopologyRecord

if TYPE_CHECKING:
    from squall.nimbus.state import NimbusState

T = TypeVar("T")


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
    def of(cls, st: NimbusState, now: float, previous: Snapshot | None = None) -> Snapshot:
        """Copy what the views read from ``st``; runs on the loop, between events. A
        supervisor whose fields are those of its copy in ``previous`` (the snapshot published
        last) shares that copy: between two publications 50 ms apart only the boards that
        heartbeat meanwhile changed, and copying all 500 each time made most of the objects
        the loop allocated."""
        before = previous.supervisors if previous is not None else {}
        return cls(
            now=now,
            conf=dict(st.conf),
            timeout=st.timeout,
            topologies={name: _copy_topology(rec) for name, rec in st.topologies.items()},
            supervisors={sid: _unchanged(before.get(sid), sup) or _shallow(sup) for sid, sup in st.supervisors.items()},
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


def _shallow(obj: T) -> T:
    """``copy.copy`` of a plain record, without its generic machinery (half the time of
    ``copy.copy`` on a record: the loop copies every record at each publication). The
    fields are shared; the state replaces them rather than editing them in place (a
    supervisor's ``reports`` dict is rebuilt at each heartbeat)."""
    out = object.__new__(type(obj))
    out.__dict__.update(obj.__dict__)
    return out


def _unchanged(copy: SupervisorRecord | None, sup: SupervisorRecord) -> SupervisorRecord | None:
    """``copy`` when every field of ``sup`` is (equal to) its own, else None. The fields are
    compared, not copied; most are the very same objects, compared by identity."""
    return copy if copy is not None and copy.__dict__ == sup.__dict__ else None


def _copy_topology(rec: TopologyRecord) -> TopologyRecord:
    out = _shallow(rec)  # the placement is an immutable value: shared
    out.conf = dict(rec.conf)  # a finished rebalance edits the live record's conf in place
    return out
