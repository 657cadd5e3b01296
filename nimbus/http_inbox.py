"""What stands between the HTTP threads and Nimbus: the loop inbox and the key hook.

:class:`LoopInbox` carries requests from any thread to the server loop that owns
``NimbusState`` and their replies back; :class:`KeyCheck` guards writes with the cluster key
(off when none is configured). Neither touches the state itself.
"""

from __future__ import annotations

import hmac
import itertools
import os
import queue
import threading
from typing import Any, Callable

from squall import messages as M
from squall.nimbus.state import Send

KEY_CONF = "nimbus.http.key"
KEY_ENV = "SQUALL_HTTP_KEY"
KEY_HEADER = "X-Squall-Key"
REPLY_TIMEOUT_S = 10.0


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# -- POSTs into the server loop ------------------------------------------------------------


class _Pending:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: M.Reply | None = None


class LoopInbox:
    """Requests from other threads, handled on the loop that owns the state.

    ``submit`` (any thread) enqueues a request and waits for its reply; ``drain`` (the
    server loop) handles everything queued and returns the commands meant for real peers.
    """

    PEER = b"\x00http-api"

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Any, _Pending]] = queue.SimpleQueue()
        self._rids = itertools.count(1)
        self._rid_lock = threading.Lock()

    def submit(self, make: Callable[..., Any], timeout_s: float = REPLY_TIMEOUT_S, **fields: Any) -> M.Reply:
        with self._rid_lock:
            rid = next(self._rids)
        pending = _Pending()
        self._queue.put((make(rid=rid, **fields), pending))
        if not pending.done.wait(timeout_s):
            raise ApiError(504, f"Nimbus did not handle the request within {timeout_s:g} s")
        assert pending.reply is not None
        return pending.reply

    def drain(self, handle: Callable[[bytes, Any], list[Send]]) -> list[Send]:
        out: list[Send] = []
        while True:
            try:
                msg, pending = self._queue.get_nowait()
            except queue.Empty:
                return out
            for cmd in handle(self.PEER, msg):
                if cmd.peer == self.PEER:
                    if isinstance(cmd.msg, M.Reply) and cmd.msg.rid == msg.rid:
                        pending.reply = cmd.msg
                else:
                    out.append(cmd)
            if pending.reply is None:
                pending.reply = M.Reply(rid=msg.rid, ok=False, error="Nimbus sent no reply")
            pending.done.set()


# -- the key hook --------------------------------------------------------------------------


class KeyCheck:
    """Compares ``X-Squall-Key`` with the configured key; off (always passes) without one."""

    def __init__(self, key: str | None) -> None:
        self.key = key or None

    @classmethod
    def from_conf(cls, conf: dict[str, Any], fallback: str | None = None) -> "KeyCheck":
        """The explicit key (config, then environment), else ``fallback`` (the cluster keys'
        API token, see ``squall keygen --print-token``), else off."""
        key = conf.get(KEY_CONF) or os.environ.get(KEY_ENV) or fallback or None
        return cls(str(key) if key else None)

    def check(self, headers: Any) -> None:
        if self.key is None:
            return
        given = headers.get(KEY_HEADER)
        if not given:
            raise ApiError(401, f"this cluster has a key: send it in the {KEY_HEADER} header")
        if not hmac.compare_digest(given.encode(), self.key.encode()):
            raise ApiError(403, f"wrong {KEY_HEADER}")
