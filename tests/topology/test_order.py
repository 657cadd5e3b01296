"""The one topological order of components: layers from the sources, names within a layer,
a cycle's members sharing a layer; checked against networkx on random graphs, and used by
the engine and the offline scheduler alike."""

from __future__ import annotations

import itertools
import subprocess
import sys

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squall import Bolt, Spout, Topology
from squall.rebalance import SchedulerParams, offline
from squall.rebalance.model import Executor, Workload
from squall.supervisor.runtime.engine import Engine
from squall.topology.order import topological_layers, topological_order


@pytest.mark.parametrize(
    "components, edges, layers",
    [
        pytest.param("acd", [("a", "c")], [["a", "d"], ["c"]], id="a second spout joins the first layer"),
        pytest.param(
            ["sink", "mid", "src"],
            [("src", "mid"), ("mid", "sink")],
            [["src"], ["mid"], ["sink"]],
            id="a chain in order whatever the names",
        ),
        pytest.param(
            "sabt",
            [("s", "a"), ("a", "b"), ("b", "a"), ("b", "t")],
            [["s"], ["a", "b"], ["t"]],
            id="a cycle shares one layer after its feeder",
        ),
        pytest.param("ab", [("a", "b"), ("b", "a")], [["a", "b"]], id="a cycle with no feeder is a source layer"),
        pytest.param("ab", [("a", "a"), ("a", "b")], [["a"], ["b"]], id="a self-loop is ignored"),
        pytest.param(
            "sab", [("s", "a"), ("s", "b"), ("a", "b")], [["s"], ["a"], ["b"]], id="the longest path sets the layer"
        ),
        pytest.param(
            "ab", [("a", "b"), ("x", "b"), ("b", "y")], [["a"], ["b"]], id="edges to unknown names are ignored"
        ),
        pytest.param("", [], [], id="no component"),
    ],
)
def test_layers_and_order(components, edges, layers) -> None:
    assert topological_layers(components, edges) == layers
    assert topological_order(components, edges) == [n for layer in layers for n in layer]


def test_order_does_not_depend_on_input_order() -> None:
    edges = [("s", "a"), ("a", "b"), ("b", "a"), ("b", "t"), ("u", "t")]
    results = {
        tuple(topological_order(comps, es)) for comps in itertools.permutations("sabtu") for es in (edges, edges[::-1])
    }
    assert results == {("s", "u", "a", "b", "t")}


graphs = st.integers(min_value=1, max_value=9).flatmap(
    lambda n: st.tuples(
        st.just([f"c{k}" for k in range(n)]),
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n),
    )
)


@settings(max_examples=200, deadline=None)
@given(graphs)
def test_layers_match_networkx_generations_of_the_cycle_groups(graph) -> None:
    names, pairs = graph
    edges = [(names[s], names[d]) for s, d in pairs]
    g = nx.DiGraph()
    g.add_nodes_from(names)
    g.add_edges_from((s, d) for s, d in edges if s != d)
    groups = nx.condensation(g)  # a DAG of strongly connected components
    expected = [
        sorted(n for group in generation for n in groups.nodes[group]["members"])
        for generation in nx.topological_generations(groups)
    ]
    assert topological_layers(names, edges) == expected
    order = topological_order(names, edges)
    assert sorted(order) == sorted(names)
    if nx.is_directed_acyclic_graph(g):  # then every edge points forwards
        assert all(order.index(s) < order.index(d) for s, d in g.edges)


class Src(Spout):
    outputs = ["x"]


class Pass(Bolt):
    outputs = ["x"]


class Branch(Topology):
    """Names against the flow: spouts a and d, a -> c -> b (the case the engine and the
    offline scheduler used to order differently)."""

    a = Src.spec()
    d = Src.spec()
    c = Pass.spec(inputs=[a])
    b = Pass.spec(inputs=[c])


def test_the_engine_drains_bolts_in_the_topological_order() -> None:
    spec = Branch.spec
    assert topological_order([c.name for c in spec.components], spec.component_edges()) == ["a", "d", "c", "b"]
    engine = Engine(spec, Branch.classes, {"topology.acker.executors": 0})
    assert [ex.component for ex in engine.spouts] == ["a", "d"]
    assert [ex.component for ex in engine.bolts] == ["c", "b"]


def test_the_offline_scheduler_places_components_in_the_same_order() -> None:
    # One executor per component, four slots and epsilon 0: each component in order opens
    # the next empty slot, so slot k holds the k-th component of the order.
    spec = Branch.spec
    execs = tuple(Executor(k, c.name, (k + 1, k + 1)) for k, c in enumerate(spec.components))
    wl = Workload("t", 4, execs, (), (0.0,) * len(execs), spec.component_edges())
    slots = offline.slots_for_topology(wl, 4, SchedulerParams(epsilon=0.0))
    names = {e.id: e.component for e in execs}
    assert [names[s[0]] for s in slots] == ["a", "d", "c", "b"]


def test_the_order_module_imports_no_networkx_and_no_dsl() -> None:
    code = (
        "import sys, squall.topology.order, squall.rebalance\n"
        "assert 'networkx' not in sys.modules\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('squall.topology'))\n"
        "assert loaded == ['squall.topology', 'squall.topology.order'], loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
