"""The user API and the package root stay light: importing them loads no zmq, so a laptop
or a board can define and validate topologies without the data plane."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "modules",
    ["squall", "squall.topology", "squall.topology.testing", "squall.topology.loader"],
)
def test_importing_the_user_api_does_not_import_zmq(modules: str) -> None:
    code = (
        f"import sys, {modules}\n"
        "from squall import Topology, Spout, Bolt, Grouping, Stream\n"
        "bad = sorted(m for m in sys.modules if m == 'zmq' or m.startswith('zmq.'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
