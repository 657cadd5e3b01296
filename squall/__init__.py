"""Squall: a Storm-like stream processor for clusters of small boards.

The user API is re-exported here, so topologies are written as::

    from squall import Topology, Spout, Bolt, Grouping, Stream

The names are resolved lazily: ``import squall.rebalance`` (used by ``squall schedule``)
does not pay for the topology DSL, and no import of ``squall`` loads zmq.
"""

from __future__ import annotations

__version__ = "0.1.0"

_USER_API = {
    "Topology": "squall.topology.dsl",
    "Spout": "squall.topology.component",
    "Bolt": "squall.topology.component",
    "Stream": "squall.topology.component",
    "Tuple": "squall.topology.component",
    "Grouping": "squall.topology.grouping",
    "ReliableSpout": "squall.topology.reliable",
    "BatchingBolt": "squall.topology.batching",
    "TicklessBatchingBolt": "squall.topology.batching",
}

__all__ = ["__version__", *_USER_API]


def __getattr__(name: str):
    module_name = _USER_API.get(name)
    if module_name is None:
        raise AttributeError(f"module 'squall' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
