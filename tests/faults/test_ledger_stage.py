"""The ledger chain's sink stage, on its own: its file is its own attribute, so the
component's ``log`` method stays callable in a sink as in any other stage."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from squall import ledger_topology as lt


def test_a_sink_stage_writes_its_file_and_keeps_component_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stage = lt.LedgerStage()
    stage.initialize({"ledger.sink": True, "ledger.dir": str(tmp_path)}, SimpleNamespace(task=3))
    stage.process(SimpleNamespace(values=["k", 0.0, 7]))
    with caplog.at_level(logging.INFO):
        stage.log("still a method")
    assert "still a method" in caplog.text
    assert stage.sink_file is not None
    stage.sink_file.close()
    (line,) = (tmp_path / "sink-3.log").read_text().splitlines()
    assert line.split()[0] == "7"
