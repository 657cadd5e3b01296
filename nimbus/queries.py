"""Nimbus's read-only requests, answered by functions of the state.

Each function takes the state, the asking peer and the request, and returns the one command
that answers it: a ``Send`` of a ``Reply`` whose ``data`` has the shape documented in
:mod:`squall.nimbus.views`, or, for what only the store holds (a code bundle, the event
log), a :class:`~squall.nimbus.commands.Read` the store answers. None changes the state; an
unknown topology raises :class:`RequestError`, answered as a refused request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from squall import messages as M
from squall.nimbus import views
from squall.nimbus.commands import Command, ReplyBundle, ReplyEvents, Send
from squall.nimbus.placement import nodes_of, workload_of
from squall.nimbus.rebalance_policy import LoopConf
from squall.nimbus.requests import RequestError

if TYPE_CHECKING:
    from squall.nimbus.records import TopologyRecord
    from squall.nimbus.state import NimbusState


def find(topologies: Mapping[str, TopologyRecord], name: str) -> TopologyRecord:
    """The topology named ``name``; a :class:`RequestError` naming it when there is none."""
    rec = topologies.get(name)
    if rec is None:
        raise RequestError(f"no topology named {name!r}")
    return rec


def _reply(peer: bytes, rid: int, data: Any) -> Send:
    return Send(peer, M.Reply(rid=rid, ok=True, data=data))


def list_topologies(st: NimbusState, peer: bytes, m: M.ListTopologies, now: float) -> Command:
    return _reply(peer, m.rid, [views.topology_entry(st.topologies[n]) for n in sorted(st.topologies)])


def get_assignment(st: NimbusState, peer: bytes, m: M.GetAssignment, now: float) -> Command:
    rec = find(st.topologies, m.name)
    return _reply(peer, m.rid, views.assignment_view(rec, st.supervisors, st.rates(rec.name)))


def get_topology(st: NimbusState, peer: bytes, m: M.GetTopology, now: float) -> Command:
    rec = find(st.topologies, m.name)
    # The bundle is in the store: the reply is completed there (a missing one is an error).
    return ReplyBundle(peer, m.rid, rec.name, rec.bundle_digest, views.topology_view(rec, b""))


def get_cluster(st: NimbusState, peer: bytes, m: M.GetCluster, now: float) -> Command:
    return _reply(peer, m.rid, views.cluster_view(st.supervisors, st.topologies, now, st.timeout))


def get_events(st: NimbusState, peer: bytes, m: M.GetEvents, now: float) -> Command:
    """A list of events, oldest first: {"id", "topology", "at", "trigger", "decision",
    "reason", "current", "proposed", "moved", "paused_s", "notes", "done_at"?}; a change on
    probation gains "probation" (why), "measured_after" and "judged_at" once judged."""
    rec = find(st.topologies, m.name)
    return ReplyEvents(peer, m.rid, rec.name)


def get_stats(st: NimbusState, peer: bytes, m: M.GetStats, now: float) -> Command:
    """The stats view, plus ``model``: the measured workload, the live boards and the
    current assignment exactly as the schedulers see them (``squall schedule
    --topology NAME`` reads it)."""
    rec = find(st.topologies, m.name)
    data = views.stats_view(rec, st.metrics, LoopConf.of(rec.conf, st.conf).window_s)
    rates = st.rates(rec.name)
    live = st.live_nodes(now)
    data["model"] = {
        "workload": workload_of(rec, rates).to_dict(),
        "nodes": [node.to_dict() for node in nodes_of(st.supervisors, sorted(live), rates)],
        "current": rec.placement.assignment(rec.name).to_dict() if rec.placement else [],
        "measured_latency_ms": data["latency_avg_ms"],
    }
    return _reply(peer, m.rid, data)


QUERIES: Mapping[type, Callable[[NimbusState, bytes, Any, float], Command]] = {
    M.ListTopologies: list_topologies,
    M.GetAssignment: get_assignment,
    M.GetTopology: get_topology,
    M.GetCluster: get_cluster,
    M.GetEvents: get_events,
    M.GetStats: get_stats,
}
