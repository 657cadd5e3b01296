"""The user API: components, groupings, the topology DSL, validation and the serialisable spec.

Users import it from the top level: ``from squall import Topology, Spout, Bolt, Grouping, Stream``.
"""

from squall.topology.component import Bolt, Context, Spout, Stream, Tuple
from squall.topology.dsl import Topology
from squall.topology.errors import EmitError, TopologyError
from squall.topology.grouping import Grouping
from squall.topology.spec import TopologySpec

__all__ = [
    "Bolt",
    "Context",
    "EmitError",
    "Grouping",
    "Spout",
    "Stream",
    "Topology",
    "TopologyError",
    "TopologySpec",
    "Tuple",
]
