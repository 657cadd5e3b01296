"""A user's code for the worker-imports test: a spout and a sink that write, from inside the
worker process running them, which Nimbus-only modules that process has loaded.

Config: ``app.report_dir`` the folder each task writes ``<component>-<pid>.json`` to, every
``app.every`` tuples it handles: {"handled": n, "nimbus_only": [...], "in_worker": bool}.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from squall import Bolt, Spout, Topology

NIMBUS_ONLY = ("networkx", "numpy", "pymetis", "squall.rebalance", "squall.nimbus")


def report(conf: dict, component: str, handled: int) -> None:
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in NIMBUS_ONLY or m.startswith(NIMBUS_ONLY[3:]))
    main = getattr(sys.modules["__main__"], "__spec__", None)  # the worker runs as python -m ...worker
    in_worker = getattr(main, "name", "") == "squall.supervisor.worker"
    doc = {"handled": handled, "nimbus_only": loaded, "in_worker": in_worker}
    path = os.path.join(conf["app.report_dir"], f"{component}-{os.getpid()}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f)
    os.replace(path + ".tmp", path)  # readers never see half a file


class Numbers(Spout):
    outputs = ["n"]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.conf, self.n, self.every = conf, 0, int(conf.get("app.every", 100))

    def next_tuple(self) -> None:
        self.n += 1
        self.emit([self.n], tup_id=self.n)
        if self.n % self.every == 0:
            report(self.conf, "numbers", self.n)


class Sink(Bolt):
    def initialize(self, conf: dict, ctx: Any) -> None:
        self.conf, self.n, self.every = conf, 0, int(conf.get("app.every", 100))

    def process(self, tup: Any) -> None:
        self.n += 1
        if self.n % self.every == 0:
            report(self.conf, "sink", self.n)


class Modules(Topology):
    config = {"topology.max.spout.pending": 100}
    numbers = Numbers.spec()
    sink = Sink.spec(inputs=[numbers])
