"""The latency model and the ``latency`` scheduler on small, hand-checkable cases.

Each case states what a user of the model would expect (ids say the intent); the numbers
are computed by hand from the formulas in ``squall.rebalance.latency``.
"""

from __future__ import annotations

import pytest

from squall.rebalance import Assignment, Executor, InvalidInputError, Node, SchedulerParams, Workload, get_scheduler
from squall.rebalance.latency import MAX_UTILISATION, predict
from squall.rebalance.profile import BoardProfile, ExecutorProfile, WorkloadProfile

CLOCK = 1e9


def chain(
    stages: int = 3,
    rate: float = 100.0,
    service_s: float = 1e-4,
    workers: int = 3,
    overhead_cores: float = 0.0,
    transfer_s: float = 0.0,
    item_bytes: float = 0.0,
    flush_s: float = 0.0,
    worker_mb: float = 0.0,
) -> Workload:
    """A chain of ``stages`` single executors 0 -> 1 -> ..., no acker."""
    execs = tuple(Executor(k, f"c{k}", (k + 1, k + 1)) for k in range(stages))
    traffic = tuple((k, k + 1, rate) for k in range(stages - 1))
    profile = WorkloadProfile(
        tuple(ExecutorProfile(k, rate, service_s * CLOCK) for k in range(stages)),
        source_rate=rate,
        sources=(0,),
        worker_overhead_hz=overhead_cores * CLOCK,
        transfer_cycles_per_item=transfer_s * CLOCK,
        item_bytes=item_bytes,
        worker_memory_mb=worker_mb,
        flush_s=flush_s,
    )
    return Workload("t", workers, execs, traffic, tuple(rate * service_s * CLOCK for _ in execs), profile=profile)


def board(name: str, cores: float = 1.0, slots: int = 4, **kw: float) -> Node:
    return Node(name, slots, cores * CLOCK, BoardProfile(cores=cores, clock_hz=CLOCK, **kw))


def placed(groups: dict[int, tuple[str, list[int]]]) -> Assignment:
    """worker -> (node, executors)."""
    return Assignment.of(
        {("t", e): w for w, (_n, es) in groups.items() for e in es}, {("t", w): n for w, (n, _es) in groups.items()}
    )


def test_one_worker_needs_no_hops_so_it_is_faster_when_the_board_is_idle():
    wl = chain(flush_s=0.001, transfer_s=2e-5)
    nodes = [board("a"), board("b"), board("c")]
    together = predict(placed({0: ("a", [0, 1, 2])}), [wl], nodes)
    apart = predict(placed({0: ("a", [0]), 1: ("b", [1]), 2: ("c", [2])}), [wl], nodes)
    assert together.latency_ms["t"] < apart.latency_ms["t"]
    # Two hops each cost the transfer CPU (0.02 ms); at 1% load an item hardly waits in its
    # batch (a worker sends as soon as it is idle), and spreading saves little queueing.
    assert apart.latency_ms["t"] - together.latency_ms["t"] == pytest.approx(2 * 0.02, abs=0.003)


def test_an_item_waits_in_its_batch_while_its_worker_is_busy_up_to_the_flush_delay():
    from squall.rebalance.latency import flush_wait

    assert flush_wait(0.001, 1e-4, 0.0) == 0.0  # idle: sent at once
    assert flush_wait(0.001, 1e-4, 0.5) == pytest.approx(1e-4)  # the rest of a busy period
    assert flush_wait(0.001, 1e-4, 0.99) == pytest.approx(0.001)  # never past the flush delay
    wl_light, wl_busy = chain(rate=100.0, flush_s=0.001), chain(rate=4000.0, flush_s=0.001)
    nodes = [board(n, cores=4.0) for n in "abc"]
    apart = placed({0: ("a", [0]), 1: ("b", [1]), 2: ("c", [2])})
    # Per root tuple the busy chain waits longer in batches (0.4 cores per worker), though
    # each visit's service is the same.
    assert predict(apart, [wl_busy], nodes).latency_ms["t"] > predict(apart, [wl_light], nodes).latency_ms["t"] + 0.1


