"""squall experiment / squall testbed: bad input exits 2 naming the fault; each experiment
runs with --quick and writes its CSV, PNGs and summary (marked ``experiment``: about a
minute or two each; on emulated boards with root, else on loopback processes)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from tests.experiments.testbed_helpers import PREFIX, SUBNET


def expected_schedulers() -> set[str]:
    from squall.experiments.suites import schedulers

    return set(schedulers())  # the paper's four, and latency once it is registered


def squall(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "squall", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "args, message",
    [
        (["experiment", "stages", "--out", "x", "--reps", "0"], "--reps must be >= 1"),
        (["experiment", "alpha", "--out", "x", "--boards", "/nonexistent.json"], "cannot read"),
        (["experiment", "timeline", "--out", "x", "--rate", "-1"], "--rate must be > 0"),
        (["testbed", "up", "--prefix", "bad-prefix"], "--prefix must be 1-8 letters or digits"),
    ],
    ids=["zero reps", "missing board file", "negative rate", "bad prefix"],
)
def test_bad_input_exits_2(args: list[str], message: str) -> None:
    proc = squall(*args)
    assert proc.returncode == 2 and message in proc.stderr


def test_unknown_experiment_is_refused_by_the_parser() -> None:
    proc = squall("experiment", "latency", "--out", "x")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


@pytest.mark.experiment
@pytest.mark.integration
# A quick experiment takes 1.5-3 minutes on this 2-core machine at a load average of 2 and
# up to 3.5 at 10-13 (measured 2 December: payload 202 s, stages 189 s): the bounds are for a
# hang, not a speed check.
@pytest.mark.timeout(420)
@pytest.mark.parametrize(
    "name, csv_key, pngs",
    [
        ("timeline", None, ["timeline.png"]),
        ("stages", "stages", ["stages-latency-r2.png", "stages-traffic-r2.png"]),
        ("alpha", "alpha", ["alpha-latency.png", "alpha-traffic.png"]),
        ("payload", "payload", ["payload-latency.png", "payload-load.png"]),
    ],
)
def test_quick_experiment_writes_csv_plots_and_summary(
    name: str, csv_key: str | None, pngs: list[str], tmp_path: Path
) -> None:
    from squall.experiments.netns import delay_unavailable_reason
    from squall.experiments.testbed import teardown

    if _root() and (why := delay_unavailable_reason()) is not None:
        pytest.skip(f"the quick experiments run on emulated boards with link delay here: {why}")
    try:
        proc = squall(
            "experiment", name, "--quick", "--out", str(tmp_path), "--prefix", PREFIX, "--subnet", SUBNET, timeout=360
        )
    finally:
        if _root():
            teardown(PREFIX)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[1/" in proc.stderr  # progress
    rows = list(csv.DictReader(open(tmp_path / f"{name}.csv")))
    assert {r["scheduler"] for r in rows} == expected_schedulers()
    assert all(int(r["samples"]) > 0 and float(r["latency_avg_ms"]) > 0 for r in rows)
    # Storm's round robin spreads the chain over the boards, so its tuples cross boards; a
    # scheduler may pack onto one board (latency does), so the others can measure zero.
    assert all(float(r["inter_node_tps"]) > 0 for r in rows if r["scheduler"] == "round_robin"), rows
    assert all(float(r["inter_node_tps"]) >= 0 for r in rows)
    if csv_key:
        assert len({r[csv_key] for r in rows if r["scheduler"] == "online"}) == 2  # two points swept
    if _root():  # emulated boards: every trial reports its busiest link's utilisation
        assert all(0 <= float(r["link_util_max"]) < 2 and r["link_util_board"] for r in rows)
    # A switch that moved executors is measured after its probation's verdict, as recorded.
    # "ended": Nimbus lost a board during the probation and the failure path took over (a
    # saturated Wi-Fi link can starve a board's heartbeats, a known problem in
    # docs/experiments.md): recorded as such, not judged.
    for r in rows:
        if r["switched_at_s"] and int(r["moved_executors"]) > 0:
            assert r["probation"] in ("kept", "rolled_back", "ended"), r
            if r["probation"] != "ended":
                assert float(r["measured_from_s"]) >= float(r["verdict_at_s"]), r
        if r["scheduler"] in ("round_robin", "offline"):
            assert r["probation"] == "" and r["verdict_at_s"] == "", r
    if name == "timeline":  # online decided by itself, through Nimbus's periodic loop
        online = [r for r in rows if r["scheduler"] == "online"]
        assert online and all(r["decided_by"].startswith("periodic loop") for r in online)
    for png in pngs:
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (tmp_path / f"{name}-summary.md").read_text()
    assert "Ratio to round_robin" in summary and "| online |" in summary and pngs[0] in summary
    assert "rolled back" in summary


def _root() -> bool:
    from squall.experiments import netns

    return netns.unavailable_reason() is None
