"""The experiments' reference topology (``squall.experiments.reference.chain_topology``):
its shape, that every tuple reaches the sink which records end-to-end latency, replay of
failed trees, and that the input rate limit bounds what the spout emits."""

from __future__ import annotations

import math
import time

import pytest

from squall.experiments.reference import chain_topology
from squall.supervisor.runtime.engine import Engine
from squall.topology import Grouping, TopologySpec
from tests.runtime.runtime_helpers import instances, pump, start_engine, summary


def test_the_chain_alternates_shuffle_and_fields_grouping_with_replication() -> None:
    spec = chain_topology(stages=5, replication=3).spec
    assert [c.name for c in spec.components] == ["spout", "stage1", "stage2", "stage3", "stage4"]
    groupings = {c.name: [(i.component, i.grouping) for i in c.inputs] for c in spec.bolts}
    assert groupings == {
        "stage1": [("spout", Grouping.SHUFFLE)],
        "stage2": [("stage1", Grouping.fields("key"))],
        "stage3": [("stage2", Grouping.SHUFFLE)],
        "stage4": [("stage3", Grouping.fields("key"))],
    }
    assert all(c.par == 3 and c.tasks == 3 for c in spec.components)
    sinks = [c.name for c in spec.components if spec.component_config(c.name).get("chain.sink")]
    assert sinks == ["stage4"]
    assert TopologySpec.from_dict(spec.to_dict()) == spec


def test_an_unreliable_chain_runs_without_ackers() -> None:
    spec = chain_topology(reliable=False).spec
    assert spec.config["topology.acker.executors"] == 0


@pytest.mark.parametrize("bad", [dict(stages=1), dict(replication=0)])
def test_a_degenerate_chain_is_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        chain_topology(**bad)


def test_every_tuple_reaches_the_sink_which_records_its_latency() -> None:
    topo = chain_topology(stages=4, replication=2, work=10)
    engine = start_engine(topo, {"topology.max.spout.pending": 50})
    spouts = instances(engine, "spout")
    for s in spouts:
        s.seq = 0
    # Emit a fixed number of tuples: stop the spouts once each has emitted 300.
    while min(s.seq for s in spouts) < 300:
        engine.run_once()
    engine.deactivate()
    pump(engine)
    emitted = summary(engine, "spout").emitted
    sinks = instances(engine, "stage3")
    assert sum(s.count for s in sinks) == emitted
    latencies = [x for s in sinks for x in s.latencies]
    assert len(latencies) == emitted
    assert all(math.isfinite(x) and x >= 0 for x in latencies)
    assert sum(s.latency_sum for s in sinks) == pytest.approx(sum(latencies))
    # Acking on: every tree completed, nothing left in flight.
    assert summary(engine, "spout").acked == emitted
    assert all(not s.in_flight for s in spouts)


def test_the_chain_spout_replays_a_failed_tree() -> None:
    engine = start_engine(chain_topology(stages=2, replication=1))
    (spout,) = instances(engine, "spout")
    engine.spouts[0].step()  # one batch emitted, not yet processed: its trees are in flight
    assert spout.in_flight
    first = next(iter(spout.in_flight))
    spout.fail(first)
    assert spout.replayed == 1
    engine.deactivate()
    pump(engine)
    assert not spout.in_flight
    assert sum(s.count for s in instances(engine, "stage1")) == summary(engine, "spout").emitted


def test_the_rate_limit_bounds_how_many_tuples_the_spout_emits() -> None:
    rate, replication = 200.0, 2
    topo = chain_topology(stages=2, replication=replication, rate=rate, reliable=False)
    engine = Engine(topo.spec, topo.classes)
    engine.start()
    started = time.monotonic()
    engine.run(0.5)
    elapsed = time.monotonic() - started
    emitted = summary(engine, "spout").emitted
    assert emitted > 0
    # Loose: twice the configured rate plus a few tuples of catch-up per task.
    assert emitted <= 2 * rate * replication * elapsed + 4 * replication
