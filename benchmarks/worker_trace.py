"""Where the time goes in the two-worker runs of ``benchmarks/worker_figures.py``, seen from
inside the worker processes (``benchmarks/worker_trace_shim.py``, loaded into each worker
through a ``sitecustomize``; Squall itself carries no tracing).

    python benchmarks/worker_trace.py latency [--count 5000] [--rate 1000] [--placement beside] [--spin-us 300]
    python benchmarks/worker_trace.py profile [--seconds 5] [--top 25]

``latency``: the latency run of ``worker_figures`` (1,000 tuples/s, acking on; spout and sink
on worker A, middle on B; ``--placement beside``: one acker per worker, the spout's trees on
A's, two crossings per tree; ``away``: the one acker on B, four crossings; heartbeat at the
production default 1 s unless ``--heartbeat-secs``; ``squall.worker.spin.us`` at its default
unless ``--spin-us``), each worker traced. Prints p50 / p99 /
mean in microseconds of

* the complete latency the spout recorded (emit to ``ack``), as ``worker_figures`` does;
* ``crossing``: a frame from the sender's ``send`` to the receiver starting to decode it
  (ZeroMQ's I/O threads, loopback TCP, the receiver waking and reaching its receive);
* ``decode``: the receiver decoding a frame and queueing its items;
* ``batch wait``: a batch's oldest item, from buffered to handed to the socket;
* ``residence``: a worker from reading a frame to sending the next one (decode, the engine's
  round, the batch wait) — at this rate nearly always the frame the first one caused;
* rounds with and without work, spins (polls before blocking) and blocking waits,
  heartbeats and garbage collections (with their CPU time);
* what the receiver was doing when each frame was sent to it, with the frames' crossings
  by that activity: a frame sent while its receiver spins pays no wake-up of the receiving
  loop, one sent while it blocks does;
* counts per tree, which do not depend on the machine's load: frames crossing between the
  workers, loop rounds, ZeroMQ ``EVENTS`` queries and receives that found nothing (about 4
  and 8 us each), heartbeats and collections.

The tracing adds about a microsecond per event; the complete latency printed is measured
with it on. Frames are matched between the workers by a checksum of their bytes.

``profile``: the throughput run (acking off, unpaced; spout on A, middle and sink on B), each
worker under cProfile for the whole run; prints each worker's functions by own time.
"""

from __future__ import annotations

import argparse
import bisect
import io
import json
import os
import pstats
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # worker_figures, which puts the repo root on the path for tests.worker

from worker_figures import (  # noqa: E402
    LATENCY_HEARTBEAT_S,
    MIDDLE,
    PLACEMENTS,
    SINK,
    SPOUT,
    TwoWorkers,
    latency_conf,
    throughput_conf,
)

from squall.supervisor.runtime.stats import percentile  # noqa: E402

SITE = """import os
if os.environ.get("SQUALL_TRACE_DIR"):
    import worker_trace_shim
    worker_trace_shim.install(os.environ["SQUALL_TRACE_DIR"])
if os.environ.get("SQUALL_PROFILE_DIR"):
    import worker_trace_shim
    worker_trace_shim.profile(os.environ["SQUALL_PROFILE_DIR"])
"""


def traced_workers(
    tmp: Path, env_key: str, a: list[int], b: list[int], conf: dict[str, Any]
) -> tuple[TwoWorkers, Path]:
    """Two workers started with the shim on their path and ``env_key`` naming the folder
    they write to at exit."""
    site = tmp / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITE)
    out = tmp / "out"
    out.mkdir()
    saved = dict(os.environ)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), str(HERE), saved.get("PYTHONPATH")]))
    os.environ[env_key] = str(out)
    try:
        return TwoWorkers(tmp, a, b, conf), out
    finally:
        os.environ.clear()
        os.environ.update(saved)


def stop(w: TwoWorkers) -> None:
    """A clean stop (SIGTERM), so each worker writes its trace at exit; then the usual close."""
    try:
        for p in w.procs.procs:
            p.send_signal(signal.SIGTERM)
        for p in w.procs.procs:
            p.wait(timeout=10)
    finally:
        w.close()


def run_latency(
    tmp: Path,
    count: int,
    rate: float,
    placement: str = "beside",
    heartbeat_s: float = LATENCY_HEARTBEAT_S,
    spin_us: float | None = None,
) -> tuple[list[float], list[dict[str, Any]]]:
    report = tmp / "latency.json"
    conf = latency_conf(placement, count, rate, report, heartbeat_s, spin_us)
    a, b, _ackers, _crossings = PLACEMENTS[placement]
    w, out = traced_workers(tmp, "SQUALL_TRACE_DIR", a, b, conf)
    try:
        w.sup.wait_for(report.exists, count / rate + 30, "the spout's latency report")
    finally:
        stop(w)
    lat = json.loads(report.read_text())["latencies_ms"]
    files = sorted(out.glob("*.json"), key=lambda f: int(f.stem))  # pid order: worker A started first
    return [x * 1e3 for x in lat], [json.loads(f.read_text()) for f in files]


