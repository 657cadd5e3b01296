"""Summaries from a CSV alone (`squall experiment NAME --report-only`): the table, each
scheduler's ratio to round_robin with its bootstrap interval, and the plots — what an
interrupted full run still yields. No cluster."""

from __future__ import annotations

from pathlib import Path

from squall.experiments.suites import write_csv
from tests.helpers import run_squall


def rows(latency: dict[str, list[float]], stages: int = 3) -> list[dict]:
    out = []
    for sched, values in latency.items():
        for rep, v in enumerate(values, 1):
            out.append(
                {
                    "scheduler": sched,
                    "stages": stages,
                    "replication": 2,
                    "rep": rep,
                    "alpha": "",
                    "latency_avg_ms": v,
                    "latency_p99_ms": v * 3,
                    "inter_node_tps": 1000.0 if sched == "round_robin" else 400.0,
                    "inter_worker_tps": 1200.0,
                    "sink_tps": 400.0,
                    "link_kbit_s": 100.0,
                    "link_util_max": 0.01,
                }
            )
    return out


def stages_report(out: Path) -> str:
    """The summary ``squall experiment stages --report-only`` writes from the CSV in ``out``."""
    proc = run_squall("experiment", "stages", "--report-only", "--out", str(out), timeout_s=120)
    assert proc.returncode == 0, proc.stderr
    return (out / "stages-summary.md").read_text()


def test_report_only_writes_the_ratio_with_its_interval_and_the_plots(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "stages.csv",
        rows({"round_robin": [10.0, 12.0, 8.0], "online": [5.0, 6.0, 4.0], "latency": [2.0, 2.0, 2.0]}),
    )
    (tmp_path / "stages-setup.md").write_text("Cluster: four emulated boards\n")
    summary = stages_report(tmp_path)
    assert "Cluster: four emulated boards" in summary and "3 repetition(s)" in summary  # as many as ran
    assert "| 2 | 3 | round_robin | 10.0 ± 2.0 |" in summary
    online = next(line for line in summary.splitlines() if line.startswith("| 2 | 3 | online | 0.50 ["))
    low, high = (float(x) for x in online.split("[")[1].split("]")[0].split(","))
    assert low < 0.5 < high  # the repetitions spread, so the interval does too
    assert "| 2 | 3 | latency | 0.20 [" in summary and "| 0.40 [0.40, 0.40] |" in summary  # traffic ratio
    assert (tmp_path / "stages-latency-r2.png").read_bytes()[:4] == b"\x89PNG"


def test_report_only_without_a_csv_exits_2_naming_it(tmp_path: Path) -> None:
    proc = run_squall("experiment", "payload", "--report-only", "--out", str(tmp_path))
    assert proc.returncode == 2 and "payload.csv has no rows" in proc.stderr


def test_an_interrupted_run_reports_the_repetitions_it_has(tmp_path: Path) -> None:
    write_csv(tmp_path / "stages.csv", rows({"round_robin": [10.0, 12.0], "online": [5.0, 6.0]}))
    summary = stages_report(tmp_path)
    assert "2 repetition(s) per point" in summary and "(cluster: not recorded)" in summary


def test_the_summary_counts_the_trials_a_probation_rolled_back_per_cell(tmp_path: Path) -> None:
    data = rows({"round_robin": [10.0, 12.0, 8.0], "online": [5.0, 6.0, 4.0], "partition": [3.0, 3.0, 3.0]})
    verdicts = {"round_robin": ["", "", ""], "online": ["kept", "rolled_back", "kept"], "partition": ["kept"] * 3}
    for r in data:
        r["probation"] = verdicts[r["scheduler"]][r["rep"] - 1]
    write_csv(tmp_path / "stages.csv", data)
    lines = stages_report(tmp_path).splitlines()
    assert "rolled back" in next(line for line in lines if line.startswith("| replication | stages |"))

    def cell(scheduler: str) -> str:
        return next(line for line in lines if line.startswith(f"| 2 | 3 | {scheduler} | ") and "±" in line)

    assert cell("online").endswith("| 3 | 1 of 3 |")
    assert cell("partition").endswith("| 3 | 0 of 3 |")
    assert cell("round_robin").endswith("| 3 | - |")  # nothing on probation


def test_a_csv_from_before_the_probation_column_shows_no_count(tmp_path: Path) -> None:
    write_csv(tmp_path / "stages.csv", rows({"round_robin": [10.0, 12.0], "online": [5.0, 6.0]}))
    lines = stages_report(tmp_path).splitlines()
    assert next(line for line in lines if line.startswith("| 2 | 3 | online | ") and "±" in line).endswith("| 2 | - |")


def test_a_trial_that_times_out_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    from squall.experiments.runner import TrialResult
    from squall.experiments.suites import Context, Load, Trials, read_csv

    class StuckOnce:
        timing = None

        def trial(self, label: str, topology: type, scheduler: str, params: dict, **options: object) -> TrialResult:
            if scheduler == "online":
                raise TimeoutError("t-online-2: workers not all running after 60 s")
            row = {"scheduler": scheduler, **params, "latency_avg_ms": 5.0, "latency_p99_ms": 9.0}
            row.update(inter_node_tps=100.0, samples=10)
            return TrialResult(row, [], None)

    said: list[str] = []
    ctx = Context(StuckOnce(), tmp_path, True, Load(), "setup", said.append)  # type: ignore[arg-type]
    trials = Trials(ctx, 3, "stages.csv")
    for scheduler in ("round_robin", "online", "latency"):
        trials.run(scheduler, "t", object, scheduler, {"stages": 3, "rep": 1})
    written = read_csv(tmp_path / "stages.csv")
    assert [r["scheduler"] for r in written] == ["round_robin", "online", "latency"]
    assert "workers not all running" in written[1]["failed"] and written[1]["latency_avg_ms"] == ""
    assert written[2]["latency_avg_ms"] == 5.0 and written[0]["failed"] == ""
    assert any("trial failed" in line for line in said)
