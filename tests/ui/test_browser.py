"""The web page in headless Chromium against a real cluster: boards and the heat map render
with real data and rebalance marks appear; a screenshot is taken (written to docs/ when
SQUALL_UPDATE_SCREENSHOT is set)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import eventually
from tests.ui.ui_helpers import KEY, call

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "screenshot.png"
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def chromium(tmp_path: Path, url: str, *args: str, budget_ms: int = 8000) -> str:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,900",
        f"--virtual-time-budget={budget_ms}",
        *args,
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_the_page_shows_boards_and_traffic_of_a_running_topology(ui_cluster, tmp_path):
    base = ui_cluster.base
    # Some history, then a rebalance onto two workers, so the charts carry a mark.
    eventually(
        lambda: len(call(base, "/api/v1/topology/wc/history")[1]["samples"]) >= 10,
        timeout_s=40,
        what="ten history samples",
    )
    status, _ = call(base, "/api/v1/topology/wc/rebalance/0", "POST", {"rebalanceOptions": {"numWorkers": 2}}, key=KEY)
    assert status == 200

    def settled():
        topo = call(base, "/api/v1/topology/wc")[1]
        traffic = call(base, "/api/v1/topology/wc/traffic")[1]
        return topo["status"] == "ACTIVE" and topo["workersTotal"] == 2 and traffic["interNode"] > 0

    eventually(settled, timeout_s=60, what="wordcount running again on two workers")
    eventually(
        lambda: (
            sum(
                s["completeLatencyMs"] is not None for s in call(base, "/api/v1/topology/wc/history")[1]["samples"][-6:]
            )
            >= 5
        ),
        timeout_s=30,
        what="latency samples after the rebalance",
    )

    dom = chromium(tmp_path, base + "/", "--dump-dom")
    boards = set(re.findall(r'class="board[^"]*" data-node="([^"]+)"', dom))
    assert boards == set(ui_cluster.node_ids), dom[:2000]
    running = re.findall(r'class="slot running" data-port="\d+" data-topology="wc"', dom)
    assert len(running) == 2
    cells = re.findall(r'class="cell"[^>]*data-src="(\d+)" data-dst="(\d+)" data-rate="([\d.]+)"', dom)
    assert cells and any(float(rate) > 0 for *_, rate in cells)
    hot = {(int(s), int(d)) for s, d, rate in cells if float(rate) > 0}
    pairs = {(s, d) for s, d, _ in call(base, "/api/v1/topology/wc/traffic")[1]["pairs"]}
    assert hot & pairs  # the same executor pairs the API measures
    dots = set(re.findall(r'<circle [^>]*data-node="([^"]*)"', dom))
    assert dots and dots <= set(ui_cluster.node_ids)
    assert 'data-mark="placement"' in dom  # the rebalance is marked on the charts
    layers = dict(re.findall(r'data-component="([^"]+)" data-layer="(\d+)"', dom))
    assert layers == {"sentences": "0", "split": "1", "count": "2"}  # the columns Nimbus serves
    assert "Nimbus unreachable" not in dom

    # The README's picture is refreshed only when asked, so a test run leaves the tree clean.
    target = SCREENSHOT if os.environ.get("SQUALL_UPDATE_SCREENSHOT") else tmp_path / "screenshot.png"
    chromium(tmp_path, base + "/", f"--screenshot={target}")
    assert target.stat().st_size > 20_000
