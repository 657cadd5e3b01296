"""The user API: components, groupings, the topology DSL, validation and the serialisable spec.

Users import it from the top level: ``from squall import Topology, Spout, Bolt, Grouping, Stream``.

The names below are resolved lazily (:mod:`squall.lazy`, as in ``squall``): importing one submodule, such as
``squall.topology.order`` from the schedulers, does not load the DSL.
"""

from __future__ import annotations

from squall.lazy import lazy_names

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
__getattr__ = lazy_names(__name__, _NAMES, globals())
