"""Squall: a Storm-like stream processor for clusters of small boards.

The user API is re-exported here, so topologies are written as::

    from squall import Topology, Spout, Bolt, Grouping, Stream

The names are resolved lazily: ``import squall.rebalance`` (used by ``squall schedule``)
does not pay for the topology DSL, and no import of ``squall`` loads zmq.
"""

from __future__ import annotations

from squall.lazy import lazy_names

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
__getattr__ = lazy_names(__name__, _USER_API, globals())
