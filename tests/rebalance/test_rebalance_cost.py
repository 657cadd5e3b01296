"""evaluate() and the apply rule."""

from __future__ import annotations

import math

import pytest

from squall.rebalance import Assignment, Cost, InfeasibleError, InvalidInputError, evaluate, should_apply
from tests.rebalance.rebalance_helpers import nodes, wl

W = wl("t", 2, ["a", "a", "b", "b"], [(0, 2, 100.0), (1, 3, 50.0), (0, 1, 7.0)], [1e8, 2e8, 3e8, 4e8])
CLUSTER = nodes(("n1", 2, 5e8), ("n2", 2, 1e9), ("n3", 1, 1e9))


def test_evaluate_counts_traffic_across_workers_and_nodes():
    # workers: 0 = {0, 1} on n1, 1 = {2}, 2 = {3} on n2
    a = Assignment.of(
        {("t", 0): 0, ("t", 1): 0, ("t", 2): 1, ("t", 3): 2}, {("t", 0): "n1", ("t", 1): "n2", ("t", 2): "n2"}
    )
    cost = evaluate(a, [W], CLUSTER)
    assert cost.inter_worker_tps == 150.0  # 0->2 and 1->3; 0->1 is inside worker 0
    assert cost.inter_node_tps == 150.0
    assert cost.node_load_hz == (("n1", 3e8), ("n2", 7e8), ("n3", 0.0))
    assert cost.overloaded == ()


def test_evaluate_reports_overload_with_its_size():
    a = Assignment.of({("t", e): 0 for e in range(4)}, {("t", 0): "n1"})
    cost = evaluate(a, [W], CLUSTER)
    assert cost.inter_worker_tps == 0.0 and cost.overloaded == ("n1",)
    assert math.isclose(cost.overload_hz, 1e9 - 5e8)


def test_evaluate_rejects_missing_executors_and_unknown_nodes():
    with pytest.raises(InvalidInputError, match="executor 3 is not in the assignment"):
        evaluate(Assignment.of({("t", e): 0 for e in range(3)}, {("t", 0): "n1"}), [W], CLUSTER)
    with pytest.raises(InfeasibleError, match="'mars'"):
        evaluate(Assignment.of({("t", e): 0 for e in range(4)}, {("t", 0): "mars"}), [W], CLUSTER)


def cost(inter_node: float, overload: float = 0.0) -> Cost:
    over = ("n1",) if overload > 0 else ()
    return Cost(inter_node, inter_node, (("n1", 0.0),), over, overload)


@pytest.mark.parametrize(
    "current, proposed, seconds, apply",
    [
        pytest.param(cost(1000), cost(100), 10, False, id="too soon after the last change"),
        pytest.param(cost(1000), cost(900), 60, True, id="exactly 10% less traffic applies"),
        pytest.param(cost(1000), cost(901), 60, False, id="just under 10% less does not"),
        pytest.param(cost(1000), cost(500), math.inf, True, id="never applied before counts as long ago"),
        pytest.param(cost(0), cost(0), 600, False, id="nothing to gain from no traffic"),
        pytest.param(cost(1000, 5e8), cost(1200, 1e8), 60, True, id="relieving overload wins over traffic"),
        pytest.param(cost(1000, 5e8), cost(1000, 5e8), 60, False, id="moving overload around is not relief"),
        pytest.param(cost(1000), cost(100, 1e8), 60, False, id="never trade traffic for new overload"),
    ],
)
def test_apply_rule(current, proposed, seconds, apply):
    decision = should_apply(current, proposed, seconds)
    assert decision.apply is apply
    assert decision.reason


def test_apply_rule_with_zero_improvement_still_needs_a_strict_gain():
    assert not should_apply(cost(1000), cost(1000), 100, improvement_pct=0).apply
    assert should_apply(cost(1000), cost(999), 100, improvement_pct=0).apply


def test_apply_rule_rejects_nonsense_settings():
    with pytest.raises(InvalidInputError):
        should_apply(cost(1), cost(0), 100, improvement_pct=150)
