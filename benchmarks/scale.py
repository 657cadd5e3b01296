"""Nimbus at the scale of hundreds of boards: a real Nimbus process against simulated
supervisors that are real ZeroMQ peers.

    python benchmarks/scale.py --boards 50 100 250 500 --executors 5000

For each board count it starts a Nimbus (``squall nimbus`` on loopback, its own temporary
data folder), then ``--procs`` processes that each run a share of the boards
(``benchmarks/scale_boards.py``): one DEALER per board that registers, heartbeats every second
(staggered) with a report per worker it was assigned — realistic metrics: cumulative
counters, CPU time and per-source receive counts for each of its executors — obeys every
assignment (reports its version, paused, and the snapshots of executors it gave up, so a
live migration goes through), and registers again when Nimbus refuses or forgot it, as a
real supervisor does. It then measures:

* time to place: submit of a chain topology (``--executors`` executors over 2 workers per
  board, round robin) until every board holds the workers the assignment gives it;
* Nimbus's loop lag: the round trip of a small request (``ListTopologies``) sent every
  0.1 s by a probe client — the time a message waits for the loop — median and p99, with
  Nimbus's CPU (share of one core) and RSS, over ``--measure-s`` seconds of steady heartbeats;
* time to detect a lost board: one board falls silent; from its last heartbeat until Nimbus
  reports it not alive (the supervisor timeout is ``--timeout`` s; the target is within
  timeout + 1 s);
* time for a live rebalance: ``rebalance --scheduler online`` until its event is done (every
  moved executor released and acquired). It is asked 3 heartbeats after the lost board's
  repair is done: the repair's new placement restarts the metrics window, and a request
  before the window holds two heartbeats of every worker is planned on no measured traffic
  (a different step: at 500 boards ~1,240 executors moved instead of ~4,900). A ``#   ...
  live rebalance`` line says what the repair moved, the traffic the proposal was priced on,
  and the longest loop lag while the rebalance ran (the scheduler's call runs on the loop).
* with ``--scrape-every S``: after the steady window, a second one as long with Nimbus's
  ``/metrics`` scraped every S s as Prometheus 3 would (the first scrape at once): the probes'
  lag in it, each scrape's wall time and Nimbus's CPU during it (the loop thread, and the
  rest: mostly the render), and the probes sent while a scrape was under way.

Where the loop lag's tail comes from, over the same steady-state window: Nimbus's own
``/metrics`` histograms of its loop steps (by message type, ``Tick``, ``publish``) and of the
garbage collector's pauses (by generation), read just before and just after the window (the
scrape itself runs outside it), printed as a ``#`` line under each row: how many steps and
collections took 25 ms or more, and their total time, with the loop thread's CPU time
where Nimbus measures it (a step of 25 ms of CPU is Nimbus's own work, not the machine's
load); a ``loop turns`` line: the loop's turns between two polls (what a request waits
for), how many took over 25 ms of wall and of CPU, and the slow ones by what took longest
in them; and Nimbus's counters of the window
(heartbeats read, heartbeats from boards it does not know or declared dead, registrations,
ticks that found it behind a backlog). A ``#   sim`` line per phase (placing, the steady
window, the rest) says what the simulated boards did: heartbeats sent, the longest gap
between two heartbeats of one board, refusals and their reasons, registrations, assignments
handled, their processes' longest turn and CPU — a run whose boards fell silent says why.

Nothing here is timed by a test; the script prints what it measured. The machine it runs on
also runs the simulated boards, so Nimbus's CPU share competes with them (``--boards-nice 10``
lowers their priority: on a real cluster they are other machines).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The simulated boards' module beside this file, also when run through benchmarks/against.py
# (runpy does not put the script's folder on the path); spawned processes inherit the path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_boards import SimStats, run_boards  # noqa: E402
from scale_instruments import (  # noqa: E402
    CLIENT_TIMEOUT_S,
    Probe,
    Scraper,
    causes,
    loop_histograms,
    schedstat,
    turns,
)

WORKERS_PER_BOARD = 2


# -- the driver ---------------------------------------------------------------------------------


def _sim_stats(command_queues: list[Any], events: Any) -> SimStats:
    """What the simulated boards did since the last call, all processes together."""
    for q in command_queues:
        q.put(("stats", None))
    got: list[SimStats] = []

    def answered(ev: Any) -> bool:
        if ev[0] == "stats":
            got.append(SimStats(**ev[3]))
        return len(got) == len(command_queues)

    _wait(events, time.time() + 30, answered)
    total = SimStats()
    for one in got:
        total = total.merge(one)
    if len(got) < len(command_queues):
        total.gap_board += f" (only {len(got)} of {len(command_queues)} processes answered)"
    return total


@dataclass
class Figures:
    boards: int
    executors: int
    place_s: float = float("nan")
    lag_median_ms: float = float("nan")
    lag_p99_ms: float = float("nan")
    lag_samples: int = 0
    cpu_pct: float = float("nan")
    rss_mb: float = float("nan")
    detect_s: float = float("nan")
    rebalance_s: float = float("nan")
    moved: int = 0
    # Nimbus's own CPU seconds (user + system) from each step's start to its end: unlike the
    # wall times above, these hardly depend on how loaded the machine is.
    place_cpu_s: float = float("nan")
    rebalance_cpu_s: float = float("nan")
    lag_over_50: int = 0  # probes of the window that waited 50 ms or more
    causes: str = ""  # the loop's long steps and collections in the window (see causes)
    turns: str = ""  # the loop's turns in the window, the slow ones by their longest part (see turns)
    cpu_wait: str = ""  # the slow probes' wait, and the loop thread's CPU and run-queue wait (see Probe)
    sim: dict[str, str] = field(default_factory=dict)  # phase -> what the simulated boards did
    # With --scrape-every: a second steady window with /metrics scraped (see Scraper).
    scraping: str = ""
    scrape_lag_p99_ms: float = float("nan")  # the probes' p99 in that window
    scrape_cpu_ms: float = float("nan")  # Nimbus's CPU besides its loop thread during a scrape, median
    rebalance_read: str = ""  # the lost board's repair, and the window the rebalance was planned on
    # The probes sent while the live rebalance ran (asked to done): the longest round trip,
    # i.e. how long the loop was held by the scheduler's call and the migration's steps.
    rebalance_lag_max_ms: float = float("nan")
    rebalance_lag_over_50: int = 0
    notes: list[str] = field(default_factory=list)


def _chain_spec(executors: int) -> dict[str, Any]:
    from squall.experiments.reference import chain_topology

    stages = 10
    return chain_topology(stages, max(1, executors // stages)).spec.to_dict()


def _after_repair(client: Any, detected_at: float, settle_s: float, limit_s: float = 60.0) -> str:
    """Wait for the lost board's repair to be done, then ``settle_s`` more, and say what it
    did. The repair installs a new placement, and a new placement restarts the topology's
    metrics window (``LiveRebalancing.changed``): an online rebalance asked before two
    heartbeats of every worker have come since plans on no measured traffic at all. Seen in
    this script's runs at 500 boards: 1,240 executors moved on an empty window (the repair
    had landed just before the request), ~4,900 on a measured one, depending on whether the
    repair came before or after the request. Waiting for it makes the step the same in every
    run: a rebalance planned on ``settle_s`` of measurement after the repair."""
    while time.time() < detected_at + limit_s:
        repairs = [e for e in client.events("scale") if e.get("trigger") == "node-lost"]
        if repairs and repairs[-1].get("done_at") is not None:
            e = repairs[-1]
            time.sleep(settle_s)
            took = e["done_at"] - e["at"]
            return (
                f"repair moved {len(e.get('moved') or [])} executors in {took:.2f} s; "
                f"the rebalance asked {settle_s:g} s after it was done"
            )
        time.sleep(0.1)
    time.sleep(settle_s)
    return f"no completed repair within {limit_s:g} s of the detection"


def _planned_on(event: dict[str, Any]) -> str:
    """The traffic the rebalance's proposal was priced on (0 tuples/s: an empty window)."""
    current, proposed = event.get("current") or {}, event.get("proposed") or {}
    return (
        f"planned on a measured inter-node traffic of {current.get('inter_node_tps', float('nan')):,.0f} "
        f"tuples/s, proposed {proposed.get('inter_node_tps', float('nan')):,.0f}"
    )


