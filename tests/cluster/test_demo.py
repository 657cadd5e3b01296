"""``squall demo`` end to end, as the Quickstart runs it (short window, loopback)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.cluster.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def test_demo_rebalances_live_cuts_inter_node_traffic_and_loses_nothing():
    result = subprocess.run(
        [sys.executable, "-m", "squall", "demo", "--window", "6", "--loopback", "--json"],
        capture_output=True, text=True, timeout=200, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    data = json.loads(result.stdout)
    before, after = data["before"], data["after"]
    for figures in (before, after):
        assert set(figures) >= {"inter_node_tps", "inter_worker_tps", "latency_avg_ms", "latency_p99_ms"}
    assert data["lost"] == 0
    assert data["emitted"] > 0 and data["acked"] == data["emitted"]
    assert data["event"]["decision"] == "applied" and data["event"]["moved"]
    assert before["inter_node_tps"] > 0
    assert after["inter_node_tps"] <= 0.6 * before["inter_node_tps"]