def test_a_quota_s_stop_delays_a_stay_on_the_board_once_not_every_visit():
    # A board with a quota, throttled 5% of the time at 50% load: one worker,
    # five visits per root tuple, one stay. The stop costs share x (half a stop + the time
    # spent on the board), not five half-stops.
    wl = chain(stages=5, rate=500.0, service_s=2e-4)  # 0.5 cores of work
    capped = board("a", cores=1.0, cpu_period_s=0.1, measured_utilisation=0.5, throttled_share=0.05)
    free = board("a", cores=1.0)
    one = placed({0: ("a", [0, 1, 2, 3, 4])})
    with_stops = predict(one, [wl], [capped]).latency_ms["t"]
    without = predict(one, [wl], [free]).latency_ms["t"]
    share, half_stop = 0.05, 0.1 / 4  # a quota of a whole core or more stops for a quarter period
    assert with_stops - without == pytest.approx(share * (half_stop * 1e3 + without), rel=0.01)


def test_every_wake_up_of_a_worker_waits_for_a_cpu_as_measured_less_what_the_quota_explains():
    from squall.rebalance.latency import board_terms

    # Woken threads waited 2 ms on average; the quota stopped the board 10% of the time, and
    # an arrival during a stop waits half of it (a quarter period: 25 ms): 2 - 0.1 x 25 < 0.
    stops = board("a", cores=1.0, cpu_period_s=0.1, measured_utilisation=0.5, throttled_share=0.1, cpu_wait_ms=2.0)
    assert board_terms(stops, set()).wake_wait_s == 0.0
    assert board_terms(board("a", cpu_wait_ms=2.0), set()).wake_wait_s == pytest.approx(0.002)
    wl = chain(rate=100.0, service_s=1e-4)
    nodes, busy_host = [board("a"), board("b")], [board("a", cpu_wait_ms=1.0), board("b", cpu_wait_ms=1.0)]
    one = placed({0: ("a", [0, 1, 2])})
    two = placed({0: ("a", [0, 1]), 1: ("b", [2])})
    # One worker: no item wakes it (a spout's tuple is timed after its own wake-up); two
    # workers: the second is woken once per root tuple.
    assert predict(one, [wl], busy_host).latency_ms["t"] == pytest.approx(predict(one, [wl], nodes).latency_ms["t"])
    assert predict(two, [wl], busy_host).latency_ms["t"] - predict(two, [wl], nodes).latency_ms["t"] == pytest.approx(
        1.0
    )


def test_utilisation_is_worker_cpu_over_the_boards_cores():
    wl = chain(rate=1000.0, service_s=1e-4, overhead_cores=0.05)  # 3 x 0.1 cores of work
    p = predict(placed({0: ("a", [0, 1, 2])}), [wl], [board("a", cores=2.0)])
    assert p.utilisation["a"] == pytest.approx((0.3 + 0.05) / 2.0)
    assert p.feasible


def test_a_board_above_the_limit_is_a_violation_and_latency_grows_with_load():
    light, heavy = chain(rate=450.0, service_s=1e-3), chain(rate=550.0, service_s=1e-3)
    nodes = [board("a", cores=2.0)]
    one = placed({0: ("a", [0]), 1: ("a", [1]), 2: ("a", [2])})  # three workers, one board
    p_light, p_heavy = predict(one, [light], nodes), predict(one, [heavy], nodes)
    assert p_light.feasible and not p_heavy.feasible  # 1.5 of 2 cores is the limit; 1.65 is over
    assert "utilisation" in p_heavy.violations[0]
    assert p_heavy.latency_ms["t"] > p_light.latency_ms["t"]