def _scraping_window(fig: Figures, http: str, every_s: float, measure_s: float, loop_pid: int, probe: Probe) -> None:
    """A steady window like the first, with ``/metrics`` scraped every ``every_s`` s: the
    probes' lag in it, and what the scrapes cost (into ``fig``)."""
    scraper = Scraper(http, every_s, loop_pid)
    since = time.time()
    scraper.start()
    time.sleep(measure_s)
    until = time.time()
    scraper.stopped.set()
    scraper.join(CLIENT_TIMEOUT_S)
    median, p99, samples = probe.lag_ms(since, until)
    over = sum(1 for r in probe.rtts_ms(since, until) if r >= 50.0)
    fig.scrape_lag_p99_ms = p99
    done = [x[4] * 1e3 for x in scraper.scrapes if x[2] >= 0]
    if done:
        fig.scrape_cpu_ms = statistics.median(done)
    fig.scraping = (
        f"lag median {median:.1f} ms, p99 {p99:.1f} ms, {over} of {samples} probes >= 50 ms; "
        f"{scraper.summary(probe, since, until)}"
    )


def _wait(events: Any, until: float, want: Any) -> bool:
    """Read events until ``want(event)`` returns True or ``until`` passes."""
    import queue

    while time.time() < until:
        try:
            ev = events.get(timeout=max(0.01, min(0.2, until - time.time())))
        except queue.Empty:
            continue
        if want(ev):
            return True
    return False


