"""Fixtures of the worker-process tests."""

from __future__ import annotations

import pytest

from tests.worker.worker_helpers import FakeSupervisor, Processes


@pytest.fixture
def env(tmp_path):
    """(tmp_path, a fake supervisor, a process group): every worker started is killed after."""
    sup = FakeSupervisor()
    procs = Processes(tmp_path)
    yield tmp_path, sup, procs
    procs.close()
    sup.close()
