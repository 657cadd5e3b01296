"""Measured figures of the worker data plane: the 3-stage chain (spout -> middle -> sink, one
executor each) split over two real worker processes on this machine.

    python benchmarks/worker_figures.py            # prints the three figures
    pytest benchmarks/test_worker_figures.py --benchmark-enable -s

* throughput, acking off: the spout on worker A, middle and sink on worker B (every tuple
  crosses once); tuples/s = growth of the sink's ``executed`` between two heartbeats, after
  a warm-up, over a measuring window; for the chain written per tuple and, in the same run,
  the same chain batch-aware (``batch_app.BatchChain3``: the spout emits runs of
  ``BATCH_RUN`` with ``emit_many``, the bolts define ``process_many``);
* complete latency at 1,000 tuples/s, acking on, spout and sink on A, middle on B, in two
  placements of the ackers (``PLACEMENTS``): ``beside``, one acker per worker (Storm's
  default count), so the spout starts its trees on A's acker and a tree crosses twice
  (spout -> middle, middle -> sink with the middle's ack in the same frame) — the row
  compared with issue 17's target; and ``away``, the one acker on B, so a tree crosses
  four times (spout -> middle -> sink, the sink's ack to the acker, completion back) — the
  earlier figure, kept so that "nothing got slower" stays checkable. The spout itself
  records emit-to-ack times (``app.report``). The workers heartbeat every 0.25 s in the
  throughput runs (figures sooner) and at the production default, 1 s, in the latency runs
  (``--heartbeat-secs`` to change it): a heartbeat is a pause of the worker's loop;
* RSS of each worker, from its heartbeat, after the throughput run.

    python benchmarks/worker_figures.py --latency-only [--placement beside] [--count 5000]
    python benchmarks/worker_figures.py --latency-only --placement beside --spin-us 0 50 100 200 500 --rounds 3

``--spin-us`` sets ``squall.worker.spin.us`` in the latency runs (one run per value, the
values alternated ``--rounds`` times, so a change of the machine's load spreads over all of
them); each line then also gives each worker's CPU over the run (every thread, from
``/proc/<pid>/task/*/schedstat``) as a share of one core. Without it the workers run at the
key's default.

Nothing here is estimated: every figure comes from counters the workers report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from squall.ports import free_port
from squall.supervisor.runtime.stats import percentile

# The repo root, for tests.worker's helpers; put first only once squall is imported, so that
# under ``benchmarks/against.py`` the root's squall/ folder does not hide the other revision.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.worker.worker_helpers import FakeSupervisor, Processes, by_executor, make_bundle, user_module, write_launch  # noqa: E402

Chain3 = user_module("chain_app").Chain3
BatchChain3 = user_module("batch_app").BatchChain3
# chain -> (the app module, its topology): both have executors middle 0, sink 1, spout 2
CHAINS = {"per-tuple": ("chain_app", Chain3), "batch": ("batch_app", BatchChain3)}
BATCH_RUN = 100  # tuples per emit_many of the batch-aware chain's spout

MIDDLE, SINK, SPOUT, ACKER = 0, 1, 2, 3  # Chain3's executor ids; a second acker is 4
HEARTBEAT_S = 0.25  # the throughput runs'
LATENCY_HEARTBEAT_S = 1.0  # the latency runs': squall.worker.heartbeat.secs' default

# placement name -> (executors on A, executors on B, ackers, crossings per tree)
PLACEMENTS = {
    "beside": ([SPOUT, SINK, ACKER], [MIDDLE, ACKER + 1], 2, 2),
    "away": ([SPOUT, SINK], [MIDDLE, ACKER], 1, 4),
}
WHERE = {"beside": "beside the spout", "away": "away from the spout"}


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
    items_crossing_per_tree: float  # data and acker items sent between the workers, per tree
    acker_crossing_per_tree: float  # acker messages (per root, bulks unpacked) between the workers, per tree
    cpu_a: float = 0.0  # worker A's CPU (every thread) over the run, as a share of one core
    cpu_b: float = 0.0
    spins_per_tree: tuple[float, float] = (0.0, 0.0)  # waits that began by polling, on A and on B
    spin_hits_per_tree: tuple[float, float] = (0.0, 0.0)  # of those, the ones a frame ended


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
        self.pids: dict[int, int] = {}
        placement = {e: f"127.0.0.1:{self.a}" for e in a_executors} | {e: f"127.0.0.1:{self.b}" for e in b_executors}
        conf = {"squall.worker.heartbeat.secs": HEARTBEAT_S, **conf}
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
            self.pids[port] = self.procs.worker(launch).pid
        # As a supervisor would: activate once every worker is up, so start-up is not measured.
        self.sup.wait_for(lambda: self.sup.last(self.a) and self.sup.last(self.b), 20, "both workers up")
        for port in (self.a, self.b):
            self.sup.update(port, placement, active=True, version=2)

    def metric(self, port: int, executor: int) -> Any:
        return by_executor(self.sup.last(port))[executor]

    def close(self) -> None:
        self.procs.close()
        self.sup.close()


def throughput_conf(chain: str) -> dict[str, object]:
    """The throughput runs' topology conf: acking off, the spout unthrottled; for the
    batch-aware ``chain`` the spout emits runs of BATCH_RUN without a limit."""
    conf: dict[str, object] = {"topology.acker.executors": 0, "app.reliable": False, "app.rate": 0}
    if chain == "batch":
        conf |= {"app.limit": 2**62, "app.run": BATCH_RUN}
    return conf


def measure_throughput(seconds: float = 5.0, warmup: float = 1.0, chain: str = "per-tuple") -> Throughput:
    conf = throughput_conf(chain)
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


def latency_conf(
    placement: str, count: int, rate: float, report: Path, heartbeat_s: float, spin_us: float | None = None
) -> dict[str, Any]:
    """The latency run's topology conf for ``placement`` (``PLACEMENTS``); ``spin_us``, when
    given, as ``squall.worker.spin.us`` (a revision without the key ignores it)."""
    ackers = PLACEMENTS[placement][2]
    conf: dict[str, Any] = {
        "topology.acker.executors": ackers,
        "app.rate": rate,
        "app.limit": count,
        "app.report": str(report),
        "squall.worker.heartbeat.secs": heartbeat_s,
    }
    if spin_us is not None:
        conf["squall.worker.spin.us"] = spin_us
    return conf


def process_cpu_s(pid: int) -> float:
    """CPU seconds of every thread of process ``pid`` (nanoseconds in ``schedstat``)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):  # a thread that ended meanwhile
            pass
    return total / 1e9


