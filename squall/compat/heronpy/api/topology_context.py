"""heronpy's ``TopologyContext``: what a component's ``initialize`` gets as ``context``."""

from __future__ import annotations

from typing import Any

from squall.compat._adapt import not_in_squall
from squall.compat.heronpy.api.metrics import IMetric, register
from squall.topology.component import Context

__all__ = ["TopologyContext"]


class TopologyContext:
    """Read-only facts about the running task, with heronpy's method names."""

    def __init__(self, context: Context, config: dict[str, Any]) -> None:
        self._context = context
        self._config = config

    def get_task_id(self) -> int:
        return self._context.task

    def get_component_id(self) -> str:
        return self._context.component

    def get_cluster_config(self) -> dict[str, Any]:
        return dict(self._config)

    def get_topology_name(self) -> str:
        return self._context.topology

    def get_component_tasks(self, component_id: str) -> list[int]:
        return sorted(t for t, c in self._context.task_to_component.items() if c == component_id)

    def register_metric(self, name: str, metric: IMetric, time_bucket_in_sec: int) -> None:
        """Keep ``metric`` as ``<component>.<task>.<name>``; ``squall local`` prints it at the end."""
        register(f"{self._context.component}.{self._context.task}.{name}", metric)

    def add_task_hook(self, task_hook: Any) -> None:
        raise not_in_squall("a task hook", "Squall's executors do not call per-tuple hooks")

    def __repr__(self) -> str:
        c = self._context
        return f"TopologyContext(topology={c.topology!r}, component={c.component!r}, task={c.task})"


def heron_context(component: Any, config: dict, ctx: Context) -> TopologyContext:
    return TopologyContext(ctx, config)
