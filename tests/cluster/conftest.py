"""Fixtures that start a real local cluster (Nimbus + supervisors + workers as processes on
loopback, free ports) and always stop it, whatever the test did."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import pytest

from squall.localcluster import LocalCluster

REPO = Path(__file__).resolve().parents[2]
WORDCOUNT = str(REPO / "examples" / "wordcount.py")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster(supervisors=3, slots=2, data_dir=tmp_path_factory.mktemp("cluster")) as c:
        yield c


def eventually(check: Callable[[], Any], timeout_s: float = 20.0, interval_s: float = 0.1, what: str = "") -> Any:
    """Poll ``check`` until it returns a truthy value (returned) or raise after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except AssertionError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what or check.__name__}: last {last!r}")
