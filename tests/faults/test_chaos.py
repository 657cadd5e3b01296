"""A short chaos run (the ``squall chaos`` module): workers and boards killed at random for
25 s under the ledger chain; after deactivation and drain every emitted id was acked at least
once. Duplicates and the worst latency spike are reported, not bounded."""

from __future__ import annotations

import pytest

from squall.chaos import ChaosConfig, run_chaos

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


def test_chaos_loses_nothing(tmp_path):
    report = run_chaos(ChaosConfig(seconds=25, seed=7, interval_s=3.0, settle_s=6.0), tmp_path)
    print("\n" + report.text())
    assert any("board" in what and "back" not in what for _, what in report.faults), "no board was killed"
    assert any("worker" in what for _, what in report.faults), "no worker was killed"
    assert report.drained, f"drain timed out: {report.summary()}"
    assert not report.books.missing, f"{len(report.books.missing)} ids never acked"
    assert len(report.books.emitted) > 1000
