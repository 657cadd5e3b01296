"""What happens to Nimbus, as values: the inputs of its state machine.

Each event carries its own time, so the state never reads a clock and a log of events
replays to the same decisions (``NimbusState.step``): ``now`` is the server's steady clock
(wall time at start, advanced by the monotonic clock), used for timeouts and for the
timestamps Nimbus stores.

Requests from the CLI, the REST API and supervisors (submit, kill, rebalance, activate,
register, heartbeat, queries) arrive as :class:`Received`, holding the typed message of
:mod:`squall.messages`; a board lost, a kill or rebalance whose wait ended, a due loop
evaluation or migration timeout are noticed on a :class:`Tick`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Received:
    """A decoded control-plane message ``msg`` from ``peer`` (a ROUTER identity)."""

    peer: bytes
    msg: Any
    now: float


@dataclass(frozen=True)
class Tick:
    """Time passed: it is now ``now``. ``heard_until``: the server had read every message
    that reached its host before this time (None: up to ``now``), as its own probe proves
    (``nimbus.server``); about 0.1 s before ``now`` when nothing waits, earlier behind a
    backlog of unread messages or a stalled ZeroMQ I/O thread. A board's silence is judged
    against it, not against ``now``: a heartbeat still waiting for the loop is not silence."""

    now: float
    heard_until: float | None = None


Event = Received | Tick
