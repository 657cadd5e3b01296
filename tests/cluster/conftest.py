"""Fixtures that start a real local cluster (Nimbus + supervisors + workers as processes on
loopback, free ports) and always stop it, whatever the test did."""

from __future__ import annotations

import pytest

from squall.localcluster import LocalCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster(supervisors=3, slots=2, data_dir=tmp_path_factory.mktemp("cluster")) as c:
        yield c
