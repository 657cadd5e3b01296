"""A whole cluster on this machine: Nimbus and N supervisors as separate processes on loopback.

::

    with LocalCluster(supervisors=3) as cluster:
        cluster.submit("examples/wordcount.py", name="wc")
        print(cluster.client().list())

Like Storm's LocalCluster, but every daemon is a real process started the way users start
them (``squall nimbus``, ``squall supervisor``), on free ports, with distinct node ids
(``node-1`` ...). Guarantees: ``__enter__`` returns once Nimbus answers and every supervisor
has registered (or raises with the daemons' logs); ``close()`` — called by ``__exit__``, at
interpreter exit, and idempotent — stops the supervisors (which stop their workers), then
Nimbus, and kills whatever did not stop in time, so nothing is left running.

Fault injection for tests and the chaos run: ``worker_pids``, ``kill_worker`` (kill -9 of
one worker), ``kill_board`` (kill -9 of a supervisor and its workers), ``freeze_board`` /
``thaw_board`` (SIGSTOP / SIGCONT of them: a cut link, the processes keep their state),
``kill_nimbus`` and ``restart_nimbus`` (same data directory and ports, or another port or an
empty data directory). ``close()`` thaws frozen boards first, so it still stops everything.

Nimbus replicas: ``LocalCluster(nimbus_replicas=3)`` starts 3 (any odd number >= 3) Nimbus
processes (``squall nimbus --peers``), each with its own data dir (``nimbus-1`` ...), control
port, Raft port (the next one) and HTTP port; supervisors and ``client()`` get every
replica's address. ``leader()``, ``kill_replica(i)`` and ``start_replica(i)`` drive failovers.

``supervisor_nimbus`` is the address list supervisors get (``--nimbus A,B``; default: this
Nimbus only), so a test can give them an address Nimbus will move to, or a dead one first.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from squall.client import NimbusClient, NimbusError, NimbusUnreachable
from squall.daemon_start import (
    Cluster,
    nimbus_argv,
    spawn_logged,
    supervisor_argv,
    wait_registered,
)
from squall.nimbus.http_inbox import KEY_ENV as HTTP_KEY_ENV
from squall.ports import free_port, free_port_range
from squall.security import KEYS_ENV
from squall.security import load as load_keys


class LocalCluster(Cluster):
    def __init__(
        self,
        supervisors: int = 3,
        slots: int = 2,
        port: int | None = None,
        http_port: int | None = None,
        data_dir: str | Path | None = None,
        capacity_hz: float | None = None,
        log_level: str = "INFO",
        startup_timeout_s: float = 30.0,
        extra_env: dict[str, str] | None = None,
        keys: str | Path | None = None,
        supervisor_nimbus: Sequence[str] | None = None,
        supervisor_args: Sequence[str] = (),
        nimbus_replicas: int = 1,
    ) -> None:
        if supervisors < 1 or slots < 1:
            raise ValueError("a local cluster needs at least one supervisor with one slot")
        if nimbus_replicas != 1 and (nimbus_replicas < 3 or nimbus_replicas % 2 == 0):
            raise ValueError(f"nimbus_replicas must be 1 or an odd number >= 3 (2f+1), got {nimbus_replicas}")
        self.supervisors = supervisors
        self.slots = slots
        self.port = port or free_port()
        self.http_port = free_port() if http_port is None else http_port
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="squall-cluster-"))
        self.log_dir = self.data_dir
        self.capacity_hz = capacity_hz
        self.log_level = log_level
        self.startup_timeout_s = startup_timeout_s
        self.env = {**os.environ, **(extra_env or {})}
        # Keys (a `squall keygen` folder): every daemon and this object's clients use CURVE.
        # Without, none does: a stray SQUALL_KEYS must not secure half of the cluster.
        self.keys = load_keys(keys) if keys else None
        self.env.pop(KEYS_ENV, None)
        self._keys_args = ["--keys", self.keys.folder] if self.keys else []
        self.nimbus_proc: subprocess.Popen | None = None
        self.supervisor_procs: dict[str, subprocess.Popen] = {}
        self.frozen: dict[str, list[int]] = {}  # node -> pids stopped by freeze_board
        self.supervisor_nimbus = list(supervisor_nimbus) if supervisor_nimbus else None
        self.supervisor_args = list(supervisor_args)
        self.nimbus_dir = self.data_dir / "nimbus"
        # Replicas (nimbus_replicas >= 3): replica i (0-based) has its own process, data dir
        # (nimbus-1 ...), control port (Raft on the next one) and HTTP port.
        self.nimbus_replicas = nimbus_replicas
        self.replica_ports: list[int] = []
        self.replica_http_ports: list[int] = []
        self.replica_procs: list[subprocess.Popen | None] = []
        if nimbus_replicas > 1:
            # Each replica's control port and the next one (its Raft port) free; the first on ``port``.
            self.replica_ports = [
                port or free_port_range(2)[0],
                *(free_port_range(2)[0] for _ in range(nimbus_replicas - 1)),
            ]
            first = free_port() if http_port is None else http_port  # 0: no HTTP on any replica
            self.replica_http_ports = [first, *(free_port() if first else 0 for _ in range(nimbus_replicas - 1))]
            self.replica_procs = [None] * nimbus_replicas
            self.port, self.http_port = self.replica_ports[0], self.replica_http_ports[0]
        self._closed = False

    @property
    def nimbus_address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def nimbus_addresses(self) -> list[str]:
        """Every address given to supervisors (what ``SQUALL_NIMBUS`` should hold): every replica's."""
        if self.supervisor_nimbus:
            return self.supervisor_nimbus
        return self.replica_addresses or [self.nimbus_address]

    @property
    def replica_addresses(self) -> list[str]:
        """The control addresses of the Nimbus replicas (empty for a single Nimbus)."""
        return [f"127.0.0.1:{p}" for p in self.replica_ports]

    @property
    def node_ids(self) -> list[str]:
        return [f"node-{i + 1}" for i in range(self.supervisors)]

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        return spawn_logged(argv, self.data_dir / f"{name}.log", env=env or self.env)

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.close)
        self._start_nimbus()
        for node in self.node_ids:
            self.start_supervisor(node)
        try:
            self.wait_ready(self.startup_timeout_s)
        except Exception:
            self.close()
            raise

    def _start_nimbus(self) -> None:
        if self.nimbus_replicas > 1:
            for i in range(self.nimbus_replicas):
                self.start_replica(i)
            return
        extra = ["--log-level", self.log_level, *self._keys_args]
        self.nimbus_proc = self._spawn(
            "nimbus", nimbus_argv("127.0.0.1", self.port, self.nimbus_dir, self.http_port, extra)
        )

    @property
    def http_token_file(self) -> Path:
        """Where the REST API's POST token is: Nimbus's own, or the one every replica shares
        (a follower's page redirects POSTs to the leader, which must take the same token)."""
        return self.data_dir / "http-token" if self.nimbus_replicas > 1 else self.nimbus_dir / "http-token"

    def start_replica(self, i: int) -> subprocess.Popen:
        """Start (or restart, after ``kill_replica``) Nimbus replica ``i`` on its own data dir
        and ports; it rejoins the others as a follower and catches up from the leader."""
        token_file = self.http_token_file
        if not token_file.exists():
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(16) + "\n")
        env = {**self.env, HTTP_KEY_ENV: token_file.read_text().strip()}  # Nimbus only, not the boards
        extra = ["--peers", ",".join(self.replica_addresses), "--log-level", self.log_level, *self._keys_args]
        argv = nimbus_argv(
            "127.0.0.1", self.replica_ports[i], self.data_dir / f"nimbus-{i + 1}", self.replica_http_ports[i], extra
        )
        proc = self._spawn(f"nimbus-{i + 1}", argv, env)
        self.replica_procs[i] = proc
        if i == 0:
            self.nimbus_proc = proc
        return proc

    def replica_pids(self) -> list[int | None]:
        """The pid of each replica's process (None: not running)."""
        return [p.pid if p is not None and p.poll() is None else None for p in self.replica_procs]

    def leader(self, timeout_s: float = 2.0) -> int | None:
        """The index of the replica that leads, as the replicas state it (None: none known)."""
        try:
            with self.client(timeout_s=timeout_s) as c:
                address = c.nimbus_status().get("leader")
        except (NimbusUnreachable, NimbusError):
            return None
        return self.replica_addresses.index(address) if address in self.replica_addresses else None

    def kill_replica(self, i: int) -> int:
        """kill -9 Nimbus replica ``i``; returns its pid. Supervisors and workers keep running."""
        proc = self.replica_procs[i]
        assert proc is not None
        proc.kill()
        proc.wait()
        self.replica_procs[i] = None
        return proc.pid

    def start_supervisor(self, node: str) -> subprocess.Popen:
        """Start (or restart) the supervisor of ``node`` on fresh worker ports."""
        ports = free_port_range(self.slots)
        extra = ["--log-level", self.log_level, *self._keys_args, *self.supervisor_args]
        if self.capacity_hz:
            extra += ["--capacity-hz", str(self.capacity_hz)]
        data_dir = self.data_dir / node
        args = supervisor_argv(",".join(self.nimbus_addresses), node, self.slots, data_dir, ports, extra)
        proc = self._spawn(node, args)
        self.supervisor_procs[node] = proc
        return proc

    def wait_ready(self, timeout_s: float) -> None:
        wait_registered(self.client, self.node_ids, timeout_s, "local cluster", self._check_running)

    def _check_running(self) -> None:
        self._raise_if_exited([*self._nimbus_procs(), *self.supervisor_procs.items()])

    def _raise_if_exited(self, procs: list[tuple[str, subprocess.Popen | None]]) -> None:
        """Raise with its log when one of ``procs`` has exited."""
        for name, proc in procs:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}:\n{self.log_tail(name)}")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for node in list(self.frozen):
            self.thaw_board(node)
        procs = [*self.supervisor_procs.values()]
        _terminate(procs)
        _terminate([p for _, p in self._nimbus_procs() if p is not None])
        if self._own_dir and not os.environ.get("SQUALL_KEEP_CLUSTER_DIR"):
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------

    def _nimbus_procs(self) -> list[tuple[str, subprocess.Popen | None]]:
        """(log name, process) of Nimbus, or of every replica."""
        if self.nimbus_replicas > 1:
            return [(f"nimbus-{i + 1}", p) for i, p in enumerate(self.replica_procs)]
        return [("nimbus", self.nimbus_proc)]

    def client(self, timeout_s: float = 5.0) -> NimbusClient:
        """A client of Nimbus (with replicas: of every replica, following the leader)."""
        if not self.replica_addresses:
            return NimbusClient(self.nimbus_address, timeout_s=timeout_s, keys=self.keys)
        # Running replicas first: a killed one would cost a whole timeout before the next.
        live = [a for a, pid in zip(self.replica_addresses, self.replica_pids()) if pid is not None]
        ordered = live + [a for a in self.replica_addresses if a not in live]
        return NimbusClient(ordered, timeout_s=timeout_s, keys=self.keys)

    # -- fault injection -------------------------------------------------------------------

    def worker_pids(self, node: str | None = None) -> dict[tuple[str, int], int]:
        """(node, port) -> pid of every live worker process (of ``node``, or of all nodes),
        read from the supervisors' children (a worker's last argument is its launch file,
        named after its port)."""
        out: dict[tuple[str, int], int] = {}
        for name, proc in self.supervisor_procs.items():
            if (node is not None and name != node) or proc.poll() is not None:
                continue
            for child in _children(proc.pid):
                try:
                    cmd = child.cmdline()
                except psutil.Error:
                    continue
                if len(cmd) >= 3 and cmd[-2] == "squall.supervisor.worker":
                    out[(name, int(Path(cmd[-1]).stem))] = child.pid
        return out

    def kill_worker(self, node: str, port: int) -> int:
        """kill -9 the worker of ``node`` on ``port``; returns its pid."""
        pid = self.worker_pids(node)[(node, port)]
        os.kill(pid, signal.SIGKILL)
        return pid

    def kill_board(self, node: str) -> list[int]:
        """kill -9 the supervisor of ``node`` and its workers at once (a board that loses
        power); returns the pids killed."""
        proc = self.supervisor_procs[node]
        pids = [proc.pid, *(c.pid for c in _children(proc.pid))]
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        proc.wait()
        self.frozen.pop(node, None)
        return pids

    def freeze_board(self, node: str) -> list[int]:
        """SIGSTOP the supervisor of ``node`` and its workers: to the rest of the cluster the
        board is gone (no heartbeat, no tuple read), as when its link is cut."""
        proc = self.supervisor_procs[node]
        pids = [proc.pid, *(c.pid for c in _children(proc.pid))]
        for pid in pids:
            _signal(pid, signal.SIGSTOP)
        self.frozen[node] = pids
        return pids

    def thaw_board(self, node: str) -> None:
        """SIGCONT what ``freeze_board`` stopped."""
        for pid in self.frozen.pop(node, []):
            _signal(pid, signal.SIGCONT)

    def kill_nimbus(self) -> int:
        """kill -9 Nimbus; supervisors and workers keep running. Returns its pid."""
        assert self.nimbus_proc is not None
        pid = self.nimbus_proc.pid
        self.nimbus_proc.kill()
        self.nimbus_proc.wait()
        return pid

    def restart_nimbus(
        self, timeout_s: float | None = None, port: int | None = None, data_dir: str | Path | None = None
    ) -> None:
        """Start Nimbus again (after ``kill_nimbus`` or a stop) and return once it answers: on
        the same data directory and ports, or on ``port`` and/or ``data_dir`` (an empty
        one: a Nimbus that lost its state). ``client()`` follows it."""
        if self.nimbus_proc is not None and self.nimbus_proc.poll() is None:
            raise RuntimeError("Nimbus is still running")
        if port is not None:
            self.port = port
        if data_dir is not None:
            self.nimbus_dir = Path(data_dir)
        self._start_nimbus()
        wait_registered(
            self.client,
            [],
            timeout_s or self.startup_timeout_s,
            "Nimbus after its restart",
            lambda: self._raise_if_exited([("nimbus", self.nimbus_proc)]),
            0.1,
        )


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass  # already gone


def _terminate(procs: list[subprocess.Popen], grace_s: float = 8.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
