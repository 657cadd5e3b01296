"""Starting Squall's daemons as processes, waiting until they serve, and submitting to them.

One home for what every harness that runs real daemons does the same way: the local
cluster (:mod:`squall.localcluster`), the network testbed (:mod:`squall.experiments.testbed`),
the scale benchmark and the integration tests.

Guarantees:

* :data:`SQUALL` runs the installed package (``-P``: a checkout in the working directory is
  never imported instead);
* :func:`spawn_logged` gives the process no stdin and appends its stdout and stderr to one
  log file, which :meth:`Cluster.log` reads back when start-up fails;
* :func:`wait_registered` returns only once Nimbus answers and lists every given node as
  alive; a daemon that died (``check`` raises) fails it at once, and the timeout's message
  says what was seen last;
* :func:`submit_file` submits ``FILE[:Topology]`` exactly as ``squall submit`` does (the
  file's folder as the code bundle); :class:`Cluster` is what an experiment needs of a
  running cluster, with that ``submit``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from squall.client import NimbusClient, NimbusError, NimbusUnreachable

SQUALL = [sys.executable, "-P", "-m", "squall"]

# What a harness keeps of a daemon's log in an error message: the end holds the cause.
LOG_TAIL_CHARS = 3000


def nimbus_argv(
    host: str | None, port: int, data_dir: str | Path, http_port: int = 0, extra: Sequence[str] = ()
) -> list[str]:
    """The command line of ``squall nimbus`` on ``host:port`` (``host`` None: Nimbus's own
    choice), its store in ``data_dir`` (``http_port`` 0: the web UI on a free port)."""
    where = [] if host is None else ["--host", host]
    listen = ["--port", str(port), "--data-dir", str(data_dir), "--http-port", str(http_port)]
    return [*SQUALL, "nimbus", *where, *listen, *extra]


def supervisor_argv(
    nimbus: str, node_id: str, slots: int, data_dir: str | Path, ports: Sequence[int] = (), extra: Sequence[str] = ()
) -> list[str]:
    """The command line of ``squall supervisor`` ``node_id`` reporting to ``nimbus`` (one
    address or ``A,B``), ``slots`` workers on ``ports`` (their first to last; none: the
    supervisor's default range), its state in ``data_dir``."""
    argv = [*SQUALL, "supervisor", "--nimbus", nimbus, "--id", node_id, "--slots", str(slots)]
    if ports:
        argv += ["--ports", f"{ports[0]}-{ports[-1]}"]
    return [*argv, "--data-dir", str(data_dir), *extra]


def spawn_logged(
    argv: Sequence[str],
    log_path: Path,
    env: Mapping[str, str] | None = None,
    new_session: bool = False,
) -> subprocess.Popen:
    """Start ``argv`` with stdin closed and stdout and stderr appended to ``log_path``."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            start_new_session=new_session,
        )


def wait_registered(
    client: Callable[..., NimbusClient],
    node_ids: Sequence[str],
    timeout_s: float,
    what: str,
    check: Callable[[], None] = lambda: None,
    poll_s: float = 0.2,
) -> None:
    """Return once Nimbus answers and lists every one of ``node_ids`` as alive (none: once
    it answers). ``client(timeout_s=...)`` opens a client; ``check`` runs every round and
    raises when a daemon has exited. Raises :class:`TimeoutError` naming ``what`` and the
    last thing seen after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        check()
        try:
            with client(timeout_s=1.0) as c:
                alive = {s["id"] for s in c.cluster().get("supervisors", []) if s.get("alive")}
            if set(node_ids) <= alive:
                return
            last = f"registered so far: {sorted(alive)}"
        except (NimbusUnreachable, NimbusError) as exc:
            last = str(exc)
        time.sleep(poll_s)
    raise TimeoutError(f"{what} not ready after {timeout_s:g} s ({last})")


def submit_file(
    client: NimbusClient,
    target: str,
    name: str | None = None,
    workers: int | None = None,
    scheduler: str = "round_robin",
    conf: dict[str, Any] | None = None,
    args: Sequence[str] = (),
) -> str:
    """Submit ``FILE[:Topology]`` as ``squall submit`` does (``args``: the script's
    ``sys.argv[1:]``, as after ``--``); returns the topology name."""
    from squall.bundle import make_bundle
    from squall.topology.loader import load_topology

    topology = load_topology(target, args)
    bundle = make_bundle(Path(target.partition(":")[0]))
    name = name or topology.spec.name
    with client:
        client.submit(name, topology.spec.to_dict(), bundle, scheduler, workers, conf or {})
    return name


class Cluster(ABC):
    """A running cluster of real daemons (:class:`squall.localcluster.LocalCluster`, the
    testbed's ``Testbed``): what an experiment needs of it. Each daemon ``name`` logs to
    ``log_dir / f"{name}.log"``."""

    log_dir: Path

    @property
    @abstractmethod
    def nimbus_address(self) -> str: ...

    @property
    @abstractmethod
    def node_ids(self) -> list[str]: ...

    @abstractmethod
    def client(self, timeout_s: float = 5.0) -> NimbusClient: ...

    @abstractmethod
    def close(self) -> Any: ...

    def log(self, name: str) -> str:
        """The log of daemon ``name`` so far ("" before it wrote one)."""
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, name: str) -> str:
        """The end of daemon ``name``'s log, where the cause of an exit stands."""
        return self.log(name)[-LOG_TAIL_CHARS:]

    def submit(
        self,
        target: str,
        name: str | None = None,
        workers: int | None = None,
        scheduler: str = "round_robin",
        conf: dict | None = None,
        args: Sequence[str] = (),
    ) -> str:
        """Submit ``FILE[:Topology]`` as ``squall submit`` does (``args``: the script's
        ``sys.argv[1:]``, as after ``--``); returns the topology name."""
        return submit_file(self.client(timeout_s=10.0), target, name, workers, scheduler, conf, args)
