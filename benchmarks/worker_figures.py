"""Measured figures of the worker data plane: the 3-stage chain (spout -> middle -> sink, one
executor each) split over two real worker processes on this machine.

    python benchmarks/worker_figures.py            # prints the three figures
    pytest benchmarks/test_worker_figures.py --benchmark-enable -s

* throughput, acking off: the spout on worker A, middle and sink on worker B (every tuple
  crosses once); tuples/s = growth of the sink's ``executed`` between two heartbeats, after
  a warm-up, over a measuring window; for the chain written per tuple and, in the same run,
  the same chain batch-aware (``batch_app.BatchChain3``: the spout emits runs of
  ``BATCH_RUN`` with ``emit_many``, the bolts define ``process_many``);
* complete latency at 1,000 tuples/s, acking on: spout and sink on A, middle and the acker on
  B, so a tree crosses between the workers four times (spout -> middle -> sink, acks to the
  acker, completion back); the spout itself records emit-to-ack times (``app.report``);
* RSS of each worker, from its heartbeat, after the throughput run.

Nothing here is estimated: every figure comes from counters the workers report.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests.worker's helpers

from squall.ports import free_port  # noqa: E402
from squall.supervisor.runtime.stats import percentile  # noqa: E402
from tests.worker.worker_helpers import FakeSupervisor, Processes, by_executor, make_bundle, user_module, write_launch  # noqa: E402

Chain3 = user_module("chain_app").Chain3
BatchChain3 = user_module("batch_app").BatchChain3
# chain -> (the app module, its topology): both have executors middle 0, sink 1, spout 2
CHAINS = {"per-tuple": ("chain_app", Chain3), "batch": ("batch_app", BatchChain3)}
BATCH_RUN = 100  # tuples per emit_many of the batch-aware chain's spout

MIDDLE, SINK, SPOUT, ACKER = 0, 1, 2, 3  # Chain3's executor ids with one acker


@dataclass
class Throughput:
    tuples_per_s: float
    seconds: float
    rss_mb: dict[str, float]


@dataclass
class Latency:
    p50_ms: float
    p99_ms: float
    mean_ms: float
    count: int
    failed: int


class TwoWorkers:
    """Two worker processes and a fake supervisor, all stopped by ``close()``."""

    def __init__(
        self,
        tmp: Path,
        a_executors: list[int],
        b_executors: list[int],
        conf: dict[str, Any],
        chain: str = "per-tuple",
    ) -> None:
        self.sup = FakeSupervisor()
        self.procs = Processes(tmp)
        app, topology = CHAINS[chain]
        bundle = make_bundle(tmp, app)
        self.a, self.b = free_port(), free_port()
        placement = {e: f"127.0.0.1:{self.a}" for e in a_executors} | {e: f"127.0.0.1:{self.b}" for e in b_executors}
        conf = {"squall.worker.heartbeat.secs": 0.25, **conf}
        for port, executors in ((self.a, a_executors), (self.b, b_executors)):
            launch = write_launch(
                tmp / f"w{port}.launch",
                topology.spec,
                port,
                executors,
                placement,
                self.sup.endpoint,
                bundle,
                conf,
                active=False,
            )
            self.procs.worker(launch)
        # As a supervisor would: activate once every worker is up, so start-up is not measured.
        self.sup.wait_for(lambda: self.sup.last(self.a) and self.sup.last(self.b), 20, "both workers up")
        for port in (self.a, self.b):
            self.sup.update(port, placement, active=True, version=2)

    def metric(self, port: int, executor: int) -> Any:
        return by_executor(self.sup.last(port))[executor]

    def close(self) -> None:
        self.procs.close()
        self.sup.close()


def measure_throughput(seconds: float = 5.0, warmup: float = 1.0, chain: str = "per-tuple") -> Throughput:
    conf = {"topology.acker.executors": 0, "app.reliable": False, "app.rate": 0}
    if chain == "batch":
        conf |= {"app.limit": 2**62, "app.run": BATCH_RUN}
    with tempfile.TemporaryDirectory() as tmp:
        w = TwoWorkers(Path(tmp), [SPOUT], [MIDDLE, SINK], conf, chain)
        try:
            w.sup.collect(warmup)
            first = w.sup.last(w.b)
            w.sup.collect(seconds)
            last = w.sup.last(w.b)
            done = by_executor(last)[SINK].executed - by_executor(first)[SINK].executed
            elapsed = last.metrics.at - first.metrics.at
            rss = {"A": w.sup.last(w.a).metrics.rss_bytes / 2**20, "B": last.metrics.rss_bytes / 2**20}
            return Throughput(done / elapsed, elapsed, rss)
        finally:
            w.close()


def measure_latency(count: int = 5_000, rate: float = 1_000.0) -> Latency:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "latency.json"
        conf = {"topology.acker.executors": 1, "app.rate": rate, "app.limit": count, "app.report": str(report)}
        w = TwoWorkers(Path(tmp), [SPOUT, SINK], [MIDDLE, ACKER], conf)
        try:
            w.sup.wait_for(report.exists, count / rate + 30, "the spout's latency report")
            data = json.loads(report.read_text())
        finally:
            w.close()
    lat = data["latencies_ms"]
    return Latency(percentile(lat, 50), percentile(lat, 99), sum(lat) / len(lat), len(lat), data["failed"])


def main() -> None:
    t = measure_throughput()
    print(f"throughput, acking off, 2 workers: {t.tuples_per_s:,.0f} tuples/s over {t.seconds:.1f} s")
    print(f"worker RSS: A {t.rss_mb['A']:.1f} MB, B {t.rss_mb['B']:.1f} MB")
    tb = measure_throughput(chain="batch")
    print(
        f"throughput, acking off, 2 workers, batch-aware chain (runs of {BATCH_RUN}): "
        f"{tb.tuples_per_s:,.0f} tuples/s over {tb.seconds:.1f} s"
    )
    lat = measure_latency()
    print(
        f"complete latency at 1,000 tuples/s, 2 workers: p50 {lat.p50_ms:.2f} ms, p99 {lat.p99_ms:.2f} ms, "
        f"mean {lat.mean_ms:.2f} ms ({lat.count} trees, {lat.failed} failed)"
    )


if __name__ == "__main__":
    main()
