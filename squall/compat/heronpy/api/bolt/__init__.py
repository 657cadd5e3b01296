"""heronpy's ``heronpy.api.bolt``."""

from squall.compat.heronpy.api.bolt.bolt import Bolt

__all__ = ["Bolt"]
