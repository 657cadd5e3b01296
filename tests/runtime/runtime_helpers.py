"""Shared helpers for the executor-engine tests: a fake clock and a way to run an engine to
quiescence without sleeping, plus accessors for the component instances it runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from squall.supervisor.runtime.engine import Engine
from squall.topology.dsl import Topology


class FakeClock:
    """A monotonic clock that only moves when a test advances it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def start_engine(
    topology: type[Topology],
    conf: Mapping[str, Any] | None = None,
    clock: FakeClock | None = None,
    **kwargs: Any,
) -> Engine:
    """Build and start an engine for ``topology`` on a fake clock (a new one unless given)."""
    engine = Engine(topology.spec, topology.classes, conf, clock=clock or FakeClock(), **kwargs)
    engine.start()
    return engine


def pump(engine: Engine, max_rounds: int = 10_000) -> int:
    """Run rounds until the engine is quiescent at the current clock; return rounds run.

    Quiescent: a round did nothing (spouts emitted nothing and received no outcome, bolts and
    ackers had nothing queued) and no timer queued anything (tick tuples) at its end.
    """
    for rounds in range(1, max_rounds + 1):
        if engine.run_once() == 0 and not any(ex.inbox for ex in engine.executors):
            return rounds
    raise AssertionError(f"engine still busy after {max_rounds} rounds")


def instances(engine: Engine, component: str) -> list[Any]:
    """Every task instance of ``component``, in task order."""
    return [inst for task, inst in sorted(by_task(engine, component).items())]


def by_task(engine: Engine, component: str) -> dict[int, Any]:
    """Task id -> instance for ``component``."""
    out: dict[int, Any] = {}
    for ex in engine.executors:
        if ex.component == component:
            out.update(ex.instances)
    return out


def only(engine: Engine, component: str) -> Any:
    """The single task instance of ``component``."""
    (inst,) = instances(engine, component)
    return inst


def summary(engine: Engine, component: str) -> Any:
    """The engine's summary row for ``component``."""
    return next(s for s in engine.summary() if s.component == component)
