"""The user API: components, groupings, the topology DSL, validation and the serialisable spec.

Users import it from the top level: ``from squall import Topology, Spout, Bolt, Grouping, Stream``.
"""

from squall.topology.batching import BatchingBolt, TicklessBatchingBolt
from squall.topology.component import Bolt, Context, Spout, Stream, Tuple
from squall.topology.dsl import Topology
from squall.topology.errors import EmitError, TopologyError
from squall.topology.grouping import Grouping
from squall.topology.reliable import ReliableSpout
from squall.topology.spec import TopologySpec

__all__ = [
    "BatchingBolt",
    "Bolt",
    "Context",
    "EmitError",
    "Grouping",
    "ReliableSpout",
    "Spout",
    "Stream",
    "Topology",
    "TopologyError",
    "TicklessBatchingBolt",
    "TopologySpec",
    "Tuple",
]
