"""How well the latency model predicts: measured vs predicted complete latency per trial.

    python benchmarks/model_calibration.py RESULTS.csv|models.jsonl [MORE ...] [--terms]

A CSV that ``squall experiment`` writes has, per trial, ``complete_ms`` (the spouts'
complete latency as Nimbus measured it over the trial) and ``predicted_ms`` (what the model
*of that run's code* predicted). The ``models.jsonl`` it writes beside the CSV also keeps
the model's inputs of every trial (workload profile, boards, placement), so the *current*
model is evaluated on them again: a change to the model is checked against every recorded
trial without running the experiments again.

Prints, per scheduler and overall, the median absolute relative error
|predicted - measured| / measured and the share of points within 25% — over every point,
and over the points in a steady state: the sinks kept up with the spouts (sink throughput
within 5% of the root tuples the spouts emitted). The model is a steady-state model; a
trial whose queues grew or drained while measured (the host starving the emulated boards,
a migration's backlog) measures the transient, not the placement. ``--terms`` also
prints every trial's prediction split into its terms (service, queue waits, throttling,
hops between workers, link transmission), each the prediction's drop when that term is
taken out.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Point = tuple[str, float, float, str, bool]  # scheduler, measured ms, predicted ms, label, steady
STEADY_WITHIN = 0.05


def steady(sink_tps: Any, source_tps: Any) -> bool:
    try:
        sink, source = float(sink_tps), float(source_tps)
    except (TypeError, ValueError):
        return False
    return source > 0 and abs(sink - source) <= STEADY_WITHIN * source


def from_csv(path: Path) -> list[Point]:
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                measured, predicted = float(row["complete_ms"]), float(row["predicted_ms"])
            except (KeyError, TypeError, ValueError):
                continue
            out.append((row["scheduler"], measured, predicted, row.get("topology", ""), False))
    return out


def predict_ms(record: dict[str, Any]) -> float:
    """The current model's prediction for one recorded trial."""
    from squall.rebalance import Assignment, Workload, nodes_from_list
    from squall.rebalance.latency import predict

    model = record["model"]
    workload = Workload.from_dict(model["workload"])
    value = predict(Assignment.from_dict(model["current"]), [workload], nodes_from_list(model["nodes"])).latency_ms.get(
        workload.topology
    )
    return math.nan if value is None else value


def from_jsonl(path: Path) -> list[tuple[Point, dict[str, Any]]]:
    from squall.rebalance import InvalidInputError

    out = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            try:
                measured = float(record["complete_ms"])
            except (KeyError, TypeError, ValueError):
                continue
            try:
                predicted = predict_ms(record)
            except (InvalidInputError, KeyError, TypeError) as e:  # recorded by an older version
                print(f"{path}: {record.get('topology')}: skipped, the model cannot read it ({e})", file=sys.stderr)
                continue
            label = record.get("topology", "")
            sink = record.get("sink_tps")  # not steady when not recorded
            source = record["model"]["workload"].get("profile", {}).get("source_rate")
            out.append(((record["scheduler"], measured, predicted, label, steady(sink, source)), record))
    return out


@contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    saved = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, saved)


def terms_of(record: dict[str, Any]) -> dict[str, float]:
    """The prediction's drop when each term is taken out (the breakdown only: the model's
    code is patched for the call, never its inputs' meaning)."""
    from squall.rebalance import latency_state as ls

    total = predict_ms(record)
    out = {}
    with _patched(ls, "queue_wait", lambda *a: 0.0):
        out["queue"] = total - predict_ms(record)
    with _patched(ls, "throttle_share", lambda *a: 0.0):
        out["throttle"] = total - predict_ms(record)
    with _patched(ls, "flush_wait", lambda *a: 0.0):
        out["batching"] = total - predict_ms(record)
    with _patched(ls.State, "edge_delay", lambda self, k: 0.0):
        out["hops"] = total - predict_ms(record)
    out["service+links"] = total - sum(out.values())
    return out


def table(title: str, points: list[Point]) -> None:
    by_scheduler: dict[str, list[float]] = {}
    for scheduler, measured, predicted, _label, _steady in points:
        if math.isfinite(measured) and math.isfinite(predicted) and measured > 0:
            by_scheduler.setdefault(scheduler, []).append(abs(predicted - measured) / measured)
    everything = [e for errs in by_scheduler.values() for e in errs]
    print(f"\n{title}:")
    if not everything:
        print("  no point has both a measured and a predicted latency")
        return
    print(f"{'scheduler':<12} {'points':>6} {'median |error|':>15} {'within 25%':>11}")
    for name, errs in sorted(by_scheduler.items()) + [("all", everything)]:
        within = sum(e <= 0.25 for e in errs) / len(errs)
        print(f"{name:<12} {len(errs):>6} {statistics.median(errs):>14.0%} {within:>11.0%}")


def main(argv: list[str]) -> int:
    show_terms = "--terms" in argv
    paths = [Path(a) for a in argv if a != "--terms"]
    if not paths:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    points: list[Point] = []
    for path in paths:
        if path.suffix == ".jsonl":
            for point, record in from_jsonl(path):
                points.append(point)
                if show_terms:
                    split = " ".join(f"{k} {v:.3f}" for k, v in terms_of(record).items())
                    mark = "" if point[4] else " (not steady)"
                    print(f"{point[3]:<24} measured {point[1]:8.3f} predicted {point[2]:8.3f} ms: {split}{mark}")
        else:
            points += from_csv(path)
    table("every point", points)
    if any(p[4] for p in points):
        table(f"steady-state points (sinks within {STEADY_WITHIN:.0%} of the spouts)", [p for p in points if p[4]])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
