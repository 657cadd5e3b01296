"""Prometheus metrics of Nimbus, read from its state when scraped.

The state machine never imports prometheus: :class:`NimbusCollector` reads, at scrape
time, what its ``source`` returns: on the HTTP port the latest snapshot of the state the loop
published (see ``http_api``), so it renders off the loop, takes no lock and never waits for
the loop. Metric names are ``squall_``
prefixed; per-executor counters are the newest cumulative values the workers reported
(they reset when a worker restarts, which Prometheus's ``rate()`` handles).

Guarantee: a scrape costs time linear in the number of executors, supervisors and workers
(no lookup inside a loop over the same things).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from squall.messages import LATENCY_BUCKETS_MS, ExecutorMetrics
from squall.nimbus.loop_stats import SLOW_TURN_S, STEP_BUCKETS_S, Histogram, LoopStats
from squall.nimbus.state import NimbusState
from squall.nimbus.views import traffic_split

EXECUTOR_LABELS = ["topology", "component", "executor"]


class NimbusCollector(Collector):
    def __init__(
        self,
        state: NimbusState,
        clock: Any,
        loop_lag: Callable[[], tuple[float, float]] | None = None,
        source: Callable[[], tuple[Any, float]] | None = None,
        snapshot_age: Callable[[], float] | None = None,
        loop_stats: LoopStats | None = None,
    ) -> None:
        # () -> (what to read: the state or a snapshot of it, its time)
        self.source = source or (lambda: (state, clock()))
        self.loop_lag = loop_lag  # () -> (latest, max) seconds a tick ran late
        self.snapshot_age = snapshot_age  # () -> seconds since the loop published what we read
        self.loop_stats = loop_stats  # what the loop's time went to (steps, collections)

    def collect(self) -> Iterator[Any]:
        rows, others = self.collect_split()
        return iter([*executor_families(rows), *others])

    def collect_split(self) -> tuple[ExecutorRows, list[Any]]:
        """What :meth:`collect` yields, split: the rows of its first six families (one series
        per executor, most of a scrape at thousands of executors; :func:`render` writes them
        in its own loop) and every other family, whole."""
        st, now = self.source()
        rows = executor_rows(st)
        return rows, [*self._topology_families(st, now, rows.spouts), *self._nimbus_families()]

    def _nimbus_families(self) -> list[Any]:
        families = []
        if self.loop_lag is not None:
            latest, worst = self.loop_lag()
            lag = GaugeMetricFamily(
                "squall_nimbus_loop_lag_seconds", "how late the server loop ran its latest tick (monotonic seconds)"
            )
            lag.add_metric([], latest)
            peak = GaugeMetricFamily(
                "squall_nimbus_loop_lag_max_seconds", "the latest tick lateness's maximum since Nimbus started"
            )
            peak.add_metric([], worst)
            families += [lag, peak]
        if self.snapshot_age is not None:
            # The loop lag is measured by the loop, so it cannot show a loop stuck right now;
            # this can: it grows for as long as the loop publishes nothing.
            age = GaugeMetricFamily(
                "squall_nimbus_snapshot_age_seconds",
                "seconds since the server loop published the state these metrics were read from",
            )
            age.add_metric([], self.snapshot_age())
            families.append(age)
        if self.loop_stats is not None:
            families += loop_families(self.loop_stats)
        return families

    def _topology_families(self, st: Any, now: float, spouts: dict[str, dict[int, ExecutorMetrics]]) -> Iterator[Any]:
        latency = HistogramMetricFamily(
            "squall_complete_latency_ms", "spout complete latency in milliseconds", labels=["topology", "component"]
        )
        inter_worker = GaugeMetricFamily(
            "squall_topology_inter_worker_tuples_per_second", "tuples/s crossing workers", labels=["topology"]
        )
        inter_node = GaugeMetricFamily(
            "squall_topology_inter_node_tuples_per_second", "tuples/s crossing nodes", labels=["topology"]
        )
        status = GaugeMetricFamily(
            "squall_topology_status", "1 for the topology's current status", labels=["topology", "status"]
        )
        worker_up = GaugeMetricFamily(
            "squall_worker_up",
            "1 while the worker runs, as its supervisor reports",
            labels=["topology", "node", "port"],
        )
        sup_up = GaugeMetricFamily("squall_supervisor_up", "1 while the supervisor heartbeats", labels=["supervisor"])
        for name in sorted(st.topologies):
            rec = st.topologies[name]
            status.add_metric([name, rec.status], 1)
            iw, inn = traffic_split(rec, st.rates(name))
            inter_worker.add_metric([name], iw)
            inter_node.add_metric([name], inn)
            hist: dict[str, tuple[list[int], float]] = {}
            for ex in sorted(spouts.get(name, ())):
                em = spouts[name][ex]
                counts, total = hist.get(em.component, ([0] * (len(LATENCY_BUCKETS_MS) + 1), 0.0))
                for k, c in enumerate(em.latency_buckets[: len(counts)]):
                    counts[k] += c
                hist[em.component] = (counts, total + em.latency_sum_ms)
            for comp, (counts, total) in sorted(hist.items()):
                cumulative, running = [], 0
                for bound, c in zip([*map(str, LATENCY_BUCKETS_MS), "+Inf"], counts):
                    running += c
                    cumulative.append((bound, running))
                latency.add_metric([name, comp], cumulative, sum_value=total)
            for (node, port), _execs in sorted(rec.worker_slots().items()):
                sup = st.supervisors.get(node)
                report = sup.reports.get((name, port)) if sup else None
                worker_up.add_metric([name, node, str(port)], 1 if report and report.state == "running" else 0)
        for sid in sorted(st.supervisors):
            sup_up.add_metric([sid], 1 if st.supervisors[sid].alive(now, st.timeout) else 0)
        rebalances = CounterMetricFamily(
            "squall_rebalances", "rebalance evaluations by outcome (applied, declined)", labels=["topology", "outcome"]
        )
        for (topology, outcome), count in sorted(st.rebalances.items()):
            rebalances.add_metric([topology, outcome], count)
        internal = CounterMetricFamily("squall_nimbus_events", "messages and faults seen by Nimbus", labels=["event"])
        for event, count in sorted(st.counters.items()):
            internal.add_metric([event], count)
        yield from (
            latency,
            inter_worker,
            inter_node,
            status,
            worker_up,
            sup_up,
            rebalances,
            internal,
        )


# The per-executor families: (name, help) of the counters, in the order of ExecutorRows'
# counts, then the load gauge.
EXECUTOR_COUNTERS = (
    ("squall_executor_emitted", "tuples emitted (cumulative, per executor)"),
    ("squall_executor_transferred", "tuples transferred (cumulative, per executor)"),
    ("squall_executor_executed", "tuples executed (cumulative, per executor)"),
    ("squall_executor_acked", "tuples acked (cumulative, per executor)"),
    ("squall_executor_failed", "tuples failed (cumulative, per executor)"),
)
EXECUTOR_LOAD = ("squall_executor_load_hz", "executor CPU load in cycles/s over the window")


@dataclass
class ExecutorRows:
    """The per-executor series of a scrape, by topology then executor: ``counted`` holds
    (topology, component, executor, (emitted, transferred, executed, acked, failed)) from each
    executor's newest report, ``loads`` (topology, component, executor, cycles/s) from the
    rates; ``spouts`` the newest report of each executor that recorded latency, by topology."""

    counted: list[tuple[str, str, str, tuple[int, ...]]] = field(default_factory=list)
    loads: list[tuple[str, str, str, float]] = field(default_factory=list)
    spouts: dict[str, dict[int, ExecutorMetrics]] = field(default_factory=dict)


def executor_rows(st: Any) -> ExecutorRows:
    """The per-executor series of ``st`` (a state or a snapshot of it)."""
    rows = ExecutorRows()
    for name in sorted(st.topologies):
        rec = st.topologies[name]
        component_of = {e.id: e.component for e in rec.executors()}  # one pass, not one per executor
        for ex, rate in sorted(st.rates(name).load_hz.items()):
            rows.loads.append((name, component_of.get(ex, "?"), str(ex), rate))
        spouts = rows.spouts[name] = {}
        for ex, (em, _node, _port) in sorted(st.metrics.latest(name).items()):
            rows.counted.append(
                (name, em.component, str(ex), (em.emitted, em.transferred, em.executed, em.acked, em.failed))
            )
            if em.latency_count and em.latency_buckets:
                spouts[ex] = em
    return rows


def executor_families(rows: ExecutorRows) -> list[Any]:
    """``rows`` as metric families, for a registry's ``collect`` (what :func:`render` writes
    without building them)."""
    counters = [CounterMetricFamily(name, doc, labels=EXECUTOR_LABELS) for name, doc in EXECUTOR_COUNTERS]
    for topology, component, ex, counts in rows.counted:
        for family, count in zip(counters, counts, strict=True):
            family.add_metric([topology, component, ex], count)
    load = GaugeMetricFamily(*EXECUTOR_LOAD, labels=EXECUTOR_LABELS)
    for topology, component, ex, rate in rows.loads:
        load.add_metric([topology, component, ex], rate)
    return [*counters, load]


class _Families(Collector):
    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Iterator[Any]:
        return iter(self.families)


def render(collector: NimbusCollector, encoder: Callable[[Collector], bytes]) -> bytes:
    """The body of a scrape: what ``encoder`` (a ``prometheus_client`` encoder, as
    ``choose_encoder`` picks one) makes of ``collector``, byte for byte, at a fraction of the
    cost. The library builds a sample object per series and validates and escapes every
    label name of every series again; at 5,000 executors (30,000 series) that was ~0.3 s of
    CPU per scrape, under the interpreter lock the server loop needs. Here the per-executor
    series are written by one loop, each executor's label set built once for its six series
    (the names are constants, valid in the legacy character set, so only label values need
    escaping), and the few dozen other families go through ``encoder``. Encoders this does
    not know (another text format, name escapings other than ``underscores`` and
    ``allow-utf-8``) get the whole collector, as before."""
    escaping = getattr(encoder, "keywords", {}).get("escaping", openmetrics.UNDERSCORES)
    func = getattr(encoder, "func", encoder)
    if func is openmetrics.generate_latest:
        open_metrics = True
    elif func is generate_latest:
        open_metrics = False
    else:
        return encoder(collector)
    if escaping not in (openmetrics.UNDERSCORES, openmetrics.ALLOWUTF8):
        return encoder(collector)
    rows, others = collector.collect_split()
    out: list[str] = []
    # One label set per executor, shared by its six series; each distinct value escaped once.
    escaped: dict[str, str] = {}

    def esc(value: str) -> str:
        got = escaped.get(value)
        if got is None:
            got = escaped[value] = _escape_value(value)
        return got

    label_sets: dict[tuple[str, str, str], str] = {}

    def labels_of(key: tuple[str, str, str]) -> str:
        got = label_sets.get(key)
        if got is None:
            topology, component, ex = key
            got = label_sets[key] = f'{{component="{esc(component)}",executor="{esc(ex)}",topology="{esc(topology)}"}}'
        return got

    counted = [(labels_of(row[:3]), row[3]) for row in rows.counted]
    for k, (name, doc) in enumerate(EXECUTOR_COUNTERS):
        _header(out, name, doc, "counter", open_metrics)
        sample = f"{name}_total"
        out.extend([f"{sample}{labels} {_go_float(counts[k])}\n" for labels, counts in counted])
    name, doc = EXECUTOR_LOAD
    _header(out, name, doc, "gauge", open_metrics)
    out.extend([f"{name}{labels_of(row[:3])} {_go_float(row[3])}\n" for row in rows.loads])
    return "".join(out).encode() + encoder(_Families(others))


def _header(out: list[str], name: str, doc: str, kind: str, open_metrics: bool) -> None:
    """A family's HELP and TYPE lines, as each format writes them."""
    if open_metrics:
        out.append(f"# HELP {name} {_escape_value(doc)}\n# TYPE {name} {kind}\n")
    else:
        shown = f"{name}_total" if kind == "counter" else name
        out.append(f"# HELP {shown} {doc.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}\n")
        out.append(f"# TYPE {shown} {kind}\n")


