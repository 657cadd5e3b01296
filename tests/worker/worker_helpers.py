"""Helpers for tests that run real worker processes: free ports, launch files, a fake
supervisor (a ROUTER that collects heartbeats and sends updates) and a process group that
always kills what it started."""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from squall import wire
from squall.messages import WorkerAssignment, WorkerHeartbeat, WorkerLaunch, WorkerUpdate
from squall.topology.spec import TopologySpec

# User code for the worker tests: top-level modules, as in a submitted bundle (not a package of
# the test suite), so the class refs in their specs resolve the same in a worker's bundle.
APPS = Path(__file__).resolve().parent / "apps"


def user_module(name: str) -> Any:
    """The user-code module ``apps/<name>.py``, imported under its top-level name as a worker
    imports it from its bundle folder."""
    if str(APPS) not in sys.path:
        sys.path.append(str(APPS))
    return importlib.import_module(name)


def make_bundle(tmp: Path, *modules: str) -> Path:
    """A bundle folder holding copies of the named user-code modules of ``apps/``."""
    bundle = tmp / "bundle"
    bundle.mkdir(exist_ok=True)
    for m in modules:
        shutil.copy(APPS / f"{m}.py", bundle / f"{m}.py")
    return bundle


def write_launch(
    path: Path,
    spec: TopologySpec,
    port: int,
    executors: list[int],
    placement: dict[int, str],
    supervisor_endpoint: str,
    bundle_dir: Path,
    conf: dict[str, Any] | None = None,
    active: bool = True,
    states: dict[int, bytes] | None = None,
    paused: bool = False,
) -> Path:
    assignment = WorkerAssignment(
        topology=spec.name,
        port=port,
        executors=executors,
        placement=placement,
        active=active,
        assignment_version=1,
        conf=dict(conf or {}),
        paused=paused,
        states=dict(states or {}),
    )
    launch = WorkerLaunch(
        topology=spec.name,
        node="node-test",
        host="127.0.0.1",
        port=port,
        spec=spec.to_dict(),
        bundle_dir=str(bundle_dir),
        supervisor_endpoint=supervisor_endpoint,
        clock_hz=1.0e9,
        assignment=assignment,
    )
    path.write_bytes(wire.encode(launch))
    return path


class FakeSupervisor:
    """The supervisor's side of the worker link: a ROUTER on a free loopback port."""

    def __init__(self) -> None:
        self.ctx = zmq.Context.instance()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.port = self.router.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.heartbeats: dict[int, list[WorkerHeartbeat]] = {}

    def collect(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.router.poll(int(left * 1000) + 1):
                identity, frame = self.router.recv_multipart()[:2]
                hb = wire.decode(frame)
                assert isinstance(hb, WorkerHeartbeat)
                assert int(identity) == hb.port
                self.heartbeats.setdefault(hb.port, []).append(hb)

    def wait_for(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            self.collect(0.1)

    def last(self, port: int) -> WorkerHeartbeat | None:
        beats = self.heartbeats.get(port)
        return beats[-1] if beats else None

    def send(self, port: int, msg: Any) -> None:
        self.send_raw(port, wire.encode(msg))

    def send_raw(self, port: int, frame: bytes) -> None:
        self.router.send_multipart([str(port).encode(), frame])

    def update(self, port: int, placement: dict[int, str], active: bool, version: int) -> None:
        self.send(port, WorkerUpdate(placement=placement, active=active, assignment_version=version))

    def close(self) -> None:
        self.router.close(0)


class Processes:
    """Starts worker processes and kills every one of them at ``close()``."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []

    def worker(self, launch_file: Path) -> subprocess.Popen:
        log = open(self.tmp / f"{launch_file.stem}.log", "wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "squall.supervisor.worker", str(launch_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, launch_file: Path) -> str:
        return (self.tmp / f"{launch_file.stem}.log").read_text(errors="replace")

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def by_executor(hb: WorkerHeartbeat) -> dict[int, Any]:
    return {m.executor: m for m in hb.metrics.executors}


def pid_gone(pid: int) -> bool:
    """True when ``pid`` has exited (a zombie waiting for a reaper counts as exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return "\nState:\tZ" in status or "\nState:\tX" in status
