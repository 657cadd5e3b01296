"""The JSON bodies of Nimbus's REST API, in Storm UI's shapes where they apply (pure).

Every function reads a :class:`~squall.nimbus.snapshot.Snapshot` of Nimbus's state (on an
HTTP thread; the live state is never touched here) and returns plain JSON data; nothing
here mutates the state, reads a clock or touches a socket. Storm's latency and capacity
fields are strings with three decimals, as Storm sends them; counts are numbers.
``docs/ui.md`` lists which fields are measured and which are approximations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from squall import __version__
from squall.messages import ExecutorMetrics
from squall.nimbus import config as C
from squall.nimbus.graph import cycles
from squall.nimbus.history import History, delta
from squall.nimbus.records import TopologyRecord
from squall.nimbus.snapshot import Snapshot
from squall.nimbus.views import traffic_split
from squall.topology.order import topological_layers
from squall.topology.spec import ACKER_COMPONENT, SPOUT

COUNTS = ("emitted", "transferred", "executed", "acked", "failed", "errors")


def pretty_seconds(seconds: float | None) -> str | None:
    """Storm's uptime text: ``1d 2h 3m 4s``."""
    if seconds is None:
        return None
    s = max(0, int(seconds))
    parts = [(s // 86400, "d"), (s // 3600 % 24, "h"), (s // 60 % 60, "m"), (s % 60, "s")]
    shown = [f"{v}{u}" for v, u in parts if v] or ["0s"]
    return " ".join(shown)


def fixed(value: float | None) -> str:
    return f"{value or 0.0:.3f}"


def node_loads(st: Snapshot) -> dict[str, float]:
    """Node id -> measured CPU load (cycles/s) of every executor placed on it."""
    out: dict[str, float] = {}
    for name, rec in st.topologies.items():
        for ex, hz in st.rates(name).load_hz.items():
            slot = rec.placement.get(ex)
            if slot is not None:
                out[slot.node] = out.get(slot.node, 0.0) + hz
    return out


def used_slots(st: Snapshot) -> dict[str, list[tuple[int, str]]]:
    """Node id -> [(port, topology)] of the placed workers."""
    out: dict[str, list[tuple[int, str]]] = {}
    for name, rec in st.topologies.items():
        for node, port in rec.worker_slots():
            out.setdefault(node, []).append((port, name))
    return out


# -- cluster -------------------------------------------------------------------------------


def cluster_summary(st: Snapshot, now: float, started: float) -> dict[str, Any]:
    live = st.live_nodes(now)
    slots_total = sum(len(s.ports) for s in st.supervisors.values() if s.id in live)
    slots_used = sum(len(v) for n, v in used_slots(st).items() if n in live)
    execs = sum(len(r.executors()) for r in st.topologies.values())
    tasks = sum(e.last_task - e.first_task + 1 for r in st.topologies.values() for e in r.executors())
    return {
        "stormVersion": f"squall-{__version__}",
        "squallVersion": __version__,
        "supervisors": len(live),
        "supervisorsKnown": len(st.supervisors),
        "topologies": len(st.topologies),
        "slotsTotal": slots_total,
        "slotsUsed": slots_used,
        "slotsFree": max(0, slots_total - slots_used),
        "executorsTotal": execs,
        "tasksTotal": tasks,
        "nimbusUptime": pretty_seconds(now - started),
        "nimbusUptimeSeconds": int(now - started),
        "capacityHzTotal": sum(s.capacity_hz for s in st.supervisors.values() if s.id in live),
        "loadHzTotal": sum(node_loads(st).values()),
        "schedulerDisplayResource": False,
    }


def supervisor_summary(st: Snapshot, now: float) -> dict[str, Any]:
    loads, slots = node_loads(st), used_slots(st)
    rows = []
    for sid in sorted(st.supervisors):
        s = st.supervisors[sid]
        taken = dict(slots.get(sid, []))
        load = loads.get(sid, 0.0)
        clock = s.clock_hz or (s.capacity_hz / max(1, s.cores))
        rows.append(
            {
                "id": s.id,
                "host": s.host,
                "uptime": None,
                "uptimeSeconds": None,  # Nimbus does not learn a supervisor's start time
                "slotsTotal": len(s.ports),
                "slotsUsed": len(taken),
                "totalMem": float(s.memory_mb),
                "usedMem": None,
                "totalCpu": float(s.cores * 100),
                "usedCpu": round(100.0 * load / clock, 1) if clock else None,
                "version": __version__,
                "alive": s.alive(now, st.timeout),
                "lastSeenSecondsAgo": None if s.last_seen is None else round(now - s.last_seen, 1),
                "capacityHz": s.capacity_hz,
                "loadHz": load,
                "clockHz": s.clock_hz,
                "cores": s.cores,
                "slots": [_slot_row(s, port, taken.get(port)) for port in s.ports],
            }
        )
    return {"supervisors": rows, "schedulerDisplayResource": False}


def _slot_row(sup: Any, port: int, topology: str | None) -> dict[str, Any]:
    report = sup.reports.get((topology, port)) if topology else None
    return {
        "port": port,
        "topology": topology,
        "state": report.state if report else ("assigned" if topology else "free"),
        "pid": report.pid if report and report.pid > 0 else None,
        "rssBytes": report.metrics.rss_bytes if report and report.metrics else None,
    }


def topology_row(rec: TopologyRecord, now: float) -> dict[str, Any]:
    execs = rec.executors()
    return {
        "id": rec.name,
        "encodedId": quote(rec.name, safe=""),
        "name": rec.name,
        "status": rec.status,
        "owner": "",
        "uptime": pretty_seconds(now - rec.submitted_at),
        "uptimeSeconds": int(max(0.0, now - rec.submitted_at)),
        "tasksTotal": sum(e.last_task - e.first_task + 1 for e in execs),
        "workersTotal": len(rec.worker_slots()),
        "executorsTotal": len(execs),
        "replicationCount": 1,
        "schedulerInfo": rec.scheduler,
        "scheduler": rec.scheduler,
    }


def topology_summary(st: Snapshot, now: float) -> dict[str, Any]:
    return {
        "topologies": [topology_row(st.topologies[n], now) for n in sorted(st.topologies)],
        "schedulerDisplayResource": False,
    }


# -- one topology --------------------------------------------------------------------------


def topology_page(st: Snapshot, rec: TopologyRecord, now: float, history: History, sys: bool) -> dict[str, Any]:
    latest = st.metrics.latest(rec.name)
    window = history.span(rec.name)  # (older, newer) counters, or None
    by_comp: dict[str, list[int]] = {}
    for e in rec.executors():
        by_comp.setdefault(e.component, []).append(e.id)
    tasks_of = {e.id: e.last_task - e.first_task + 1 for e in rec.executors()}
    spouts, bolts = [], []
    totals = dict.fromkeys(COUNTS, 0)
    lat_sum, lat_n = 0.0, 0
    for comp, ids in sorted(by_comp.items()):
        if comp == ACKER_COMPONENT and not sys:
            continue
        ems = [latest[i][0] for i in ids if i in latest]
        sums = {k: sum(getattr(m, k) for m in ems) for k in COUNTS}
        row = {
            "executors": len(ids),
            "tasks": sum(tasks_of[i] for i in ids),
            **{k: sums[k] for k in ("emitted", "transferred", "acked", "failed")},
            "errors": sums["errors"],
            "lastError": "",
            "errorHost": "",
            "errorPort": "",
        }
        kind = SPOUT if comp != ACKER_COMPONENT and rec.spec.component(comp).kind == SPOUT else "bolt"
        if kind == SPOUT:
            c_sum, c_n = _latency(ems, window, ids)
            lat_sum, lat_n = lat_sum + c_sum, lat_n + c_n
            spouts.append(
                {
                    "spoutId": comp,
                    "encodedSpoutId": quote(comp, safe=""),
                    **row,
                    "completeLatency": fixed(c_sum / c_n if c_n else 0.0),
                }
            )
        else:
            cap, exec_ms = _capacity(st, rec, ems, window, ids)
            bolts.append(
                {
                    "boltId": comp,
                    "encodedBoltId": quote(comp, safe=""),
                    **row,
                    "executed": sums["executed"],
                    "capacity": fixed(cap),
                    "executeLatency": fixed(exec_ms),
                    "processLatency": fixed(exec_ms),
                }
            )
        for k in COUNTS:
            totals[k] += sums[k]
    iw, inn = traffic_split(rec, st.rates(rec.name))
    stats = {
        "window": ":all-time",
        "windowPretty": "All time",
        **{k: totals[k] for k in ("emitted", "transferred", "acked", "failed")},
        "completeLatency": fixed(lat_sum / lat_n if lat_n else 0.0),
    }
    return {
        **topology_row(rec, now),
        "msgTimeout": C.number(rec.conf, C.MESSAGE_TIMEOUT, 30.0),
        "windowHint": ":all-time",
        "window": ":all-time",
        "topologyStats": [stats],
        "spouts": spouts,
        "bolts": bolts,
        "workers": _workers(st, rec, now),
        "interWorkerTuplesPerSecond": iw,
        "interNodeTuplesPerSecond": inn,
        "assignmentVersion": rec.version,
        "waitingReason": st.waiting_reason.get(rec.name, ""),
        "configuration": dict(rec.conf),
        "schedulerDisplayResource": False,
    }


def _latency(ems: list[ExecutorMetrics], window: Any, ids: list[int]) -> tuple[float, int]:
    """Complete latency (sum ms, count) over the history's span, else since the workers started."""
    if window is not None:
        old, new = window
        s = sum(delta(old.get(i), new[i], "latency_sum_ms") for i in ids if i in new)
        n = sum(delta(old.get(i), new[i], "latency_count") for i in ids if i in new)
        if n:
            return s, int(n)
    return sum(m.latency_sum_ms for m in ems), sum(m.latency_count for m in ems)


def _capacity(
    st: Snapshot, rec: TopologyRecord, ems: list[ExecutorMetrics], window: Any, ids: list[int]
) -> tuple[float, float]:
    """(capacity, execute latency ms): the busiest executor's CPU share of one core over the
    metrics window, and CPU ms per executed tuple (history span, else since start)."""
    loads = st.rates(rec.name).load_hz
    cap = 0.0
    for i in ids:
        slot = rec.placement.get(i)
        sup = st.supervisors.get(slot.node) if slot else None
        if sup is not None and sup.clock_hz and i in loads:
            cap = max(cap, loads[i] / sup.clock_hz)
    cpu, executed = 0.0, 0.0
    if window is not None:
        old, new = window
        cpu = sum(delta(old.get(i), new[i], "cpu_s") for i in ids if i in new)
        executed = sum(delta(old.get(i), new[i], "executed") for i in ids if i in new)
    if not executed:
        cpu, executed = sum(m.cpu_s for m in ems), float(sum(m.executed for m in ems))
    return cap, (1000.0 * cpu / executed if executed else 0.0)


def _workers(st: Snapshot, rec: TopologyRecord, now: float) -> list[dict[str, Any]]:
    comp_of = {e.id: e.component for e in rec.executors()}
    rows = []
    for (node, port), execs in sorted(rec.worker_slots().items()):
        sup = st.supervisors.get(node)
        report = sup.reports.get((rec.name, port)) if sup else None
        counts: dict[str, int] = {}
        for ex in execs:
            counts[comp_of[ex]] = counts.get(comp_of[ex], 0) + 1
        rows.append(
            {
                "topologyId": rec.name,
                "topologyName": rec.name,
                "supervisorId": node,
                "host": sup.host if sup else node,
                "port": port,
                "uptime": None,
                "uptimeSeconds": None,
                "executorsTotal": len(execs),
                "componentNumTasks": counts,
                "workerLogLink": "",
                "state": report.state if report else "unknown",
                "pid": report.pid if report and report.pid > 0 else None,
                "rssBytes": report.metrics.rss_bytes if report and report.metrics else None,
                "restarts": report.restarts if report else 0,
            }
        )
    return rows


# -- what Storm lacks ----------------------------------------------------------------------


def placement(st: Snapshot, rec: TopologyRecord) -> dict[str, Any]:
    loads = st.rates(rec.name).load_hz
    execs = []
    for e in rec.executors():
        slot = rec.placement.get(e.id)
        sup = st.supervisors.get(slot.node) if slot else None
        execs.append(
            {
                "id": e.id,
                "component": e.component,
                "tasks": [e.first_task, e.last_task],
                "worker": f"{slot.node}:{slot.port}" if slot else None,
                "node": slot.node if slot else None,
                "host": sup.host if sup else None,
                "port": slot.port if slot else None,
                "loadHz": loads.get(e.id, 0.0),
            }
        )
    workers = [
        {"worker": f"{n}:{p}", "node": n, "port": p, "executors": ex}
        for (n, p), ex in sorted(rec.worker_slots().items())
    ]
    comps = [{"id": c.name, "type": c.kind, "parallelism": c.par, "tasks": c.tasks} for c in rec.spec.components]
    edges = [
        {"from": i.component, "to": c.name, "stream": i.stream, "grouping": i.grouping.type}
        for c in rec.spec.components
        for i in c.inputs
    ]
    # The page draws the graph in these layers (the engine's and the offline scheduler's
    # order) rather than computing its own.
    layers = topological_layers((c.name for c in rec.spec.components), rec.spec.component_edges())
    return {
        "topology": rec.name,
        "status": rec.status,
        "assignmentVersion": rec.version,
        "scheduler": rec.scheduler,
        "executors": execs,
        "workers": workers,
        "nodes": sorted({w["node"] for w in workers}),
        "components": comps,
        "edges": edges,
        "layers": layers,
        "cycles": cycles(rec.spec),
    }


def traffic(st: Snapshot, rec: TopologyRecord) -> dict[str, Any]:
    rates = st.rates(rec.name)
    execs = rec.executors()
    index = {e.id: k for k, e in enumerate(execs)}
    matrix = [[0.0] * len(execs) for _ in execs]
    for (s, d), r in rates.traffic.items():
        if s in index and d in index:
            matrix[index[s]][index[d]] = r
    nodes = sorted({s.node for s in rec.placement.values()})
    nindex = {n: k for k, n in enumerate(nodes)}
    node_matrix = [[0.0] * len(nodes) for _ in nodes]
    for (s, d), r in rates.traffic.items():
        a, b = rec.placement.get(s), rec.placement.get(d)
        if a is not None and b is not None:
            node_matrix[nindex[a.node]][nindex[b.node]] += r
    iw, inn = traffic_split(rec, rates)
    loads = node_loads(st)
    return {
        "topology": rec.name,
        "assignmentVersion": rec.version,
        "unit": "tuples/s",
        "executors": [
            {
                "id": e.id,
                "component": e.component,
                "node": rec.placement[e.id].node if e.id in rec.placement else None,
                "port": rec.placement[e.id].port if e.id in rec.placement else None,
            }
            for e in execs
        ],
        "matrix": matrix,
        "pairs": [[s, d, r] for (s, d), r in sorted(rates.traffic.items())],
        "loadHz": [rates.load_hz.get(e.id, 0.0) for e in execs],
        "emitted": [rates.emitted.get(e.id, 0.0) for e in execs],
        "total": sum(rates.traffic.values()),
        "interWorker": iw,
        "interNode": inn,
        "nodes": [
            {
                "id": n,
                "capacityHz": st.supervisors[n].capacity_hz if n in st.supervisors else 0.0,
                "loadHz": loads.get(n, 0.0),
            }
            for n in nodes
        ],
        "nodeMatrix": node_matrix,
    }


def events_body(name: str, events: list[Any], marks: list[dict[str, Any]]) -> dict[str, Any]:
    """Rebalance events from Nimbus's store (applied and declined, oldest first, as
    ``squall events`` shows them); ``placementChanges`` are the assignment version changes
    the page's sampler saw."""
    return {"topology": name, "source": "store", "events": list(events), "placementChanges": marks}


def as_json_safe(value: Any) -> Any:
    """bytes become their length, tuples lists, mappings dicts with string keys, NaN and
    infinities None (JSON has neither)."""
    if isinstance(value, bytes):
        return {"bytes": len(value)}
    if isinstance(value, Mapping):
        return {str(k): as_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "__dataclass_fields__"):
        return {k: as_json_safe(getattr(value, k)) for k in value.__dataclass_fields__}
    return value
