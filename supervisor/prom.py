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
        up = GaugeMetricFamily("squall_supervisor_up", "1 while the supervisor runs", labels=["supervisor"])
        up.add_metric([sid], 1)
        yield up
        reg = GaugeMetricFamily("squall_supervisor_registered", "1 once Nimbus accepted it", labels=["supervisor"])
        reg.add_metric([sid], 1 if d.state.registered else 0)
        yield reg
        sent = CounterMetricFamily(
            "squall_supervisor_registrations_sent",
            "registration requests sent to Nimbus, accepted or not",
            labels=["supervisor"],
        )
        sent.add_metric([sid], d.state.registrations_sent)
        yield sent
        bad = CounterMetricFamily("squall_supervisor_bad_frames", "frames dropped as malformed", labels=["supervisor"])
        bad.add_metric([sid], d.bad_frames)
        yield bad
        term = GaugeMetricFamily(
            "squall_supervisor_nimbus_term", "the Nimbus term this board follows", labels=["supervisor"]
        )
        term.add_metric([sid], d.state.term)
        yield term
        refused = CounterMetricFamily(
            "squall_supervisor_refused_assignments",
            "assignments refused for an older Nimbus term (fencing)",
            labels=["supervisor"],
        )
        refused.add_metric([sid], d.state.refused_assignments)
        yield refused
        moved = CounterMetricFamily(
            "squall_supervisor_nimbus_reconnects",
            "times Nimbus fell silent and another address was tried",
            labels=["supervisor"],
        )
        moved.add_metric([sid], d.state.reconnects)
        yield moved
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
