"""What one sample of the web page's chart history costs, at the scale of hundreds of boards.

    python benchmarks/history_sample.py --boards 500 --executors 5000

Builds a Nimbus state in process (a real SQLite file, no sockets): ``--boards`` boards with 4
slots register, a chain topology of ``--executors`` executors over two workers per board is
placed (round robin, as ``benchmarks/scale.py`` submits it), and every board heartbeats once a
second for ``--seconds`` seconds with the metrics ``scale.py``'s simulated boards send
(cumulative counters, CPU time, three sources per executor). Then, ``--rounds`` times, one
more second of heartbeats arrives, the loop publishes a snapshot, and the history sampler
(``History.sample``, on the HTTP side's thread in Nimbus) samples it: the script prints the CPU
time of this thread per sample, best and median, and what its parts cost (the topology's rates
over the metrics window, the newest counters, the rest). With ``--repair``, one board then
falls silent and it prints the CPU time of the tick that finds it dead and repairs the
topology (the placement of its executors, on the server loop in Nimbus).

A sample holds the interpreter lock the server loop needs, so its CPU is loop lag on a busy
Nimbus. CPU time of this thread: less sensitive to a loaded machine than wall time, but not
insensitive (caches are shared). Nothing here is timed by a test.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from typing import Any

from squall import messages as M
from squall.experiments.reference import chain_topology
from squall.nimbus.events import Received, Tick
from squall.nimbus.history import History
from squall.nimbus.snapshot import Snapshot
from squall.nimbus.state import NimbusState
from squall.nimbus.store import Store

CLI = b"bench-cli"
SOURCES_PER_EXECUTOR = 3  # as benchmarks/scale.py
TUPLES_PER_S = 200.0


def worker_metrics(wa: M.WorkerAssignment, executors: list[int], at: float) -> M.WorkerMetrics:
    """A worker's cumulative counters ``at`` seconds after it started (as scale.py's boards)."""
    executed = int(at * TUPLES_PER_S)
    ems = []
    for ex in wa.executors:
        sources = random.Random(ex).sample(executors, SOURCES_PER_EXECUTOR)
        ems.append(
            M.ExecutorMetrics(
                executor=ex,
                component="sim",
                emitted=executed,
                transferred=executed,
                executed=executed,
                cpu_s=at * 0.01 * (1 + ex % 7),
                received_from={s: executed // len(sources) for s in sources},
            )
        )
    return M.WorkerMetrics(
        at=at, clock_hz=1.5e9, executors=ems, sent_remote=executed, received_remote=executed, rss_bytes=25 << 20
    )


def placed_state(folder: str, boards: int, executors: int) -> tuple[NimbusState, list[str], list[int]]:
    """A Nimbus state (its store in ``folder``) with ``boards`` registered boards and a chain
    topology of about ``executors`` executors placed by round robin; returns the state, the
    boards' ids and the topology's executor ids."""
    st = NimbusState(Store.open(folder), {})
    nodes = [f"b{k:04d}" for k in range(boards)]
    for node in nodes:
        reg = M.RegisterSupervisor(node, f"h-{node}", [6700, 6701, 6702, 6703], 1.5e9, 1.5e9, 4, 1024, 1)
        st.apply(Received(node.encode(), reg, 0.0))
    spec = chain_topology(10, max(1, executors // 10)).spec.to_dict()
    conf = {"topology.acker.executors": max(1, boards // 10)}
    st.apply(Received(CLI, M.SubmitTopology(1, "scale", spec, b"code", "round_robin", 2 * boards, conf), 0.0))
    return st, nodes, sorted(e.id for e in st.topologies["scale"].executors())


def heartbeats(st: NimbusState, nodes: list[str], executors: list[int], at: float) -> None:
    for node in nodes:
        reports = [
            M.WorkerReport(
                w.topology,
                w.port,
                1000 + w.port,
                "running",
                w.assignment_version,
                metrics=worker_metrics(w, executors, at),
            )
            for w in st.declared(node)
        ]
        st.apply(Received(node.encode(), M.Heartbeat(node, int(at), reports), at))


def lost_board_repair(st: NimbusState, nodes: list[str], executors: list[int], now: float) -> str:
    """One board falls silent; the others heartbeat each second until a tick declares it dead
    and repairs the topology: that tick's CPU, on the loop in Nimbus."""
    rec = st.topologies["scale"]
    version, lost, others = rec.version, nodes[0], nodes[1:]
    for _ in range(int(st.timeout) + 5):
        now += 1.0
        heartbeats(st, others, executors, now)
        took = cpu_ms(lambda t=now: st.apply(Tick(t)))
        if st.supervisors[lost].dead:
            repaired = st.topologies["scale"].version > version
            return f"the tick that found {lost} dead{'' if repaired else ' (NO repair)'} | {took:.1f} CPU ms"
    return f"{lost} was not found dead"


def cpu_ms(fn: Any) -> float:
    started = time.thread_time()
    fn()
    return (time.thread_time() - started) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", type=int, default=500)
    ap.add_argument("--executors", type=int, default=5000)
    ap.add_argument("--seconds", type=int, default=30, help="seconds of heartbeats before the first sample")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repair", action="store_true", help="then time the tick that repairs after a lost board")
    args = ap.parse_args(argv)
    print(
        f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.boards} boards, "
        f"{args.executors} executors, {args.seconds} s of heartbeats",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        st, nodes, executors = placed_state(tmp, args.boards, args.executors)
        for second in range(1, args.seconds + 1):
            heartbeats(st, nodes, executors, float(second))
            st.apply(Tick(float(second)))
        history = History()
        now = float(args.seconds)
        whole, rates, latest = [], [], []
        for _ in range(args.rounds):
            now += 1.0
            heartbeats(st, nodes, executors, now)
            st.apply(Tick(now))
            snap = Snapshot.of(st, now)
            whole.append(cpu_ms(lambda s=snap: history.sample(s, s.now)))
            again = Snapshot.of(st, now)  # the parts, on a fresh snapshot (rates are cached per snapshot)
            rates.append(cpu_ms(lambda s=again: s.rates("scale")))
            latest.append(cpu_ms(lambda s=again: s.metrics.latest("scale")))
        print("what | best CPU ms | median CPU ms")
        for label, took in (
            ("one history sample", whole),
            ("  rates over the window", rates),
            ("  newest counters", latest),
        ):
            print(f"{label} | {min(took):.1f} | {statistics.median(took):.1f}", flush=True)
        if args.repair:
            print(lost_board_repair(st, nodes, executors, now), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
