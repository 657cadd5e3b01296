"""Topologies whose every worker failed: a pure rule over the supervisors' reports.

Guarantee: a running topology is FAILED only when the supervisor of each of its workers
reports that worker ``failed`` (it gave up restarting it: the code does not load, or it keeps
dying young). The state then drops its placement, freeing the slots, and keeps the workers'
errors in the record (stored) for ``squall list``; ``rebalance`` places it again.
"""

from __future__ import annotations

from collections.abc import Mapping

from squall.nimbus.records import SupervisorRecord, TopologyRecord

MAX_ERROR_CHARS = 4000


def every_worker_failed(rec: TopologyRecord, supervisors: Mapping[str, SupervisorRecord]) -> str | None:
    """The error to keep when every worker of ``rec`` is reported failed; None otherwise
    (a worker not reported, or reported in any other state, keeps the topology running)."""
    if not rec.placement:
        return None
    reports = []
    for node, port in rec.worker_slots():
        sup = supervisors.get(node)
        reports.append(sup.reports.get((rec.name, port)) if sup is not None else None)
    if not all(r is not None and r.state == "failed" for r in reports):
        return None
    errors = list(dict.fromkeys(r.error for r in reports if r is not None and r.error))
    return "; ".join(errors)[:MAX_ERROR_CHARS] or "every worker failed"
