"""What one ``/metrics`` scrape of Nimbus costs, at the scale of hundreds of boards.

    python benchmarks/nimbus_scrape.py --boards 500 --executors 5000

Builds the Nimbus state of ``benchmarks/history_sample.py`` in process (``--boards`` boards, a
chain topology of ``--executors`` executors placed round robin over two workers per board,
``--seconds`` seconds of heartbeats with realistic metrics), freezes what was built before the
heartbeats out of the garbage collector's full collections (as ``squall nimbus`` does at
start), then, ``--rounds`` times: one more second of heartbeats, a snapshot published as the
loop publishes it, and the scrape's body rendered from that snapshot for the format
Prometheus asks for, by the HTTP side's two ways: ``prom.render`` (what ``/metrics`` serves)
and the ``prometheus_client`` encoder over the same collector (what it served before; both
give the same bytes, which this checks). It prints the CPU time of this thread for each,
best and median, and apart, the snapshot's rates (computed once per snapshot and shared
with the pages and the chart history, so a scrape pays them only when it is the first to
read that snapshot).

A scrape runs on an HTTP thread and holds the interpreter lock the server loop needs, so its
CPU is time the loop may wait. CPU time of this thread: less sensitive to a loaded machine
than wall time, but not insensitive (caches are shared). Nothing here is timed by a test.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # history_sample, beside this file
from history_sample import heartbeats, placed_state  # noqa: E402

from squall.nimbus.events import Tick  # noqa: E402
from squall.nimbus.snapshot import Snapshot  # noqa: E402

# What Prometheus 3 asks for (scale.py's scraper sends the same).
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


def cpu_ms(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.thread_time()
    out = fn()
    return (time.thread_time() - started) * 1e3, out


def main(argv: list[str] | None = None) -> int:
    from prometheus_client.exposition import choose_encoder

    from squall.nimbus import prom

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", type=int, default=500)
    ap.add_argument("--executors", type=int, default=5000)
    ap.add_argument("--seconds", type=int, default=30, help="seconds of heartbeats before the first scrape")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--accept", default=PROMETHEUS_ACCEPT, help="the scraper's Accept header")
    args = ap.parse_args(argv)
    encoder, ctype = choose_encoder(args.accept)
    render = getattr(prom, "render", None)  # absent in revisions before it (benchmarks/against.py)
    print(
        f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.boards} boards, "
        f"{args.executors} executors, {args.seconds} s of heartbeats; {ctype}",
        flush=True,
    )
    took: dict[str, list[float]] = {"rates": [], "library": [], "render": []}
    with tempfile.TemporaryDirectory() as tmp:
        st, nodes, executors = placed_state(tmp, args.boards, args.executors)
        gc.collect()
        gc.freeze()  # as squall nimbus does once started
        for second in range(1, args.seconds + 1):
            heartbeats(st, nodes, executors, float(second))
            st.apply(Tick(float(second)))
        size = 0
        # One collector for every round, as the HTTP side keeps one (render keeps the
        # executors' label sets on it between scrapes); each round reads its own snapshot.
        published: list[Snapshot] = []
        collector = prom.NimbusCollector(
            st, lambda: published[-1].now, source=lambda: (published[-1], published[-1].now)
        )
        for k in range(args.rounds):
            now = float(args.seconds + 1 + k)
            heartbeats(st, nodes, executors, now)
            st.apply(Tick(now))
            snap = Snapshot.of(st, now)
            published.append(snap)
            took["rates"].append(cpu_ms(lambda s=snap: [s.rates(name) for name in s.topologies])[0])
            ms, body = cpu_ms(lambda: encoder(collector))
            took["library"].append(ms)
            size = len(body)
            if render is not None:
                ms, rendered = cpu_ms(lambda: render(collector, encoder))
                took["render"].append(ms)
                if rendered != body:
                    raise SystemExit("prom.render's body differs from the library's")
        gc.unfreeze()
    lines = body.count(b"\n")
    print(f"# body {size / 1e6:.2f} MB, {lines:,} lines", flush=True)
    print("what | CPU ms best | median", flush=True)
    labels = {
        "rates": "the snapshot's rates (once per snapshot, shared)",
        "library": "a scrape by prometheus_client's encoder",
        "render": "a scrape by prom.render (what /metrics serves)",
    }
    for key, label in labels.items():
        if took[key]:
            print(f"{label} | {min(took[key]):.1f} | {statistics.median(took[key]):.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
