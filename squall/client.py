"""A client of Nimbus for the CLI and scripts: one request, one reply, bounded waits.

The Nimbus addresses come from the argument, then ``$SQUALL_NIMBUS``, then ``localhost:6627``;
each is a comma-separated list ``HOST:PORT,HOST:PORT,...`` (every replica of a cluster).
A request goes to the first address; an address that does not answer within ``timeout_s``
is left for the next, and a ``NotLeader`` answer is followed to the leader it names (at most
``MAX_REDIRECTS`` times). When no address answers, ``NimbusUnreachable`` is raised (the CLI
prints it and exits 1): a command never hangs. The address that answered last stays the
client's first choice (``address``). With ``keys`` the link is CURVE
(``squall.security``); a handshake Nimbus refused (missing or wrong keys) is named as such.
"""

from __future__ import annotations

import builtins
import itertools
import os
import time
from typing import Any

import zmq

from squall import messages as m
from squall.security import ClusterKeys, secure_client
from squall.wire import WireError, decode, encode, limit_of

DEFAULT_NIMBUS = "localhost:6627"
MAX_REDIRECTS = 5  # NotLeader answers followed per request (a leader change in flight is one or two)


class NimbusUnreachable(ConnectionError):
    pass


class NimbusError(RuntimeError):
    """Nimbus refused the request; the message is its reason."""


def nimbus_addresses(explicit: str | list[str] | None = None) -> list[str]:
    """The Nimbus addresses to try, in order: ``explicit`` (a list, or "A,B,C"), else
    ``$SQUALL_NIMBUS``, else ``localhost:6627``. Raises ValueError naming a malformed one."""
    if isinstance(explicit, (list, tuple)):
        items = [str(a).strip() for a in explicit]
    else:
        items = (explicit or os.environ.get("SQUALL_NIMBUS") or DEFAULT_NIMBUS).split(",")
    out: list[str] = []
    for addr in (a.strip() for a in items):
        host, sep, port = addr.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"Nimbus address must be HOST:PORT (several separated by commas), got {addr!r}")
        if addr not in out:
            out.append(addr)
    return out


def nimbus_address(explicit: str | None = None) -> str:
    """The first of :func:`nimbus_addresses`."""
    return nimbus_addresses(explicit)[0]


_MONITOR_IDS = itertools.count(1)


