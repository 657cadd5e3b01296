"""What Nimbus's pure core and its HTTP snapshot cost, in process (no sockets).

    python benchmarks/nimbus_core.py --boards 20 --topologies 10

Builds a state over a real SQLite file: ``--boards`` boards with 4 slots each register,
``--topologies`` chain topologies (4 stages x 4 executors, 2 workers, round robin) are
submitted, and every board heartbeats once a second for 30 s with realistic cumulative
metrics for the workers it was assigned. Then it prints, as medians over the repetitions:

* the decision of one heartbeat (``step``: no I/O) and the same event carried out
  (``apply``: the decision, then its writes in one SQLite transaction), and of one tick;
* what publishing the HTTP snapshot costs the server loop (``Snapshot.of``: a copy, made
  after a batch of events that changed the state, at most every ``PUBLISH_S``, never per
  read): alone, per heartbeat if every heartbeat were published on its own (the bound's
  worst case), and per heartbeat when a heartbeat from every board arrives in one batch;
* against what one HTTP read cost when the loop rendered the bodies itself (cluster summary,
  one topology page, its traffic, and the Prometheus text), which the HTTP threads now do
  from the published snapshot.

Figures depend on the machine and on what else runs on it; the script prints them, no test
asserts them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import generate_latest  # noqa: E402

from squall import messages as M  # noqa: E402
from squall.experiments.reference import chain_topology  # noqa: E402
from squall.nimbus import http_views as V  # noqa: E402
from squall.nimbus.events import Received, Tick  # noqa: E402
from squall.nimbus.history import History  # noqa: E402
from squall.nimbus.prom import registry_for  # noqa: E402
from squall.nimbus.server import PUBLISH_S  # noqa: E402
from squall.nimbus.snapshot import Snapshot  # noqa: E402
from squall.nimbus.state import NimbusState  # noqa: E402
from squall.nimbus.store import Store  # noqa: E402

CLI = b"bench-cli"


def metrics(execs: list[int], at: float) -> M.WorkerMetrics:
    """Cumulative counters of a worker running since 0: each executor receives 50 tuples/s
    from its predecessor and uses 1% of a core."""
    ems = [
        M.ExecutorMetrics(
            ex,
            "c",
            emitted=int(at * 50),
            executed=int(at * 50),
            cpu_s=0.01 * at,
            received_from={ex - 1: int(at * 50)} if ex > 0 else {},
        )
        for ex in execs
    ]
    return M.WorkerMetrics(
        at=at,
        clock_hz=1e9,
        executors=ems,
        sent_remote=int(at * 100),
        received_remote=int(at * 100),
        process_cpu_s=0.05 * at,
    )


def heartbeat(st: NimbusState, node: str, now: float) -> Received:
    reports = [
        M.WorkerReport(
            w.topology, w.port, 1000 + w.port, "running", w.assignment_version, metrics=metrics(w.executors, now)
        )
        for w in st.declared(node)
    ]
    return Received(node.encode(), M.Heartbeat(node, 1, reports), now)


def median_us(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def loop_work(st: NimbusState, nodes: list[str], now: float, repeat: int, publish: bool) -> tuple[float, float]:
    """Median microseconds per heartbeat of what the server loop does with a batch holding a
    fresh heartbeat (a new sample, 10 ms later) of each of ``nodes``: apply each, then
    publish one snapshot when ``publish``. Messages are built outside the timing. Returns
    (that median, the time reached)."""
    times = []
    for _ in range(repeat):
        now += 0.01
        beats = [heartbeat(st, node, now) for node in nodes]
        t0 = time.perf_counter()
        for beat in beats:
            st.apply(beat)
        if publish:
            Snapshot.of(st, now)
        times.append((time.perf_counter() - t0) / len(nodes))
    return statistics.median(times) * 1e6, now


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--boards", type=int, default=20)
    ap.add_argument("--topologies", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(tmp)
        st = NimbusState(store, {})
        nodes = [f"n{k:03d}" for k in range(args.boards)]
        for node in nodes:
            st.apply(
                Received(
                    node.encode(),
                    M.RegisterSupervisor(node, f"h-{node}", [6700, 6701, 6702, 6703], 1e9, 1e9, 4, 1024, 1),
                    0.0,
                )
            )
        spec = chain_topology(4, 4).spec.to_dict()
        for k in range(args.topologies):
            st.apply(Received(CLI, M.SubmitTopology(k + 1, f"t{k}", spec, b"code", "round_robin", 2, {}), 0.0))
        now = 0.0
        for second in range(1, 31):
            now = float(second)
            for node in nodes:
                st.apply(heartbeat(st, node, now))
            st.apply(Tick(now))
        placed = sum(1 for r in st.topologies.values() if r.placement)

        node = nodes[0]
        decide = median_us(lambda: st.step(heartbeat(st, node, now)), args.repeat)
        carried = median_us(lambda: st.apply(heartbeat(st, node, now)), args.repeat)
        tick = median_us(lambda: st.apply(Tick(now)), args.repeat)

        name = sorted(st.topologies)[0]
        history = History()
        registry = registry_for(st, lambda: now)

        def render(view: Any) -> None:
            V.cluster_summary(view, now, 0.0)
            V.topology_page(view, view.topologies[name], now, history, False)
            V.traffic(view, view.topologies[name])

        def render_from_snapshot() -> None:
            snap = Snapshot.of(st, now)
            render(snap)
            generate_latest(registry_for(st, lambda: now, source=lambda: (snap, snap.now)))

        snapshot = median_us(lambda: Snapshot.of(st, now), args.repeat)
        alone, now = loop_work(st, [node], now, args.repeat, publish=False)
        published, now = loop_work(st, [node], now, args.repeat, publish=True)
        batch_per_beat, now = loop_work(st, nodes, now, max(10, args.repeat // 10), publish=True)
        snap = Snapshot.of(st, now)
        slow = max(10, args.repeat // 20)
        on_loop_before = median_us(lambda: (render(st), generate_latest(registry)), slow)
        off_loop = median_us(render_from_snapshot, slow)
        store.close()

    print(f"{args.boards} boards, {args.topologies} topologies ({placed} placed), 30 s of heartbeats")
    print(f"heartbeat, decided (step, no I/O):             {decide:9.0f} us")
    print(f"heartbeat, carried out (apply, one SQLite tx): {carried:9.0f} us")
    print(f"tick, carried out:                             {tick:9.0f} us")
    print(f"one HTTP read on the loop, before (render 3 pages + /metrics): {on_loop_before:9.0f} us")
    print(f"snapshot published by the loop (Snapshot.of), alone:           {snapshot:9.0f} us")
    print(f"loop work per heartbeat (a fresh sample, built beforehand), no publication: {alone:9.0f} us")
    print(f"  ... each heartbeat its own batch, one publication each (worst case):       {published:9.0f} us")
    print(f"  ... a batch of one heartbeat per board, one publication:                   {batch_per_beat:9.0f} us")
    cap = 1 / PUBLISH_S
    print(
        f"  the loop publishes at most {cap:.0f} times/s (plus once per request answered): "
        f"at most {cap * snapshot / 1000:.1f} ms of loop time per second, whatever the heartbeat rate"
    )
    print("an HTTP read on the loop, now: nothing (readers take the published snapshot)")
    print(
        f"  (the same 3 pages + /metrics from a fresh snapshot, on an HTTP thread: {off_loop:.0f} us; "
        f"{len(snap.topologies)} topologies, {len(snap.supervisors)} boards copied)"
    )


if __name__ == "__main__":
    main()