def measure_latency(
    count: int = 5_000,
    rate: float = 1_000.0,
    placement: str = "beside",
    heartbeat_s: float = LATENCY_HEARTBEAT_S,
    spin_us: float | None = None,
) -> Latency:
    """Complete latency with the ackers placed as ``PLACEMENTS[placement]`` says; each
    worker's CPU share from its activation to the spout's report (start-up left out)."""
    a, b, _ackers, _crossings = PLACEMENTS[placement]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "latency.json"
        conf = latency_conf(placement, count, rate, report, heartbeat_s, spin_us)
        w = TwoWorkers(Path(tmp), a, b, conf)
        try:
            cpu0, t0 = {p: process_cpu_s(pid) for p, pid in w.pids.items()}, time.monotonic()
            w.sup.wait_for(report.exists, count / rate + 30, "the spout's latency report")
            cpu1, t1 = {p: process_cpu_s(pid) for p, pid in w.pids.items()}, time.monotonic()
            share = {p: (cpu1[p] - cpu0[p]) / (t1 - t0) for p in w.pids}
            data = json.loads(report.read_text())
            # Every tree is complete: the workers' next heartbeats count all that crossed.
            done_at = time.time()
            w.sup.wait_for(
                lambda: all(w.sup.last(p).metrics.at > done_at for p in (w.a, w.b)), 3 * heartbeat_s + 10, "heartbeats"
            )
            crossed = sum(w.sup.last(p).metrics.sent_remote for p in (w.a, w.b))
            # 0 from a revision without the spin (its heartbeats have no such fields).
            spins = [getattr(w.sup.last(p).metrics, "spins", 0) for p in (w.a, w.b)]
            hits = [getattr(w.sup.last(p).metrics, "spin_hits", 0) for p in (w.a, w.b)]
            # ``sent_control`` counts one per root whether or not messages were bulked, so
            # this count does not depend on the load (``sent_remote`` counts bulks as one).
            control = 0
            for port, there in ((w.a, set(b)), (w.b, set(a))):
                for m in w.sup.last(port).metrics.executors:
                    control += sum(n for dest, n in m.sent_control.items() if dest in there)
        finally:
            w.close()
    lat = data["latencies_ms"]
    return Latency(
        percentile(lat, 50),
        percentile(lat, 99),
        sum(lat) / len(lat),
        len(lat),
        data["failed"],
        crossed / len(lat),
        control / len(lat),
        share[w.a],
        share[w.b],
        (spins[0] / len(lat), spins[1] / len(lat)),
        (hits[0] / len(lat), hits[1] / len(lat)),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency-only", action="store_true", help="only the complete latency figures")
    ap.add_argument("--placement", choices=[*PLACEMENTS, "both"], default="both")
    ap.add_argument("--count", type=int, default=5_000, help="trees per latency run")
    ap.add_argument("--heartbeat-secs", type=float, default=LATENCY_HEARTBEAT_S, help="the latency runs' heartbeat")
    ap.add_argument("--spin-us", type=float, nargs="*", default=None, help="squall.worker.spin.us values to compare")
    ap.add_argument("--rounds", type=int, default=1, help="times each --spin-us value is run, alternately")
    args = ap.parse_args()
    print(f"# load average {os.getloadavg()[0]:.1f}", flush=True)
    if not args.latency_only:
        t = measure_throughput()
        print(f"throughput, acking off, 2 workers: {t.tuples_per_s:,.0f} tuples/s over {t.seconds:.1f} s")
        print(f"worker RSS: A {t.rss_mb['A']:.1f} MB, B {t.rss_mb['B']:.1f} MB")
        tb = measure_throughput(chain="batch")
        print(
            f"throughput, acking off, 2 workers, batch-aware chain (runs of {BATCH_RUN}): "
            f"{tb.tuples_per_s:,.0f} tuples/s over {tb.seconds:.1f} s"
        )
    spins: list[float | None] = list(args.spin_us) if args.spin_us else [None]
    for _ in range(args.rounds):
        for placement in PLACEMENTS if args.placement == "both" else [args.placement]:
            for spin in spins:
                lat = measure_latency(args.count, placement=placement, heartbeat_s=args.heartbeat_secs, spin_us=spin)
                crossings = PLACEMENTS[placement][3]
                cpu = (
                    f"CPU A {lat.cpu_a:.1%}, B {lat.cpu_b:.1%} of a core; per tree, spins A "
                    f"{lat.spins_per_tree[0]:.2f} ({lat.spin_hits_per_tree[0]:.2f} ended by a frame), "
                    f"B {lat.spins_per_tree[1]:.2f} ({lat.spin_hits_per_tree[1]:.2f})"
                )
                spun = "" if spin is None else f", spin {spin:g} us ({cpu})"
                print(
                    f"complete latency at 1,000 tuples/s, 2 workers, acker {WHERE[placement]} ({crossings} crossings), "
                    f"heartbeat {args.heartbeat_secs:g} s{spun}: p50 {lat.p50_ms:.2f} ms, p99 {lat.p99_ms:.2f} ms, "
                    f"mean {lat.mean_ms:.2f} ms ({lat.count} trees, {lat.failed} failed; "
                    f"per tree: {lat.items_crossing_per_tree:.2f} items crossed, a bulk counted once; "
                    f"{lat.acker_crossing_per_tree:.2f} acker messages crossed, counted per root; "
                    f"load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
    print(f"# load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
