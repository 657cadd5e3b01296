"""What a run measures, as pure functions over what the cluster and the sinks report.

* latency: the sinks' side channel (``<dir>/<topology>-<task>.lat``, lines of ``<wall time>
  <latency s>``), cut to a time interval — end-to-end, from the spout's emit to the sink;
* traffic: Nimbus's measured executor-to-executor rates (``client.assignment(name)``) split
  by the current placement into inter-node and inter-worker tuples/s;
* aggregation over repetitions: mean, standard deviation and count of each group.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def read_latencies(folder: Path, topology: str) -> list[tuple[float, float]]:
    """(wall time, latency s) samples of every sink task of ``topology``, sorted by time;
    a line cut short by a concurrent write is skipped."""
    samples: list[tuple[float, float]] = []
    for path in sorted(folder.glob(f"{topology}-*.lat")):
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) != 2:
                continue
            try:
                t, lat = float(parts[0]), float(parts[1])
            except ValueError:
                continue
            if math.isfinite(t) and math.isfinite(lat):
                samples.append((t, lat))
    samples.sort()
    return samples


def between(samples: Sequence[tuple[float, float]], start: float, end: float) -> list[float]:
    return [lat for t, lat in samples if start <= t < end]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_stats(latencies_s: Sequence[float], seconds: float) -> dict[str, float]:
    """Average, median, p99 (ms), sample count and sink rate (samples/s) of one interval."""
    n = len(latencies_s)
    return {
        "latency_avg_ms": statistics.fmean(latencies_s) * 1e3 if n else math.nan,
        "latency_p50_ms": percentile(latencies_s, 50) * 1e3,
        "latency_p99_ms": percentile(latencies_s, 99) * 1e3,
        "samples": n,
        "sink_tps": n / seconds if seconds > 0 else math.nan,
    }


def timeline(
    samples: Sequence[tuple[float, float]], origin: float, bin_s: float = 1.0
) -> list[tuple[float, float, int]]:
    """(seconds since ``origin``, average latency ms, samples) per bin, bins without samples left out."""
    bins: dict[int, list[float]] = {}
    for t, lat in samples:
        if t >= origin:
            bins.setdefault(int((t - origin) // bin_s), []).append(lat)
    return [((k + 0.5) * bin_s, statistics.fmean(v) * 1e3, len(v)) for k, v in sorted(bins.items())]


def traffic_split(assignment: dict[str, Any]) -> dict[str, float] | None:
    """Inter-node and inter-worker tuples/s of an assignment view (``client.assignment``);
    None while some executor is not placed yet."""
    where: dict[int, tuple[Any, Any]] = {}
    for e in assignment.get("executors", []):
        if e.get("node") is None:
            return None
        where[int(e["id"])] = (e["node"], e.get("port"))
    inter_node = inter_worker = total = 0.0
    for src, dst, rate in assignment.get("traffic", []):
        a, b = where.get(int(src)), where.get(int(dst))
        total += rate
        if a is None or b is None:
            continue
        if a != b:
            inter_worker += rate
        if a[0] != b[0]:
            inter_node += rate
    return {"inter_node_tps": inter_node, "inter_worker_tps": inter_worker, "total_tps": total}


def placement_of(assignment: dict[str, Any]) -> dict[int, tuple[Any, Any]]:
    return {int(e["id"]): (e.get("node"), e.get("port")) for e in assignment.get("executors", [])}


def all_running(assignment: dict[str, Any]) -> bool:
    """Every executor placed and its worker reporting a pid."""
    executors = assignment.get("executors", [])
    return bool(executors) and all(e.get("node") is not None and e.get("pid") for e in executors)


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    vals = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not vals:
        return math.nan, math.nan, 0
    return statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0, len(vals)


def aggregate(rows: Sequence[dict[str, Any]], keys: Sequence[str], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Group ``rows`` by ``keys`` (in first-seen order) and give each metric's mean, std and n."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in keys), []).append(row)
    out = []
    for key, members in groups.items():
        entry: dict[str, Any] = dict(zip(keys, key))
        for metric in metrics:
            mean, std, n = mean_std(r.get(metric, math.nan) for r in members)
            entry[metric], entry[f"{metric}_std"], entry["n"] = mean, std, n
        out.append(entry)
    return out


def link_utilisation(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], mbit: dict[str, float], seconds: float
) -> dict[str, float]:
    """Per board, the busier direction of its link as a share of the link's rate over
    ``seconds``: counters are (bytes up, bytes down) per board."""
    out = {}
    for board, (up1, down1) in after.items():
        if board not in before or not mbit.get(board) or seconds <= 0:
            continue
        up0, down0 = before[board]
        busiest = max(up1 - up0, down1 - down0)
        out[board] = busiest * 8 / (mbit[board] * 1e6 * seconds)
    return out


def bootstrap_ratio_ci(
    values: Sequence[float | None], base: Sequence[float | None], resamples: int = 2000, seed: int = 13
) -> tuple[float, float, float]:
    """mean(values) / mean(base) and its 95% bootstrap interval, resampling the repetitions
    of each side independently (percentile method; fixed seed, so a summary is reproducible).
    Values that are missing (None) or not finite are left out. NaN when either side has no
    finite value or the base mean is not positive."""
    import random

    vals = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    bases = [v for v in base if isinstance(v, (int, float)) and math.isfinite(v)]
    if not vals or not bases or statistics.fmean(bases) <= 0:
        return math.nan, math.nan, math.nan
    rng = random.Random(seed)
    ratios = []
    for _ in range(resamples):
        b = statistics.fmean(rng.choices(bases, k=len(bases)))
        if b > 0:
            ratios.append(statistics.fmean(rng.choices(vals, k=len(vals))) / b)
    return statistics.fmean(vals) / statistics.fmean(bases), percentile(ratios, 2.5), percentile(ratios, 97.5)
