"""heronpy's ``HeronComponentSpec``: what ``Spout.spec`` and ``Bolt.spec`` return (Squall's
component builder; ``spec["stream"]`` names one of its streams)."""

from squall.topology.dsl import ComponentBuilder as HeronComponentSpec

__all__ = ["HeronComponentSpec"]
