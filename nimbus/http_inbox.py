"""What stands between the HTTP threads and Nimbus: the loop inbox and the key hook.

:class:`LoopInbox` carries requests from any thread to the server loop that owns
``NimbusState`` and their replies back; :class:`KeyCheck` guards writes with the cluster key
(refusing every write when none is configured) and :func:`cross_origin` refuses writes a
browser sends on behalf of another site. Neither touches the state itself.
"""

from __future__ import annotations

import hmac
import itertools
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

from squall import messages as M
from squall.nimbus.commands import Send

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
    """One request in the inbox. ``taken`` (by the loop) and ``withdrawn`` (by a caller that
    gave up) exclude each other under ``lock``: a request is either handled or dropped."""

    def __init__(self, job: Any) -> None:
        self.job = job
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.taken = False
        self.withdrawn = False
        self.result: Any = None
        self.error: BaseException | None = None


class LoopInbox:
    """Requests from other threads, handled on the loop that owns the state.

    ``submit`` (any thread) enqueues a request message and waits for its reply; ``drain``
    (the server loop) handles everything queued and returns the commands meant for real peers.
    The HTTP threads never touch the state, so they need no lock the loop could wait on (reads
    need no inbox at all: they use the snapshot the loop publishes).

    A request whose caller stops waiting (504) is withdrawn if the loop has not taken it yet,
    and never applied; one the loop already took is awaited to its end and reported, so a
    write is never both refused and applied.
    """

    PEER = b"\x00http-api"

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._rids = itertools.count(1)
        self._rid_lock = threading.Lock()
        self.withdrawn = 0  # requests dropped because their caller timed out (a counter for tests and logs)
        self.wake: Callable[[], None] = lambda: None  # the loop sets this to cut its poll short

    def submit(self, make: Callable[..., Any], timeout_s: float = REPLY_TIMEOUT_S, **fields: Any) -> M.Reply:
        with self._rid_lock:
            rid = next(self._rids)
        reply = self._await(_Pending(make(rid=rid, **fields)), timeout_s)
        assert isinstance(reply, M.Reply)
        return reply

    def _await(self, pending: _Pending, timeout_s: float) -> Any:
        self._queue.put(pending)
        self.wake()
        if not pending.done.wait(timeout_s):
            with pending.lock:
                if not pending.taken:
                    pending.withdrawn = True
                    self.withdrawn += 1
            if pending.withdrawn:
                raise ApiError(
                    504,
                    f"Nimbus did not take the request within {timeout_s:g} s; it was withdrawn and will not be applied",
                )
            pending.done.wait()  # the loop is handling it now: report what it did
        if pending.error is not None:
            raise pending.error
        return pending.result

    def drain(self, handle: Callable[[bytes, Any], list[Send]]) -> list[Send]:
        """Handle every queued request through ``handle``; its error goes to its caller."""
        out: list[Send] = []
        while True:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                return out
            with pending.lock:
                if pending.withdrawn:
                    continue
                pending.taken = True
            try:
                pending.result = self._handle_message(handle, pending.job, out)
            except Exception as exc:  # the caller gets it; the loop keeps going
                pending.error = exc
            finally:
                pending.done.set()

    def _handle_message(self, handle: Callable[[bytes, Any], list[Send]], msg: Any, out: list[Send]) -> M.Reply:
        reply: M.Reply | None = None
        for cmd in handle(self.PEER, msg):
            if cmd.peer == self.PEER:
                if isinstance(cmd.msg, M.Reply) and cmd.msg.rid == msg.rid:
                    reply = cmd.msg
            else:
                out.append(cmd)
        return reply or M.Reply(rid=msg.rid, ok=False, error="Nimbus sent no reply")


# -- the key hook --------------------------------------------------------------------------


class KeyCheck:
    """Compares ``X-Squall-Key`` with the configured key. Never open: without a key every
    write is refused (401), so a forgotten setting fails closed."""

    def __init__(self, key: str | None) -> None:
        self.key = key or None

    @classmethod
    def from_conf(cls, conf: dict[str, Any], fallback: str | None = None) -> KeyCheck:
        """The explicit key (config, then environment), else ``fallback`` (the cluster keys'
        API token, see ``squall keygen --print-token``, or the token Nimbus wrote to its data
        directory), else none: every write refused."""
        key = conf.get(KEY_CONF) or os.environ.get(KEY_ENV) or fallback or None
        return cls(str(key) if key else None)

    def check(self, headers: Any) -> None:
        if self.key is None:
            raise ApiError(
                401,
                f"this Nimbus has no REST API key, so it takes no writes; set {KEY_CONF} "
                f"(or ${KEY_ENV}) and send it in the {KEY_HEADER} header",
            )
        given = headers.get(KEY_HEADER)
        if not given:
            raise ApiError(401, f"this cluster has a key: send it in the {KEY_HEADER} header")
        if not hmac.compare_digest(given.encode(), self.key.encode()):
            raise ApiError(403, f"wrong {KEY_HEADER}")


def cross_origin(headers: Any) -> str | None:
    """Why a write is cross-origin (None when it is not): a browser sends ``Origin`` with
    every cross-site POST; a page of this Nimbus has the same host:port as ``Host``, and
    command-line clients send no ``Origin`` at all."""
    origin = headers.get("Origin")
    if origin is None:
        return None
    from urllib.parse import urlsplit

    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        netloc = ""
    host = headers.get("Host") or ""
    if origin == "null" or not netloc or netloc.lower() != host.lower():
        return f"cross-origin write refused (Origin {origin[:100]!r} is not this Nimbus, {host[:100]!r})"
    return None
