"""streamparse's ``streamparse.dsl``: ``Topology``, ``Grouping``, ``Stream``."""

from squall.compat.streamparse.dsl.stream import Grouping, Stream
from squall.compat.streamparse.dsl.topology import Topology

__all__ = ["Grouping", "Stream", "Topology"]
