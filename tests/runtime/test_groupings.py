"""Each grouping's semantics, observed through the engine on small topologies.

Topologies here name the spout ``aspout`` and the bolt ``sink`` so that task 1 is the spout
and the sink's tasks start at 2: "global goes to the lowest task id" then means the lowest
*target* task, not task 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import pytest

from squall import Grouping, Spout, Stream, Topology
from squall.supervisor.runtime.routing import make_chooser, stable_hash
from squall.topology import EmitError
from squall.topology.grouping import GroupingSpec
from squall.topology.testing import CollectBolt, ListSpout
from tests.runtime.runtime_helpers import by_task, only, pump, start_engine

NO_ACKERS = {"topology.acker.executors": 0}


def list_spout(items: Sequence[Sequence[Any]], fields: Sequence[str] = ("key",)) -> type[ListSpout]:
    """A ListSpout subclass emitting ``items`` on a default stream of ``fields``."""
    return type("Items", (ListSpout,), {"outputs": list(fields), "items": list(items), "max_replays": 0})


def two_stage(
    grouping: GroupingSpec,
    items: Sequence[Sequence[Any]],
    fields: Sequence[str] = ("key",),
    par: int = 2,
    tasks: int = 4,
    spout_par: int = 1,
) -> type[Topology]:
    """``aspout`` (a ListSpout of ``items``) -> ``sink`` (a CollectBolt) with ``grouping``."""
    spout = list_spout(items, fields).spec(par=spout_par)
    sink = CollectBolt.spec(inputs={spout: grouping}, par=par, tasks=tasks)
    return type("TwoStage", (Topology,), {"aspout": spout, "sink": sink})


def received(engine: Any) -> dict[int, list[list[Any]]]:
    """Sink task -> the values lists it received."""
    return {task: inst.received for task, inst in by_task(engine, "sink").items()}


def run(topology: type[Topology], conf: dict | None = None) -> dict[int, list[list[Any]]]:
    engine = start_engine(topology, conf)
    pump(engine)
    return received(engine)


# -- shuffle, none ---------------------------------------------------------------------


@pytest.mark.parametrize("grouping", [Grouping.SHUFFLE, Grouping.NONE], ids=["shuffle", "none like shuffle"])
def test_shuffle_spreads_evenly_over_every_target_task(grouping: GroupingSpec) -> None:
    got = run(two_stage(grouping, [[i] for i in range(120)], par=2, tasks=4))
    assert sorted(got) == [2, 3, 4, 5]
    assert [len(v) for v in got.values()] == [30, 30, 30, 30]
    assert sorted(v[0] for vs in got.values() for v in vs) == list(range(120))


def test_shuffle_from_several_spout_tasks_stays_balanced() -> None:
    got = run(two_stage(Grouping.SHUFFLE, [[i] for i in range(240)], spout_par=3, par=3, tasks=3))
    counts = [len(v) for v in got.values()]
    assert sum(counts) == 240
    assert max(counts) - min(counts) <= 3  # at most one extra per source task


# -- fields ----------------------------------------------------------------------------


def _words() -> list[list[Any]]:
    return [[f"w{i % 37}", i] for i in range(370)]


def test_fields_sends_equal_keys_to_the_same_task() -> None:
    got = run(two_stage(Grouping.fields("key"), _words(), fields=("key", "n")))
    owner: dict[str, set[int]] = defaultdict(set)
    for task, values in got.items():
        for key, _n in values:
            owner[key].add(task)
    assert len(owner) == 37
    assert all(len(tasks) == 1 for tasks in owner.values()), owner
    assert all(len(values) > 0 for values in got.values()), "37 keys should reach all 4 tasks"


def test_fields_task_is_the_stable_hash_chooser_of_the_key() -> None:
    got = run(two_stage(Grouping.fields("key"), _words(), fields=("key", "n")))
    chooser = make_chooser(Grouping.fields("key"), {"key": 0, "n": 1}, [2, 3, 4, 5], source_task=1)
    for task, values in got.items():
        for v in values:
            assert chooser(v) == [task]


def test_fields_on_two_fields_groups_by_the_pair() -> None:
    items = [[a, b, i] for i in range(4) for a in "xyz" for b in (1, 2, 3)]
    got = run(two_stage(Grouping.fields("a", "b"), items, fields=("a", "b", "n")))
    owner: dict[tuple, set[int]] = defaultdict(set)
    for task, values in got.items():
        for a, b, _n in values:
            owner[(a, b)].add(task)
    assert len(owner) == 9 and all(len(t) == 1 for t in owner.values())


_MAPPING_SCRIPT = """
import json, sys
from squall.supervisor.runtime.routing import make_chooser, stable_hash
from squall.topology.grouping import Grouping
keys = json.loads(sys.argv[1])
index = {"k": 0, "v": 1}
one = make_chooser(Grouping.fields("k"), index, [3, 4, 5, 6, 7], 1)
two = make_chooser(Grouping.fields("k", "v"), index, [3, 4, 5, 6, 7], 1)
print(json.dumps({
    "one": [one([k, 0]) for k in keys],
    "two": [two([k, 7]) for k in keys],
    "hash": [stable_hash([k]) for k in keys],
}))
"""

_KEYS: list[Any] = ["apple", "pear", "naïve", "日本語", "", "a" * 100, 0, 1, -5, 2**40, 3.5, True, None]


def _mapping_here() -> dict[str, list]:
    index = {"k": 0, "v": 1}
    one = make_chooser(Grouping.fields("k"), index, [3, 4, 5, 6, 7], 9)
    two = make_chooser(Grouping.fields("k", "v"), index, [3, 4, 5, 6, 7], 9)
    return {
        "one": [one([k, 0]) for k in _KEYS],
        "two": [two([k, 7]) for k in _KEYS],
        "hash": [stable_hash([k]) for k in _KEYS],
    }


def _mapping_in_subprocess(hash_seed: str) -> dict[str, list]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    out = subprocess.run(
        [sys.executable, "-c", _MAPPING_SCRIPT, json.dumps(_KEYS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def test_fields_key_to_task_mapping_is_the_same_in_other_processes_and_hash_seeds() -> None:
    here = _mapping_here()  # note: source task 9 here, 1 there — the key alone decides
    for seed in ("1", "4242"):
        assert _mapping_in_subprocess(seed) == here
    assert len({tuple(t) for t in here["one"]}) > 1, "keys should not all land on one task"


# -- all, global -----------------------------------------------------------------------


def test_all_delivers_every_tuple_to_every_task() -> None:
    got = run(two_stage(Grouping.ALL, [[i] for i in range(10)], par=2, tasks=3))
    assert sorted(got) == [2, 3, 4]
    for values in got.values():
        assert [v[0] for v in values] == list(range(10))


def test_global_delivers_everything_to_the_lowest_target_task() -> None:
    got = run(two_stage(Grouping.GLOBAL, [[i] for i in range(10)], par=3, tasks=3))
    assert [v[0] for v in got[2]] == list(range(10))
    assert got[3] == [] and got[4] == []


# -- direct ----------------------------------------------------------------------------


class DirectSpout(Spout):
    """Sends n to the sink task ``sink_tasks[n * 3 % len]`` on a direct stream, and can also
    emit on a plain stream."""

    outputs = [Stream(fields=["n"], name="to", direct=True), Stream(fields=["n"])]

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.sink_tasks = sorted(t for t, c in ctx.task_to_component.items() if c == "sink")
        self.left = list(range(12))

    def next_tuple(self) -> None:
        if self.left:
            n = self.left.pop(0)
            self.emit([n], stream="to", direct_task=self.sink_tasks[n * 3 % len(self.sink_tasks)])


class DirectTopology(Topology):
    aspout = DirectSpout.spec()
    sink = CollectBolt.spec(inputs={aspout["to"]: Grouping.DIRECT}, par=2, tasks=4)
    plain = CollectBolt.spec(inputs={aspout: Grouping.SHUFFLE})


def test_direct_sends_each_tuple_to_the_task_named_in_the_emit() -> None:
    engine = start_engine(DirectTopology, NO_ACKERS)
    pump(engine)
    got = received(engine)
    sink_tasks = sorted(got)
    expected: dict[int, list[list[int]]] = {t: [] for t in sink_tasks}
    for n in range(12):
        expected[sink_tasks[n * 3 % 4]].append([n])
    assert got == expected
    (plain,) = by_task(engine, "plain").values()
    assert plain.received == []  # direct tuples never leak to others


def _direct_spout(engine: Any) -> DirectSpout:
    return only(engine, "aspout")


def test_direct_emit_without_direct_task_raises() -> None:
    spout = _direct_spout(start_engine(DirectTopology, NO_ACKERS))
    with pytest.raises(EmitError, match=r"stream 'to' is direct, so emit needs direct_task="):
        spout.emit([1], stream="to")


@pytest.mark.parametrize("task", [999, 1], ids=["no such task", "task of a non-subscriber"])
def test_direct_emit_to_a_task_that_does_not_subscribe_raises(task: int) -> None:
    engine = start_engine(DirectTopology, NO_ACKERS)
    spout = _direct_spout(engine)
    if task == 1:
        task = next(iter(by_task(engine, "plain")))
    with pytest.raises(EmitError, match=rf"direct_task {task} does not subscribe to stream 'to'"):
        spout.emit([1], stream="to", direct_task=task)


def test_direct_task_on_a_stream_not_declared_direct_raises() -> None:
    engine = start_engine(DirectTopology, NO_ACKERS)
    spout = _direct_spout(engine)
    target = next(iter(by_task(engine, "plain")))
    with pytest.raises(EmitError, match=r"stream 'default' is not declared direct"):
        spout.emit([1], direct_task=target)


# -- local_or_shuffle ------------------------------------------------------------------


def _split_engine(grouping: GroupingSpec, local_sink_executors: set[int]) -> tuple[Any, list[int]]:
    """An engine holding the spout and only some sink executors; the rest are "remote" and
    their tuples are captured. Returns the engine and the remote task of each remote tuple."""
    topology = two_stage(grouping, [[i] for i in range(40)], par=2, tasks=2)
    remote: list[int] = []

    def remote_sink(task: int):
        return lambda item: remote.append(item[0])

    # Executors: 0 = aspout (task 1), 1 = sink task 2, 2 = sink task 3.
    engine = start_engine(topology, NO_ACKERS, executor_ids={0, *local_sink_executors}, remote_sink=remote_sink)
    pump(engine)
    return engine, remote


def test_local_or_shuffle_keeps_tuples_in_the_worker_when_a_target_task_is_local() -> None:
    engine, remote = _split_engine(Grouping.LOCAL_OR_SHUFFLE, {1})
    assert remote == []
    assert len(received(engine)[2]) == 40


def test_shuffle_in_the_same_split_does_cross_workers() -> None:
    # The control for the test above: plain shuffle sends half of the tuples to task 3.
    engine, remote = _split_engine(Grouping.SHUFFLE, {1})
    assert Counter(remote) == {3: 20}
    assert len(received(engine)[2]) == 20


def test_local_or_shuffle_falls_back_to_shuffle_when_no_target_task_is_local() -> None:
    _engine, remote = _split_engine(Grouping.LOCAL_OR_SHUFFLE, set())
    assert Counter(remote) == {2: 20, 3: 20}


# -- partial_key -----------------------------------------------------------------------


def _hot_and_cold_items() -> list[list[Any]]:
    """1,000 tuples of one hot key interleaved with 1,000 tuples over 200 cold keys."""
    items: list[list[Any]] = []
    for i in range(1000):
        items.append(["hot", i])
        items.append([f"cold{i % 200}", i])
    return items


def _owners(got: dict[int, list[list[Any]]]) -> dict[str, Counter]:
    owner: dict[str, Counter] = defaultdict(Counter)
    for task, values in got.items():
        for key, _n in values:
            owner[key][task] += 1
    return owner


def test_partial_key_sends_each_key_to_at_most_two_tasks() -> None:
    got = run(two_stage(Grouping.partial_key("key"), _hot_and_cold_items(), fields=("key", "n")))
    owner = _owners(got)
    assert len(owner) == 201
    assert all(len(tasks) <= 2 for tasks in owner.values())
    assert len(owner["hot"]) == 2, "the hot key should be split over its two candidate tasks"


def test_partial_key_balances_a_skewed_key_where_fields_grouping_cannot() -> None:
    items = _hot_and_cold_items()
    partial_got = run(two_stage(Grouping.partial_key("key"), items, fields=("key", "n")))
    partial = [len(v) for v in partial_got.values()]
    fields = [len(v) for v in run(two_stage(Grouping.fields("key"), items, fields=("key", "n"))).values()]
    assert sum(partial) == sum(fields) == len(items)
    # Under fields grouping the hot key (half the stream) lands whole on one task.
    assert max(fields) > 1000
    # Partial key splits it about evenly over its two candidates, so no task carries it all.
    hot = sorted(_owners(partial_got)["hot"].values())
    assert hot[0] >= 400 and sum(hot) == 1000
    assert max(partial) < 0.7 * max(fields)


def test_partial_key_without_skew_is_about_even() -> None:
    items = [[f"k{i % 300}", i] for i in range(2000)]
    counts = [len(v) for v in run(two_stage(Grouping.partial_key("key"), items, fields=("key", "n"))).values()]
    assert max(counts) - min(counts) <= 0.1 * len(items) / 4


# -- routing unit checks ---------------------------------------------------------------


def test_stable_hash_is_crc32_of_the_key_not_pythons_salted_hash() -> None:
    import zlib

    assert stable_hash(["apple"]) == zlib.crc32(b"apple")
    assert stable_hash(["apple"]) == stable_hash(("apple",))