def line(name: str, us: list[float]) -> str:
    if not us:
        return f"{name:<36} none"
    return (
        f"{name:<36} p50 {percentile(us, 50):8.1f}  p99 {percentile(us, 99):8.1f}  "
        f"mean {sum(us) / len(us):8.1f}  n {len(us)}"
    )


def _inside(intervals: list[tuple[int, int]], starts: list[int], at: int) -> bool:
    """Whether ``at`` falls in one of ``intervals`` (sorted, not overlapping; ``starts``
    their starts)."""
    i = bisect.bisect_right(starts, at) - 1
    return i >= 0 and at < intervals[i][1]


def arrivals(traces: list[dict[str, Any]], only: int | None = None) -> dict[str, list[float]]:
    """What the receiving worker was doing when each frame was sent to it (the sender's
    ``send`` was called), and the frame's crossing in microseconds, by that activity: a
    garbage collection, a heartbeat, a round with work, a round without work, a spin (a
    poll before blocking), a blocking wait, or between those (the loop's own code). The
    first that applies, in that order: a
    collection runs inside a round or a heartbeat. A frame that arrives while its receiver
    is busy waits for it; one sent while it blocks pays only the wake-up. ``only``: the
    frames received by ``traces[only]`` alone."""
    sent_at = {crc: start for t in traces for start, _end, crc in t["send"]}
    out: dict[str, list[float]] = {}
    for t in traces if only is None else [traces[only]]:
        kinds = [
            ("garbage collection", [(g[0], g[1]) for g in t["gc"]]),
            ("heartbeat", [(b[0], b[1]) for b in t["beat"]]),
            ("round with work", [(r[0], r[1]) for r in t["round"] if r[2]]),
            ("round without work", [(r[0], r[1]) for r in t["round"] if not r[2]]),
            ("spinning (polling)", [(x[0], x[1]) for x in t.get("spin", [])]),
            ("blocking wait", [(w[0], w[1]) for w in t["wait"]]),
        ]
        table = [(name, sorted(iv), [a for a, _ in sorted(iv)]) for name, iv in kinds]
        for start, _end, crc in t["recv"]:
            at = sent_at.get(crc)
            if at is None:
                continue
            name = next((n for n, iv, starts in table if _inside(iv, starts, at)), "between (the loop's own code)")
            out.setdefault(name, []).append((start - at) / 1e3)
    return out


