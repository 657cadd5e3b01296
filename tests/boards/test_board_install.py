"""What a board installs: the supervisor and worker import paths load no Nimbus-only
dependency, and pyproject keeps those in extras."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

NIMBUS_ONLY = ("numpy", "networkx", "pymetis", "matplotlib")
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

BOARD_IMPORTS = """
import sys
import squall, squall.cli, squall.client, squall.discovery, squall.wire, squall.messages
import squall.supervisor.worker, squall.supervisor.daemon, squall.supervisor.facts, squall.supervisor.prom
import squall.cli.supervisor, squall.cli.service
from squall.cli import build_parser
build_parser()  # every verb module, as `squall supervisor` loads them
from squall.supervisor.facts import board_facts
board_facts()
print(" ".join(sorted(m for m in {mods!r} if m in sys.modules)))
"""


def test_board_import_paths_load_no_nimbus_only_dependency():
    out = subprocess.run(
        [sys.executable, "-c", BOARD_IMPORTS.format(mods=NIMBUS_ONLY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.strip() == "", f"a board would need {out.strip()}"


def names(requirements: list[str]) -> set[str]:
    return {r.split(";")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in requirements}


def test_nimbus_only_dependencies_are_extras_and_the_test_extra_pulls_them_in():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    base = names(project["dependencies"])
    extras = {k: names(v) for k, v in project["optional-dependencies"].items()}
    assert base == {"pyzmq", "msgpack", "prometheus-client", "psutil"}
    assert base.isdisjoint(NIMBUS_ONLY)
    assert {"numpy", "networkx"} <= extras["nimbus"]
    assert extras["partition"] == {"pymetis"}
    assert extras["nimbus"] | extras["partition"] <= extras["test"]


def test_missing_extra_is_named(monkeypatch):
    from squall import extras

    monkeypatch.setattr(extras.importlib.util, "find_spec", lambda name: None)
    assert extras.missing("numpy") == (
        "numpy is not installed: pip install 'squall[nimbus]' (a board that only runs a supervisor does not need it)"
    )
    assert "squall[nimbus,partition]" in extras.missing("numpy", "pymetis")
