"""streamparse's ``streamparse.storm``: the component classes."""

from squall.compat.streamparse.storm.bolt import BatchingBolt, Bolt, JavaBolt, ShellBolt, TicklessBatchingBolt
from squall.compat.streamparse.storm.component import Component
from squall.compat.streamparse.storm.spout import JavaSpout, ReliableSpout, ShellSpout, Spout
from squall.topology.component import Tuple

__all__ = [
    "BatchingBolt",
    "Bolt",
    "Component",
    "JavaBolt",
    "JavaSpout",
    "ReliableSpout",
    "ShellBolt",
    "ShellSpout",
    "Spout",
    "TicklessBatchingBolt",
    "Tuple",
]
