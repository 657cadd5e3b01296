"""Real worker processes on CURVE: a keyed fake supervisor and keyed launch files, for the
data-plane test and the CURVE cost benchmark (benchmarks/curve_cost.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import zmq

from squall import security, wire
from squall.ports import free_port
from tests.worker.worker_helpers import FakeSupervisor, Processes, by_executor, make_bundle, user_module, write_launch

Chain3 = user_module("chain_app").Chain3

MIDDLE, SINK, SPOUT = 0, 1, 2  # Chain3's executors (tasks: middle 1, sink 2, spout 3)
MIDDLE_TASK, SPOUT_TASK = 1, 3


class KeyedSupervisor(FakeSupervisor):
    """The supervisor's side of the worker link, a CURVE server when ``keys`` are given, in
    its own context (so the test process's shared context gets no ZAP handler)."""

    def __init__(self, keys: security.ClusterKeys | None) -> None:
        self.ctx = zmq.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        security.secure_server(self.router, keys)
        self.port = self.router.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.heartbeats = {}

    def close(self) -> None:
        self.router.close(0)
        security.release(self.ctx)
        self.ctx.term()


def keyed_launch(path: Path, keys: security.ClusterKeys | None, *args: Any, **kwargs: Any) -> Path:
    """``write_launch`` plus the keys folder, as a supervisor with keys writes it."""
    write_launch(path, *args, **kwargs)
    launch = wire.decode(path.read_bytes())
    path.write_bytes(wire.encode(dataclasses.replace(launch, keys_dir=keys.folder if keys else "")))
    return path


class TwoKeyedWorkers:
    """Chain3 over two worker processes (spout on A; middle and sink on B), keyed or not."""

    def __init__(
        self,
        tmp: Path,
        keys: security.ClusterKeys | None,
        conf: dict[str, Any],
        a_executors: tuple[int, ...] = (SPOUT,),
        b_executors: tuple[int, ...] = (MIDDLE, SINK),
        start_a: bool = True,
    ) -> None:
        self.sup = KeyedSupervisor(keys)
        self.procs = Processes(tmp)
        bundle = make_bundle(tmp, "chain_app")
        self.a, self.b = free_port(), free_port()
        self.placement = {e: f"127.0.0.1:{self.a}" for e in a_executors} | {
            e: f"127.0.0.1:{self.b}" for e in b_executors
        }
        conf = {"squall.worker.heartbeat.secs": 0.25, "topology.acker.executors": 0, "app.reliable": False, **conf}
        started = [(self.a, list(a_executors))] if start_a else []
        for port, executors in [*started, (self.b, list(b_executors))]:
            launch = keyed_launch(
                tmp / f"w{port}.launch",
                keys,
                Chain3.spec,
                port,
                executors,
                self.placement,
                self.sup.endpoint,
                bundle,
                conf,
                active=False,
            )
            self.procs.worker(launch)
        up = [p for p, _ in started] + [self.b]
        self.sup.wait_for(lambda: all(self.sup.last(p) for p in up), 20, "workers up")
        for port in up:
            self.sup.update(port, self.placement, active=True, version=2)

    def metric(self, port: int, executor: int) -> Any:
        return by_executor(self.sup.last(port))[executor]

    def close(self) -> None:
        self.procs.close()
        self.sup.close()
