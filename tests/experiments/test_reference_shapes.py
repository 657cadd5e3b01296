"""The experiments' other reference shapes (diamond, word count), the padded chain, and the
sinks' latency side channel, run in one in-process engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from squall.experiments import measure
from squall.experiments.reference import chain_topology, diamond_topology, wordcount_topology
from tests.runtime.runtime_helpers import instances, pump, start_engine


def run_until(topo: type, per_spout: int, component: str = "spout", conf: dict | None = None) -> object:
    engine = start_engine(topo, {"topology.max.spout.pending": 50, **(conf or {})})
    spouts = instances(engine, component)
    while min(s.seq for s in spouts) < per_spout:
        engine.run_once()
    engine.deactivate()
    pump(engine)
    return engine


def test_diamond_fans_out_and_back_in() -> None:
    spec = diamond_topology(branches=3, replication=2).spec
    sink = spec.component("sink")
    assert sorted(i.component for i in sink.inputs) == ["branch1", "branch2", "branch3"]
    engine = run_until(diamond_topology(branches=3, replication=2), 100)
    emitted = sum(s.seq for s in instances(engine, "spout"))
    assert sum(s.count for s in instances(engine, "sink")) == 3 * emitted


def test_wordcount_counts_every_word_and_records_latency() -> None:
    engine = run_until(wordcount_topology(replication=2), 50, component="sentences")
    sentences = sum(s.seq for s in instances(engine, "sentences"))
    counts = instances(engine, "count")
    assert sum(sum(c.counts.values()) for c in counts) == 8 * sentences
    assert sum(c.count for c in counts) == 8 * sentences


def test_padded_chain_carries_its_payload() -> None:
    topo = chain_topology(stages=3, replication=1, payload=64)
    assert [tuple(o.fields) for o in topo.spec.component("spout").outputs] == [("key", "ts", "pad")]
    engine = run_until(topo, 20)
    sink = instances(engine, "stage2")[0]
    assert sink.count == instances(engine, "spout")[0].seq >= 20
    with pytest.raises(ValueError):
        chain_topology(payload=-1)


def test_sinks_write_latency_files_when_the_conf_names_a_folder(tmp_path: Path) -> None:
    engine = run_until(chain_topology(stages=3, replication=2), 200, conf={"chain.latency_dir": str(tmp_path)})
    for sink in instances(engine, "stage2"):
        sink.latency_log.flush()
        sink.log("component log still callable in a sink")  # the latency file has its own name
    files = sorted(tmp_path.glob("*.lat"))
    assert len(files) == 2
    topology = files[0].name.rsplit("-", 1)[0]
    samples = measure.read_latencies(tmp_path, topology)
    assert len(samples) == sum(s.count for s in instances(engine, "stage2"))
