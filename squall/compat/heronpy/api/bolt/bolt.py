"""heronpy's ``Bolt``: ``initialize(config, context)``, ``process(tup)``,
``process_tick(tup)``."""

from __future__ import annotations

from typing import Any

from squall.compat.heronpy.api.bolt.base_bolt import BaseBolt

__all__ = ["Bolt"]


class Bolt(BaseBolt):
    """Subclass and implement ``process``; ack or fail each tuple yourself, as in Heron."""

    def initialize(self, config: dict, context: Any) -> None:
        """Called once per task before any tuple."""
