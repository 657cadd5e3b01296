"""Tick tuples: ``topology.tick.tuple.freq.secs`` makes the engine call ``process_tick`` on
every task of a bolt at that period — never ``process`` — and only for bolts configured so."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from squall import Bolt, Topology, Tuple
from squall.topology.testing import ListSpout
from tests.runtime.runtime_helpers import FakeClock, by_task, pump, start_engine, summary

TICK = "topology.tick.tuple.freq.secs"


class Quiet(ListSpout):
    outputs = ["n"]
    items = [[1], [2]]


class TickRecorder(Bolt):
    """Records ticks and processed tuples separately."""

    def initialize(self, conf: dict, ctx: Any) -> None:
        self.ticks: list[Tuple] = []
        self.processed: list[Tuple] = []

    def process(self, tup: Tuple) -> None:
        self.processed.append(tup)

    def process_tick(self, tup: Tuple) -> None:
        self.ticks.append(tup)


class TickRaises(TickRecorder):
    def process_tick(self, tup: Tuple) -> None:
        super().process_tick(tup)
        raise RuntimeError("tick bug")


def _topology(ticked: type[Bolt] = TickRecorder, config: dict | None = None, ticked_config: dict | None = None):
    spout = Quiet.spec()
    ticked_spec = ticked.spec(inputs=[spout], par=2, tasks=3, config=ticked_config)
    plain = TickRecorder.spec(inputs=[spout])
    return type(
        "Ticks", (Topology,), {"config": dict(config or {}), "spout": spout, "ticked": ticked_spec, "plain": plain}
    )


def _ticks(engine: Any, component: str) -> dict[int, int]:
    return {task: len(inst.ticks) for task, inst in by_task(engine, component).items()}


def ticks_after(engine: Any, clock: FakeClock, seconds: float, component: str = "ticked") -> set[int]:
    """Advance the fake clock by ``seconds``, run the engine until idle, and return the
    distinct tick counts of ``component``'s tasks (one value: every task got as many)."""
    clock.advance(seconds)
    pump(engine)
    return set(_ticks(engine, component).values())


def test_ticks_call_process_tick_on_every_task_at_the_configured_period() -> None:
    clock = FakeClock()
    engine = start_engine(_topology(ticked_config={TICK: 2.0}), clock=clock)
    assert ticks_after(engine, clock, 0.0) == {0}
    assert ticks_after(engine, clock, 1.9) == {0}
    assert ticks_after(engine, clock, 0.1) == {1}
    assert ticks_after(engine, clock, 2.0) == {2}
    assert len(_ticks(engine, "ticked")) == 3  # all three tasks, over two executors
    ticked = by_task(engine, "ticked").values()
    # process saw only the two data tuples, never a tick.
    assert sorted(t.values[0] for inst in ticked for t in inst.processed) == [1, 2]
    tick = next(iter(ticked)).ticks[0]
    assert tick.is_tick and tick.stream == "__tick" and tick.component == "__system"
    assert tick.values == [2.0] and tick["freq"] == 2.0


def test_bolts_without_tick_config_get_no_ticks() -> None:
    clock = FakeClock()
    engine = start_engine(_topology(ticked_config={TICK: 1.0}), clock=clock)
    assert ticks_after(engine, clock, 5.0, "plain") == {0}
    assert not any(inst.processed[0].is_tick for inst in by_task(engine, "plain").values())


@pytest.mark.parametrize("where", ["topology config", "engine conf"])
def test_a_topology_wide_tick_frequency_applies_to_every_bolt(where: str) -> None:
    clock = FakeClock()
    conf = {TICK: 1.0}
    topo = _topology(config=conf if where == "topology config" else None)
    engine = start_engine(topo, conf if where == "engine conf" else None, clock=clock)
    assert ticks_after(engine, clock, 1.0) == {1}
    assert set(_ticks(engine, "plain").values()) == {1}


def test_a_long_stall_yields_one_tick_not_a_burst() -> None:
    clock = FakeClock()
    engine = start_engine(_topology(ticked_config={TICK: 1.0}), clock=clock)
    assert ticks_after(engine, clock, 3.5) == {1}
    assert ticks_after(engine, clock, 1.0) == {2}


def test_a_raising_process_tick_is_counted_logged_once_and_ticks_continue(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    topo = _topology(ticked=TickRaises, ticked_config={TICK: 1.0})
    engine = start_engine(topo, clock=clock)
    with caplog.at_level(logging.ERROR, logger="squall.executor"):
        for _ in range(3):
            clock.advance(1.0)
            pump(engine)
    assert set(_ticks(engine, "ticked").values()) == {3}
    assert summary(engine, "ticked").errors == 9
    # Logged once per task (three tasks), not once per tick.
    records = [r for r in caplog.records if r.name == "squall.executor"]
    assert len(records) == 3
    assert all("process_tick" in r.getMessage() for r in records)


def test_ticks_arrive_on_the_real_clock_too() -> None:
    from squall.supervisor.runtime.engine import Engine

    topo = _topology(ticked_config={TICK: 0.05})
    engine = Engine(topo.spec, topo.classes)
    engine.start()
    engine.run(0.4)
    assert all(n >= 1 for n in _ticks(engine, "ticked").values())
