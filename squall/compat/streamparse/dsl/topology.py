"""streamparse's ``Topology``: Squall's DSL is the same shape (components as class
attributes, a ``config`` dict), so it is Squall's class."""

from squall.topology.dsl import Topology

__all__ = ["Topology"]
