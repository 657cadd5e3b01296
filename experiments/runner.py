"""One trial: submit a topology under one scheduler, let it settle, measure, kill it.

How each scheduler is applied:

* ``round_robin``, ``offline``: placed at submit time (``scheduler=`` of the submission).
* ``online``, ``partition``, ``latency``: they need measured traffic, so the topology is
  submitted with ``round_robin`` (Storm's default, as in the paper's figure 8), runs until its
  metrics window is full, then ``client.rebalance(name, scheduler=...)`` asks Nimbus for a
  proposal from the measured rates and applies it at once (a live migration).
* every applied change that moves executors is on **probation** in Nimbus: one metrics
  window after the migration it is kept or rolled back (moved back to the placement before).
  The trial waits for that verdict (at most ``window_s + VERDICT_SLACK_S``) and measures
  after it — ``settle_s`` after the migration at the earliest, and ``settle_s`` after the
  move back when it was rolled back — so it never measures a roll-back's migration as the
  scheduler's placement. The row says which (``probation``: ``kept``, ``rolled_back``, or
  empty when nothing was on probation) and when Nimbus judged (``verdict_at_s``).
* with ``loop=True`` (the timeline), an adaptive scheduler is instead submitted *as itself*
  with its periodic loop on (``topology.reschedule.interval.secs``, ``...timeout.secs``,
  ``topology.traffic.improvement``): Nimbus decides by itself when to rebalance, and the
  trial records when it first applied a periodic rebalance (as the runner saw it, polling
  every 0.3 s) and measures after that change's verdict, as above — or, when the loop never
  applied one within its deadline, measures anyway and says so in the row.

A trial starts its clock when the sinks first report latency (workers on capped boards take
seconds to import), not when the workers are placed. Inter-node and inter-worker traffic come
from Nimbus's measured rates split by the current placement (``client.assignment``, sampled
during the measurement); latency from the sinks' side channel; ``complete_ms`` is the spouts'
complete latency as Nimbus reports it, for comparison, and ``predicted_ms`` what the latency
model predicts for the measured placement (``squall.rebalance.latency``), so every point
also checks the model.

Trials run one at a time on the same cluster, so they never compete for boards.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from squall.client import NimbusError, NimbusUnreachable
from squall.experiments import measure, verdict
from squall.topology.dsl import Topology

MEASURED_AFTER_REBALANCE = ("online", "partition", "latency")
LOOP_POLL_S = 0.3
# Nimbus judges a change one metrics window (+1 s) after its migration finished, on its next
# tick; a roll-back then migrates back (spouts paused 2-3 s here, more on a loaded machine).
# 30 s past the window covers both with room on this 2-core machine at load 20-40, and bounds
# a trial whose Nimbus never judges (the row then says "no verdict").
VERDICT_SLACK_S = 30.0
# How many further rebalances of the periodic loop a timeline trial follows (each to its
# verdict) before it measures anyway.
LOOP_FOLLOW_UPS = 2


@dataclass(frozen=True)
class Loop:
    """The periodic loop's settings for a timeline trial (Nimbus's conf keys)."""

    interval_s: float = 5.0
    timeout_s: float = 0.0  # the first change may come as soon as the window is full
    improvement_pct: float = 10.0
    deadline_s: float = 90.0  # after the window is full, how long to wait for a decision

    def conf(self) -> dict[str, float]:
        return {
            "topology.reschedule.interval.secs": self.interval_s,
            "topology.reschedule.timeout.secs": self.timeout_s,
            "topology.traffic.improvement": self.improvement_pct,
        }


@dataclass(frozen=True)
class Timing:
    warmup_s: float  # after all workers run, before measuring (round_robin, offline)
    window_s: float  # Nimbus's metrics window; online/partition rebalance once it is full
    settle_s: float  # after the rebalanced workers run, before measuring
    measure_s: float
    reps: int
    sample_every_s: float = 2.0


# Quick (CI): checks that everything runs, not the figures. A 3 s window still holds ~1,000
# latencies for the probation to judge (it needs 100); with the wait for its verdict a quick
# experiment stays under 3 minutes here.
QUICK = Timing(warmup_s=1.0, window_s=3.0, settle_s=1.5, measure_s=2.5, reps=1, sample_every_s=1.25)
# settle_s: a live migration pauses the spouts for ~2-3 s; their catch-up must drain first.
FULL = Timing(warmup_s=4.0, window_s=6.0, settle_s=6.0, measure_s=8.0, reps=3)


@dataclass
class _Measurement:
    t0: float
    t1: float
    traffic: list[dict[str, Any]]  # Nimbus's figures, each with "at" (s since t0)
    samples: list[tuple[float, float]]  # the sinks' (wall time, latency s)
    bytes0: int | None
    bytes1: int | None
    throttled0: dict[str, float]
    throttled1: dict[str, float]
    links0: dict[str, tuple[int, int]]
    links1: dict[str, tuple[int, int]]


@dataclass
class TrialResult:
    row: dict[str, Any]
    samples: list[tuple[float, float]]  # (seconds since the workers ran, latency s)
    switched_at: float | None  # seconds since the workers ran, when the rebalance applied


class Runner:
    """Runs trials on ``cluster`` (a Testbed or LocalCluster), writing latency files under
    ``workdir``; ``say`` reports progress."""

    def __init__(
        self, cluster: Any, workdir: Path, timing: Timing, workers: int, say: Callable[[str], None] = print
    ) -> None:
        self.cluster, self.timing, self.workers, self.say = cluster, timing, workers, say
        self.out = workdir
        self.lat_dir = workdir / "latency"
        shutil.rmtree(self.lat_dir, ignore_errors=True)  # samples of an earlier run share names
        (workdir / "models.jsonl").unlink(missing_ok=True)  # one run's trials, as the CSV
        self.lat_dir.mkdir(parents=True)
        self._stub = Path(tempfile.mkdtemp(prefix="squall-exp-")) / "experiment_topology.py"
        self._stub.write_text('"""Experiment topologies: their components live in squall.experiments."""\n')
        self._ids = itertools.count(1)
        self.link_bytes: Callable[[], int | None] = getattr(cluster, "link_bytes", lambda: None)
        self.throttled: Callable[[], dict[str, float]] = getattr(cluster, "throttled_s", dict)
        self.link_counters: Callable[[], dict[str, tuple[int, int]]] = getattr(cluster, "link_counters", dict)
        self.link_mbit: Callable[[], dict[str, float]] = getattr(cluster, "link_mbit", dict)

    def _bundle(self) -> bytes:
        from squall.bundle import make_bundle

        return make_bundle(self._stub)

    def trial(
        self,
        label: str,
        topology: type[Topology],
        scheduler: str,
        params: dict[str, Any],
        alpha: float | None = None,
        keep_timeline: bool = False,
        loop: Loop | None = None,
    ) -> TrialResult:
        """One trial; with ``loop``, an adaptive scheduler (one in MEASURED_AFTER_REBALANCE
        other than partition, which has no loop) is submitted as itself and left to decide."""
        t = self.timing
        name = f"{label}-{scheduler.replace('_', '')}-{next(self._ids)}"
        conf: dict[str, Any] = {"chain.latency_dir": str(self.lat_dir), "topology.metrics.window.secs": t.window_s}
        if alpha is not None:
            conf["topology.scheduler.params"] = {"alpha": alpha}
        by_loop = loop is not None and scheduler in MEASURED_AFTER_REBALANCE and scheduler != "partition"
        if loop is not None and by_loop:
            conf.update(loop.conf())
        initial = "round_robin" if scheduler in MEASURED_AFTER_REBALANCE and not by_loop else scheduler
        with self.cluster.client(timeout_s=15.0) as c:
            c.submit(name, topology.spec.to_dict(), self._bundle(), initial, self.workers, conf)
            try:
                return self._run(c, name, scheduler, params, alpha, keep_timeline, loop if by_loop else None)
            finally:
                self._kill(c, name)

    def _wait_periodic(self, c: Any, name: str, loop: Loop, origin: float) -> tuple[float | None, dict[str, Any]]:
        """Wait for the loop's first applied periodic rebalance; (seconds since ``origin``
        when it was seen, its event once finished), or (None, {}) after the deadline."""
        deadline = time.monotonic() + self.timing.window_s + loop.deadline_s
        while time.monotonic() < deadline:
            for i, ev in enumerate(c.events(name)):
                if ev.get("trigger") == "periodic" and ev.get("decision") == "applied":
                    seen = time.time() - origin
                    return seen, self._wait_migrated(c, name, i)
            time.sleep(LOOP_POLL_S)
        return None, {}

    def _run(
        self,
        c: Any,
        name: str,
        scheduler: str,
        params: dict[str, Any],
        alpha: float | None,
        keep_timeline: bool,
        loop: Loop | None = None,
    ) -> TrialResult:
        t = self.timing
        self._wait_running(c, name)
        origin = self._wait_flowing(name)
        switched_at: float | None = None
        event: dict[str, Any] = {}
        decided_by = ""
        probation, judged_at = "", None
        if loop is not None:
            switched_at, event = self._wait_periodic(c, name, loop, origin)
            decided_by = "periodic loop" if switched_at is not None else "periodic loop: no rebalance applied"
            declined = [ev.get("reason", "") for ev in c.events(name) if ev.get("decision") != "applied"]
            if declined:
                decided_by += f"; {len(declined)} declined, last: {declined[-1]}"
            probation, judged_at = self._after_switch(c, name, event)
        elif scheduler in MEASURED_AFTER_REBALANCE:
            time.sleep(max(t.warmup_s, t.window_s + 1.5))
            requested = len(c.events(name))
            c.rebalance(name, wait_s=0, scheduler=scheduler)
            switched_at = time.time() - origin
            event = self._wait_migrated(c, name, requested)
            probation, judged_at = self._after_switch(c, name, event)
        else:
            time.sleep(t.warmup_s)
        follow_ups = 0
        while True:
            # The loop may act again — right after a verdict, or during the measurement (a
            # board still over capacity): measure the placement it settles on, not one of
            # its migrations. Each further change is followed to its verdict, then measured.
            while loop is not None and event and follow_ups < LOOP_FOLLOW_UPS:
                later = self._next_applied(c, name, event)
                if later is None:
                    break
                event = self._wait_migrated(c, name, later)
                probation, judged_at = self._after_switch(c, name, event)
                follow_ups += 1
            m = self._measure(c, name)
            acted = loop is not None and bool(event) and self._next_applied(c, name, event) is not None
            if not acted or follow_ups >= LOOP_FOLLOW_UPS:
                break
        if follow_ups:
            decided_by += f"; {follow_ups} more applied by the loop, measured after the last"
        if acted:
            decided_by += "; the loop applied yet another change during the measurement"
        t0, t1, traffic, samples = m.t0, m.t1, m.traffic, m.samples
        row: dict[str, Any] = {
            "topology": name,
            "scheduler": scheduler,
            **params,
            "alpha": alpha if alpha is not None else "",
            "moved_executors": len(event.get("moved", [])),
            "switched_at_s": round(switched_at, 2) if switched_at is not None else "",
            "decided_by": decided_by or ("requested" if switched_at is not None else "at submit"),
            "paused_s": event.get("paused_s") or 0.0,
            "probation": probation,
            "verdict_at_s": round(judged_at - origin, 2) if judged_at is not None else "",
        }
        row.update(measure.latency_stats(measure.between(samples, t0, t1), t1 - t0))
        # Nimbus averages complete latency over its metrics window: only samples whose
        # window lies inside the measured interval count, else a migration's catch-up or
        # the start-up just before ``t0`` would be measured as the placement's latency.
        inside = [s for s in traffic if s["at"] >= t.window_s - 0.5] or traffic[-1:]
        row["complete_ms"] = measure.mean_std(s.get("latency_avg_ms") or math.nan for s in inside)[0]
        model = self._model_inputs(c, name)
        row["predicted_ms"] = self._predicted_ms(model, name)
        self._record_model(row, model)
        for key in ("inter_node_tps", "inter_worker_tps"):
            row[key] = measure.mean_std(s.get(key, math.nan) for s in traffic)[0]
        row["nodes_used"] = traffic[-1].get("nodes_used") if traffic else ""
        row["workers_used"] = traffic[-1].get("workers_used") if traffic else ""
        row["link_kbit_s"] = (
            (m.bytes1 - m.bytes0) * 8 / 1e3 / (t1 - t0) if m.bytes0 is not None and m.bytes1 is not None else math.nan
        )
        # Share of the measured time each board's CPU cap held it back: the busiest board's.
        held = {b: (m.throttled1[b] - m.throttled0.get(b, 0.0)) / (t1 - t0) for b in m.throttled1}
        row["throttled_max"] = round(max(held.values()), 3) if held else ""
        row["throttled_board"] = max(held, key=lambda b: held[b]) if held else ""
        util = measure.link_utilisation(m.links0, m.links1, self.link_mbit(), t1 - t0)
        row["link_util_max"] = round(max(util.values()), 4) if util else ""
        row["link_util_board"] = max(util, key=lambda b: util[b]) if util else ""
        row["measured_from_s"], row["measured_to_s"] = round(t0 - origin, 2), round(t1 - origin, 2)
        kept = [(ts - origin, lat) for ts, lat in samples] if keep_timeline else []
        return TrialResult(row, kept, switched_at)

    def _measure(self, c: Any, name: str) -> _Measurement:
        """One measurement window of ``measure_s``: Nimbus's traffic figures every
        ``sample_every_s``, the link and CPU-cap counters at both ends, and the sinks'
        latency samples once flushed."""
        t = self.timing
        t0, bytes0, throttled0, links0 = time.time(), self.link_bytes(), self.throttled(), self.link_counters()
        traffic: list[dict[str, Any]] = []
        while time.time() < t0 + t.measure_s:
            time.sleep(min(t.sample_every_s, max(0.0, t0 + t.measure_s - time.time())))
            traffic.append(self._sample(c, name))
            traffic[-1]["at"] = time.time() - t0
        t1, bytes1, throttled1, links1 = time.time(), self.link_bytes(), self.throttled(), self.link_counters()
        samples = self._wait_flushed(name, t1)
        return _Measurement(t0, t1, traffic, samples, bytes0, bytes1, throttled0, throttled1, links0, links1)

    def _after_switch(self, c: Any, name: str, event: dict[str, Any]) -> tuple[str, float | None]:
        """After the switch's migration finished: wait for its probation's verdict and for
        what runs next to settle. Returns (outcome, Nimbus's time of the verdict or None)."""
        t = self.timing
        self._wait_running(c, name)
        settled = time.time() + t.settle_s
        if not verdict.expects_verdict(event):
            time.sleep(t.settle_s)
            return "", None
        judged = self._wait_verdict(c, name, int(event["id"]), t.window_s + VERDICT_SLACK_S)
        if judged is None:
            self.say(f"  {name}: no probation verdict within {t.window_s + VERDICT_SLACK_S:g} s; measuring anyway")
            time.sleep(max(0.0, settled - time.time()))
            return verdict.NO_VERDICT, None
        outcome = verdict.outcome(judged)
        if outcome == verdict.ROLLED_BACK:
            self.say(f"  {name}: rolled back by its probation ({judged.get('probation', '')}); measuring after")
            self._wait_running(c, name)
            time.sleep(t.settle_s)  # the move back paused the spouts too
        else:
            time.sleep(max(0.0, settled - time.time()))
        at = judged.get("judged_at")
        return outcome, float(at) if isinstance(at, (int, float)) else None

    def _wait_verdict(self, c: Any, name: str, event_id: int, timeout_s: float) -> dict[str, Any] | None:
        """The event once its probation is over (see ``verdict.judged``), or None."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            judged = verdict.judged(c.events(name), event_id)
            if judged is not None:
                return judged
            time.sleep(LOOP_POLL_S)
        return None

    @staticmethod
    def _model_inputs(c: Any, name: str) -> dict[str, Any] | None:
        """What Nimbus's schedulers see for ``name`` right now (``squall stats``'s
        ``model``: workload profile, boards, current placement), or None."""
        try:
            model = c.stats(name).get("model")
        except (NimbusError, AttributeError):
            return None
        return model if isinstance(model, dict) else None

    @staticmethod
    def _predicted_ms(model: dict[str, Any] | None, name: str) -> float:
        """The latency model's prediction for the placement just measured, from the same
        live workload Nimbus's schedulers see (NaN when it cannot price it)."""
        from squall.rebalance import Assignment, InfeasibleError, InvalidInputError, Workload, nodes_from_list
        from squall.rebalance.latency import predict

        if model is None:
            return math.nan
        try:
            workload = Workload.from_dict(model["workload"])
            nodes = nodes_from_list(model["nodes"])
            value = predict(Assignment.from_dict(model["current"]), [workload], nodes).latency_ms.get(name)
        except (KeyError, TypeError, InfeasibleError, InvalidInputError):
            return math.nan
        return value if value is not None else math.nan

    def _record_model(self, row: dict[str, Any], model: dict[str, Any] | None) -> None:
        """Append the trial's measured latency and the model's inputs to ``models.jsonl``
        in the output folder, so a changed model can be checked against every recorded
        trial without running it again (``benchmarks/model_calibration.py``)."""
        if model is None:
            return
        keep = (
            "topology",
            "scheduler",
            "stages",
            "replication",
            "rep",
            "alpha",
            "payload",
            "complete_ms",
            "latency_avg_ms",
            "latency_p50_ms",
            "sink_tps",
            "throttled_max",
            "nodes_used",
            "workers_used",
        )
        record = {k: row[k] for k in keep if k in row}
        record["model"] = model
        with open(self.out / "models.jsonl", "a") as f:
            f.write(json.dumps(record, default=str) + "\n")

    def _sample(self, c: Any, name: str) -> dict[str, Any]:
        """Traffic split by the current placement (from the assignment view, which every
        Nimbus has) plus the spouts' complete latency when Nimbus's stats answer."""
        view = c.assignment(name)
        sample: dict[str, Any] = measure.traffic_split(view) or {}
        where = set(measure.placement_of(view).values())
        sample["nodes_used"], sample["workers_used"] = len({n for n, _ in where}), len(where)
        try:
            sample["latency_avg_ms"] = c.stats(name).get("latency_avg_ms")
        except (NimbusError, AttributeError):
            pass  # an older Nimbus, or one whose stats fail: the sinks' latency is the measure
        return sample

    def _wait_flowing(self, name: str, timeout_s: float = 90.0) -> float:
        """Wait for the sinks' first samples; returns the wall time of the first one."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            samples = measure.read_latencies(self.lat_dir, name)
            if samples:
                return samples[0][0]
            time.sleep(0.3)
        raise TimeoutError(f"{name}: no tuple reached a sink within {timeout_s:g} s")

    def _wait_flushed(self, name: str, t1: float, timeout_s: float = 2.0) -> list[tuple[float, float]]:
        """The sinks' samples once one from after ``t1`` is on file (they flush every half
        second), so the measured interval is complete; after ``timeout_s`` whatever is there."""
        deadline = time.monotonic() + timeout_s
        while True:
            samples = measure.read_latencies(self.lat_dir, name)
            if (samples and samples[-1][0] >= t1) or time.monotonic() >= deadline:
                return samples
            time.sleep(0.1)

    def _next_applied(self, c: Any, name: str, event: dict[str, Any]) -> int | None:
        """The index of the first rebalance applied after ``event`` in the topology's event
        list, or None when none was. A move back of a rolled-back change is not one: waiting
        for the verdict already waited for it, and Nimbus never judges it."""
        events = c.events(name)
        at = next((i for i, ev in enumerate(events) if ev.get("id") == event.get("id")), None)
        if at is None:
            return None
        return next(
            (
                i
                for i in range(at + 1, len(events))
                if events[i].get("decision") == "applied" and events[i].get("rolls_back") is None
            ),
            None,
        )

    def _wait_migrated(self, c: Any, name: str, before: int, timeout_s: float = 60.0) -> dict[str, Any]:
        """The event at index ``before`` (the rebalance asked for or followed) once Nimbus
        finished it (declined ones at once). Not the last event: the loop may have recorded
        more since, and they are not what this trial switched to."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            events = c.events(name)
            if len(events) > before and (
                events[before].get("done_at") is not None or events[before].get("decision") != "applied"
            ):
                return events[before]
            time.sleep(0.3)
        self.say(f"  {name}: rebalance not finished after {timeout_s:g} s; measuring anyway")
        return {}

    def _wait_running(self, c: Any, name: str, timeout_s: float = 60.0) -> dict[int, tuple[Any, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            view = c.assignment(name)
            if measure.all_running(view):
                return measure.placement_of(view)
            time.sleep(0.3)
        raise TimeoutError(f"{name}: workers not all running after {timeout_s:g} s")

    def _kill(self, c: Any, name: str, timeout_s: float = 30.0) -> None:
        try:
            c.kill(name, wait_s=0)
        except (NimbusError, NimbusUnreachable) as exc:
            self.say(f"  kill {name}: {exc}")
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(t["name"] != name for t in c.list()):
                time.sleep(1.0)  # let the supervisors stop the workers and free the ports
                return
            time.sleep(0.3)
        self.say(f"  {name} still listed {timeout_s:g} s after kill")
