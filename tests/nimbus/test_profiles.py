"""From measured counters to the latency model's inputs (nimbus/profiles.py): pure, no sockets."""

from __future__ import annotations

import pytest

from squall import messages as M
from squall.nimbus.metrics import MetricsWindow
from squall.nimbus.profiles import BoardWindow, board_profile, honest_load, missing, workload_profile

CLOCK = 1e9


def sample(at: float, process_s: float, transfer_s: float, measured: bool = True) -> M.WorkerMetrics:
    """A worker running executor 0 (spout, 100/s, 0.01 core) and 1 (bolt, 100/s, 0.03 core)
    that sends 100 items/s to another worker, 50 bytes each, and 100 acker items to executor 2."""
    execs = [
        M.ExecutorMetrics(
            0, "spout", emitted=int(100 * at), executed=0, cpu_s=0.01 * at, sent_control={2: int(100 * at)}
        ),
        M.ExecutorMetrics(1, "bolt", executed=int(100 * at), cpu_s=0.03 * at, received_from={0: int(100 * at)}),
    ]
    return M.WorkerMetrics(
        at=at,
        clock_hz=CLOCK,
        executors=execs,
        sent_remote=int(100 * at),
        process_cpu_s=process_s * at if measured else 0.0,
        transfer_cpu_s=transfer_s * at,
        bytes_sent=int(5000 * at),
        rss_bytes=30 * 1024 * 1024,
    )


def rates_of(*samples: M.WorkerMetrics):
    window = MetricsWindow()
    for k, m in enumerate(samples):
        window.add("t", "n1", 6700, m, float(k), 60.0)
    return window.rates("t")


def test_the_whole_process_cpu_is_attributed_to_the_executors():
    rates = rates_of(sample(1.0, 0.10, 0.02), sample(11.0, 0.10, 0.02))
    load = honest_load(rates)
    assert sum(load.values()) / CLOCK == pytest.approx(0.10)  # the process, not the 0.04 of the executors
    assert load[1] > load[0]  # the bolt executed the items; the spout emitted (executed 0)


def test_an_older_worker_without_process_cpu_keeps_the_executor_cpu_and_is_named():
    rates = rates_of(sample(1.0, 0.10, 0.02, measured=False), sample(11.0, 0.10, 0.02, measured=False))
    assert sum(honest_load(rates).values()) / CLOCK == pytest.approx(0.04)
    assert any("no process CPU" in m for m in missing(rates, {"n1": None}))
    assert any("no CPU figures" in m for m in missing(rates, {"n1": None}))


def test_the_profile_has_rates_service_overhead_transfer_and_acker_edges():
    rates = rates_of(sample(1.0, 0.10, 0.02), sample(11.0, 0.10, 0.02))
    assert rates.traffic[(0, 2)] == pytest.approx(100.0) and rates.control == {(0, 2): pytest.approx(100.0)}
    p = workload_profile(rates, [0, 1, 2], sources=[0], ackers=[2])
    assert p is not None
    spout, bolt = p.of(0), p.of(1)
    assert spout.rate == pytest.approx(100.0) and spout.service_cycles == pytest.approx(0.01 * CLOCK / 100)
    assert bolt.service_cycles == pytest.approx(0.03 * CLOCK / 100)
    assert p.source_rate == pytest.approx(100.0)
    assert p.worker_overhead_hz == pytest.approx((0.10 - 0.04 - 0.02) * CLOCK)
    # 100 items/s sent counted once here (the receiver is elsewhere): both ends' CPU per item.
    assert p.transfer_cycles_per_item == pytest.approx(2 * 0.02 * CLOCK / 100)
    assert p.item_bytes == pytest.approx(5000 / 100)  # bytes sent over items sent
    assert p.worker_memory_mb == pytest.approx(30.0)


def test_transfer_cost_and_size_are_per_message_of_the_traffic_matrix_not_per_frame_item():
    """Bulk acking packs many trees' acker messages into one frame item, so a worker's item
    counters fall while the messages the model prices (the traffic matrix) do not: the
    per-message figures divide by messages. Here the worker hands over 20 items/s (100 data
    tuples and 100 acker messages in bulks): 200 messages/s cross."""

    def bulked(at: float) -> M.WorkerMetrics:
        m = sample(at, 0.10, 0.02)
        execs = [
            M.ExecutorMetrics(0, "spout", emitted=int(100 * at), cpu_s=0.01 * at, sent_control={2: int(100 * at)}),
            M.ExecutorMetrics(1, "bolt", executed=int(100 * at), cpu_s=0.03 * at, received_from={5: int(100 * at)}),
        ]
        return M.WorkerMetrics(**{**m.__dict__, "executors": execs, "sent_remote": int(20 * at)})

    rates = rates_of(bulked(1.0), bulked(11.0))
    p = workload_profile(rates, [0, 1, 2, 5], sources=[0, 5], ackers=[2])
    assert p is not None
    # 100 acker messages/s sent, 100 tuples/s received: 200 crossing messages, one end each here.
    assert p.transfer_cycles_per_item == pytest.approx(2 * 0.02 * CLOCK / 200)
    assert p.item_bytes == pytest.approx(5000 / 100)  # bytes sent over the 100 messages sent


