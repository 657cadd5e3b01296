"""The two ways a scheduling request can fail.

Both derive from :class:`ValueError`, so a caller that only wants "bad request" can catch
that; the messages name what is wrong with numbers and names, never just "invalid".
"""

from __future__ import annotations


class InvalidInputError(ValueError):
    """A workload, node list or assignment is malformed (duplicate ids, unknown executor,
    negative rate, mismatched lengths). Raised when the value is built, before scheduling."""


class InfeasibleError(ValueError):
    """Well-formed input that cannot be placed: no free slot, a node named in ``current``
    that does not exist, or (with ``strict``) more workers than slots or more load than
    capacity. The message says what does not fit."""
