"""Synthetic workers for the live-rebalancing tests: heartbeats that report what the pushed
assignments asked for, with metrics made from a chosen traffic matrix and load — no sockets."""

from __future__ import annotations

from collections.abc import Mapping

from squall import messages as M
from squall.nimbus.state import NimbusState
from squall.nimbus.store import Store
from tests.nimbus.nimbus_helpers import heartbeat, new_state, register, submit

Traffic = Mapping[tuple[int, int], float]  # (src, dst) -> tuples/s


LatencyCurve = list[tuple[float, float]]  # (from time, complete latency ms), ascending


def latency_counters(curve: LatencyCurve, at: float, per_s: float = 100.0) -> tuple[float, int, list[int]]:
    """Cumulative (sum ms, count, histogram) at ``at`` of a spout completing ``per_s``
    trees a second whose latency follows ``curve`` (a step function)."""
    total, count = 0.0, 0
    buckets = [0] * (len(M.LATENCY_BUCKETS_MS) + 1)
    for k, (start, ms) in enumerate(curve):
        end = min(at, curve[k + 1][0]) if k + 1 < len(curve) else at
        n = int(max(0.0, end - start) * per_s)
        total += n * ms
        count += n
        buckets[
            next((b for b, bound in enumerate(M.LATENCY_BUCKETS_MS) if ms <= bound), len(M.LATENCY_BUCKETS_MS))
        ] += n
    return total, count, buckets


def worker_metrics(
    execs: list[int],
    at: float,
    traffic: Traffic,
    load_s: Mapping[int, float],
    queued: int = 0,
    sent: int = 0,
    received: int = 0,
    latency: LatencyCurve | None = None,
    me: str = "",
    peers: tuple[str, ...] = (),
) -> M.WorkerMetrics:
    """Cumulative counters at time ``at`` of a worker that has run since 0 at constant rates
    (every executor reports ``latency``; Nimbus reads it from the spouts only). Its data
    links (see ``mesh_links``) join it, as ``me``, to every one of ``peers``."""
    ems = []
    lat_sum, lat_count, lat_buckets = latency_counters(latency, at) if latency else (0.0, 0, [])
    for ex in execs:
        received_from = {s: int(rate * at) for (s, d), rate in traffic.items() if d == ex}
        ems.append(
            M.ExecutorMetrics(
                ex,
                "c",
                emitted=int(at * 10),
                cpu_s=load_s.get(ex, 0.001) * at,
                received_from=received_from,
                latency_sum_ms=lat_sum,
                latency_count=lat_count,
                latency_buckets=lat_buckets,
            )
        )
    return M.WorkerMetrics(
        at=at,
        clock_hz=1e9,
        executors=ems,
        sent_remote=sent,
        received_remote=received,
        queued=queued,
        links=mesh_links(me, peers, sent, received),
    )


def mesh_links(me: str, peers: tuple[str, ...], sent: int, received: int) -> M.DataLinks:
    """The data links of the worker at endpoint ``me`` with each of ``peers`` (itself left
    out), on link token 7 each way: ``sent`` frames handed over to each, the last frame
    received from each numbered ``received``. Workers built with equal ``sent`` and
    ``received`` have every link's last frame arrived; one built with more ``sent`` has
    frames in flight."""
    others = [p for p in peers if p != me]
    return M.DataLinks(
        endpoint=me,
        sent={p: M.LinkMark(7, sent) for p in others},
        received={p: M.LinkMark(7, received) for p in others},
    )


def report_all(
    st: NimbusState,
    now: float,
    traffic: Traffic | None = None,
    load_s: Mapping[int, float] | None = None,
    released: Mapping[tuple[str, int], dict[int, bytes]] | None = None,
    state: str = "running",
    queued: int = 0,
    skip: set[str] | frozenset[str] = frozenset(),
    follow: bool = True,
    latency: LatencyCurve | None = None,
) -> list:
    """Every live supervisor heartbeats its declared workers at ``now``. With ``follow`` the
    workers confirm the version and paused flag Nimbus last declared; every data link
    between a topology's workers has its last frame arrived."""
    cmds = []
    reporting = [
        node
        for node in sorted(st.supervisors)
        if node not in skip and st.supervisors[node].peer is not None and not st.supervisors[node].dead
    ]
    declared = {node: st.declared(node) for node in reporting}
    peers: dict[str, tuple[str, ...]] = {}
    for node, was in declared.items():
        for wa in was:
            peers[wa.topology] = (*peers.get(wa.topology, ()), f"{node}:{wa.port}")
    for node in reporting:
        sup = st.supervisors[node]
        reports = []
        for wa in declared[node]:
            old = sup.reports.get((wa.topology, wa.port))
            version = wa.assignment_version if follow or old is None else old.assignment_version
            paused = wa.paused if follow or old is None else old.paused
            me = f"{node}:{wa.port}"
            metrics = worker_metrics(
                wa.executors, now, traffic or {}, load_s or {}, queued, 100, 100, latency, me, peers[wa.topology]
            )
            reports.append(
                M.WorkerReport(
                    wa.topology,
                    wa.port,
                    1000 + wa.port,
                    state,
                    version,
                    metrics=metrics,
                    paused=paused,
                    released=dict((released or {}).get((node, wa.port), {})),
                )
            )
        cmds += heartbeat(st, node, now, reports)
    return cmds


def run(st: NimbusState, start: float, end: float, step: float = 1.0, **kw) -> list:
    """Heartbeat and tick every ``step`` seconds from ``start`` to ``end`` (inclusive); the commands."""
    cmds = []
    t = start
    while t <= end + 1e-9:
        cmds += report_all(st, t, **kw)
        cmds += st.tick(t)
        t += step
    return cmds


def assignments(cmds: list) -> list[M.SupervisorAssignment]:
    return [c.msg for c in cmds if isinstance(c.msg, M.SupervisorAssignment)]


def where(st: NimbusState, topology: str) -> dict[int, tuple[str, int]]:
    return {ex: (s.node, s.port) for ex, s in st.topologies[topology].placement.items()}


# Four heavy edges that all cross the two nodes under the placement chosen at submit
# (executors 0 2 4 6 on n1, 1 3 5 7 on n2); swapping executors 2 and 3 makes them local.
CROSSING = {(0, 3): 100.0, (1, 2): 100.0, (3, 4): 100.0, (2, 5): 100.0}
FAST = {
    "topology.reschedule.timeout.secs": 20,
    "topology.metrics.window.secs": 10,
    "topology.reschedule.interval.secs": 5,
}


def online(
    conf: dict | None = None,
    ports: list[int] | None = None,
    capacity: tuple[float, float] = (1e9, 1e9),
    store: Store | None = None,
) -> NimbusState:
    st = new_state(store)
    register(st, "n1", ports or [6700, 6701], 0.0, capacity_hz=capacity[0])
    register(st, "n2", ports or [6700, 6701], 0.0, capacity_hz=capacity[1])
    submit(st, "t", 0.0, workers=2, scheduler="online", conf={**FAST, **(conf or {})})
    assert where(st, "t") == {
        0: ("n1", 6700),
        2: ("n1", 6700),
        4: ("n1", 6700),
        6: ("n1", 6700),
        1: ("n2", 6700),
        3: ("n2", 6700),
        5: ("n2", 6700),
        7: ("n2", 6700),
    }
    return st