def test_board_rates_from_cumulative_samples_and_a_restart():
    def half_core_board(at: float, cpu_s: float, throttled_s: float) -> M.BoardMetrics:
        """A board limited to half a core and 1 GiB by its cgroup."""
        return M.BoardMetrics(
            at=at,
            cpu_s=cpu_s,
            cores=0.5,
            cpu_period_s=0.1,
            throttled_s=throttled_s,
            memory_limit_bytes=1024**3,
            source="cgroup",
        )

    boards = BoardWindow()
    boards.add("n1", half_core_board(at=10.0, cpu_s=1.0, throttled_s=0.0), 0.0, 30.0)
    boards.add("n1", half_core_board(at=20.0, cpu_s=3.0, throttled_s=0.5), 10.0, 30.0)
    r = boards.rates("n1")
    assert r is not None and r.used_cores == pytest.approx(0.2) and r.throttled_share == pytest.approx(0.05)
    prof = board_profile(r, CLOCK, 4, 4096, topology_cores=0.15)
    assert prof.cores == 0.5 and prof.memory_mb == pytest.approx(1024.0)
    assert prof.measured_utilisation == pytest.approx(0.4) and prof.background_cores == pytest.approx(0.05)
    # A supervisor that restarted: its clock and counters start again; no negative rate.
    boards.add("n1", M.BoardMetrics(at=1.0, cpu_s=0.1, cores=0.5), 11.0, 30.0)
    assert boards.rates("n1") is None


def test_without_board_figures_the_registration_is_used():
    prof = board_profile(None, CLOCK, 4, 1024, topology_cores=0.0)
    assert (prof.cores, prof.memory_mb, prof.background_cores) == (4.0, 1024.0, 0.0)


def test_a_board_offers_no_more_slots_than_its_memory_holds_workers():
    from squall.nimbus.placement import node_of
    from squall.nimbus.profiles import BoardRates
    from squall.nimbus.records import SupervisorRecord

    rates = rates_of(sample(1.0, 0.10, 0.02), sample(11.0, 0.10, 0.02))  # workers of 30 MB
    sup = SupervisorRecord("n1", "h", [6700, 6701, 6702, 6703], 1e9, clock_hz=CLOCK, cores=4, memory_mb=4096)
    assert node_of(sup, rates=rates).slots == 4  # no board figures: the ports decide
    sup.board = BoardRates(
        used_cores=0.1,
        cores=1.0,
        cpu_period_s=0.0,
        throttled_share=0.0,
        memory_used_mb=50.0,
        memory_limit_mb=70.0,
        source="cgroup",
    )
    assert node_of(sup, rates=rates).slots == 2  # 70 MB holds two 30 MB workers
    assert node_of(sup).slots == 4  # nothing measured about workers yet


def test_the_loop_threads_wait_for_a_cpu_per_second_they_ran_is_per_board():
    from dataclasses import replace

    from squall.nimbus.profiles import cpu_wait_by_node

    def waited(at: float) -> M.WorkerMetrics:  # woken 200 times/s, waited 0.02 s/s for a CPU
        return replace(sample(at, 0.10, 0.02), loop_cpu_s=0.04 * at, loop_wait_s=0.02 * at, loop_runs=int(200 * at))

    rates = rates_of(waited(1.0), waited(11.0))
    assert cpu_wait_by_node(rates) == {"n1": pytest.approx(0.1)}  # ms per wake-up
    board = board_profile(None, CLOCK, 4, 4096, 0.1, cpu_wait_ms=0.1)
    assert board.cpu_wait_ms == pytest.approx(0.1)
    # A worker of an older version reports no loop figures: its board is left out.
    assert cpu_wait_by_node(rates_of(sample(1.0, 0.1, 0.02), sample(11.0, 0.1, 0.02))) == {}


def test_a_worker_reads_its_own_thread_s_cpu_and_wait():
    import threading

    from squall.supervisor.worker_metrics import thread_schedstat

    before = thread_schedstat(threading.get_native_id())
    sum(k * k for k in range(200_000))  # a few ms of CPU
    after = thread_schedstat(threading.get_native_id())
    if before == (0.0, 0.0, 0):
        pytest.skip("this kernel keeps no per-thread schedstat")
    assert after[0] > before[0] and after[1] >= before[1] and after[2] >= before[2]
