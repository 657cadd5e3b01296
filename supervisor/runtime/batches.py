"""Taking a batch of items off an inbox, and what goes with it.

An executor handles its inbox a batch at a time: the batch is taken off as a list (a loop
over a list costs less per item than ``popleft`` with the checks around it), and items
queued while the batch runs wait for the next one. If the batch is interrupted (an
exception that is not a user error: those are caught per item), what it did not reach goes
back to the front of the inbox, in order.
"""

from __future__ import annotations

from collections import deque
from typing import Any


def take_batch(inbox: deque, limit: int) -> list:
    """Up to ``limit`` items from the front of ``inbox``, removed from it, in order. A loop
    over a list costs less per item than ``popleft`` with the checks around it."""
    if len(inbox) <= limit:
        items = list(inbox)
        inbox.clear()
        return items
    popleft = inbox.popleft
    return [popleft() for _ in range(limit)]


def requeue_rest(inbox: deque, items: list, stopped_at: Any) -> None:
    """Put the items of ``items`` after ``stopped_at`` back at the front of ``inbox``: a batch
    interrupted (KeyboardInterrupt, not a user error: those are caught per tuple) leaves
    what it did not reach queued, as a ``popleft`` loop did. Items are distinct objects (each
    sink call builds its own), so the one in progress is found by identity; when it is none
    of them (stopped before the first), all go back."""
    rest = items
    for i, item in enumerate(items):
        if item is stopped_at:
            rest = items[i + 1 :]
            break
    inbox.extendleft(reversed(rest))
