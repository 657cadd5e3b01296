"""Topologies whose every worker failed (mixed into ``NimbusState``; no I/O of its own).

Guarantee: a running topology is marked FAILED only when the supervisor of each of its
workers reports that worker ``failed`` (it gave up restarting it: the code does not load, or
it keeps dying young); its placement is dropped, freeing the slots, and the workers' errors
are kept in the record (stored) for ``squall list``. ``rebalance`` places it again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from squall.nimbus.records import FAILED, RUNNING

if TYPE_CHECKING:
    from squall.nimbus.migration import Migration
    from squall.nimbus.records import SupervisorRecord, TopologyRecord

log = logging.getLogger("squall.nimbus")


class FailedTopologies:
    """See the module docstring."""

    if TYPE_CHECKING:  # provided by NimbusState
        topologies: dict[str, TopologyRecord]
        supervisors: dict[str, SupervisorRecord]
        migrations: dict[str, Migration]
        _capacity_changed: bool

        def _save(self, rec: TopologyRecord) -> None: ...
        def _push(self, now: float) -> None: ...

    def _fail_topologies(self, names: list[str], now: float) -> None:
        """A running topology whose every worker is reported failed by its supervisor (they
        gave up restarting it) is FAILED: its placement is dropped, freeing the slots, and
        the workers' errors are kept for ``squall list``. ``rebalance`` tries it again."""
        for name in names:
            rec = self.topologies.get(name)
            if rec is None or rec.phase != RUNNING or not rec.placement or name in self.migrations:
                continue
            reports = []
            for node, port in rec.worker_slots():
                sup = self.supervisors.get(node)
                reports.append(sup.reports.get((name, port)) if sup is not None else None)
            if not all(r is not None and r.state == "failed" for r in reports):
                continue
            errors = list(dict.fromkeys(r.error for r in reports if r is not None and r.error))
            rec.phase, rec.placement, rec.error = FAILED, {}, "; ".join(errors)[:4000] or "every worker failed"
            rec.version += 1
            self._save(rec)
            self._capacity_changed = True
            log.error("topology %s FAILED: %s", name, rec.error)
            self._push(now)
