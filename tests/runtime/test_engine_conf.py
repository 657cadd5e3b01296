"""What a component sees when it starts: its config (the topology's, overridden by the
engine's conf, overridden by the component's own) and its context (task ids, names)."""

from __future__ import annotations

from typing import Any

from squall import Bolt, Spout, Topology, Tuple
from tests.runtime.runtime_helpers import by_task, start_engine


class Probe(Spout):
    outputs = ["x"]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.conf = conf
        self.ctx = ctx


class ProbeBolt(Bolt):
    def initialize(self, conf: dict, ctx: Any) -> None:
        self.conf = conf
        self.ctx = ctx

    def process(self, tup: Tuple) -> None:
        pass


class Configured(Topology):
    name = "configured"
    config = {"app.level": "topology", "app.only_topology": 1}
    probe = Probe.spec()
    sink = ProbeBolt.spec(inputs=[probe], par=2, tasks=3, config={"app.level": "component"})


def test_components_see_topology_config_engine_overrides_and_their_own_config() -> None:
    engine = start_engine(Configured, {"app.only_topology": 2, "app.from_engine": True})
    (probe,) = by_task(engine, "probe").values()
    assert probe.conf["app.level"] == "topology"
    assert probe.conf["app.only_topology"] == 2  # the engine's conf overrides the topology's
    assert probe.conf["app.from_engine"] is True
    for sink in by_task(engine, "sink").values():
        assert sink.conf["app.level"] == "component"  # the component's own config wins
        assert sink.conf["app.from_engine"] is True


def test_each_task_gets_its_own_instance_and_context() -> None:
    engine = start_engine(Configured)
    sinks = by_task(engine, "sink")
    # Storm's numbering: components sorted by name, so probe is task 1 and sink tasks 2..4.
    assert sorted(sinks) == [2, 3, 4]
    assert len({id(s) for s in sinks.values()}) == 3
    for task, sink in sinks.items():
        ctx = sink.ctx
        assert (ctx.topology, ctx.component, ctx.task) == ("configured", "sink", task)
        assert ctx.component_tasks == [2, 3, 4]
        assert ctx.task_index == task - 2
        assert ctx.task_to_component == {1: "probe", 2: "sink", 3: "sink", 4: "sink"}
    (probe,) = by_task(engine, "probe").values()
    assert probe.ctx.outputs == {"default": ("x",)}


def test_the_sinks_tasks_are_split_over_executors_in_contiguous_ranges() -> None:
    engine = start_engine(Configured)
    ranges = sorted(list(ex.instances) for ex in engine.executors if ex.component == "sink")
    assert ranges == [[2, 3], [4]]
