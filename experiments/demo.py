"""The Quickstart's main job: Storm's round robin, then Squall's online rebalancing, live.

It starts the embedded cluster (emulated boards when this machine allows it, else four
supervisors on loopback), runs Aniello's reference chain under ``round_robin`` for a
measurement window, asks Nimbus to rebalance it with the ``online`` scheduler (a live
migration: only moved executors move, spouts pause while routes switch), measures another
window, then deactivates the topology, lets every tuple tree finish and reads the spouts'
own ledgers for the exact count of tuples lost.

Figures come from Nimbus (``GetStats``: the measured traffic matrix under each placement,
complete latency from the spouts' histograms) and from the spouts (emitted, acked, lost).
"""

from __future__ import annotations

import json
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, Callable

NAME = "demo"
TOPOLOGY_FILE = textwrap.dedent('''
    """The demo's topology: Aniello's reference chain."""
    from squall.experiments.reference import chain_topology

    Demo = chain_topology(stages={stages}, replication={replication}, work={work}, name="{name}")
''')


class Progress:
    """One status line, rewritten in place on a terminal, printed every few seconds otherwise."""

    def __init__(self, stream: Any = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0

    def __call__(self, text: str, final: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
            self.stream.flush()
        elif final or time.monotonic() - self.last >= 5:
            self.last = time.monotonic()
            print(text, file=self.stream, flush=True)


def _wait(what: str, seconds: float, progress: Progress, check: Callable[[], Any] | None = None) -> Any:
    """Wait ``seconds`` (or until ``check`` returns a truthy value), showing a countdown."""
    start = time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        if check is not None:
            result = check()
            if result:
                progress(f"{what}: done in {elapsed:.0f} s", final=True)
                return result
        if elapsed >= seconds:
            if check is None:
                progress(f"{what}: {seconds:.0f} s", final=True)
                return None
            raise TimeoutError(f"{what}: not done after {seconds:.0f} s")
        progress(f"{what}: {elapsed:.0f}/{seconds:.0f} s")
        time.sleep(0.5)


def _running(client: Any) -> bool:
    try:
        execs = client.assignment(NAME)["executors"]
    except Exception:  # not placed yet: Nimbus answers with an error until it is
        return False
    return bool(execs) and all(e["pid"] for e in execs)


def _applied_event(client: Any) -> dict | None:
    for event in reversed(client.events(NAME)):
        if event["decision"] in ("applied", "declined") and event.get("trigger") == "requested":
            if event["decision"] == "declined" or event.get("done_at"):
                return event
    return None


def _ledgers(folder: Path) -> dict[str, int]:
    totals = {"emitted": 0, "acked": 0, "in_flight": 0, "replayed": 0, "spouts": 0}
    for path in folder.glob("spout-*.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being replaced right now; the next read gets it
        totals["spouts"] += 1
        for key in ("emitted", "acked", "in_flight", "replayed"):
            totals[key] += int(record[key])
    return totals


def run_demo(window_s: float = 15.0, rate: float = 250.0, stages: int = 4, replication: int = 2,
             work: int = 200, workers: int = 4, loopback: bool = False) -> dict[str, Any]:
    from squall.experiments.boards import default_boards
    from squall.experiments.testbed import open_cluster

    progress = Progress()
    folder = Path(tempfile.mkdtemp(prefix="squall-demo-"))
    ledger = folder / "ledger"
    ledger.mkdir()
    topology_file = folder / "demo_topology.py"
    topology_file.write_text(TOPOLOGY_FILE.format(stages=stages, replication=replication, work=work, name=NAME))
    conf = {
        "chain.rate": rate,
        "chain.ledger.dir": str(ledger),
        "topology.metrics.window.secs": window_s,
        "topology.message.timeout.secs": 10,
        "topology.max.spout.pending": 1000,
    }
    started = time.monotonic()
    # A prefix and subnet of its own, so the demo never touches an experiment's testbed.
    cluster = open_cluster(default_boards(), prefix="sqdemo", subnet="10.233.0", loopback=loopback,
                           say=lambda s: progress(s, final=True))
    try:
        nodes = len(cluster.node_ids)
        progress(f"cluster up: Nimbus at {cluster.nimbus_address}, {nodes} boards", final=True)
        cluster.submit(str(topology_file), name=NAME, workers=workers, scheduler="round_robin", conf=conf)
        with cluster.client(timeout_s=10) as client:
            _wait("starting workers", 60, progress, lambda: _running(client))
            _wait("measuring under round_robin", window_s + 2, progress)
            before = client.stats(NAME)
            placement_before = client.assignment(NAME)
            client.rebalance(NAME, scheduler="online")
            event = _wait("online rebalance (live migration)", 90, progress, lambda: _applied_event(client))
            _wait("measuring under online", window_s + 2, progress)
            after = client.stats(NAME)
            placement_after = client.assignment(NAME)
            client.set_active(NAME, False)
            _wait("draining in-flight tuples", 30, progress,
                  lambda: (lambda t: t["spouts"] and t["in_flight"] == 0)(_ledgers(ledger)))
            totals = _ledgers(ledger)
            client.kill(NAME, 0)
    finally:
        cluster.close()
    return {
        "cluster": "emulated boards" if type(cluster).__name__ == "Testbed" else "loopback processes",
        "nodes": nodes,
        "topology": {"stages": stages, "replication": replication, "work": work, "rate_per_spout_task": rate,
                     "workers": workers},
        "before": _figures(before, placement_before),
        "after": _figures(after, placement_after),
        "event": event,
        "emitted": totals["emitted"],
        "acked": totals["acked"],
        "replayed": totals["replayed"],
        "lost": totals["emitted"] - totals["acked"],
        "seconds": round(time.monotonic() - started, 1),
    }


def _figures(stats: dict, assignment: dict) -> dict[str, Any]:
    return {
        "scheduler": None,
        "inter_node_tps": stats["inter_node_tps"],
        "inter_worker_tps": stats["inter_worker_tps"],
        "latency_avg_ms": stats["latency_avg_ms"],
        "latency_p99_ms": stats["latency_p99_ms"],
        "nodes_used": stats.get("nodes_used"),
        "workers": stats.get("workers"),
        "placement": {str(e["id"]): f"{e['node']}:{e['port']}" for e in assignment["executors"]},
    }


def render(result: dict[str, Any]) -> str:
    """The side-by-side table the Quickstart shows."""
    from squall.cli.report import table

    b, a = result["before"], result["after"]

    def ratio(x: float | None, y: float | None) -> str:
        return f"{y / x:.0%}" if x and y is not None else "-"

    rows = [
        ("inter-node traffic (tuples/s)", b["inter_node_tps"], a["inter_node_tps"], ratio(b["inter_node_tps"], a["inter_node_tps"])),
        ("inter-worker traffic (tuples/s)", b["inter_worker_tps"], a["inter_worker_tps"], ratio(b["inter_worker_tps"], a["inter_worker_tps"])),
        ("complete latency avg (ms)", b["latency_avg_ms"], a["latency_avg_ms"], ratio(b["latency_avg_ms"], a["latency_avg_ms"])),
        ("complete latency p99 (ms)", b["latency_p99_ms"], a["latency_p99_ms"], ratio(b["latency_p99_ms"], a["latency_p99_ms"])),
        ("nodes used", b["nodes_used"], a["nodes_used"], ""),
        ("workers", b["workers"], a["workers"], ""),
    ]
    t = result["topology"]
    ev = result["event"] or {}
    lines = [
        f"Reference chain: {t['stages']} stages x {t['replication']} executors, {t['workers']} workers, "
        f"{t['rate_per_spout_task']:g} tuples/s per spout task, on {result['nodes']} {result['cluster']}",
        "",
        table(["", "round_robin", "online", "after/before"], rows),
        "",
        f"rebalance: {ev.get('decision', '?')} ({ev.get('reason', '')}); moved executors {ev.get('moved', [])}; "
        f"spouts paused {ev.get('paused_s') or 0:.2f} s",
        f"tuples: {result['emitted']:,} emitted, {result['acked']:,} acked, {result['lost']:,} lost "
        f"({result['replayed']:,} replays after failures or timeouts)",
        f"done in {result['seconds']:.0f} s",
    ]
    return "\n".join(lines)
