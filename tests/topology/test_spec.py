"""The topology spec as a value: JSON- and msgpack-safe ``to_dict``, exact round trips
(also for random valid topologies, built directly and through the DSL), Storm's task and
executor numbering, and ``from_dict`` refusing malformed input with TopologyError only."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from squall import Bolt, Grouping, Spout, Stream, Topology
from squall.topology import TopologyError, TopologySpec
from squall.topology.grouping import GroupingSpec
from squall.topology.spec import ACKER_COMPONENT, ComponentSpec, ExecutorSpec, InputSpec, StreamSpec


class Words(Spout):
    outputs = ["word"]


class Count(Bolt):
    outputs = [Stream(fields=["word", "count"]), Stream(fields=["word"], name="hot", direct=True)]

    def process(self, tup: Any) -> None:
        pass


class WordCount(Topology):
    config = {"topology.workers": 2, "topology.max.spout.pending": 500, "nested": {"a": [1, 2.5, None, True]}}
    words = Words.spec(par=2, tasks=4)
    count = Count.spec(inputs={words: Grouping.fields("word")}, par=3, config={"x": "y"})
    hot = Count.spec(inputs={count["hot"]: Grouping.DIRECT, words: Grouping.partial_key("word")})


def _is_plain(value: Any) -> bool:
    """Only dicts with string keys, lists, str, int, float, bool and None."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def _assert_round_trips(spec: TopologySpec) -> None:
    data = spec.to_dict()
    assert _is_plain(data)
    assert TopologySpec.from_dict(data) == spec
    assert TopologySpec.from_dict(json.loads(json.dumps(data))) == spec
    assert TopologySpec.from_dict(msgpack.unpackb(msgpack.packb(data, use_bin_type=True), raw=False)) == spec


def test_a_dsl_spec_is_plain_data_and_round_trips_through_json_and_msgpack() -> None:
    _assert_round_trips(WordCount.spec)


def test_the_dict_form_is_versioned_and_readable() -> None:
    data = WordCount.spec.to_dict()
    assert data["version"] == 1 and data["name"] == "WordCount"
    count = next(c for c in data["components"] if c["name"] == "count")
    assert count == {
        "name": "count",
        "kind": "bolt",
        "class": f"{__name__}:Count",
        "par": 3,
        "tasks": 3,
        "inputs": [{"component": "words", "stream": "default", "grouping": {"type": "fields", "fields": ["word"]}}],
        "outputs": [
            {"name": "default", "fields": ["word", "count"], "direct": False},
            {"name": "hot", "fields": ["word"], "direct": True},
        ],
        "config": {"x": "y"},
    }


def test_component_config_overrides_topology_config() -> None:
    spec = WordCount.spec
    assert spec.component_config("count")["x"] == "y"
    assert spec.component_config("count")["topology.workers"] == 2
    assert "x" not in spec.component_config("words")


# -- numbering -------------------------------------------------------------------------


def test_tasks_are_numbered_over_components_sorted_by_name() -> None:
    # Declared order count, words, hot; sorted: count (3), hot (1), words (4).
    assert WordCount.spec.task_ranges() == {"count": range(1, 4), "hot": range(4, 5), "words": range(5, 9)}


def test_executors_hold_contiguous_ranges_the_first_tasks_mod_par_one_larger() -> None:
    spec = TopologySpec(
        "t",
        (
            ComponentSpec("b", "bolt", "m:B", par=3, tasks=8, inputs=(InputSpec("a", "default", Grouping.SHUFFLE),)),
            ComponentSpec("a", "spout", "m:A", par=2, tasks=2, outputs=(StreamSpec("default", ("x",)),)),
        ),
    )
    assert spec.executors() == (
        ExecutorSpec(0, "a", 1, 1),
        ExecutorSpec(1, "a", 2, 2),
        ExecutorSpec(2, "b", 3, 5),
        ExecutorSpec(3, "b", 6, 8),
        ExecutorSpec(4, "b", 9, 10),
    )
    assert [list(e.tasks) for e in spec.executors()][2:] == [[3, 4, 5], [6, 7, 8], [9, 10]]


