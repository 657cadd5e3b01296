"""A real local cluster with a cluster key, shared by the API and browser tests."""

from __future__ import annotations

import pytest

from squall.localcluster import LocalCluster
from tests.helpers import WORDCOUNT, eventually
from tests.ui.ui_helpers import KEY, call


@pytest.fixture(scope="session")
def ui_cluster(tmp_path_factory):
    """Three boards of three slots; Nimbus has a key; ``wc`` (wordcount, 3 workers) runs."""
    with LocalCluster(
        supervisors=3, slots=3, data_dir=tmp_path_factory.mktemp("ui-cluster"), extra_env={"SQUALL_HTTP_KEY": KEY}
    ) as c:
        c.submit(WORDCOUNT, name="wc", workers=3)
        c.base = f"http://127.0.0.1:{c.http_port}"

        def flowing():
            status, traffic = call(c.base, "/api/v1/topology/wc/traffic")
            assert status == 200 and traffic["total"] > 0 and traffic["interNode"] > 0, (status, traffic)
            return True

        try:
            eventually(flowing, timeout_s=90, what="wordcount traffic measured by Nimbus")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- nimbus log ---\n{c.log('nimbus')[-3000:]}") from None
        yield c
