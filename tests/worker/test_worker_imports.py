"""Workers stay small: two real worker processes, a spout in one and its sink and the acker in
the other (so tuples, acks and the transfer's both ends run), report from inside themselves
that they have loaded no Nimbus-only module: not networkx, numpy or pymetis, and neither the
schedulers nor Nimbus."""

from __future__ import annotations

import json

import pytest

from squall.ports import free_port
from tests.worker.worker_helpers import make_bundle, user_module, write_launch

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

Modules = user_module("modules_app").Modules

# Executors of Modules with one acker: numbers 0, sink 1, acker 2.
SPOUT_SIDE, SINK_SIDE = [0], [1, 2]


def test_a_running_worker_has_loaded_no_nimbus_only_module(env):
    tmp, sup, procs = env
    reports = tmp / "reports"
    reports.mkdir()
    bundle = make_bundle(tmp, "modules_app")
    a, b = free_port(), free_port()
    placement = {e: f"127.0.0.1:{a}" for e in SPOUT_SIDE} | {e: f"127.0.0.1:{b}" for e in SINK_SIDE}
    conf = {
        "topology.acker.executors": 1,
        "squall.worker.heartbeat.secs": 0.2,
        "app.report_dir": str(reports),
        "app.every": 200,
    }
    for port, executors in ((a, SPOUT_SIDE), (b, SINK_SIDE)):
        launch = write_launch(
            tmp / f"w{port}.launch", Modules.spec, port, executors, placement, sup.endpoint, bundle, conf
        )
        procs.worker(launch)

    def read() -> dict[str, dict]:
        docs = {}
        for path in reports.glob("*.json"):
            docs[path.name.split("-")[0]] = json.loads(path.read_text())
        return docs

    # Both sides have handled tuples (the sink's arrive through the transfer from the
    # other process) a few reports after starting.
    sup.wait_for(
        lambda: {k: d["handled"] >= 1000 for k, d in read().items()} == {"numbers": True, "sink": True},
        30,
        "1000 tuples handled on each side",
    )
    docs = read()
    assert docs["numbers"]["in_worker"] and docs["sink"]["in_worker"]
    assert docs["numbers"]["nimbus_only"] == [] and docs["sink"]["nimbus_only"] == []
    pids = {p.name.split("-")[1] for p in reports.glob("*.json")}
    assert len(pids) == 2, "the two reports come from the two worker processes"
