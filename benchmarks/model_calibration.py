"""How well the latency model predicts: measured vs predicted complete latency per trial.

    python benchmarks/model_calibration.py RESULTS.csv [MORE.csv ...]

Reads the CSVs that ``squall experiment`` writes (columns ``scheduler``, ``complete_ms`` —
the spouts' complete latency as Nimbus measured it over the trial — and ``predicted_ms`` —
what ``squall.rebalance.latency`` predicted for the same placement from the same live
measurements) and prints, per scheduler and overall, the median absolute relative error
|predicted - measured| / measured, and the share of points within 25%.
"""

from __future__ import annotations

import csv
import math
import statistics
import sys
from pathlib import Path


def errors(paths: list[Path]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    measured, predicted = float(row["complete_ms"]), float(row["predicted_ms"])
                except (KeyError, TypeError, ValueError):
                    continue
                if not (math.isfinite(measured) and math.isfinite(predicted)) or measured <= 0:
                    continue
                out.setdefault(row["scheduler"], []).append(abs(predicted - measured) / measured)
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    by_scheduler = errors([Path(p) for p in argv])
    everything = [e for errs in by_scheduler.values() for e in errs]
    if not everything:
        print("no trial has both complete_ms and predicted_ms", file=sys.stderr)
        return 1
    print(f"{'scheduler':<12} {'points':>6} {'median |error|':>15} {'within 25%':>11}")
    for name, errs in sorted(by_scheduler.items()) + [("all", everything)]:
        within = sum(e <= 0.25 for e in errs) / len(errs)
        print(f"{name:<12} {len(errs):>6} {statistics.median(errs):>14.0%} {within:>11.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
