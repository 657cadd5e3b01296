"""Prometheus metrics of a supervisor, read from its state when scraped (the daemon's logic
never touches prometheus objects)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from squall.supervisor.daemon import SupervisorDaemon


class SupervisorCollector(Collector):
    def __init__(self, daemon: SupervisorDaemon) -> None:
        self.daemon = daemon

    def collect(self) -> Iterator:
        d = self.daemon
        sid = d.facts.supervisor_id
        st = d.state
        # One sample each, labelled with the supervisor: (kind, name, help, value).
        board: list[tuple[type[GaugeMetricFamily | CounterMetricFamily], str, str, float]] = [
            (GaugeMetricFamily, "squall_supervisor_up", "1 while the supervisor runs", 1),
            (GaugeMetricFamily, "squall_supervisor_registered", "1 once Nimbus accepted it", int(st.registered)),
            (
                CounterMetricFamily,
                "squall_supervisor_registrations_sent",
                "registration requests sent to Nimbus, accepted or not",
                st.registrations_sent,
            ),
            (CounterMetricFamily, "squall_supervisor_bad_frames", "frames dropped as malformed", d.bad_frames),
            (GaugeMetricFamily, "squall_supervisor_nimbus_term", "the Nimbus term this board follows", st.term),
            (
                CounterMetricFamily,
                "squall_supervisor_refused_assignments",
                "assignments refused for an older Nimbus term (fencing)",
                st.refused_assignments,
            ),
            (
                CounterMetricFamily,
                "squall_supervisor_nimbus_reconnects",
                "times Nimbus fell silent and another address was tried",
                st.reconnects,
            ),
        ]
        for kind, name, doc, value in board:
            family = kind(name, doc, labels=["supervisor"])
            family.add_metric([sid], value)
            yield family
        wup = GaugeMetricFamily(
            "squall_worker_up", "1 while the worker process runs", labels=["supervisor", "topology", "port"]
        )
        restarts = CounterMetricFamily(
            "squall_worker_restarts", "worker restarts", labels=["supervisor", "topology", "port"]
        )
        rss = GaugeMetricFamily(
            "squall_worker_rss_bytes", "worker resident memory", labels=["supervisor", "topology", "port"]
        )
        executed = CounterMetricFamily(
            "squall_executor_executed", "tuples executed", labels=["topology", "component", "executor"]
        )
        emitted = CounterMetricFamily(
            "squall_executor_emitted", "tuples emitted", labels=["topology", "component", "executor"]
        )
        for port, slot in sorted(d.state.slots.items()):
            labels = [sid, slot.assignment.topology, str(port)]
            wup.add_metric(labels, 1 if slot.alive and slot.state == "running" else 0)
            restarts.add_metric(labels, slot.restarts)
            if slot.metrics is not None:
                rss.add_metric(labels, slot.metrics.rss_bytes)
                for e in slot.metrics.executors:
                    el = [slot.assignment.topology, e.component, str(e.executor)]
                    executed.add_metric(el, e.executed)
                    emitted.add_metric(el, e.emitted)
        yield from (wup, restarts, rss, executed, emitted)


def serve_metrics(daemon: SupervisorDaemon, port: int) -> None:
    """Serve /metrics on the supervisor's own address (loopback unless it has keys or was
    started ``--insecure``), not on every interface."""
    REGISTRY.register(SupervisorCollector(daemon))
    start_http_server(port, addr=daemon.host)
