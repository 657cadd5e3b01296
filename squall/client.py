"""A client of Nimbus for the CLI and scripts: one request, one reply, bounded waits.

The Nimbus address comes from the argument, then ``$SQUALL_NIMBUS``, then ``localhost:6627``.
A Nimbus that does not answer within ``timeout_s`` raises ``NimbusUnreachable`` (the CLI
prints it and exits 1): a command never hangs. With ``keys`` the link is CURVE
(``squall.security``); a handshake Nimbus refused (missing or wrong keys) is named as such.
"""

from __future__ import annotations

import builtins
import itertools
import os
from typing import Any

import zmq

from squall import messages as m
from squall.security import ClusterKeys, secure_client
from squall.wire import WireError, decode, encode, limit_of

DEFAULT_NIMBUS = "localhost:6627"


class NimbusUnreachable(ConnectionError):
    pass


class NimbusError(RuntimeError):
    """Nimbus refused the request; the message is its reason."""


def nimbus_address(explicit: str | None = None) -> str:
    addr = explicit or os.environ.get("SQUALL_NIMBUS") or DEFAULT_NIMBUS
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"Nimbus address must be HOST:PORT, got {addr!r}")
    return addr


_MONITOR_IDS = itertools.count(1)


class NimbusClient:
    def __init__(self, address: str | None = None, timeout_s: float = 5.0, keys: ClusterKeys | None = None) -> None:
        self.address = nimbus_address(address)
        self.timeout_s = timeout_s
        self.keys = keys
        self._ctx: zmq.Context = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.MAXMSGSIZE, limit_of("Reply").frame_bytes)  # a reply is the most it expects
        secure_client(self._sock, keys)
        # Handshake events only, to tell "refused our keys" from "not there" on a timeout. The
        # monitor's inproc address is unique per client: pyzmq's default names it after the
        # socket's file descriptor, which a later client reuses while an unclosed client's
        # monitor still holds the name ("Address already in use").
        monitor_addr = f"inproc://squall-client-monitor-{os.getpid()}-{next(_MONITOR_IDS)}"
        self._sock.monitor(
            monitor_addr,
            zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
        )
        self._monitor = self._ctx.socket(zmq.PAIR)
        self._monitor.setsockopt(zmq.LINGER, 0)
        self._monitor.connect(monitor_addr)
        self._sock.connect(f"tcp://{self.address}")
        self._rids = itertools.count(1)

    def close(self) -> None:
        self._sock.disable_monitor()
        self._monitor.close(0)
        self._sock.close(0)

    def _handshake_refused(self) -> bool:
        refused = False
        while self._monitor.poll(0):
            self._monitor.recv_multipart()
            refused = True
        return refused

    def _unreachable(self) -> NimbusUnreachable:
        if self._handshake_refused():
            need = ("the keys given are not the cluster's, or Nimbus runs without keys" if self.keys else
                    "this cluster needs its keys: --keys DIR or SQUALL_KEYS")
            return NimbusUnreachable(
                f"could not authenticate to Nimbus at {self.address} within {self.timeout_s:g} s "
                f"(it refused the handshake: {need})"
            )
        return NimbusUnreachable(
            f"Nimbus at {self.address} did not answer within {self.timeout_s:g} s "
            "(is it running? set --nimbus or SQUALL_NIMBUS; a cluster with keys also needs --keys or SQUALL_KEYS)"
        )

    def __enter__(self) -> "NimbusClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def call(self, make_request: Any, **fields: Any) -> Any:
        """Send ``make_request(rid=..., **fields)``; return the reply's data or raise."""
        rid = next(self._rids)
        self._sock.send(encode(make_request(rid=rid, **fields)))
        deadline_ms = int(self.timeout_s * 1000)
        while True:
            if not self._sock.poll(deadline_ms):
                raise self._unreachable()
            try:
                reply = decode(self._sock.recv())
            except WireError:
                continue
            if isinstance(reply, m.Reply) and reply.rid == rid:
                if not reply.ok:
                    raise NimbusError(reply.error)
                return reply.data

    # Convenience wrappers, one per request type.
    def submit(self, name: str, spec: dict, bundle: bytes, scheduler: str, workers: int | None, conf: dict) -> Any:
        return self.call(m.SubmitTopology, name=name, spec=spec, bundle=bundle, scheduler=scheduler,
                         workers=workers, conf=conf)

    def list(self) -> list[dict]:
        return self.call(m.ListTopologies)

    def kill(self, name: str, wait_s: float | None = None) -> Any:
        return self.call(m.KillTopology, name=name, wait_s=wait_s)

    def set_active(self, name: str, active: bool) -> Any:
        return self.call(m.SetActive, name=name, active=active)

    def rebalance(self, name: str, wait_s: float | None = None, workers: int | None = None,
                  parallelism: dict[str, int] | None = None, scheduler: str | None = None) -> Any:
        return self.call(m.RebalanceTopology, name=name, wait_s=wait_s, workers=workers,
                         parallelism=parallelism or {}, scheduler=scheduler)

    def assignment(self, name: str) -> dict:
        return self.call(m.GetAssignment, name=name)

    def cluster(self) -> dict:
        return self.call(m.GetCluster)

    def events(self, name: str) -> builtins.list[dict]:  # builtins: ``list`` here is the method above
        """The topology's rebalance events, oldest first (see docs/rebalancing.md)."""
        return self.call(m.GetEvents, name=name)

    def stats(self, name: str) -> dict:
        """The topology's measured figures over its metrics window (see docs/rebalancing.md)."""
        return self.call(m.GetStats, name=name)
