"""How long Nimbus's loop can wait for the interpreter lock: at most ``SWITCH_S`` per turn.

The loop shares the GIL with the HTTP threads, which render pages and sample the charts' history
from snapshots (at 500 boards one sample of the rates takes ~0.6 s of CPU). CPython hands the
GIL to a waiting thread only every ``sys.getswitchinterval()`` (5 ms by default), and the loop
asks for it again after every message it sends or receives: next to one busy thread, each of
its 500 heartbeats a second waited up to 5 ms for it, the loop fell behind, and a request waited
behind a round of every board's messages (seen as loop lag of hundreds of ms while the history
sampled). With ``SWITCH_S`` the busy thread yields ten times as often; the loop's wait per turn
is at most that, at the cost of more switches for the busy thread (which is not in a hurry).
Process-wide, as the interval is: the first ``install`` sets it, the last ``close`` puts back
what it found.
"""

from __future__ import annotations

import sys

from squall.nimbus.process_setting import SharedSetting

SWITCH_S = 0.0005

_SWITCH_INTERVAL = SharedSetting(sys.getswitchinterval, sys.setswitchinterval)


class ShortSwitches:
    """See the module docstring."""

    def __init__(self, switch_s: float = SWITCH_S) -> None:
        self.switch_s = switch_s
        self._active = False

    def install(self) -> None:
        if self._active:
            return
        _SWITCH_INTERVAL.acquire(lambda _saved: self.switch_s)
        self._active = True

    def close(self) -> None:
        if not self._active:
            return
        self._active = False
        _SWITCH_INTERVAL.release()