class NimbusClient:
    def __init__(
        self, address: str | list[str] | None = None, timeout_s: float = 5.0, keys: ClusterKeys | None = None
    ) -> None:
        self.addresses = nimbus_addresses(address)
        self.timeout_s = timeout_s
        self.keys = keys
        self._ctx: zmq.Context = zmq.Context.instance()
        self._rids = itertools.count(1)
        self._open(self.addresses[0])

    def _open(self, address: str) -> None:
        """A DEALER (and its handshake monitor) connected to ``address`` only."""
        self.address = address
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        # A DEALER with no connection to queue on (a refused handshake drops it) blocks a send
        # for ever: bounded by the same timeout as the answer.
        self._sock.setsockopt(zmq.SNDTIMEO, max(1, int(self.timeout_s * 1000)))
        self._sock.setsockopt(zmq.MAXMSGSIZE, limit_of("Reply").frame_bytes)  # a reply is the most it expects
        secure_client(self._sock, self.keys)
        # Handshake events only, to tell "refused our keys" from "not there" on a timeout. The
        # monitor's inproc address is unique per client: pyzmq's default names it after the
        # socket's file descriptor, which a later client reuses while an unclosed client's
        # monitor still holds the name ("Address already in use").
        monitor_addr = f"inproc://squall-client-monitor-{os.getpid()}-{next(_MONITOR_IDS)}"
        self._sock.monitor(
            monitor_addr,
            zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
            | zmq.EVENT_HANDSHAKE_FAILED_AUTH
            | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
        )
        self._monitor = self._ctx.socket(zmq.PAIR)
        self._monitor.setsockopt(zmq.LINGER, 0)
        self._monitor.connect(monitor_addr)
        self._sock.connect(f"tcp://{self.address}")

    def _move_to(self, address: str) -> None:
        self.close()
        self._open(address)

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
            need = (
                "the keys given are not the cluster's, or Nimbus runs without keys"
                if self.keys
                else "this cluster needs its keys: --keys DIR or SQUALL_KEYS"
            )
            return NimbusUnreachable(
                f"could not authenticate to Nimbus at {self.address} within {self.timeout_s:g} s "
                f"(it refused the handshake: {need})"
            )
        return NimbusUnreachable(
            f"Nimbus at {self.address} did not answer within {self.timeout_s:g} s "
            "(is it running? set --nimbus or SQUALL_NIMBUS; a cluster with keys also needs --keys or SQUALL_KEYS)"
        )

    def __enter__(self) -> NimbusClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def call(self, make_request: Any, **fields: Any) -> Any:
        """Send ``make_request(rid=..., **fields)`` to the leader; return the reply's data or
        raise (NimbusError: refused; NimbusUnreachable: no address answered)."""
        tried: list[str] = []  # addresses that did not answer, in order
        redirects = 0
        first_fault: NimbusUnreachable | None = None
        while True:
            reply = self._ask(make_request, fields)
            if isinstance(reply, m.Reply):
                if not reply.ok:
                    raise NimbusError(reply.error)
                return reply.data
            if (
                isinstance(reply, m.NotLeader)
                and reply.leader
                and redirects < MAX_REDIRECTS
                and reply.leader != self.address
            ):
                redirects += 1
                self._move_to(reply.leader)
                continue
            if reply is None:
                fault = self._unreachable()
                first_fault = first_fault or fault
                tried.append(self.address)
            else:  # NotLeader with no leader known (an election), or redirects exhausted
                tried.append(self.address)
            untried = [a for a in self.addresses if a not in tried and a != self.address]
            if not untried:
                if first_fault is not None and len(self.addresses) == 1:
                    raise first_fault
                raise NimbusUnreachable(
                    f"no Nimbus leader answered at {', '.join(tried)} within {self.timeout_s:g} s each "
                    "(are they running? set --nimbus A,B,C or SQUALL_NIMBUS; a cluster with keys also needs "
                    "--keys or SQUALL_KEYS)" + (f"; first: {first_fault}" if first_fault else "")
                )
            self._move_to(untried[0])

    def _ask(self, make_request: Any, fields: dict[str, Any]) -> m.Reply | m.NotLeader | None:
        """One request to the current address: its Reply or NotLeader, None after the timeout."""
        rid = next(self._rids)
        deadline = time.monotonic() + self.timeout_s
        try:
            self._sock.send(encode(make_request(rid=rid, **fields)))
        except zmq.Again:  # nothing to queue on within the timeout: as unanswered
            return None
        while (left := deadline - time.monotonic()) > 0:
            if not self._sock.poll(max(1, int(left * 1000))):
                return None
            try:
                reply = decode(self._sock.recv())
            except WireError:
                continue
            if isinstance(reply, (m.Reply, m.NotLeader)) and reply.rid == rid:
                return reply
        return None

    # Convenience wrappers, one per request type.
    def submit(self, name: str, spec: dict, bundle: bytes, scheduler: str, workers: int | None, conf: dict) -> Any:
        return self.call(
            m.SubmitTopology, name=name, spec=spec, bundle=bundle, scheduler=scheduler, workers=workers, conf=conf
        )

    def list(self) -> list[dict]:
        return self.call(m.ListTopologies)

    def kill(self, name: str, wait_s: float | None = None) -> Any:
        return self.call(m.KillTopology, name=name, wait_s=wait_s)

    def set_active(self, name: str, active: bool) -> Any:
        return self.call(m.SetActive, name=name, active=active)

    def rebalance(
        self,
        name: str,
        wait_s: float | None = None,
        workers: int | None = None,
        parallelism: dict[str, int] | None = None,
        scheduler: str | None = None,
    ) -> Any:
        return self.call(
            m.RebalanceTopology,
            name=name,
            wait_s=wait_s,
            workers=workers,
            parallelism=parallelism or {},
            scheduler=scheduler,
        )

    def assignment(self, name: str) -> dict:
        return self.call(m.GetAssignment, name=name)

    def cluster(self) -> dict:
        return self.call(m.GetCluster)

    def events(self, name: str) -> builtins.list[dict]:  # builtins: ``list`` here is the method above
        """The topology's rebalance events, oldest first (see docs/rebalancing.md)."""
        return self.call(m.GetEvents, name=name)

    def nimbus_status(self) -> dict:
        """{"leader": "host:port", "term": N, "replicas": [{"address", "role", "pid"}, ...]}."""
        return self.call(m.GetNimbusStatus)

    def stats(self, name: str) -> dict:
        """The topology's measured figures over its metrics window (see docs/rebalancing.md)."""
        return self.call(m.GetStats, name=name)
