"""The SQLite store: WAL, round trips, content-addressed bundles."""

from __future__ import annotations

from squall.nimbus.commands import DeleteTopology, SaveSupervisor, SaveTopology
from squall.nimbus.records import Slot, SupervisorRecord, TopologyRecord
from squall.nimbus.store import Store
from squall.topology.spec import TopologySpec
from tests.helpers import modules_loaded
from tests.nimbus.nimbus_helpers import chain_spec


def record(name: str, digest: str) -> TopologyRecord:
    spec = TopologySpec.from_dict({**chain_spec(), "name": name})
    conf = {"topology.workers": 1, "topology.acker.executors": 1}
    return TopologyRecord(
        name,
        spec,
        "round_robin",
        conf,
        digest,
        4,
        1.0,
        phase="running",
        version=3,
        placement={e.id: Slot(0, "n1", 6700) for e in spec.executors_with_ackers(1)},
    )


def test_topologies_supervisors_and_bundles_round_trip(tmp_path):
    store = Store.open(tmp_path / "data")
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    digest = store.put_bundle(b"code")
    assert store.put_bundle(b"code") == digest and store.get_bundle(digest) == b"code"
    sup = SupervisorRecord("n1", "h", [6700, 6701], 2e9, version=7, last_seen=5.0)
    store.carry_out([SaveTopology(record("a", digest)), SaveTopology(record("b", digest)), SaveSupervisor(sup)])
    store.close()

    again = Store.open(tmp_path / "data")
    loaded = {r.name: r for r in again.load_topologies()}
    assert loaded["a"].placement == record("a", digest).placement and loaded["a"].version == 3
    assert loaded["a"].spec == record("a", digest).spec
    (sup,) = again.load_supervisors()
    assert (sup.id, sup.ports, sup.version, sup.last_seen) == ("n1", [6700, 6701], 7, None)
    again.carry_out([DeleteTopology("a")])
    again.drop_bundle(digest)
    assert again.get_bundle(digest) == b"code"  # b still uses it
    again.carry_out([DeleteTopology("b")])
    again.drop_bundle(digest)
    assert again.get_bundle(digest) is None
    assert again.load_topologies() == []


def test_the_decisions_import_neither_zmq_nor_prometheus():
    assert modules_loaded("import squall.nimbus.state, squall.nimbus.store", ["zmq", "prometheus_client"]) == []