def test_acker_tasks_come_after_every_user_task() -> None:
    users = WordCount.spec.executors()
    with_ackers = WordCount.spec.executors_with_ackers(2)
    assert with_ackers[: len(users)] == users
    assert with_ackers[len(users) :] == (
        ExecutorSpec(len(users), ACKER_COMPONENT, 9, 9),
        ExecutorSpec(len(users) + 1, ACKER_COMPONENT, 10, 10),
    )


# -- malformed input -------------------------------------------------------------------


def _valid() -> dict:
    return WordCount.spec.to_dict()


def _with(path: tuple, value: Any) -> dict:
    """A copy of the valid dict with ``path`` set to ``value`` (``...`` deletes it)."""
    data = json.loads(json.dumps(_valid()))
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    "data, message",
    [
        pytest.param([1, 2], r"must be a mapping, got list", id="not a mapping"),
        pytest.param(_with(("version",), ...), r"version None is not supported", id="no version"),
        pytest.param(_with(("version",), 2), r"version 2 is not supported \(expected 1\)", id="future version"),
        pytest.param(_with(("version",), "1"), r"version '1' is not supported", id="version as text"),
        pytest.param(_with(("name",), ...), r"malformed topology spec: KeyError\('name'\)", id="no name"),
        pytest.param(_with(("components",), ...), r"malformed", id="no components"),
        pytest.param(_with(("components",), 7), r"malformed", id="components not a list"),
        pytest.param(_with(("components", 0), "count"), r"malformed", id="component not a mapping"),
        pytest.param(_with(("components", 0, "class"), ...), r"malformed", id="component without class"),
        pytest.param(_with(("components", 0, "par"), "two"), r"malformed", id="par not a number"),
        pytest.param(_with(("components", 0, "config"), [1]), r"malformed", id="component config a list"),
        pytest.param(_with(("config",), "x"), r"malformed", id="topology config a string"),
        pytest.param(
            _with(("components", 0, "inputs", 0, "grouping", "type"), "random"),
            r"unknown grouping 'random'",
            id="unknown grouping",
        ),
        pytest.param(
            _with(("components", 0, "inputs", 0, "grouping", "fields"), []),
            r"fields grouping needs at least one field",
            id="keyed grouping without fields",
        ),
        pytest.param(
            _with(("components", 0, "name"), 5), r"component name 5 is invalid|malformed", id="name not a string"
        ),
        pytest.param(
            _with(("components", 0, "inputs", 0, "component"), "nope"),
            r"bolt 'count' subscribes to unknown component 'nope'",
            id="valid shape, invalid topology",
        ),
    ],
)
def test_from_dict_refuses_malformed_input_with_topology_error(data: Any, message: str) -> None:
    with pytest.raises(TopologyError, match=message):
        TopologySpec.from_dict(data)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_from_dict_on_any_corrupted_spec_raises_topology_error_or_round_trips(data: st.DataObject) -> None:
    paths = _paths(_valid())
    path = data.draw(st.sampled_from(paths), label="path")
    value = data.draw(st.just(...) | _json, label="value")
    corrupted = _with(path, value)
    try:
        spec = TopologySpec.from_dict(corrupted)
    except TopologyError:
        return
    assert TopologySpec.from_dict(spec.to_dict()) == spec


# -- random valid topologies -----------------------------------------------------------

_GROUPINGS = ["shuffle", "fields", "all", "global", "none", "local_or_shuffle", "partial_key", "direct"]
_DEFAULT_FIELDS = ("a", "b", "c")


@st.composite
def shapes(draw: st.DrawFn) -> list[dict]:
    """A random DAG: 1-2 spouts, then 0-5 bolts each subscribing to 1-3 earlier components,
    with random par/tasks, groupings (fields on random declared fields) and config."""
    names = draw(st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True), min_size=2, max_size=7, unique=True))
    n_spouts = draw(st.integers(1, min(2, len(names) - 1)))
    comps: list[dict] = []
    for k, name in enumerate(names):
        par = draw(st.integers(1, 4))
        comp = {
            "name": name,
            "kind": "spout" if k < n_spouts else "bolt",
            "par": par,
            "tasks": par + draw(st.integers(0, 3)),
            "inputs": [],
            "config": draw(
                st.dictionaries(st.sampled_from(["x.a", "x.b"]), st.integers(0, 9) | st.text(max_size=3), max_size=2)
            ),
        }
        if comp["kind"] == "bolt":
            sources = draw(st.lists(st.sampled_from(names[:k]), min_size=1, max_size=3, unique=True))
            for src in sources:
                g = draw(st.sampled_from(_GROUPINGS))
                fields = ()
                if g in ("fields", "partial_key"):
                    fields = tuple(
                        draw(st.lists(st.sampled_from(_DEFAULT_FIELDS), min_size=1, max_size=3, unique=True))
                    )
                comp["inputs"].append((src, "d" if g == "direct" else "default", GroupingSpec(g, fields)))
        comps.append(comp)
    return comps


