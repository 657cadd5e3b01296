"""The runner measures a requested rebalance only after Nimbus's probation verdict, and
records it: ``probation`` (kept / rolled_back / empty) and ``verdict_at_s`` in every row.

A scripted Nimbus client in process (events, assignment, stats as Nimbus answers them, on
the real clock) and sinks' latency files written ahead: no cluster, a few seconds a trial.
The verdict falls well after the settle time, so a runner that measured at settle time,
before the verdict, fails these tests."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from squall.experiments import runner as runner_module
from squall.experiments.reference import chain_topology
from squall.experiments.runner import Runner, Timing

TIMING = Timing(warmup_s=0.2, window_s=0.5, settle_s=0.3, measure_s=0.6, reps=1, sample_every_s=0.2)
MIGRATION_S = 0.3  # from the rebalance request until Nimbus reports the move done
VERDICT_S = 1.5  # from the move done until the verdict: far past settle_s
TOPOLOGY = chain_topology(stages=2, replication=1, work=1, rate=10)


class ScriptedNimbus:
    """Answers the runner's requests like Nimbus would; ``verdict`` is what the probation
    decides ("kept", "rolled_back", or None: never judged)."""

    def __init__(self, lat_dir: Path, verdict: str | None) -> None:
        self.lat_dir, self.verdict = lat_dir, verdict
        self.names: set[str] = set()
        self.requested_at: float | None = None
        self.judged_at: float | None = None
        self.rolled_back_done_at: float | None = None

    # -- the client interface the runner uses --
    def submit(self, name: str, spec: Any, bundle: bytes, scheduler: str, workers: int, conf: dict) -> None:
        self.names.add(name)
        now = time.time()
        # The sinks' side channel: a sample every 10 ms for the next minute.
        lines = "".join(f"{now + i / 100:.3f} 0.002\n" for i in range(6000))
        (self.lat_dir / f"{name}-2.lat").write_text(lines)

    def rebalance(self, name: str, wait_s: float, scheduler: str) -> None:
        self.requested_at = time.time()

    def events(self, name: str) -> list[dict[str, Any]]:
        if self.requested_at is None:
            return []
        now = time.time()
        done_at = self.requested_at + MIGRATION_S
        event: dict[str, Any] = {"id": 7, "trigger": "requested", "decision": "applied", "moved": [1, 2]}
        if now < done_at:
            return [event]
        event.update(done_at=done_at, paused_s=0.1)
        judged_at = done_at + VERDICT_S
        if self.verdict is None or now < judged_at:
            return [event]
        self.judged_at = judged_at
        event.update(probation="average 2 -> 3 ms", judged_at=judged_at, measured_after={"avg_ms": 3.0})
        if self.verdict == "kept":
            return [event]
        event["decision"] = "rolled_back"
        back: dict[str, Any] = {"id": 8, "trigger": "rollback", "decision": "applied", "moved": [1, 2], "rolls_back": 7}
        if now >= judged_at + MIGRATION_S:
            back["done_at"] = self.rolled_back_done_at = judged_at + MIGRATION_S
        return [event, back]

    def assignment(self, name: str) -> dict[str, Any]:
        return {
            "executors": [{"id": 1, "node": "a", "port": 1, "pid": 10}, {"id": 2, "node": "b", "port": 1, "pid": 11}],
            "traffic": [[1, 2, 10.0]],
        }

    def stats(self, name: str) -> dict[str, Any]:
        return {"latency_avg_ms": 2.0}

    def kill(self, name: str, wait_s: float) -> None:
        self.names.discard(name)

    def list(self) -> list[dict[str, Any]]:
        return [{"name": n} for n in self.names]


class ScriptedCluster:
    def __init__(self, nimbus: ScriptedNimbus) -> None:
        self.nimbus = nimbus

    @contextmanager
    def client(self, timeout_s: float) -> Any:
        yield self.nimbus


def run_trial(tmp_path: Path, scheduler: str, verdict: str | None) -> tuple[dict[str, Any], ScriptedNimbus]:
    nimbus = ScriptedNimbus(tmp_path / "latency", verdict)
    runner = Runner(ScriptedCluster(nimbus), tmp_path, TIMING, workers=2, say=lambda s: None)
    result = runner.trial("t", TOPOLOGY, scheduler, {"rep": 1})
    return result.row, nimbus


@pytest.mark.timeout(60)
def test_a_kept_change_is_measured_after_its_verdict(tmp_path: Path) -> None:
    row, nimbus = run_trial(tmp_path, "online", "kept")
    assert row["probation"] == "kept"
    assert isinstance(row["verdict_at_s"], float)
    # The verdict came VERDICT_S after the move; settle_s alone would have measured before it.
    assert row["switched_at_s"] + MIGRATION_S + TIMING.settle_s < row["verdict_at_s"]
    assert row["measured_from_s"] >= row["verdict_at_s"]
    assert row["samples"] > 0


@pytest.mark.timeout(60)
def test_a_rolled_back_change_is_measured_after_the_move_back_settled(tmp_path: Path) -> None:
    row, nimbus = run_trial(tmp_path, "partition", "rolled_back")
    assert row["probation"] == "rolled_back"
    assert nimbus.judged_at is not None and nimbus.rolled_back_done_at is not None
    assert row["measured_from_s"] >= row["verdict_at_s"] + MIGRATION_S + TIMING.settle_s - 0.01


@pytest.mark.timeout(60)
def test_a_verdict_that_never_comes_is_waited_for_a_bounded_time_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "VERDICT_SLACK_S", 0.5)
    started = time.monotonic()
    row, _ = run_trial(tmp_path, "latency", None)
    assert row["probation"] == "no verdict" and row["verdict_at_s"] == ""
    assert time.monotonic() - started < 20  # bounded: window + slack, not forever


@pytest.mark.timeout(60)
def test_a_scheduler_placed_at_submit_has_no_probation(tmp_path: Path) -> None:
    row, nimbus = run_trial(tmp_path, "round_robin", "kept")
    assert nimbus.requested_at is None  # nothing was asked of Nimbus, so nothing was judged
    assert row["probation"] == "" and row["verdict_at_s"] == ""
    assert row["samples"] > 0


def test_a_loop_that_acts_again_after_a_verdict_is_followed_to_its_next_rebalance():
    """A timeline trial must not measure the loop's second migration (a quick run once got no
    samples at all that way): the runner finds the rebalance applied after the one it judged."""

    class Events:
        def __init__(self, events: list[dict[str, Any]]) -> None:
            self.list = events

        def events(self, name: str) -> list[dict[str, Any]]:
            return self.list

    first = {"id": 7, "decision": "applied", "done_at": 1.0}
    declined = {"id": 8, "decision": "declined"}
    second = {"id": 9, "decision": "applied"}
    runner = Runner.__new__(Runner)  # _next_applied reads only the client
    assert runner._next_applied(Events([first, declined, second]), "t", first) == 2
    assert runner._next_applied(Events([first, declined]), "t", first) is None
    assert runner._next_applied(Events([declined, second]), "t", first) is None  # not on file: nothing to follow
    # A rolled-back change's move back is no further decision: Nimbus never judges it, and a
    # CI run that followed it waited for a verdict that could not come ("no verdict").
    move_back = {"id": 10, "decision": "applied", "rolls_back": 7, "moved": [3], "done_at": 2.0}
    assert runner._next_applied(Events([first, move_back]), "t", first) is None
    assert runner._next_applied(Events([first, move_back, second]), "t", first) == 2


def test_a_move_back_is_not_expected_to_get_a_verdict():
    from squall.experiments import verdict

    change = {"id": 7, "decision": "applied", "moved": [3]}
    assert verdict.expects_verdict(change)
    assert not verdict.expects_verdict({"id": 8, "decision": "applied", "moved": [3], "rolls_back": 7})
    assert not verdict.expects_verdict({"id": 9, "decision": "applied", "moved": []})


class LoopNimbus(ScriptedNimbus):
    """Nimbus's periodic loop, scripted: a first change applied 0.2 s after submission and
    kept; a second one applied ``second_after`` s after that verdict (inside the runner's
    measurement when it exceeds the settle time), kept too."""

    def __init__(self, lat_dir: Path, second_after: float) -> None:
        super().__init__(lat_dir, "kept")
        self.second_after = second_after
        self.submitted_at: float | None = None
        self.second_judged_at: float | None = None

    def submit(self, name: str, spec: Any, bundle: bytes, scheduler: str, workers: int, conf: dict) -> None:
        super().submit(name, spec, bundle, scheduler, workers, conf)
        self.submitted_at = time.time()

    def events(self, name: str) -> list[dict[str, Any]]:
        assert self.submitted_at is not None
        now, out = time.time(), []
        start = self.submitted_at + 0.2
        for event_id in (1, 2):
            if now < start:
                break
            event: dict[str, Any] = {"id": event_id, "trigger": "periodic", "decision": "applied", "moved": [1]}
            out.append(event)
            done_at = start + MIGRATION_S
            if now < done_at:
                break
            event.update(done_at=done_at, paused_s=0.1)
            judged_at = done_at + VERDICT_S
            if now < judged_at:
                break
            event.update(probation="average 2 -> 2 ms", judged_at=judged_at)
            if event_id == 2:
                self.second_judged_at = judged_at
            start = judged_at + self.second_after
        return out


@pytest.mark.timeout(60)
def test_a_change_the_loop_applies_during_the_measurement_is_followed_and_measured_anew(tmp_path: Path) -> None:
    from squall.experiments.runner import Loop

    nimbus = LoopNimbus(tmp_path / "latency", second_after=TIMING.settle_s + 0.2)  # inside the measurement
    runner = Runner(ScriptedCluster(nimbus), tmp_path, TIMING, workers=2, say=lambda s: None)
    row = runner.trial("t", TOPOLOGY, "online", {"rep": 1}, loop=Loop(interval_s=0.1, deadline_s=5.0)).row
    assert nimbus.second_judged_at is not None
    assert "1 more applied by the loop" in row["decided_by"], row["decided_by"]
    assert row["probation"] == "kept"
    assert row["measured_from_s"] >= row["verdict_at_s"]  # the second change's verdict, not the first's
    assert row["samples"] > 0
