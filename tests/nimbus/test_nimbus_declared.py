"""DeclaredWorkers: one pass per topology for every board, the same objects while nothing
changed, a rebuild when anything a worker carries changes."""

from __future__ import annotations

from squall.nimbus.placement import DeclaredWorkers
from squall.nimbus.records import Slot, TopologyRecord
from squall.topology.spec import TopologySpec
from tests.nimbus.nimbus_helpers import chain_spec


def record() -> TopologyRecord:
    spec = TopologySpec.from_dict({**chain_spec(), "name": "t"})
    conf = {"topology.workers": 2, "topology.acker.executors": 1}
    execs = spec.executors_with_ackers(1)
    placement = {e.id: Slot(k % 2, f"n{k % 2}", 6700 + k % 2) for k, e in enumerate(execs)}
    return TopologyRecord("t", spec, "round_robin", conf, "d", 4, 1.0, phase="running", version=3, placement=placement)


def hosts(node: str) -> str:
    return f"host-{node}"


def test_every_node_gets_its_workers_and_the_whole_placement():
    rec = record()
    per_node = DeclaredWorkers().of(rec, hosts)
    assert sorted(per_node) == ["n0", "n1"]
    (w0,), (w1,) = per_node["n0"], per_node["n1"]
    assert (w0.port, w1.port) == (6700, 6701)
    assert sorted(w0.executors + w1.executors) == sorted(rec.placement)
    assert w0.placement == {ex: f"host-{s.node}:{s.port}" for ex, s in rec.placement.items()}
    assert w0.assignment_version == 3 and w0.active and w0.conf == rec.worker_conf()


def test_unchanged_topology_gives_back_the_same_objects():
    cache, rec = DeclaredWorkers(), record()
    first = cache.of(rec, hosts)
    assert cache.of(rec, hosts) is first


def test_a_new_version_a_new_host_or_a_new_conf_rebuilds():
    cache, rec = DeclaredWorkers(), record()
    first = cache.of(rec, hosts)
    rec.version += 1
    second = cache.of(rec, hosts)
    assert second is not first and second["n0"][0].assignment_version == 4
    third = cache.of(rec, lambda n: f"moved-{n}")
    assert third is not second and third["n0"][0].placement[0].startswith("moved-")
    rec.conf["squall.transfer.batch.size"] = 64
    fourth = cache.of(rec, lambda n: f"moved-{n}")
    assert fourth is not third and fourth["n0"][0].conf["squall.transfer.batch.size"] == 64
    rec.active = False
    assert cache.of(rec, lambda n: f"moved-{n}")["n0"][0].active is False


def test_retain_drops_removed_topologies():
    cache, rec = DeclaredWorkers(), record()
    first = cache.of(rec, hosts)
    cache.retain([])
    assert cache.of(rec, hosts) is not first
