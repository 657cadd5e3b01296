"""Nimbus's read-only requests, answered from its records (mixed into ``NimbusState``).

Each handler replies once with the ``Reply.data`` shape documented in
:mod:`squall.nimbus.views` (or the store, for events) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from squall import messages as M
from squall.nimbus import views
from squall.nimbus.loop import LoopConf, assignment_of
from squall.nimbus.placement import node_of, workload_of
from squall.nimbus.requests import RequestError

if TYPE_CHECKING:
    from squall.nimbus.metrics import MetricsWindow, Rates
    from squall.nimbus.records import SupervisorRecord, TopologyRecord
    from squall.nimbus.store import Store


class Queries:
    """ListTopologies, GetAssignment, GetTopology, GetCluster, GetEvents, GetStats."""

    if TYPE_CHECKING:  # provided by NimbusState
        store: Store
        conf: dict[str, Any]
        topologies: dict[str, TopologyRecord]
        supervisors: dict[str, SupervisorRecord]
        metrics: MetricsWindow
        timeout: float

        def live_nodes(self, now: float) -> set[str]: ...
        def rates(self, topology: str) -> Rates: ...
        def _reply(self, peer: bytes, rid: int, data: Any = None, error: str = "") -> None: ...
        def _find(self, name: str) -> TopologyRecord: ...

    def query_handlers(self) -> Mapping[type, Callable[[bytes, Any, float], None]]:
        return {
            M.ListTopologies: self._list, M.GetAssignment: self._get_assignment, M.GetTopology: self._get_topology,
            M.GetCluster: self._get_cluster, M.GetEvents: self._get_events, M.GetStats: self._get_stats,
        }

    def _list(self, peer: bytes, m: M.ListTopologies, now: float) -> None:
        self._reply(peer, m.rid, [views.topology_entry(self.topologies[n]) for n in sorted(self.topologies)])

    def _get_assignment(self, peer: bytes, m: M.GetAssignment, now: float) -> None:
        rec = self._find(m.name)
        self._reply(peer, m.rid, views.assignment_view(rec, self.supervisors, self.rates(rec.name)))

    def _get_topology(self, peer: bytes, m: M.GetTopology, now: float) -> None:
        rec = self._find(m.name)
        bundle = self.store.get_bundle(rec.bundle_digest)
        if bundle is None:
            raise RequestError(f"the code bundle of {m.name!r} ({rec.bundle_digest}) is missing from the store")
        self._reply(peer, m.rid, views.topology_view(rec, bundle))

    def _get_cluster(self, peer: bytes, m: M.GetCluster, now: float) -> None:
        self._reply(peer, m.rid, views.cluster_view(self.supervisors, self.topologies, now, self.timeout))

    def _get_events(self, peer: bytes, m: M.GetEvents, now: float) -> None:
        """A list of events, oldest first: {"id", "topology", "at", "trigger", "decision",
        "reason", "current", "proposed", "moved", "paused_s", "notes", "done_at"?}."""
        rec = self._find(m.name)
        self._reply(peer, m.rid, self.store.events(rec.name))

    def _get_stats(self, peer: bytes, m: M.GetStats, now: float) -> None:
        """The stats view, plus ``model``: the measured workload, the live boards and the
        current assignment exactly as the schedulers see them (``squall schedule
        --topology NAME`` reads it)."""
        rec = self._find(m.name)
        data = views.stats_view(rec, self.metrics, LoopConf.of(rec.conf, self.conf).window_s)
        rates = self.rates(rec.name)
        live = self.live_nodes(now)
        data["model"] = {
            "workload": workload_of(rec, rates).to_dict(),
            "nodes": [node_of(self.supervisors[n], rates=rates).to_dict() for n in sorted(live)],
            "current": assignment_of(rec.name, rec.placement).to_dict() if rec.placement else [],
            "measured_latency_ms": data["latency_avg_ms"],
        }
        self._reply(peer, m.rid, data)
