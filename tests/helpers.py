"""Helpers every test folder may use: waiting for a condition, the repo's example
topology, the CLI run as a process, the modules an import path loads, a daemon process that
is always stopped, where a cluster runs a topology's workers, and a REST POST's status. (A
free port: ``squall.localcluster.free_port``.)

Test folders are packages (``tests.<folder>.<module>``); a helper used by more than one folder
lives here, one used by one folder lives in that folder's ``*_helpers.py``.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from squall.daemon_start import spawn_logged

if TYPE_CHECKING:
    from squall.localcluster import LocalCluster

REPO = Path(__file__).resolve().parents[1]
WORDCOUNT = str(REPO / "examples" / "wordcount.py")  # the README's topology, for cluster tests


def eventually(check: Callable[[], Any], timeout_s: float = 20.0, interval_s: float = 0.1, what: str = "") -> Any:
    """Poll ``check`` until it returns a truthy value (returned) or raise after ``timeout_s``.

    An ``AssertionError`` raised by ``check`` counts as "not yet"; the last one (or the last
    falsy value) is in the timeout's message, so a failure says what was still missing.
    """
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


@contextmanager
def daemon(argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """A process started from ``argv`` (``squall.daemon_start.nimbus_argv`` and the like) with
    its output in ``log``; stopped (SIGTERM, then SIGKILL after 15 s) however the block ends."""
    proc = spawn_logged(argv, log, env)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)


def run_squall(
    *args: str, timeout_s: float = 60.0, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m squall ARGS`` from the repo, as a user runs it, its output captured as text
    (``env``: the whole environment; None: this process's)."""
    return subprocess.run(
        [sys.executable, "-m", "squall", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=REPO,
        env=None if env is None else dict(env),
    )


def modules_loaded(imports: str, packages: Iterable[str]) -> list[str]:
    """The modules of ``packages`` (top-level names) a fresh interpreter holds after running
    ``imports`` (Python statements): how a test proves an import path stays free of one."""
    wanted = sorted(set(packages))
    code = f"import sys\n{imports}\nprint(*sorted(m for m in sys.modules if m.split('.')[0] in {wanted!r}))"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()


def running_workers(cluster: LocalCluster, name: str) -> dict[tuple[str, int], tuple[int, frozenset[int]]] | None:
    """(node, port) -> (pid, executors) once every executor's worker reports a pid, else None."""
    with cluster.client() as c:
        execs = c.assignment(name)["executors"]
    if not execs or any(not e["pid"] for e in execs):
        return None
    out: dict[tuple[str, int], tuple[int, set[int]]] = {}
    for e in execs:
        out.setdefault((e["node"], e["port"]), (e["pid"], set()))[1].add(e["id"])
    return {k: (pid, frozenset(ids)) for k, (pid, ids) in out.items()}


def post_status(url: str, key: str | None, timeout_s: float = 15.0) -> int:
    """The HTTP status of an empty POST to ``url`` with ``X-Squall-Key: key`` (no header when
    ``key`` is None). An error status is returned, not raised; an unreachable server raises
    ``urllib.error.URLError``."""
    req = urllib.request.Request(url, data=b"", method="POST")
    if key is not None:
        req.add_header("X-Squall-Key", key)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
