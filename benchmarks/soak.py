"""Soak: a local cluster under a steady churn of work for a long time, watched for stalls.

    python benchmarks/soak.py --minutes 60 --out soak-out

Starts a ``LocalCluster`` (real Nimbus and supervisors on loopback) and, until the time is
up, repeats a cycle: submit the reference chain at 200 tuples/s per spout task (online
scheduler, reschedule every few seconds, so live rebalances happen), let it run,
rebalance it to another worker count, deactivate and activate it through the REST API,
kill it. A probe thread asks Nimbus every second over
both planes — ``squall list`` on the control plane and ``/metrics`` on HTTP — and records
how long each took, the loop lag Nimbus reports (``squall_nimbus_loop_lag_seconds``), and
Nimbus's RSS and thread count. An answer slower than ``--stall-s`` (or none) is a stall:
the probe sends SIGUSR1, so Nimbus writes every thread's stack to its log
(``faulthandler``), and keeps the log's tail in ``OUT/stall-N.txt``.

Prints one line per minute and, at the end, the figures (JSON also in ``OUT/soak.json``):
cycles, probes, stalls, list latency p50/p99/max, loop lag p50/p99/max, the HTTP snapshot's
age p50/p99/max, RSS first/max/last and by minute, threads max. Exit 1 when a stall was
seen. Numbers on a shared machine are noisy; say so with them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
TOPOLOGY = str(Path(__file__).with_name("soak_chain.py"))
LAG = re.compile(r"^squall_nimbus_loop_lag_max_seconds ([0-9.e+-]+)$", re.M)
LAG_NOW = re.compile(r"^squall_nimbus_loop_lag_seconds ([0-9.e+-]+)$", re.M)
AGE = re.compile(r"^squall_nimbus_snapshot_age_seconds ([0-9.e+-]+)$", re.M)


class Probe(threading.Thread):
    """Asks Nimbus every ``every_s`` on both planes; records timings; dumps stacks on a stall."""

    def __init__(self, cluster, out: Path, stall_s: float, every_s: float = 1.0) -> None:
        super().__init__(name="soak-probe", daemon=True)
        self.cluster, self.out, self.stall_s, self.every_s = cluster, out, stall_s, every_s
        self.stop = threading.Event()
        self.list_s: list[float] = []
        self.metrics_s: list[float] = []
        self.lag_max = 0.0
        self.lag: list[float] = []  # the latest tick's lateness, once per probe
        self.snapshot_age: list[float] = []  # how old the state behind /metrics was, once per probe
        self.rss: list[int] = []
        self.threads_max = 0
        self.stalls: list[dict] = []

    def run(self) -> None:
        nimbus = psutil.Process(self.cluster.nimbus_proc.pid)
        while not self.stop.wait(self.every_s):
            problem = None
            started = time.monotonic()
            try:
                with self.cluster.client(timeout_s=self.stall_s) as c:
                    c.list()
                self.list_s.append(time.monotonic() - started)
            except Exception as exc:  # unreachable or timed out: a stall unless Nimbus is gone
                problem = f"list: {type(exc).__name__}: {exc}"
            started = time.monotonic()
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.cluster.http_port}/metrics", timeout=self.stall_s
                ) as r:
                    text = r.read().decode()
                self.metrics_s.append(time.monotonic() - started)
                found = LAG.search(text)
                if found:
                    self.lag_max = max(self.lag_max, float(found.group(1)))
                for pattern, series in ((LAG_NOW, self.lag), (AGE, self.snapshot_age)):
                    found = pattern.search(text)
                    if found:
                        series.append(float(found.group(1)))
            except (OSError, urllib.error.URLError) as exc:
                problem = problem or f"metrics: {exc}"
            for took in self.list_s[-1:] + self.metrics_s[-1:]:
                if took > self.stall_s and problem is None:
                    problem = f"an answer took {took:.1f} s"
            try:
                self.rss.append(nimbus.memory_info().rss)
                self.threads_max = max(self.threads_max, nimbus.num_threads())
            except psutil.Error:
                problem = problem or "the Nimbus process is gone"
            if problem:
                self._stall(problem)

    def _stall(self, problem: str) -> None:
        n = len(self.stalls) + 1
        self.stalls.append({"at": time.strftime("%H:%M:%S"), "problem": problem})
        print(f"STALL {n}: {problem}; asking Nimbus for a stack dump (SIGUSR1)", flush=True)
        try:
            os.kill(self.cluster.nimbus_proc.pid, signal.SIGUSR1)
        except OSError:
            pass
        time.sleep(1.0)
        (self.out / f"stall-{n}.txt").write_text(f"{problem}\n\n{self.cluster.log('nimbus')[-20000:]}")


def post(cluster, token: str, path: str) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{cluster.http_port}/api/v1{path}", data=b"", method="POST")
    req.add_header("X-Squall-Key", token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def cycle(cluster, token: str, n: int, run_s: float) -> None:
    """One round of churn; raises on anything Nimbus refused."""
    name = f"wc{n % 4}"
    conf = {
        "topology.reschedule.interval.secs": 3.0,
        "topology.reschedule.timeout.secs": 5.0,
        "topology.traffic.improvement": 1.0,
    }
    cluster.submit(TOPOLOGY, name=name, workers=3, scheduler="online", conf=conf)
    time.sleep(run_s)
    with cluster.client(timeout_s=30) as c:
        c.rebalance(name, wait_s=0, workers=2 + n % 3)
    time.sleep(run_s / 2)
    for path in (f"/topology/{name}/deactivate", f"/topology/{name}/activate"):
        status = post(cluster, token, path)
        if status != 200:
            raise RuntimeError(f"POST {path} answered {status}")
    time.sleep(run_s / 2)
    with cluster.client(timeout_s=30) as c:
        c.kill(name, wait_s=0)
        deadline = time.monotonic() + 60
        while any(t["name"] == name for t in c.list()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} still listed 60 s after its kill")
            time.sleep(0.5)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    from squall.localcluster import LocalCluster

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=Path("soak-out"))
    parser.add_argument("--stall-s", type=float, default=5.0, help="an answer slower than this is a stall")
    parser.add_argument("--run-s", type=float, default=20.0, help="seconds a topology runs per phase")
    parser.add_argument("--supervisors", type=int, default=3)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    data_dir = args.out / "cluster"
    started = time.monotonic()
    errors: list[str] = []
    with LocalCluster(supervisors=args.supervisors, slots=3, data_dir=data_dir) as cluster:
        token = (data_dir / "nimbus" / "http-token").read_text().strip()
        probe = Probe(cluster, args.out, args.stall_s)
        probe.start()
        n, last_line = 0, started
        try:
            while time.monotonic() - started < args.minutes * 60:
                try:
                    cycle(cluster, token, n, args.run_s)
                except Exception as exc:  # recorded, and the soak goes on: a refusal is a finding too
                    errors.append(f"cycle {n}: {type(exc).__name__}: {exc}")
                    print(f"cycle {n} failed: {exc}", flush=True)
                n += 1
                if time.monotonic() - last_line >= 60:
                    last_line = time.monotonic()
                    rss = probe.rss[-1] / 2**20 if probe.rss else float("nan")
                    print(
                        f"{(last_line - started) / 60:5.1f} min: {n} cycles, {len(probe.list_s)} probes, "
                        f"list max {max(probe.list_s, default=0):.3f} s, loop lag max {probe.lag_max:.3f} s, "
                        f"RSS {rss:.0f} MiB, threads max {probe.threads_max}, stalls {len(probe.stalls)}",
                        flush=True,
                    )
        finally:
            probe.stop.set()
            probe.join(args.stall_s * 3)
    figures = {
        "minutes": round((time.monotonic() - started) / 60, 1),
        "cycles": n,
        "cycle_errors": errors,
        "probes": len(probe.list_s),
        "stalls": probe.stalls,
        "list_s": {
            "p50": percentile(probe.list_s, 0.5),
            "p99": percentile(probe.list_s, 0.99),
            "max": max(probe.list_s, default=float("nan")),
        },
        "metrics_s": {
            "p50": percentile(probe.metrics_s, 0.5),
            "p99": percentile(probe.metrics_s, 0.99),
            "max": max(probe.metrics_s, default=float("nan")),
        },
        "loop_lag_max_s": probe.lag_max,
        "loop_lag_s": {"p50": percentile(probe.lag, 0.5), "p99": percentile(probe.lag, 0.99)},
        "snapshot_age_s": {
            "p50": percentile(probe.snapshot_age, 0.5),
            "p99": percentile(probe.snapshot_age, 0.99),
            "max": max(probe.snapshot_age, default=float("nan")),
        },
        # RSS by minute, to tell growth that levels off from a leak
        "nimbus_rss_mib_by_minute": [round(r / 2**20, 1) for r in probe.rss[:: max(1, int(60 / probe.every_s))]],
        "nimbus_rss_mib": {
            "first": probe.rss[0] / 2**20 if probe.rss else None,
            "max": max(probe.rss) / 2**20 if probe.rss else None,
            "last": probe.rss[-1] / 2**20 if probe.rss else None,
        },
        "nimbus_threads_max": probe.threads_max,
        "list_mean_s": statistics.fmean(probe.list_s) if probe.list_s else None,
    }
    (args.out / "soak.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    return 1 if probe.stalls else 0


if __name__ == "__main__":
    sys.exit(main())