def _escape_value(value: str) -> str:
    """A label value (or an OpenMetrics help text) as both formats escape it."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _go_float(value: float) -> str:
    """``floatToGoString(value)`` (how both formats write a value); an int under 10**6 in
    magnitude, the common counter, without its float conversion and checks."""
    if type(value) is int and -1_000_000 < value < 1_000_000:
        return f"{value}.0"
    return floatToGoString(value)


def loop_families(stats: LoopStats) -> list[Any]:
    """The loop's steps by kind, its turns, and the collector's pauses by generation, as
    histograms (wall and CPU time); the slow turns by what took longest in them, as counters."""
    read = stats.read()
    step = HistogramMetricFamily(
        "squall_nimbus_loop_step_seconds",
        "time the server loop spent on one step: a message by its type, a Tick, a snapshot publication",
        labels=["kind"],
    )
    for kind, hist in sorted(read.steps.items()):
        step.add_metric([kind], _buckets(hist), hist.total_s)
    step_cpu = HistogramMetricFamily(
        "squall_nimbus_loop_step_cpu_seconds",
        "CPU time of the server loop's thread during one step (wall time above it: the loop waited)",
        labels=["kind"],
    )
    for kind, hist in sorted(read.step_cpu.items()):
        step_cpu.add_metric([kind], _buckets(hist), hist.total_s)
    turn = HistogramMetricFamily(
        "squall_nimbus_loop_turn_seconds", "time the server loop spent between two polls of its socket"
    )
    turn.add_metric([], _buckets(read.turns), read.turns.total_s)
    turn_cpu = HistogramMetricFamily(
        "squall_nimbus_loop_turn_cpu_seconds", "CPU time of the server loop's thread between two polls"
    )
    turn_cpu.add_metric([], _buckets(read.turn_cpu), read.turn_cpu.total_s)
    slow = CounterMetricFamily(
        "squall_nimbus_loop_slow_turns",
        f"turns of the server loop over {SLOW_TURN_S * 1e3:g} ms, by what took longest in them",
        labels=["longest"],
    )
    slow_wall = CounterMetricFamily(
        "squall_nimbus_loop_slow_turn_seconds", "wall time of those turns, by what took longest", labels=["longest"]
    )
    slow_cpu = CounterMetricFamily(
        "squall_nimbus_loop_slow_turn_cpu_seconds", "CPU time of those turns, by what took longest", labels=["longest"]
    )
    for kind, turns in sorted(read.slow_turns.items()):
        slow.add_metric([kind], turns.count)
        slow_wall.add_metric([kind], turns.wall_s)
        slow_cpu.add_metric([kind], turns.cpu_s)
    gc_pause = HistogramMetricFamily(
        "squall_nimbus_gc_pause_seconds",
        "pauses of the cyclic garbage collector (every thread waits), by generation collected",
        labels=["generation"],
    )
    for generation, hist in sorted(read.gc_pauses.items()):
        gc_pause.add_metric([str(generation)], _buckets(hist), hist.total_s)
    gc_cpu = HistogramMetricFamily(
        "squall_nimbus_gc_pause_cpu_seconds",
        "CPU time of the thread that ran each garbage collection, by generation collected",
        labels=["generation"],
    )
    for generation, hist in sorted(read.gc_cpu.items()):
        gc_cpu.add_metric([str(generation)], _buckets(hist), hist.total_s)
    return [step, step_cpu, turn, turn_cpu, slow, slow_wall, slow_cpu, gc_pause, gc_cpu]


def _buckets(hist: Histogram) -> list[tuple[str, float]]:
    """Cumulative (upper bound, count) pairs, +Inf last, as Prometheus histograms have them."""
    out, seen = [], 0
    for bound, count in zip([*map(str, STEP_BUCKETS_S), "+Inf"], hist.counts, strict=True):
        seen += count
        out.append((bound, float(seen)))
    return out


def registry_for(
    state: NimbusState,
    clock: Any,
    loop_lag: Callable[[], tuple[float, float]] | None = None,
    source: Callable[[], tuple[Any, float]] | None = None,
    snapshot_age: Callable[[], float] | None = None,
    loop_stats: LoopStats | None = None,
) -> CollectorRegistry:
    """A registry holding only Nimbus's collector (not the process-global default); it reads
    ``source()`` (a snapshot and its time) when given, else ``state`` at ``clock()``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NimbusCollector(state, clock, loop_lag, source, snapshot_age, loop_stats))
    return registry
