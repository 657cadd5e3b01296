"""A real local cluster with a cluster key, shared by the API and browser tests, and a small
JSON-over-HTTP client that never raises on an error status (tests look at the status)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from squall.localcluster import LocalCluster
from tests.cluster.conftest import WORDCOUNT, eventually

KEY = "test-cluster-key"

__all__ = ["KEY", "WORDCOUNT", "eventually", "call"]


def call(base: str, path: str, method: str = "GET", body: Any = None, key: str | None = None,
         raw: bytes | None = None) -> tuple[int, Any]:
    """(status, decoded JSON body) of one request."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method)
    if key is not None:
        req.add_header("X-Squall-Key", key)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    return status, json.loads(text)


@pytest.fixture(scope="session")
def ui_cluster(tmp_path_factory):
    """Three boards of three slots; Nimbus has a key; ``wc`` (wordcount, 3 workers) runs."""
    with LocalCluster(supervisors=3, slots=3, data_dir=tmp_path_factory.mktemp("ui-cluster"),
                      extra_env={"SQUALL_HTTP_KEY": KEY}) as c:
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
