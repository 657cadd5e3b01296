"""Snapshot versions: a version-1 snapshot (queue in frame version 3's one-item-per-tuple
layout) restores every queued tuple exactly, including tuples whose values are lists (which
read as runs unconverted would be taken for several tuples); an unknown version is refused
naming the field and the versions this worker reads."""

from __future__ import annotations

import msgpack
import pytest

from squall.supervisor.runtime import snapshot
from squall.supervisor.runtime.engine import Engine
from squall.supervisor.runtime.messages import ACK_FAIL
from squall.topology.component import Tuple
from tests.worker.worker_helpers import user_module

Chain = user_module("chain_app").Chain
SPEC = Chain.spec
MIDDLE, SPOUT = 1, 4
FIELDS = {"n": 0, "ts": 1}


def _moved_doc(engine: Engine, queued: list[Tuple]) -> dict:
    middle = engine.by_id[0]  # task 1
    for tup in queued:
        middle.inbox.append((MIDDLE, tup))
    return msgpack.unpackb(engine.remove_executor(0), raw=False, strict_map_key=False)


def _restored(engine: Engine, doc: dict) -> list[tuple[int, list, dict]]:
    engine.add_executor(0, msgpack.packb(doc, use_bin_type=True))
    restored = engine.by_id[0]
    assert restored.stats.errors == 0
    return [(t, tup.values, dict(tup.roots or {})) for t, tup in restored.inbox]


def test_a_version_1_snapshot_restores_each_queued_tuple_exactly():
    engine = Engine(SPEC, Chain.classes, {"topology.acker.executors": 1})
    engine.start(activate=False)
    doc = _moved_doc(engine, [])
    # What a worker of frame version 3 wrote: one item per tuple, values as they are, the
    # roots a map or nil. The two-field values that are themselves two lists are the case a
    # run reader would split into two tuples.
    doc["v"] = 1
    doc["inbox"] = [
        [MIDDLE, "default", SPOUT, [1, 0.5], None],
        [MIDDLE, "default", SPOUT, [[1, 2], [3, 4]], {7: 8}],
        [MIDDLE, "default", SPOUT, [3, 0.5], None],
        [MIDDLE, "default", SPOUT, [[5, 6], [7, 8]], None],  # unconverted: two tuples, silently
    ]
    assert _restored(engine, doc) == [
        (MIDDLE, [1, 0.5], {}),
        (MIDDLE, [[1, 2], [3, 4]], {7: 8}),
        (MIDDLE, [3, 0.5], {}),
        (MIDDLE, [[5, 6], [7, 8]], {}),
    ]


def test_a_version_1_snapshot_keeps_control_items_as_they_are():
    doc = {"v": 1, "id": 4, "kind": "acker", "tasks": {}, "inbox": [[5, ACK_FAIL, 9]], "acker": []}
    decoded = snapshot.decode(msgpack.packb(doc, use_bin_type=True))
    assert decoded["v"] == snapshot.SNAPSHOT_VERSION == 2
    assert decoded["inbox"] == [[5, ACK_FAIL, 9]]


def test_this_version_round_trips_unchanged():
    engine = Engine(SPEC, Chain.classes, {"topology.acker.executors": 1})
    engine.start(activate=False)
    doc = _moved_doc(engine, [Tuple("spout", "default", SPOUT, [n, 0.5], FIELDS) for n in range(3)])
    assert doc["v"] == 2
    assert doc["inbox"] == [[MIDDLE, "default", SPOUT, [[0, 0.5], [1, 0.5], [2, 0.5]], None]]
    assert _restored(engine, doc) == [(MIDDLE, [n, 0.5], {}) for n in range(3)]


@pytest.mark.parametrize("version", [0, 3, "2", None])
def test_an_unknown_version_is_refused_naming_the_field_and_the_versions_read(version):
    doc = {"v": version, "id": 0, "kind": "bolt", "tasks": {}, "inbox": []}
    with pytest.raises(snapshot.SnapshotError, match=r"field 'v' is .*reads versions 1, 2"):
        snapshot.decode(msgpack.packb(doc, use_bin_type=True))
