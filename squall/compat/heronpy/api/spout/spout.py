"""heronpy's ``Spout``: ``initialize(config, context)``, ``next_tuple()``, ``ack(tup_id)``,
``fail(tup_id)``, ``activate()``, ``deactivate()``, ``close()``."""

from __future__ import annotations

from typing import Any

from squall.compat.heronpy.api.spout.base_spout import BaseSpout

__all__ = ["Spout"]


class Spout(BaseSpout):
    """Subclass and implement ``next_tuple``; emit with a ``tup_id`` to track the tuple."""

    def initialize(self, config: dict, context: Any) -> None:
        """Called once per task before ``next_tuple``."""

    def close(self) -> None:
        """Heron calls this when the spout shuts down; Squall does not guarantee the call
        (neither does Heron)."""
