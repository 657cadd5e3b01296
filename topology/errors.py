"""Errors raised by the user API, each naming the component or stream at fault."""

from __future__ import annotations


class TopologyError(ValueError):
    """An invalid topology: the message names the component (and stream) at fault."""


class EmitError(ValueError):
    """An emit that does not match its stream's declaration (arity, direct task, stream)."""
