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

import functools
import json
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from squall.experiments import verdict

NAME = "demo"
# Measured in this order: Aniello's online first (from round robin's placement, as in the
# paper), then latency from wherever the probation left the topology.
ADAPTIVE_ORDER = ("online", "latency")
DEFAULT_ADAPTIVE = "latency"  # the scheduler the Quickstart's "after" column shows
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


def _requested_done(client: Any, scheduler: str, after_id: int) -> dict | None:
    """The requested rebalance to ``scheduler`` once its move is done (or it was declined)."""
    for event in reversed(client.events(NAME)):
        if event["id"] <= after_id or event.get("trigger") != "requested" or scheduler not in event["reason"]:
            continue
        if event["decision"] == "declined" or event.get("done_at"):
            return event
    return None


def _judged(client: Any, event_id: int) -> dict | None:
    """The event once its probation judged it (kept, or rolled back and moved back)."""
    return verdict.judged(client.events(NAME), event_id)


def _last_id(client: Any) -> int:
    events = client.events(NAME)
    return events[-1]["id"] if events else 0


def read_ledgers(folder: Path) -> dict[str, int]:
    totals = {"emitted": 0, "acked": 0, "in_flight": 0, "replayed": 0, "spouts": 0, "active": 0}
    for path in folder.glob("spout-*.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being replaced right now; the next read gets it
        totals["spouts"] += 1
        totals["active"] += bool(record.get("active", True))
        for key in ("emitted", "acked", "in_flight", "replayed"):
            totals[key] += int(record[key])
    return totals


def run_demo(
    window_s: float = 15.0,
    rate: float = 250.0,
    stages: int = 4,
    replication: int = 2,
    work: int = 200,
    workers: int = 4,
    loopback: bool = False,
) -> dict[str, Any]:
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
    cluster = open_cluster(
        default_boards(), prefix="sqdemo", subnet="10.233.0", loopback=loopback, say=lambda s: progress(s, final=True)
    )
    figures: dict[str, dict[str, Any]] = {}
    events: dict[str, dict | None] = {}
    try:
        nodes = len(cluster.node_ids)
        progress(f"cluster up: Nimbus at {cluster.nimbus_address}, {nodes} boards", final=True)
        cluster.submit(str(topology_file), name=NAME, workers=workers, scheduler="round_robin", conf=conf)
        with cluster.client(timeout_s=10) as client:
            _wait("starting workers", 60, progress, lambda: _running(client))
            _wait("measuring under round_robin", window_s + 2, progress)
            figures["round_robin"] = _figures(client.stats(NAME), client.assignment(NAME), "round_robin")
            for scheduler in ADAPTIVE_ORDER:
                mark = _last_id(client)
                client.rebalance(NAME, scheduler=scheduler)
                event = _wait(
                    f"{scheduler} rebalance (live migration)",
                    90,
                    progress,
                    functools.partial(_requested_done, client, scheduler, mark),
                )
                if event["decision"] == "applied":
                    # The probation measures one window under the new placement and judges it.
                    event = _wait(
                        f"measuring under {scheduler} (probation)",
                        window_s + 30,
                        progress,
                        functools.partial(_judged, client, event["id"]),
                    )
                    figures[scheduler] = _figures(None, None, scheduler, event, event.get("measured_after"))
                    if event["decision"] == "rolled_back":  # measurement restarted with the move back
                        _wait("measuring after the roll-back", window_s + 2, progress)
                        _wait(
                            "latency samples after the roll-back",
                            60,
                            progress,
                            lambda: client.stats(NAME).get("latency_avg_ms") is not None,
                        )
                else:
                    _wait(f"measuring under {scheduler}", window_s + 2, progress)
                    figures[scheduler] = _figures(client.stats(NAME), client.assignment(NAME), scheduler, event)
                events[scheduler] = event
            client.set_active(NAME, False)
            _wait(
                "draining in-flight tuples",
                30,
                progress,
                # Every spout has seen its deactivation (in_flight is 0 between trees while a
                # spout still emits, so that alone is no end) and has no tree in flight.
                lambda: (lambda t: t["spouts"] and t["active"] == 0 and t["in_flight"] == 0)(read_ledgers(ledger)),
            )
            totals = read_ledgers(ledger)
            client.kill(NAME, 0)
    finally:
        cluster.close()
    return {
        "cluster": "emulated boards" if type(cluster).__name__ == "Testbed" else "loopback processes",
        "nodes": nodes,
        "topology": {
            "stages": stages,
            "replication": replication,
            "work": work,
            "rate_per_spout_task": rate,
            "workers": workers,
        },
        "before": figures["round_robin"],
        "after": figures[DEFAULT_ADAPTIVE],
        "schedulers": figures,
        "event": events.get(DEFAULT_ADAPTIVE),
        "events": events,
        "emitted": totals["emitted"],
        "acked": totals["acked"],
        "replayed": totals["replayed"],
        "lost": totals["emitted"] - totals["acked"],
        "seconds": round(time.monotonic() - started, 1),
    }


def _figures(
    stats: dict | None, assignment: dict | None, scheduler: str, event: dict | None = None, measured: dict | None = None
) -> dict[str, Any]:
    """One scheduler's figures. Latency comes from the probation's measurement when there
    was one (the same window that judged the change), else from the stats."""
    stats = {**(stats or {}), **(measured or {})}
    predicted = (event or {}).get("predicted") or {}
    proposed = predicted.get("proposed") or {}
    out: dict[str, Any] = {
        "scheduler": scheduler,
        "inter_node_tps": stats.get("inter_node_tps"),
        "inter_worker_tps": stats.get("inter_worker_tps"),
        "latency_avg_ms": stats.get("avg_ms", stats.get("latency_avg_ms")),
        "latency_p99_ms": stats.get("p99_ms", stats.get("latency_p99_ms")),
        "nodes_used": stats.get("nodes_used"),
        "workers": stats.get("workers"),
        # The model's own prediction (not scaled by the calibration against the placement
        # before, which carries that placement's noise): compare it with the measured one.
        "predicted_latency_ms": proposed.get("latency_ms"),
        "predicted_calibrated_ms": proposed.get("calibrated_latency_ms"),
        "predicted_utilisation": proposed.get("utilisation"),
        "decision": (event or {}).get("decision", "applied" if event else None),
        "moved": (event or {}).get("moved", []),
        "paused_s": (event or {}).get("paused_s"),
    }
    if assignment is not None:
        out["placement"] = {str(e["id"]): f"{e['node']}:{e['port']}" for e in assignment["executors"]}
    return out


def render(result: dict[str, Any]) -> str:
    """The side-by-side table the Quickstart shows."""
    from squall.cli.report import table

    figs = result["schedulers"]
    names = list(figs)
    base = figs["round_robin"]

    def ratio(key: str, name: str) -> str:
        x, y = base.get(key), figs[name].get(key)
        return f"{y / x:.0%}" if x and y is not None else "-"

    rows = []
    for label, key in (
        ("inter-node traffic (tuples/s)", "inter_node_tps"),
        ("inter-worker traffic (tuples/s)", "inter_worker_tps"),
        ("complete latency avg (ms)", "latency_avg_ms"),
        ("complete latency p99 (ms)", "latency_p99_ms"),
    ):
        row: list[Any] = [label]
        for n in names:
            row.append(figs[n].get(key))
            if n != "round_robin":
                row.append(ratio(key, n))
        rows.append(tuple(row))
    for label, key in (
        ("predicted latency avg (ms)", "predicted_latency_ms"),
        ("nodes used", "nodes_used"),
        ("workers", "workers"),
    ):
        row = [label]
        for n in names:
            row.append(figs[n].get(key))
            if n != "round_robin":
                row.append("")
        rows.append(tuple(row))
    header = [""]
    for n in names:
        header.append(n)
        if n != "round_robin":
            header.append("vs rr")
    t = result["topology"]
    lines = [
        f"Reference chain: {t['stages']} stages x {t['replication']} executors, {t['workers']} workers, "
        f"{t['rate_per_spout_task']:g} tuples/s per spout task, on {result['nodes']} {result['cluster']}",
        "",
        table(header, rows),
        "",
    ]
    for n, ev in (result.get("events") or {}).items():
        ev = ev or {}
        lines.append(
            f"{n}: {ev.get('decision', '?')} ({ev.get('reason', '')}); moved {len(ev.get('moved') or [])} "
            f"executors; spouts paused {ev.get('paused_s') or 0:.2f} s; probation: {ev.get('probation', '-')}"
        )
    lines += [
        f"tuples: {result['emitted']:,} emitted, {result['acked']:,} acked, {result['lost']:,} lost "
        f"({result['replayed']:,} replays after failures or timeouts)",
        f"done in {result['seconds']:.0f} s",
    ]
    return "\n".join(lines)
