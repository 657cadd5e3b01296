"""The user API: components, groupings, the topology DSL, validation and the serialisable spec.

Users import it from the top level: ``from squall import Topology, Spout, Bolt, Grouping, Stream``.

The names below are resolved lazily (as in ``squall``): importing one submodule, such as
``squall.topology.order`` from the schedulers, does not load the DSL.
"""

from __future__ import annotations

_NAMES = {
    "BatchingBolt": "squall.topology.batching",
    "TicklessBatchingBolt": "squall.topology.batching",
    "Bolt": "squall.topology.component",
    "Context": "squall.topology.component",
    "Spout": "squall.topology.component",
    "Stream": "squall.topology.component",
    "Tuple": "squall.topology.component",
    "Topology": "squall.topology.dsl",
    "EmitError": "squall.topology.errors",
    "TopologyError": "squall.topology.errors",
    "Grouping": "squall.topology.grouping",
    "ReliableSpout": "squall.topology.reliable",
    "TopologySpec": "squall.topology.spec",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    module_name = _NAMES.get(name)
    if module_name is None:
        raise AttributeError(f"module 'squall.topology' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
