"""What ``benchmarks/scale.py`` measures Nimbus with: its threads' CPU from schedstat, the
probe that times the loop's lag, the ``/metrics`` scraper, and the reading of Nimbus's own
loop and collector histograms and counters around a window.

Instruments only: they start nothing and judge nothing; ``scale.py`` runs the cluster and
prints the figures.
"""

from __future__ import annotations

import os
import statistics
import threading
import time

PROBE_TIMEOUT_S = 10.0
CLIENT_TIMEOUT_S = 120.0  # the driver's own requests: a slow answer is a figure, not a failure


def schedstat(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds waiting in a run queue for one) of thread ``pid`` of process
    ``pid`` — Nimbus's loop runs on its main thread — from the kernel's scheduler statistics
    (Linux); (nan, nan) where they cannot be read."""
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
            on_cpu_ns, waiting_ns, _slices = f.read().split()
    except (OSError, ValueError):
        return float("nan"), float("nan")
    return int(on_cpu_ns) / 1e9, int(waiting_ns) / 1e9


def _threads_schedstat(pid: int) -> tuple[float, float, float, float]:
    """(loop thread's CPU s, its wait for a CPU s, the other threads' CPU s, their wait s) of
    process ``pid``: the loop is its main thread; the others are ZeroMQ's I/O thread and the
    HTTP threads, which hold the interpreter lock the loop needs while they run Python."""
    loop_cpu, loop_wait = schedstat(pid)
    other_cpu = other_wait = 0.0
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid]
    except OSError:
        return loop_cpu, loop_wait, float("nan"), float("nan")
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                on_cpu_ns, waiting_ns, _slices = f.read().split()
        except (OSError, ValueError):  # a thread that ended meanwhile
            continue
        other_cpu += int(on_cpu_ns) / 1e9
        other_wait += int(waiting_ns) / 1e9
    return loop_cpu, loop_wait, other_cpu, other_wait


NAN4 = (float("nan"),) * 4


class Probe(threading.Thread):
    """Sends a small request every ``period_s`` and keeps the round trips (loop lag). With
    ``loop_pid`` (Nimbus's pid) it also keeps, for each, how long Nimbus's loop thread was on a
    CPU and how long it waited for one meanwhile: a round trip the loop spent waiting for a
    CPU was the machine's load, not Nimbus's work."""

    def __init__(self, address: str, period_s: float = 0.1, nice: int | None = None) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.period_s = period_s
        self.nice = nice  # this thread's niceness (Linux: per thread), None: inherited
        self.loop_pid: int | None = None
        self.samples: list[tuple[float, float]] = []  # (sent at, round trip s)
        # Per sample: (loop thread's CPU s, its wait for a CPU s, other threads' CPU s, their wait s).
        self.loop_times: list[tuple[float, ...]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        from squall.client import NimbusClient, NimbusUnreachable

        if self.nice is not None:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        while not self.stopped.is_set():
            with NimbusClient(self.address.removeprefix("tcp://"), timeout_s=PROBE_TIMEOUT_S) as client:
                while not self.stopped.is_set():
                    pid = self.loop_pid
                    before = _threads_schedstat(pid) if pid else NAN4
                    sent = time.time()
                    try:
                        client.list()
                    except NimbusUnreachable:  # counted as a lag of at least the timeout
                        self._keep(sent, pid, before)
                        break
                    self._keep(sent, pid, before)
                    self.stopped.wait(self.period_s)

    def _keep(self, sent: float, pid: int | None, before: tuple[float, ...]) -> None:
        rtt = time.time() - sent
        after = _threads_schedstat(pid) if pid else NAN4
        self.loop_times.append(tuple(a - b for a, b in zip(after, before, strict=True)))
        self.samples.append((sent, rtt))  # last: a reader takes samples[:n] with loop_times[:n]

    def lag_ms(self, since: float, until: float) -> tuple[float, float, int]:
        """(median, p99, samples) of the round trips sent within [since, until], in ms."""
        from squall.supervisor.runtime.stats import percentile

        rtts = self.rtts_ms(since, until)
        if not rtts:
            return float("nan"), float("nan"), 0
        return statistics.median(rtts), percentile(rtts, 99), len(rtts)

    def rtts_ms(self, since: float, until: float) -> list[float]:
        return [r * 1e3 for at, r in list(self.samples) if since <= at <= until]

    def slow_split(self, since: float, until: float, slow_ms: float = 50.0) -> str:
        """Of the round trips sent within [since, until] that took ``slow_ms`` or more: their
        total, and how much of it Nimbus's loop thread spent on a CPU and waiting for one."""
        samples = list(self.samples)
        slow = [
            (rtt, *self.loop_times[k])
            for k, (at, rtt) in enumerate(samples)
            if since <= at <= until and rtt * 1e3 >= slow_ms
        ]
        if not slow:
            return f"no probe took {slow_ms:g} ms or more"
        total, on_cpu, waiting, others_cpu, others_wait = (sum(x[i] for x in slow) * 1e3 for i in range(5))
        return (
            f"the {len(slow)} probes >= {slow_ms:g} ms waited {total:.0f} ms in all; meanwhile Nimbus's loop "
            f"thread was on a CPU {on_cpu:.0f} ms and waited for one {waiting:.0f} ms ({waiting / total:.0%}), "
            f"its other threads on a CPU {others_cpu:.0f} ms, waiting for one {others_wait:.0f} ms"
        )


# What Prometheus 3 asks for (its default scrape protocols, in its order of preference).
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


class Scraper(threading.Thread):
    """Scrapes Nimbus's ``/metrics`` every ``period_s`` (the first at once) as Prometheus
    would, and keeps for each scrape: (started, ended, body bytes, Nimbus's loop thread's CPU
    s, the other threads' CPU s) over the scrape. The page is rendered on an HTTP thread (one
    per request, gone when it is read: so the other threads' CPU is the process's, counted in
    10 ms ticks, less the loop thread's), so their CPU during a scrape is mostly the render
    (ZeroMQ's I/O thread and the history sampler run meanwhile too), holding the interpreter
    lock the loop needs."""

    def __init__(self, http: str, period_s: float, loop_pid: int) -> None:
        super().__init__(daemon=True)
        self.http, self.period_s, self.loop_pid = http, period_s, loop_pid
        self.scrapes: list[tuple[float, float, int, float, float]] = []
        self.failures: list[str] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        from urllib.request import Request, urlopen

        import psutil

        nimbus = psutil.Process(self.loop_pid)
        while not self.stopped.is_set():
            before = schedstat(self.loop_pid), sum(nimbus.cpu_times()[:2])
            started = time.time()
            try:
                with urlopen(
                    Request(f"{self.http}/metrics", headers={"Accept": PROMETHEUS_ACCEPT}), timeout=CLIENT_TIMEOUT_S
                ) as page:
                    size = len(page.read())
            except OSError as exc:
                self.failures.append(str(exc)[:80])
                size = -1
            ended = time.time()
            after = schedstat(self.loop_pid), sum(nimbus.cpu_times()[:2])
            loop_cpu = after[0][0] - before[0][0]
            self.scrapes.append((started, ended, size, loop_cpu, after[1] - before[1] - loop_cpu))
            self.stopped.wait(max(0.0, self.period_s - (ended - started)))

    def summary(self, probe: Probe, since: float, until: float) -> str:
        """The scrapes, and the probes sent while one was under way."""
        done = [x for x in self.scrapes if x[2] >= 0]
        if not done:
            return f"no scrape answered ({'; '.join(self.failures[:2]) or 'none made'})"
        walls = [(end - start) * 1e3 for start, end, *_ in done]
        others = [x[4] * 1e3 for x in done]
        samples = list(probe.samples)
        # (round trip, the loop thread's CPU and wait for a CPU meanwhile), of each probe sent
        # during a scrape: a long one the loop spent waiting for a CPU was the machine.
        during = [
            (rtt * 1e3, *probe.loop_times[k][:2])
            for k, (at, rtt) in enumerate(samples)
            if any(start <= at <= end for start, end, *_ in done)
        ]
        longest = max(during) if during else None
        return (
            f"{len(done)} scrapes of {done[-1][2] / 1e6:.2f} MB, each {statistics.median(walls):.0f} ms "
            f"(max {max(walls):.0f}) of wall, Nimbus's other threads on a CPU {statistics.median(others):.0f} ms "
            f"(max {max(others):.0f}) and its loop thread {statistics.median(x[3] * 1e3 for x in done):.0f} ms "
            f"meanwhile; {len(during)} probes sent during a scrape"
            + (
                f", the longest {longest[0]:.1f} ms (the loop thread on a CPU {longest[1] * 1e3:.0f} ms and "
                f"waiting for one {longest[2] * 1e3:.0f} ms meanwhile)"
                if longest
                else ""
            )
            + (f"; {len(self.failures)} failed" if self.failures else "")
        )


LONG_MS = 25  # a step or collection taking more than this is counted in the causes line
UNDER_LONG = "0.025"  # the histogram bucket bound (s) up to which a step is not long
Histograms = dict[tuple[str, str, str], float]  # (family, label value, le or "sum") -> value


def loop_histograms(http: str) -> Histograms:
    """The loop's step and garbage-collection histograms on Nimbus's ``/metrics``."""
    from urllib.request import urlopen

    from prometheus_client.parser import text_string_to_metric_families

    with urlopen(f"{http}/metrics", timeout=CLIENT_TIMEOUT_S) as page:
        text = page.read().decode()
    out: Histograms = {}
    for family in text_string_to_metric_families(text):
        if family.name == "squall_nimbus_events":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    out[(family.name, sample.labels.get("event", ""), "count")] = sample.value
            continue
        if family.name in SLOW_TURN_FAMILIES:
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    out[(family.name, sample.labels.get("longest", ""), "count")] = sample.value
            continue
        if family.name not in HISTOGRAM_FAMILIES:
            continue
        for sample in family.samples:
            label = sample.labels.get("kind", sample.labels.get("generation", ""))
            if sample.name.endswith("_bucket"):
                out[(family.name, label, sample.labels["le"])] = sample.value
            elif sample.name.endswith("_sum"):
                out[(family.name, label, "sum")] = sample.value
            elif sample.name.endswith("_count"):
                out[(family.name, label, "+Inf")] = sample.value
    return out


HISTOGRAM_FAMILIES = (
    "squall_nimbus_loop_step_seconds",
    "squall_nimbus_loop_step_cpu_seconds",
    "squall_nimbus_loop_turn_seconds",
    "squall_nimbus_loop_turn_cpu_seconds",
    "squall_nimbus_gc_pause_seconds",
    "squall_nimbus_gc_pause_cpu_seconds",
)
SLOW_TURN_FAMILIES = (
    "squall_nimbus_loop_slow_turns",
    "squall_nimbus_loop_slow_turn_seconds",
    "squall_nimbus_loop_slow_turn_cpu_seconds",
)


def _window(before: Histograms, after: Histograms, family: str, label: str) -> tuple[float, float, float]:
    """(count, count over LONG_MS, sum s) of one histogram between two reads."""
    n, up_to_long, total = (
        after.get((family, label, le), 0.0) - before.get((family, label, le), 0.0) for le in ("+Inf", UNDER_LONG, "sum")
    )
    return n, n - up_to_long, total  # buckets are cumulative: the long ones are the rest


def causes(before: Histograms, after: Histograms) -> str:
    """What happened on the loop between two reads: per kind of step and per generation
    collected, how many took more than LONG_MS (wall), of how many, their total time, and,
    where Nimbus measures it, their thread's CPU time and how many took more than LONG_MS of
    CPU (load-independent: the loop's own work, not its waits)."""
    parts = []
    for family, what in (("squall_nimbus_gc_pause_seconds", "gc gen"), ("squall_nimbus_loop_step_seconds", "")):
        cpu_family = family.replace("_seconds", "_cpu_seconds")
        for label in sorted({k[1] for k in after if k[0] == family}):
            n, long_n, total = _window(before, after, family, label)
            if n and (long_n or what or label in ("Tick", "publish", "full_gc")):
                cpu_n, cpu_long, cpu_total = _window(before, after, cpu_family, label)
                cpu = f" ({cpu_total * 1e3:.0f} ms CPU, {cpu_long:.0f} > {LONG_MS} ms of CPU)" if cpu_n else ""
                parts.append(f"{what}{label}: {long_n:.0f} of {n:.0f} > {LONG_MS} ms, {total * 1e3:.0f} ms{cpu}")
    counted = []
    for event, what in NIMBUS_COUNTERS:
        key = ("squall_nimbus_events", event, "count")
        counted.append(f"{after.get(key, 0.0) - before.get(key, 0.0):.0f} {what}")
    return "; ".join(parts) + "; Nimbus counted " + ", ".join(counted)


def turns(before: Histograms, after: Histograms) -> str:
    """The loop's turns between two reads (everything between two polls: what a request that
    arrives meanwhile waits for): how many took more than LONG_MS of wall and of CPU time, and
    the slow ones by what took longest in them (wall s, CPU s)."""
    n, long_n, total = _window(before, after, "squall_nimbus_loop_turn_seconds", "")
    if not n:
        return "not measured by this Nimbus"
    _cpu_n, cpu_long, cpu_total = _window(before, after, "squall_nimbus_loop_turn_cpu_seconds", "")
    slow = []
    for label in sorted({k[1] for k in after if k[0] == "squall_nimbus_loop_slow_turns"}):
        count, wall, cpu = (
            after.get((family, label, "count"), 0.0) - before.get((family, label, "count"), 0.0)
            for family in SLOW_TURN_FAMILIES
        )
        if count:
            slow.append((wall, f"{label} {count:.0f} ({wall * 1e3:.0f} ms, {cpu * 1e3:.0f} ms CPU)"))
    longest = ", ".join(text for _wall, text in sorted(slow, reverse=True)) or "none"
    return (
        f"{n:.0f} turns, {total:.1f} s ({cpu_total:.1f} s CPU); {long_n:.0f} took > {LONG_MS} ms, "
        f"{cpu_long:.0f} took > {LONG_MS} ms of CPU; the slow ones by their longest part: {longest}"
    )


# Nimbus's counters (squall_nimbus_events_total{event}) printed for the steady window.
NIMBUS_COUNTERS = (
    ("msg_Heartbeat", "heartbeats"),
    ("heartbeats_unknown", "from unknown or dead boards"),
    ("msg_RegisterSupervisor", "registrations"),
    ("ticks_behind_backlog", "ticks behind a backlog"),
)
