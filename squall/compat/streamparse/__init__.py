"""streamparse on Squall: ``from squall.compat.streamparse import Spout, Bolt, Topology,
Grouping, Stream`` as ``from streamparse import ...``, with the same module paths
(``.storm``, ``.bolt``, ``.spout``, ``.component``, ``.dsl``) and signatures.

What differs (docs/porting.md): ``emit`` always returns the task ids; ``JavaBolt``,
``JavaSpout``, ``ShellBolt``, ``ShellSpout`` and custom Java groupings are refused with the
reason; ``sparse`` commands are ``squall`` commands (``squall local``, ``squall submit``).
"""

from squall.compat.streamparse import bolt, component, dsl, spout, storm
from squall.compat.streamparse.dsl import Grouping, Stream, Topology
from squall.compat.streamparse.storm import (
    BatchingBolt,
    Bolt,
    JavaBolt,
    JavaSpout,
    ReliableSpout,
    ShellBolt,
    ShellSpout,
    Spout,
    TicklessBatchingBolt,
    Tuple,
)

__all__ = [
    "BatchingBolt",
    "Bolt",
    "Grouping",
    "JavaBolt",
    "JavaSpout",
    "ReliableSpout",
    "ShellBolt",
    "ShellSpout",
    "Spout",
    "Stream",
    "TicklessBatchingBolt",
    "Topology",
    "Tuple",
    "bolt",
    "component",
    "dsl",
    "spout",
    "storm",
]
