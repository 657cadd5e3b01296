"""Shared by the supervisor tests that talk to a daemon through the fake Nimbus."""

from __future__ import annotations

import time
from typing import Any

import zmq

from squall.wire import decode


def recv(sock: zmq.Socket, kind: type, timeout_s: float = 5.0) -> tuple[bytes, Any]:
    """The next message of type ``kind`` the fake Nimbus receives (others are skipped), with
    the sender's identity; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sock.poll(100):
            peer, frame = sock.recv_multipart()
            msg = decode(frame)
            if isinstance(msg, kind):
                return peer, msg
    raise AssertionError(f"no {kind.__name__} within {timeout_s} s")
