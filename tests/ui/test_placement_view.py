"""The placement body the page draws its graph from: layers in the one topological order
(served, not recomputed by the page) and the cycles named."""

from __future__ import annotations

from squall.nimbus import http_views
from squall.topology.order import topological_order
from tests.nimbus.nimbus_helpers import chain_spec, cyclic_chain_spec, new_state, register, submit


def placed(spec: dict):
    st = new_state()
    register(st, "n1", [6700, 6701], 0.0)
    submit(st, "t", 1.0, spec=spec)
    return st, st.topologies["t"]


def test_layers_follow_the_flow_and_name_no_cycle_in_a_chain():
    st, rec = placed(chain_spec())
    body = http_views.placement(st, rec)
    assert body["layers"] == [["spout"], ["stage1"], ["stage2"]] and body["cycles"] == []


def test_a_cycle_shares_a_layer_and_is_named():
    st, rec = placed(cyclic_chain_spec())
    body = http_views.placement(st, rec)
    assert body["layers"] == [["spout"], ["stage1", "stage2"]]
    assert [n for layer in body["layers"] for n in layer] == topological_order(
        [c.name for c in rec.spec.components], rec.spec.component_edges()
    )
    assert body["cycles"] == [["stage1", "stage2"], ["stage2"]]
