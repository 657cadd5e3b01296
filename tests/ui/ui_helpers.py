"""Shared by the UI tests: the cluster key and a small JSON-over-HTTP client that never raises
on an error status (tests look at the status)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

KEY = "test-cluster-key"


def call(
    base: str, path: str, method: str = "GET", body: Any = None, key: str | None = None, raw: bytes | None = None
) -> tuple[int, Any]:
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