def test_a_hop_between_boards_costs_half_their_round_trip():
    # Each board's delay is its share of a round trip (rtt(a, b) = 5 + 3 ms, as a ping
    # between them measures): one way is 4 ms.
    wl = chain(stages=2)
    slow = [board("a", link_delay_ms=5.0), board("b", link_delay_ms=3.0)]
    same = predict(placed({0: ("a", [0]), 1: ("a", [1])}), [wl], slow)
    across = predict(placed({0: ("a", [0]), 1: ("b", [1])}), [wl], slow)
    # The rest (queueing on one board vs two) is a few microseconds.
    assert across.latency_ms["t"] - same.latency_ms["t"] == pytest.approx(4.0, abs=0.01)


def test_memory_is_a_hard_limit():
    wl = chain(worker_mb=400.0)
    nodes = [board("pi3", memory_mb=1000.0), board("pi4", memory_mb=4000.0)]
    p = predict(placed({0: ("pi3", [0]), 1: ("pi3", [1]), 2: ("pi3", [2])}), [wl], nodes)
    assert any("MB" in v for v in p.violations)
    a = get_scheduler("latency").schedule([wl], nodes, SchedulerParams(), None)
    assert predict(a, [wl], nodes).feasible
    assert len(a.workers_on("pi3")) <= 2


@pytest.mark.parametrize(
    "rate, cores, expect_boards",
    [
        pytest.param(100.0, 4.0, 1, id="light load: the whole chain in one worker, no hop"),
        pytest.param(400.0, 0.25, 3, id="small quotas: spread so no board passes the limit"),
    ],
)
def test_the_number_of_boards_falls_out_of_the_objective(rate, cores, expect_boards):
    # Up to 0.16 cores per executor; 50 us of CPU per item crossing workers (this machine
    # measures 100-200 us at low rates, where every item is a frame of its own).
    wl = chain(rate=rate, service_s=4e-4, flush_s=0.001, transfer_s=5e-5)
    nodes = [board(n, cores=cores, slots=1) for n in "abc"]
    a = get_scheduler("latency").schedule([wl], nodes, SchedulerParams(), None)
    p = predict(a, [wl], nodes)
    assert len(a.nodes_used()) == expect_boards
    assert p.feasible and max(p.utilisation.values()) <= MAX_UTILISATION


def test_the_search_never_returns_worse_than_its_seeds():
    wl = chain(stages=5, rate=300.0, service_s=3e-4, flush_s=0.001, transfer_s=2e-5)
    nodes = [board(n, cores=0.6, slots=2) for n in "abcd"]
    latency = get_scheduler("latency").schedule([wl], nodes, SchedulerParams(), None)
    for seed in ("round_robin", "online"):
        other = get_scheduler(seed).schedule([wl], nodes, SchedulerParams(), None)
        mine, theirs = predict(latency, [wl], nodes), predict(other, [wl], nodes)
        assert (round(mine.excess, 9), mine.latency_ms["t"]) <= (round(theirs.excess, 9), theirs.latency_ms["t"])


def test_without_profiles_the_model_says_what_it_assumed():
    wl = Workload("t", 2, (Executor(0, "a"), Executor(1, "b")), ((0, 1, 10.0),), (1e6, 1e6))
    p = predict(placed({0: ("n", [0]), 1: ("n", [1])}), [wl], [Node("n", 2, 1e9)])
    assert p.latency_ms["t"] is None
    assert any("no profile" in a for a in p.assumptions)


def test_profiles_round_trip_and_refuse_bad_figures():
    wl = chain()
    node = board("a", link_mbit=100.0, link_delay_ms=2.0)
    assert Workload.from_dict(wl.to_dict()) == wl
    assert Node.from_dict(node.to_dict()) == node
    with pytest.raises(InvalidInputError, match="cores"):
        BoardProfile(cores=0.0)
    with pytest.raises(InvalidInputError, match="rate"):
        ExecutorProfile(1, float("nan"), 1.0)
    with pytest.raises(InvalidInputError, match="profile.source_rate"):
        Workload.from_dict({**wl.to_dict(), "profile": {"executors": []}})


