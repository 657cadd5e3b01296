"""The ``Reply.data`` shapes of Nimbus's queries, built from its records (pure).

Every value returned is plain msgpack-able data (dicts, lists, str, int, float, bool,
None, bytes), so the CLI can print it as JSON (bytes aside).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from squall.nimbus.metrics import Rates
from squall.nimbus.records import SupervisorRecord, TopologyRecord


def topology_entry(rec: TopologyRecord) -> dict[str, Any]:
    """{"name", "status", "workers", "executors", "scheduler"} — one row of ``squall list``.

    ``workers`` is the number of workers placed (0 while waiting), ``executors`` the
    executor count including ackers.
    """
    return {
        "name": rec.name,
        "status": rec.status,
        "workers": len(rec.worker_slots()),
        "executors": len(rec.executors()),
        "scheduler": rec.scheduler,
    }


def assignment_view(
    rec: TopologyRecord, supervisors: Mapping[str, SupervisorRecord], rates: Rates
) -> dict[str, Any]:
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
    """{"supervisors": [{"id","host","ports","slots","used","capacity_hz","alive","last_seen"}],
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
            "alive": s.alive(now, timeout),
            "last_seen": s.last_seen,
        }
        for s in sorted(supervisors.values(), key=lambda s: s.id)
    ]
    return {"supervisors": sups, "topologies": [topology_entry(topologies[n]) for n in sorted(topologies)]}


def traffic_split(rec: TopologyRecord, rates: Rates) -> tuple[float, float]:
    """(inter-worker, inter-node) tuples/s of a topology under its current placement."""
    inter_worker = inter_node = 0.0
    for (s, d), rate in rates.traffic.items():
        a, b = rec.placement.get(s), rec.placement.get(d)
        if a is None or b is None:
            continue
        if (a.node, a.port) != (b.node, b.port):
            inter_worker += rate
        if a.node != b.node:
            inter_node += rate
    return inter_worker, inter_node
