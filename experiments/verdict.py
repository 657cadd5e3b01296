"""A rebalance's probation, read from Nimbus's event list: is a verdict due, and what was it.

Nimbus puts every applied change that moves executors on probation (``nimbus/probation.py``):
once a full metrics window has been measured under the new placement it compares it with the
window before and keeps the change or rolls it back (a second live migration, to the placement
before). The event of the change then carries ``probation`` (why), ``measured_after`` and
``judged_at`` (Nimbus's wall clock); a roll-back's own event names it in ``rolls_back``.

Pure functions over the list ``client.events(name)`` returns, so the demo and the experiment
runner wait for a verdict the same way, and tests need no Nimbus.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

KEPT = "kept"
ROLLED_BACK = "rolled_back"
ENDED = "ended"  # Nimbus ended the probation without a verdict (a board was lost)
NO_VERDICT = "no verdict"  # the waiter gave up before Nimbus judged


def expects_verdict(event: dict[str, Any]) -> bool:
    """Whether Nimbus put this change on probation: it applied it and it moved executors
    (a change that moves nothing leaves nothing to judge; a move back of a rolled-back change,
    which names it in ``rolls_back``, is not judged again)."""
    if event.get("rolls_back") is not None:
        return False
    return event.get("decision") in ("applied", ROLLED_BACK) and bool(event.get("moved"))


def find(events: Sequence[dict[str, Any]], event_id: int) -> dict[str, Any] | None:
    return next((e for e in events if e.get("id") == event_id), None)


def judged(events: Sequence[dict[str, Any]], event_id: int) -> dict[str, Any] | None:
    """The event ``event_id`` once its probation is over: kept, or rolled back *and* the
    move back finished (or declined), so what runs next is settled. None until then."""
    event = find(events, event_id)
    if event is None or "probation" not in event:
        return None
    if event.get("decision") != ROLLED_BACK:
        return event
    for later in events:
        if later.get("rolls_back") == event_id:
            return event if later.get("done_at") or later.get("decision") == "declined" else None
    return None


def outcome(event: dict[str, Any]) -> str:
    """``kept``, ``rolled_back``, ``ended`` (judged by nobody) or "" (not judged yet)."""
    if event.get("decision") == ROLLED_BACK:
        return ROLLED_BACK
    why = event.get("probation")
    if why is None:
        return ""
    return ENDED if str(why).startswith("ended") else KEPT