def run_scale(
    boards: int,
    executors: int,
    procs: int,
    measure_s: float,
    timeout_s: float,
    heartbeat_s: float,
    boards_nice: int = 0,
    nimbus_set: tuple[str, ...] = (),
    nimbus_nice: int | None = None,
    scrape_every_s: float | None = None,
) -> Figures:
    import psutil

    from squall.client import NimbusClient, NimbusUnreachable
    from squall.daemon_start import nimbus_argv, spawn_logged
    from squall.ports import free_port

    fig = Figures(boards, executors)
    port, http_port = free_port(), free_port()
    address = f"tcp://127.0.0.1:{port}"
    http = f"http://127.0.0.1:{http_port}"
    with tempfile.TemporaryDirectory(prefix="squall-scale-") as tmp:
        timeouts = [
            "--set",
            f"nimbus.supervisor.timeout.secs={timeout_s}",
            "--set",
            f"nimbus.heartbeat.secs={heartbeat_s}",
        ]
        extra = ["--no-discovery", "--log-level", "WARNING", *timeouts]
        for setting in nimbus_set:
            extra += ["--set", setting]
        nimbus = spawn_logged(
            nimbus_argv("127.0.0.1", port, tmp, http_port=http_port, extra=extra), Path(tmp) / "nimbus.log"
        )
        ctx = mp.get_context("spawn")
        events = ctx.Queue()
        command_queues = [ctx.Queue() for _ in range(procs)]
        ids = [f"b{k:04d}" for k in range(boards)]
        children = []
        probe = Probe(address, nice=nimbus_nice)
        try:
            with NimbusClient(address.removeprefix("tcp://"), timeout_s=CLIENT_TIMEOUT_S) as client:
                client.list()  # Nimbus is up
                if nimbus_nice is not None:  # every thread of it (Linux: niceness is per thread)
                    for thread in psutil.Process(nimbus.pid).threads():
                        os.setpriority(os.PRIO_PROCESS, thread.id, nimbus_nice)
                for k in range(procs):
                    share = ids[k::procs]
                    p = ctx.Process(
                        target=run_boards, args=(share, address, command_queues[k], events, heartbeat_s, boards_nice)
                    )
                    p.start()
                    children.append(p)
                registered: set[str] = set()
                _wait(
                    events,
                    time.time() + 60,
                    lambda ev: ev[0] == "registered" and (registered.add(ev[1]) or len(registered) == boards),
                )
                if len(registered) < boards:
                    fig.notes.append(f"only {len(registered)} of {boards} boards registered")
                probe.loop_pid = nimbus.pid
                probe.start()
                nimbus_proc = psutil.Process(nimbus.pid)

                def nimbus_cpu_s() -> float:
                    return sum(nimbus_proc.cpu_times()[:2])

                # Time to place.
                holding: dict[str, int] = {}
                submitted, cpu_at_submit = time.time(), nimbus_cpu_s()
                spec = _chain_spec(executors)
                client.submit(
                    "scale",
                    spec,
                    b"not run by simulated boards",
                    "round_robin",
                    boards * WORKERS_PER_BOARD,
                    {"topology.acker.executors": max(1, boards // 10)},
                )
                assignment = client.assignment("scale")
                placed_workers = {(e["node"], e["port"]) for e in _rows(assignment)}
                want = len(placed_workers)

                def placed(ev: Any) -> bool:
                    if ev[0] == "assigned":
                        holding[ev[1]] = ev[3].get("scale", 0)
                        if sum(holding.values()) >= want:
                            fig.place_s = ev[2] - submitted
                            fig.place_cpu_s = nimbus_cpu_s() - cpu_at_submit
                            return True
                    return False

                if not _wait(events, time.time() + 120, placed):
                    fig.notes.append(f"placement incomplete: {sum(holding.values())} of {want} workers")

                # Steady state: heartbeats with metrics, loop lag, CPU, memory.
                time.sleep(min(3.0, measure_s))  # the first reports with metrics arrive
                fig.sim["placing"] = _sim_stats(command_queues, events).line()
                loop_before = loop_histograms(http)  # read outside the window: a scrape costs Nimbus CPU
                since = time.time()
                cpu0, loop0 = nimbus_cpu_s(), schedstat(nimbus.pid)
                time.sleep(measure_s)
                until = time.time()
                cpu1, loop1 = nimbus_cpu_s(), schedstat(nimbus.pid)
                fig.cpu_wait = (
                    f"{probe.slow_split(since, until)}; over the window the loop thread was on a CPU "
                    f"{loop1[0] - loop0[0]:.2f} s and waited for one {loop1[1] - loop0[1]:.2f} s, "
                    f"its other threads on a CPU {(cpu1 - cpu0) - (loop1[0] - loop0[0]):.2f} s"
                )
                loop_after = loop_histograms(http)
                fig.causes = causes(loop_before, loop_after)
                fig.turns = turns(loop_before, loop_after)
                fig.sim["steady"] = _sim_stats(command_queues, events).line()
                fig.cpu_pct = 100.0 * (cpu1 - cpu0) / (until - since)
                fig.rss_mb = nimbus_proc.memory_info().rss / 2**20
                fig.lag_median_ms, fig.lag_p99_ms, fig.lag_samples = probe.lag_ms(since, until)
                fig.lag_over_50 = sum(1 for r in probe.rtts_ms(since, until) if r >= 50.0)
                if scrape_every_s is not None:
                    _scraping_window(fig, http, scrape_every_s, measure_s, nimbus.pid, probe)

                # A lost board.
                victim = sorted(n for n, _ in placed_workers)[0]
                if not {s["id"]: s for s in client.cluster()["supervisors"]}[victim]["alive"]:
                    fig.notes.append(f"{victim} was not alive before it was silenced")
                command_queues[ids.index(victim) % procs].put(("silence", victim))
                silenced = time.time()
                last_beat: list[float] = []
                _wait(events, time.time() + 30, lambda ev: ev[0] == "silenced" and not last_beat.append(ev[3]))
                while time.time() < silenced + timeout_s + 60:
                    sups = {s["id"]: s for s in client.cluster()["supervisors"]}
                    if not sups[victim]["alive"]:
                        # From its last heartbeat: the timeout counts from there.
                        fig.detect_s = time.time() - (last_beat[0] if last_beat else silenced)
                        break
                    time.sleep(0.05)
                fig.rebalance_read = _after_repair(client, detected_at=time.time(), settle_s=3 * heartbeat_s)

                # A live rebalance with the online scheduler.
                before = len(client.events("scale"))
                rebalance_loop_before = loop_histograms(http)
                started, cpu_at_start = time.time(), nimbus_cpu_s()
                client.rebalance("scale", wait_s=0, scheduler="online")
                while time.time() < started + 180:
                    evs = client.events("scale")
                    fresh = evs[before:]
                    done = [
                        e for e in fresh if e.get("done_at") is not None or e.get("decision") not in (None, "applied")
                    ]
                    if done:
                        fig.rebalance_s = time.time() - started
                        fig.rebalance_cpu_s = nimbus_cpu_s() - cpu_at_start
                        fig.moved = len(done[-1].get("moved") or [])
                        fig.rebalance_read += "; " + _planned_on(done[-1])
                        during = probe.rtts_ms(started, time.time())
                        if during:
                            fig.rebalance_lag_max_ms = max(during)
                            fig.rebalance_lag_over_50 = sum(1 for r in during if r >= 50.0)
                            fig.rebalance_read += (
                                f"; while it ran the loop lag was at most {fig.rebalance_lag_max_ms:.0f} ms "
                                f"({fig.rebalance_lag_over_50} of {len(during)} probes >= 50 ms); its loop "
                                + turns(rebalance_loop_before, loop_histograms(http))
                            )
                        if done[-1].get("decision") != "applied":
                            fig.notes.append(f"rebalance {done[-1].get('decision')}: {done[-1].get('reason')}")
                        break
                    time.sleep(0.1)
                else:
                    fig.notes.append("rebalance not done within 180 s")
                fig.sim["lost board and rebalance"] = _sim_stats(command_queues, events).line()
        except NimbusUnreachable as exc:
            fig.notes.append(f"stopped: Nimbus did not answer a request within {CLIENT_TIMEOUT_S:g} s ({exc})"[:160])
        finally:
            probe.stopped.set()
            # Nimbus first: boards stopped while it still ran would be declared dead in its log
            # (a child's exit can wait seconds for its unread events to be flushed).
            nimbus.terminate()
            try:
                nimbus.wait(10)
            except subprocess.TimeoutExpired:
                nimbus.kill()
            for q in command_queues:
                q.put(("stop", None))
            while any(p.is_alive() for p in children) and not _drained(events):
                pass  # unread events let the children's queue feeders finish, so they exit
            for p in children:
                p.join(10)
                if p.is_alive():
                    p.terminate()
            deaths = _declared_dead(Path(tmp) / "nimbus.log")
            if deaths:
                fig.notes.append(f"Nimbus declared {len(deaths)} board(s) dead: {'; '.join(deaths[:4])}")
    return fig


def _drained(events: Any) -> bool:
    """Read what the boards' processes left on ``events`` for up to 0.1 s; True once empty."""
    import queue

    try:
        events.get(timeout=0.1)
    except queue.Empty:
        return True
    return False


def _declared_dead(log: Path) -> list[str]:
    """Nimbus's log lines that declared a board dead (the lost board's among them), shortened."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        found = DEATH.search(line)
        if found:
            board, silent, read = found.groups()
            out.append(f"{board} after {silent} s" + (f" (read until {read} s before)" if read else ""))
    return out


# Nimbus's warning (nimbus/state.py); the part in brackets is newer than some revisions.
DEATH = re.compile(r"supervisor (\S+) declared dead after ([\d.]+) s of silence(?: \(all sent until ([\d.]+) s ago)?")


def _rows(assignment: dict) -> list[dict]:
    """Executor rows of a GetAssignment reply: {"executor", "node", "port", ...}."""
    rows = assignment.get("executors") if isinstance(assignment, dict) else None
    if rows is None:
        raise SystemExit(f"unexpected assignment reply: {str(assignment)[:200]}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boards", type=int, nargs="+", default=[50, 100, 250, 500])
    parser.add_argument("--executors", type=int, default=5000)
    parser.add_argument("--procs", type=int, default=4, help="processes running the simulated boards")
    parser.add_argument("--measure-s", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=5.0, help="supervisor timeout (s)")
    parser.add_argument("--heartbeat", type=float, default=1.0, help="heartbeat period (s)")
    parser.add_argument(
        "--boards-nice",
        type=int,
        default=0,
        help="niceness of the simulated boards' processes (e.g. 10: on a real cluster they are other "
        "machines, here they take CPU from Nimbus)",
    )
    parser.add_argument(
        "--nimbus-nice",
        type=int,
        default=None,
        help="niceness of Nimbus's threads and of the probe thread (e.g. -10, as root: on a machine shared with "
        "other work they then wait less for a CPU; on a real cluster Nimbus has its machine to itself)",
    )
    parser.add_argument(
        "--nimbus-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting of Nimbus's (squall nimbus --set), e.g. nimbus.gc.full.secs=0 for CPython's own "
        "full collections",
    )
    parser.add_argument(
        "--scrape-every",
        type=float,
        default=None,
        metavar="S",
        help="after the steady window, a second one as long with Nimbus's /metrics scraped every S s as "
        "Prometheus would (the first at once): the lag with scrapes beside the lag without, and each scrape's cost",
    )
    args = parser.parse_args(argv)
    print(
        f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
        f"{args.executors} executors, {WORKERS_PER_BOARD} workers per board, "
        f"simulated boards at nice {args.boards_nice}"
        + (f", Nimbus and the probe at nice {args.nimbus_nice}" if args.nimbus_nice is not None else "")
        + (f"; Nimbus --set {' '.join(args.nimbus_set)}" if args.nimbus_set else ""),
        flush=True,
    )
    print(
        "boards | place s (Nimbus CPU s) | lag median ms | lag p99 ms | Nimbus CPU % | Nimbus RSS MB | "
        "lost board detected s | live rebalance s (Nimbus CPU s, moved) | notes",
        flush=True,
    )
    for boards in args.boards:
        f = run_scale(
            boards,
            args.executors,
            args.procs,
            args.measure_s,
            args.timeout,
            args.heartbeat,
            args.boards_nice,
            tuple(args.nimbus_set),
            args.nimbus_nice,
            args.scrape_every,
        )
        print(
            f"{f.boards} | {f.place_s:.2f} ({f.place_cpu_s:.2f}) | {f.lag_median_ms:.1f} | {f.lag_p99_ms:.1f} | "
            f"{f.cpu_pct:.0f} | {f.rss_mb:.0f} | {f.detect_s:.2f} | "
            f"{f.rebalance_s:.2f} ({f.rebalance_cpu_s:.2f}, {f.moved}) | {'; '.join(f.notes)}",
            flush=True,
        )
        print(
            f"#   {f.boards} boards, steady window: {f.lag_over_50} of {f.lag_samples} probes waited >= 50 ms; "
            f"loop: {f.causes or 'not read'}",
            flush=True,
        )
        print(f"#   {f.boards} boards, loop turns: {f.turns or 'not read'}", flush=True)
        print(f"#   {f.boards} boards, waiting for a CPU: {f.cpu_wait or 'not read'}", flush=True)
        if f.rebalance_read:
            print(f"#   {f.boards} boards, live rebalance: {f.rebalance_read}", flush=True)
        if f.scraping:
            print(f"#   {f.boards} boards, scraping /metrics every {args.scrape_every:g} s: {f.scraping}", flush=True)
        for phase, line in f.sim.items():
            print(f"#   sim, {phase}: {line}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
