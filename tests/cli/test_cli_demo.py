"""``squall demo --in-process``: runs the reference chain in this process with acking off,
then on, and prints one row for each; bad options exit 2. (The cluster demo, the default, is
tested end to end in tests/cluster/test_demo.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def demo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "squall", "demo", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_demo_prints_a_table_with_acking_off_and_on_rows() -> None:
    proc = demo("--in-process", "--seconds", "0.5")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Reference chain: 3 stages x 2 executors")
    header = next(i for i, line in enumerate(lines) if line.startswith("acking"))
    assert "tuples at sink" in lines[header] and "p99 ms" in lines[header]
    rows = [line.split() for line in lines[header + 2 :] if line.strip()]
    assert [r[0] for r in rows] == ["off", "on"]
    for row in rows:
        assert float(row[1].replace(",", "")) > 0, row  # tuples reached the sink
    assert rows[0][5] == "-"  # no complete latency without acking
    assert rows[1][5] != "-"  # ... and one with it
    assert rows[1][6] == "0"  # nothing failed


def test_demo_refuses_bad_options_with_exit_2() -> None:
    proc = demo("--in-process", "--stages", "1")
    assert proc.returncode == 2
    assert proc.stderr.startswith("squall demo: need --seconds > 0, --stages >= 2")
    for bad in (["--window", "1"], ["--stages", "1"], ["--rate", "0"]):
        proc = demo(*bad)
        assert proc.returncode == 2, bad
        assert proc.stderr.startswith("squall demo: "), proc.stderr