_OUTPUTS = (StreamSpec("default", _DEFAULT_FIELDS), StreamSpec("d", ("a",), direct=True))


def _spec_of(shape: list[dict], topo_config: dict) -> TopologySpec:
    return TopologySpec(
        "random",
        tuple(
            ComponentSpec(
                c["name"],
                c["kind"],
                f"m:{c['name']}",
                c["par"],
                c["tasks"],
                tuple(InputSpec(*i) for i in c["inputs"]),
                _OUTPUTS,
                tuple(sorted(c["config"].items())),
            )
            for c in shape
        ),
        tuple(sorted(topo_config.items())),
    )


class RSpout(Spout):
    outputs = [Stream(fields=list(_DEFAULT_FIELDS)), Stream(fields=["a"], name="d", direct=True)]


class RBolt(Bolt):
    outputs = RSpout.outputs

    def process(self, tup: Any) -> None:
        pass


def _dsl_of(shape: list[dict], topo_config: dict) -> type[Topology]:
    attrs: dict[str, Any] = {"name": "random", "config": topo_config}
    for c in shape:
        cls = RSpout if c["kind"] == "spout" else RBolt
        inputs = {attrs[src][stream] if stream != "default" else attrs[src]: g for src, stream, g in c["inputs"]}
        attrs[c["name"]] = cls.spec(inputs=inputs or None, par=c["par"], tasks=c["tasks"], config=c["config"])
    return type("RandomTopology", (Topology,), attrs)


_topo_config = st.dictionaries(
    st.sampled_from(["topology.workers", "topology.message.timeout.secs", "t.list"]),
    st.integers(1, 9) | st.lists(st.integers(0, 3), max_size=2),
    max_size=3,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes(), _topo_config)
def test_random_valid_specs_round_trip_and_number_tasks_like_storm(shape: list[dict], config: dict) -> None:
    spec = _spec_of(shape, config)
    _assert_round_trips(spec)
    # Tasks 1..N, contiguous per component, components in name order.
    ranges = spec.task_ranges()
    names = sorted(c["name"] for c in shape)
    assert list(ranges) == names
    flat = [t for n in names for t in ranges[n]]
    assert flat == list(range(1, sum(c["tasks"] for c in shape) + 1))
    # Executors: contiguous, covering each component's range, sizes differing by at most one
    # with the larger ones first (tasks % par of them).
    executors = spec.executors()
    assert [e.id for e in executors] == list(range(len(executors)))
    for c in shape:
        mine = [e for e in executors if e.component == c["name"]]
        assert len(mine) == c["par"]
        assert [t for e in mine for t in e.tasks] == list(ranges[c["name"]])
        sizes = [len(e.tasks) for e in mine]
        base, extra = divmod(c["tasks"], c["par"])
        assert sizes == [base + 1] * extra + [base] * (c["par"] - extra)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes(), _topo_config)
def test_random_dsl_topologies_build_the_same_graph_and_round_trip(shape: list[dict], config: dict) -> None:
    topo = _dsl_of(shape, config)
    spec = topo.spec
    _assert_round_trips(spec)
    direct = _spec_of(shape, config)
    # Same graph as the spec built directly; only the class references differ.
    assert [(c.name, c.kind, c.par, c.tasks, c.inputs, c.outputs, c.config_items) for c in spec.components] == [
        (c.name, c.kind, c.par, c.tasks, c.inputs, c.outputs, c.config_items) for c in direct.components
    ]
    assert spec.config == config
    assert set(topo.classes) == {c["name"] for c in shape}