def test_the_search_s_cached_terms_equal_a_fresh_pricing_after_any_moves():
    from squall.rebalance.latency_network import Network

    wl = chain(stages=6, rate=200.0, service_s=5e-4, flush_s=0.001, transfer_s=2e-5, item_bytes=100.0)
    nodes = [board(n, cores=0.8, slots=3, link_mbit=10.0, link_delay_ms=1.0, memory_mb=500.0) for n in "abc"]
    start = get_scheduler("round_robin").schedule([wl], nodes, SchedulerParams(), None)
    net = Network([wl], nodes)
    state = net.state_of(start)
    moves = [(0, 1), (3, 0), (5, 2), (2, 1), (4, 0)]  # (executor, worker) in a fixed, arbitrary order
    for g, w in moves:
        state.move_executor(g, w)
        state.move_worker(w, (w + 1) % 3)
    fresh = net.state_of(state.to_assignment())
    assert state.objective()[0] == pytest.approx(fresh.objective()[0], abs=1e-9)
    assert state.objective()[1] == pytest.approx(fresh.objective()[1], rel=1e-9)
    assert state.objective()[1] == pytest.approx(sum(state.latency_by_topology()), rel=1e-9)


def _snapshot(state) -> tuple:
    """Everything a state prices from, as plain values (sets sorted)."""
    return (
        list(state.exec_worker),
        list(state.worker_node),
        [list(v) for v in (state.w_na, state.w_nav, state.w_ak, state.w_akv, state.w_src, state.w_count)],
        [list(v) for v in (state.w_cross, state.w_outk, state.w_ink)],
        [list(v) for v in (state.out_bytes, state.in_bytes, state.out_kappa, state.in_kappa)],
        [sorted(d.items()) for d in state.stays_in],
        [sorted(s) for s in state.on_node],
        [sorted(s) for s in state.members],
        list(state.node_lat),
        list(state.node_exc),
        list(state.edge_lat),
        state.total_lat,
        state.total_exc,
    )


def test_pricing_a_move_returns_the_moved_objective_and_leaves_the_state_bit_for_bit():
    from squall.rebalance.latency_network import Network

    wl = chain(stages=6, rate=200.0, service_s=5e-4, flush_s=0.001, transfer_s=2e-5, item_bytes=100.0)
    nodes = [board(n, cores=0.8, slots=3, link_mbit=10.0, link_delay_ms=1.0, memory_mb=500.0) for n in "abc"]
    start = get_scheduler("round_robin").schedule([wl], nodes, SchedulerParams(), None)
    net = Network([wl], nodes)
    state = net.state_of(start, {wl.topology: [0, 1, 2, 3]})  # worker 3: empty, on no board
    empty = state.worker_ids.index((0, 3))
    assert state.w_count[empty] == 0 and state.worker_node[empty] == -1  # the "new worker" move is tried
    before = _snapshot(state)
    tried = 0
    for g in range(len(net.ex_key)):
        for w in range(len(state.worker_ids)):
            if w == state.exec_worker[g]:
                continue
            board_of_new = 1 if w == empty else -1
            priced = state.price_executor_move(g, w, board_of_new)
            assert _snapshot(state) == before, (g, w)
            moved = net.state_of(start, {wl.topology: [0, 1, 2, 3]})
            if board_of_new >= 0:
                moved.move_worker(w, board_of_new)
            moved.move_executor(g, w)
            assert priced == moved.objective(), (g, w)
            tried += 1
    for w in range(len(state.worker_ids)):
        for n in range(len(nodes)):
            if state.w_count[w] and n != state.worker_node[w]:
                priced = state.price_worker_move(w, n)
                assert _snapshot(state) == before, (w, n)
                moved = net.state_of(start, {wl.topology: [0, 1, 2, 3]})
                moved.move_worker(w, n)
                assert priced == moved.objective(), (w, n)
                tried += 1
    assert tried > 20