def breakdown(latency_us: list[float], traces: list[dict[str, Any]]) -> list[str]:
    """The lines ``latency`` prints (see the module docstring)."""
    out = [line("complete latency (spout)", latency_us)]
    sent_at = {crc: start for t in traces for start, _end, crc in t["send"]}
    crossing = [(r[0] - sent_at[r[2]]) / 1e3 for t in traces for r in t["recv"] if r[2] in sent_at]
    out.append(line("crossing (send -> decode starts)", crossing))
    out.append(line("decode (frame -> inboxes)", [(r[1] - r[0]) / 1e3 for t in traces for r in t["recv"]]))
    out.append(line("batch wait (oldest item)", [(f[1] - f[0]) / 1e3 for t in traces for f in t["flush"]]))
    residence = []
    for t in traces:
        sends = sorted(s[0] for s in t["send"])
        for r in t["recv"]:
            i = bisect.bisect_left(sends, r[0])
            if i < len(sends):
                residence.append((sends[i] - r[0]) / 1e3)
    out.append(line("residence (frame in -> frame out)", residence))
    for did, name in ((True, "round with work"), (False, "round without work")):
        out.append(line(name, [(r[1] - r[0]) / 1e3 for t in traces for r in t["round"] if bool(r[2]) is did]))
    spins = [x for t in traces for x in t.get("spin", [])]
    out.append(line("spin ended by a frame", [(x[1] - x[0]) / 1e3 for x in spins if x[2]]))
    out.append(line("spin that found nothing", [(x[1] - x[0]) / 1e3 for x in spins if not x[2]]))
    out.append(line("blocking wait", [(x[1] - x[0]) / 1e3 for t in traces for x in t["wait"]]))
    out.append(line("heartbeat", [(b[1] - b[0]) / 1e3 for t in traces for b in t["beat"]]))
    # Collections once tuples flow (start-up's are not on any tuple's path).
    flowing = min((s[0] for t in traces for s in t["send"]), default=0)
    gcs = [g for t in traces for g in t["gc"] if g[0] >= flowing]
    for gen in (0, 1, 2):
        out.append(line(f"garbage collection, generation {gen}", [(g[1] - g[0]) / 1e3 for g in gcs if g[2] == gen]))
        out.append(line("  its CPU (loop thread)", [g[4] / 1e3 for g in gcs if g[2] == gen]))
    trees = max(1, len(latency_us))
    out.append("what the receiver was doing when a frame was sent to it: frames per 1,000 trees; their crossing")
    for name, us in sorted(arrivals(traces).items(), key=lambda kv: -len(kv[1])):
        out.append(f"  {name:<34} {len(us) * 1000 / trees:7.1f}  " + line("", us).strip())
    for k in range(len(traces)):
        out.append(f"  of them, to worker {'AB'[k] if k < 2 else k}:")
        for name, us in sorted(arrivals(traces, k).items(), key=lambda kv: -len(kv[1])):
            out.append(f"    {name:<32} {len(us) * 1000 / trees:7.1f}  " + line("", us).strip())
    # Per worker (traces in pid order: worker A, with the spout, is started first).
    sent_at = {crc: start for t in traces for start, _end, crc in t["send"]}
    for k, t in enumerate(traces):
        beats = sorted((b[0], b[1]) for b in t["beat"])
        starts = [b[0] for b in beats]
        hits = sum(1 for r in t["recv"] if r[2] in sent_at and _inside(beats, starts, sent_at[r[2]]))
        out.append(
            f"  worker {'AB'[k] if k < 2 else k}: {len(t['recv'])} frames received, {len(beats)} heartbeats, "
            f"{hits} frames sent to it during one"
        )
    # Signals that do not depend on the machine's load: counts per tree.
    frames = sum(len(t["send"]) for t in traces)
    out.append(f"{'frames crossing per tree':<36} {frames / trees:.2f}")
    rounds = sum(len(t["round"]) for t in traces)
    out.append(f"{'loop rounds per tree (both workers)':<36} {rounds / trees:.2f}")
    queries = sum(t["zmq"][0][0] for t in traces)
    again = sum(t["zmq"][0][1] for t in traces)
    out.append(f"{'ZeroMQ EVENTS queries per tree':<36} {queries / trees:.2f}")
    out.append(f"{'receives raising zmq.Again per tree':<36} {again / trees:.2f}")
    beats = sum(len(t["beat"]) for t in traces)
    out.append(f"{'heartbeats per 1,000 trees':<36} {beats * 1000 / trees:.2f}")
    for gen in (0, 1, 2):
        n = sum(1 for g in gcs if g[2] == gen)
        out.append(f"{f'collections of generation {gen} per 1,000 trees':<36} {n * 1000 / trees:.2f}")
    return out


def run_profile(tmp: Path, seconds: float, top: int) -> list[str]:
    conf = throughput_conf("per-tuple")
    w, out = traced_workers(tmp, "SQUALL_PROFILE_DIR", [SPOUT], [MIDDLE, SINK], conf)
    try:
        w.sup.collect(seconds)
        sink = w.metric(w.b, SINK).executed
    finally:
        stop(w)
    lines = [f"sink executed {sink:,} tuples in about {seconds:.0f} s (cProfile slows both workers)"]
    pids = {p.pid: name for p, name in zip(w.procs.procs, ("A (spout)", "B (middle, sink)"))}
    for f in sorted(out.glob("*.prof")):
        text = io.StringIO()
        pstats.Stats(str(f), stream=text).sort_stats("tottime").print_stats(top)
        lines.append(f"--- worker {pids.get(int(f.stem), f.stem)}")
        lines.extend(text.getvalue().splitlines()[6:])  # past pstats' header
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--count", type=int, default=5_000)
    lat.add_argument("--rate", type=float, default=1_000.0)
    lat.add_argument("--placement", choices=list(PLACEMENTS), default="beside")
    lat.add_argument("--heartbeat-secs", type=float, default=LATENCY_HEARTBEAT_S)
    lat.add_argument("--spin-us", type=float, default=None, help="squall.worker.spin.us (default: the key's)")
    prof = sub.add_parser("profile")
    prof.add_argument("--seconds", type=float, default=5.0)
    prof.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.what == "latency":
            latency_us, traces = run_latency(
                Path(tmp), args.count, args.rate, args.placement, args.heartbeat_secs, args.spin_us
            )
            spin = "" if args.spin_us is None else f", spin {args.spin_us:g} us"
            print(
                f"{args.count} trees at {args.rate:,.0f} tuples/s, two workers, acker placement {args.placement}, "
                f"heartbeat {args.heartbeat_secs:g} s{spin}, load average {os.getloadavg()[0]:.1f}; microseconds:"
            )
            lines = breakdown(latency_us, traces)
        else:
            lines = run_profile(Path(tmp), args.seconds, args.top)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
