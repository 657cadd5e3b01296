"""In what order the server loop handles a batch of messages it read from its socket at once.

At hundreds of boards the loop reads heartbeats by the hundred whenever it has fallen behind
(a machine busy elsewhere, a long tick). ZeroMQ's ROUTER hands them out fairly, one per
peer in turn, so a client's request waited behind one message from every board with one
waiting: 500 heartbeats at 0.2-0.6 ms each, the tail of the loop lag. The server reads a batch
of what is waiting (cheap: no decode, no step) and handles every message that is not a
heartbeat first, then the heartbeats.

Guarantee: messages of one peer keep their order. A peer whose heartbeat was put back has
its later messages of the batch put back after it, so a board's registration and
heartbeats, or a client's write and its read, are handled as the peer sent them. Only
messages of different peers, which ZeroMQ never ordered between connections, change places.
A heartbeat that waits behind requests in the same batch is not silence: the ticks judge
silence at the time the socket was last found empty (``Tick.heard_until``), and a batch is
handled whole before the loop ticks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from squall import messages as M

Decoded = tuple[bytes, Any, float]  # (peer, decoded message, seconds its decoding took)


def handling_order(batch: Sequence[Decoded]) -> list[Decoded]:
    """``batch`` (in the order read) with every message that is not a heartbeat, and not
    behind a heartbeat of its own peer, moved ahead of the rest (each part keeping its order)."""
    first: list[Decoded] = []
    later: list[Decoded] = []
    held: set[bytes] = set()  # peers with a heartbeat put back: their later messages follow it
    for item in batch:
        peer, msg, _ = item
        if peer in held or isinstance(msg, M.Heartbeat):
            held.add(peer)
            later.append(item)
        else:
            first.append(item)
    return first + later
