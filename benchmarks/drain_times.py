"""How each live change's drain ends, change after change, on a local cluster (real processes
on loopback), printed as a table.

    python benchmarks/drain_times.py [--changes 4] [--drain-secs 5]

The ledger chain (squall.ledger_topology, 3 stages x 2 executors, 100 tuples/s per spout
task) runs on 3 workers; the changes alternate 3 -> 2 -> 3 -> ... workers, so every change
after the first follows one that stopped or started a worker. For each change: how its drain
ended ("quiescent" or "timed out"; read from the event, or from its notes on a Squall that
did not record it), how long the drain took (when recorded) and how long the spouts were
paused in all (drain + release + acquire).

Figures from one machine shared with other work: timings are noisy, the outcome column is not.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from squall import ledger_topology as lt
from squall.localcluster import LocalCluster

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also through benchmarks/against.py
from polling import wait  # noqa: E402


def acked(ledger: Path) -> int:
    return sum(len(p.read_text().split()) for p in ledger.glob("spout-*.acked"))


def finished(events: list[dict[str, Any]], event_id: int) -> dict[str, Any] | None:
    """The event ``event_id`` once its migration is done (its pause time recorded)."""
    return next((e for e in events if e["id"] == event_id and e.get("paused_s") is not None), None)


def outcome(event: dict[str, Any]) -> str:
    if event.get("drain"):
        return str(event["drain"])
    return "timed out" if any("drain timed out" in n for n in event.get("notes", [])) else "quiescent (inferred)"


def measure(changes: int, drain_s: float, workdir: Path) -> list[dict[str, Any]]:
    rows = []
    ledger = workdir / "ledger"
    with LocalCluster(supervisors=3, slots=2, data_dir=workdir / "cluster", log_level="WARNING") as cluster:
        with cluster.client(timeout_s=15) as c:
            conf = {"topology.migration.drain.secs": drain_s}
            lt.submit(c, "drains", ledger, workers=3, conf=conf)
            workers = 3
            wait(lambda: acked(ledger) > 300)
            for k in range(changes):
                target = 2 if workers == 3 else 3
                known = {e["id"] for e in c.events("drains")}
                c.rebalance("drains", workers=target)
                (event,) = [e for e in c.events("drains") if e["id"] not in known]
                if event["decision"] != "applied":
                    raise RuntimeError(f"change {k + 1} was not applied: {event['reason']}")
                done = wait(lambda i=event["id"]: finished(c.events("drains"), i))
                rows.append({"change": k + 1, "workers": f"{workers} -> {target}", **done})
                workers = target
                before = acked(ledger)
                wait(lambda b=before: acked(ledger) > b + 300)  # flowing on the new placement
            c.kill("drains", 0)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--changes", type=int, default=4)
    ap.add_argument("--drain-secs", type=float, default=5.0, help="topology.migration.drain.secs")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="squall-drain-") as tmp:
        rows = measure(args.changes, args.drain_secs, Path(tmp))
    print(f"drain timeout {args.drain_secs:g} s")
    print(f"{'change':>6}  {'workers':>7}  {'drain ended':<21} {'drain s':>7}  {'paused s':>8}")
    for r in rows:
        drain_s = f"{r['drain_s']:.2f}" if r.get("drain_s") is not None else "-"
        print(f"{r['change']:>6}  {r['workers']:>7}  {outcome(r):<21} {drain_s:>7}  {r['paused_s']:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
