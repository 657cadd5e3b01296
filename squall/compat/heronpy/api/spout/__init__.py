"""heronpy's ``heronpy.api.spout``."""

from squall.compat.heronpy.api.spout.spout import Spout

__all__ = ["Spout"]
