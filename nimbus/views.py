"""The ``Reply.data`` shapes of Nimbus's queries, built from its records (pure).

Every value returned is plain msgpack-able data (dicts, lists, str, int, float, bool,
None, bytes), so the CLI can print it as JSON (bytes aside).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from squall.messages import LATENCY_BUCKETS_MS
from squall.nimbus.metrics import MetricsWindow, Rates
from squall.nimbus.records import SupervisorRecord, TopologyRecord
from squall.rebalance.cost import crossing


def topology_entry(rec: TopologyRecord) -> dict[str, Any]:
    """{"name", "status", "workers", "executors", "scheduler"} — one row of ``squall list`` —
    plus "error" for a FAILED topology (why: its workers' errors).

    ``workers`` is the number of workers placed (0 while waiting), ``executors`` the
    executor count including ackers.
    """
    row = {
        "name": rec.name,
        "status": rec.status,
        "workers": rec.placement.worker_count(),
        "executors": len(rec.executors()),
        "scheduler": rec.scheduler,
    }
    if rec.error:
        row["error"] = rec.error
    return row


def assignment_view(rec: TopologyRecord, supervisors: Mapping[str, SupervisorRecord], rates: Rates) -> dict[str, Any]:
    """{"topology", "executors": [{"id","component","tasks","node","port","pid","load_hz"}],
    "traffic": [[src, dst, tuples_per_s], ...]}; node/port/pid are None when unknown."""
    executors = []
    for e in rec.executors():
        slot = rec.placement.get(e.id)
        pid = None
        if slot is not None and slot.node in supervisors:
            report = supervisors[slot.node].reports.get((rec.name, slot.port))
            pid = report.pid if report is not None and report.pid > 0 else None
        executors.append(
            {
                "id": e.id,
                "component": e.component,
                "tasks": [e.first_task, e.last_task],
                "node": slot.node if slot else None,
                "port": slot.port if slot else None,
                "pid": pid,
                "load_hz": rates.load_hz.get(e.id, 0.0),
            }
        )
    traffic = [[s, d, r] for (s, d), r in sorted(rates.traffic.items())]
    return {"topology": rec.name, "executors": executors, "traffic": traffic}


def topology_view(rec: TopologyRecord, bundle: bytes) -> dict[str, Any]:
    """{"spec", "bundle", "conf"}: what a supervisor needs to start a worker."""
    return {"spec": rec.spec.to_dict(), "bundle": bundle, "conf": dict(rec.conf)}


def cluster_view(
    supervisors: Mapping[str, SupervisorRecord],
    topologies: Mapping[str, TopologyRecord],
    now: float,
    timeout: float,
) -> dict[str, Any]:
    """{"supervisors": [{"id","host","ports","slots","used","capacity_hz","link_mbit","link_delay_ms",
    "alive","last_seen"}],
    "topologies": [topology_entry, ...]}."""
    used: dict[str, int] = {}
    for rec in topologies.values():
        for node, _port in rec.worker_slots():
            used[node] = used.get(node, 0) + 1
    sups = [
        {
            "id": s.id,
            "host": s.host,
            "ports": list(s.ports),
            "slots": len(s.ports),
            "used": used.get(s.id, 0),
            "capacity_hz": s.capacity_hz,
            "link_mbit": s.link_mbit,
            "link_delay_ms": s.link_delay_ms,
            "alive": s.alive(now, timeout),
            "last_seen": s.last_seen,
        }
        for s in sorted(supervisors.values(), key=lambda s: s.id)
    ]
    return {"supervisors": sups, "topologies": [topology_entry(topologies[n]) for n in sorted(topologies)]}


def traffic_split(rec: TopologyRecord, rates: Rates) -> tuple[float, float]:
    """(inter-worker, inter-node) tuples/s of a topology under its current placement, counted
    by the schedulers' cost model (:func:`squall.rebalance.cost.crossing`) over the same
    placement value; data tuples only: the acker's control items are in ``rates.traffic``
    for the schedulers but are not tuples."""
    if not rec.placement:
        return 0.0, 0.0
    # In any order: ``crossing`` sums with ``math.fsum``, which is exact (sorting 15,000 edges
    # at 5,000 executors cost a /metrics scrape ~25 ms under the interpreter lock).
    control = rates.control
    rows = [(s, d, rate - control.get((s, d), 0.0)) for (s, d), rate in rates.traffic.items()]
    return crossing(rec.placement.assignment(rec.name), rec.name, [r for r in rows if r[2] > 0])


def percentile_ms(buckets: list[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a latency histogram over ``LATENCY_BUCKETS_MS`` (+inf
    last), interpolated linearly inside its bucket (from 0 for the first); a quantile in the
    +inf bucket is reported as the largest finite bound. None when the histogram is empty."""
    total = sum(buckets)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for k, c in enumerate(buckets):
        if c and seen + c >= rank:
            if k >= len(LATENCY_BUCKETS_MS):
                return LATENCY_BUCKETS_MS[-1]
            low = LATENCY_BUCKETS_MS[k - 1] if k else 0.0
            return low + (LATENCY_BUCKETS_MS[k] - low) * (rank - seen) / c
        seen += c
    return LATENCY_BUCKETS_MS[-1]


def stats_view(rec: TopologyRecord, metrics: MetricsWindow, window_s: float) -> dict[str, Any]:
    """{"topology", "window_s", "inter_node_tps", "inter_worker_tps", "latency_avg_ms",
    "latency_p99_ms", "emitted", "acked", "failed", "nodes_used", "workers"}.

    Traffic figures are the measured matrix split by the current placement; latency is
    the spouts' complete latency recorded within the window (None when none was); emitted,
    acked and failed are the spouts' newest cumulative counters (since their workers started).
    """
    rates = metrics.rates(rec.name)
    inter_worker, inter_node = traffic_split(rec, rates)
    spouts = {c.name for c in rec.spec.spouts}
    spout_ids = {e.id for e in rec.executors() if e.component in spouts}
    total, count, buckets = metrics.latency(rec.name, spout_ids)
    latest = [em for ex, (em, _n, _p) in metrics.latest(rec.name).items() if ex in spout_ids]
    return {
        "topology": rec.name,
        "window_s": window_s,
        "inter_node_tps": inter_node,
        "inter_worker_tps": inter_worker,
        "latency_avg_ms": total / count if count else None,
        "latency_p99_ms": percentile_ms(buckets, 0.99),
        "emitted": sum(em.emitted for em in latest),
        "acked": sum(em.acked for em in latest),
        "failed": sum(em.failed for em in latest),
        "nodes_used": len({s.node for s in rec.placement.values()}),
        "workers": rec.placement.worker_count(),
    }
