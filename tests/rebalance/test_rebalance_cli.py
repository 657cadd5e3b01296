"""``squall schedule`` end to end, as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKLOAD = ROOT / "examples" / "schedule" / "chain4.json"
NODES = ROOT / "examples" / "schedule" / "pis.json"


def squall(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "squall", "schedule", *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_json_output_places_every_executor_and_prices_it():
    done = squall("--workload", str(WORKLOAD), "--nodes", str(NODES), "--scheduler", "online", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["scheduler"] == "online"
    assert sorted(r["executor"] for r in out["assignment"]) == list(range(8))
    assert set(out["cost"]) >= {"inter_node_tps", "inter_worker_tps", "node_load_hz", "overloaded"}
    assert set(out["cost"]["node_load_hz"]) == {"pi-1", "pi-2", "pi-3", "pi-4"}


def test_table_output_and_rescheduling_from_the_json_output(tmp_path):
    first = squall("--workload", str(WORKLOAD), "--nodes", str(NODES), "--json", "--alpha", "0.2", "--beta", "1")
    current = tmp_path / "current.json"
    current.write_text(first.stdout)
    done = squall(
        "--workload", str(WORKLOAD), "--nodes", str(NODES), "--current", str(current), "--alpha", "0.2", "--beta", "1"
    )
    assert done.returncode == 0, done.stderr
    assert "inter-node traffic:" in done.stdout and "pi-4" in done.stdout


@pytest.mark.parametrize(
    "content, expected",
    [
        pytest.param("{not json", "not valid JSON", id="bad JSON"),
        pytest.param(
            '{"topology": "t", "workers": 1, "traffic": [], "load_hz": []}',
            "executors: missing field",
            id="missing field",
        ),
        pytest.param(
            '{"topology": "t", "workers": "one", "executors": [], "traffic": [], "load_hz": []}',
            "workers: expected an integer",
            id="wrong type",
        ),
        pytest.param(
            '{"topology": "t", "workers": 1, "executors": [{"id": 0, "component": "a"}],'
            ' "traffic": [[0, 9, 1.0]], "load_hz": [1.0]}',
            "traffic[0][1]: unknown executor id 9",
            id="unknown executor",
        ),
        pytest.param(
            '{"topology": "t", "workers": 1, "executors": [{"id": 0, "component": "a"}],'
            ' "traffic": [[0, 0, -5]], "load_hz": [1.0]}',
            "traffic[0][2]: must be >= 0",
            id="negative rate",
        ),
        pytest.param(
            '{"topology": "t", "workers": 1, "executors": [{"id": 0, "component": "a"}], "traffic": [], "load_hz": []}',
            "load_hz: has 0 values for 1 executors",
            id="load_hz length mismatch",
        ),
    ],
)
def test_malformed_workload_file_exits_2_naming_file_and_field(tmp_path, content, expected):
    bad = tmp_path / "w.json"
    bad.write_text(content)
    done = squall("--workload", str(bad), "--nodes", str(NODES))
    assert done.returncode == 2
    assert done.stderr.startswith(f"squall schedule: {bad}")
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args, expected",
    [
        pytest.param(["--scheduler", "fastest"], "unknown scheduler 'fastest'", id="unknown scheduler"),
        pytest.param(["--alpha", "3"], "alpha must be a number in [0, 1]", id="alpha out of range"),
        pytest.param(["--strict", "--nodes", "SMALL"], "cannot schedule:", id="infeasible under strict"),
        pytest.param(["--nodes", "/nonexistent/n.json"], "cannot read /nonexistent/n.json", id="missing file"),
    ],
)
def test_bad_options_exit_2(tmp_path, args, expected):
    small = tmp_path / "small.json"
    small.write_text('[{"id": "tiny", "slots": 1, "capacity_hz": 1e6}]')
    args = [str(small) if a == "SMALL" else a for a in args]
    base = ["--workload", str(WORKLOAD)]
    if "--nodes" not in args:
        base += ["--nodes", str(NODES)]
    done = squall(*base, *args)
    assert done.returncode == 2, done.stdout
    assert expected in done.stderr and "Traceback" not in done.stderr
