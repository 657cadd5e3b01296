"""Finding Nimbus on the local network: a UDP beacon and its answer.

A supervisor started without ``--nimbus`` (and without ``$SQUALL_NIMBUS``) broadcasts a
small request on UDP port 6628; every Nimbus of the same cluster answers with the port of
its control plane. The protocol, one JSON object per datagram (at most ``MAX_DATAGRAM``
bytes, UTF-8, keys sorted)::

    request  {"squall": "discover", "v": 1, "cluster": NAME, "nonce": HEX}
    reply    {"squall": "nimbus", "v": 1, "cluster": NAME, "nonce": HEX,
              "host": H, "port": P, "http_port": Q}

``host`` is empty when Nimbus listens on every address: the client then uses the source
address of the reply. The reply echoes the request's fresh random ``nonce``, so an old
reply cannot be replayed into a later search.

Keys (off when no key is given): with a shared key both messages carry ``"mac"``, the
HMAC-SHA256 in hex of the message's canonical bytes without ``"mac"``. A keyed Nimbus
ignores requests without a valid MAC; a keyed client ignores replies without one. A client
never accepts a reply whose cluster differs from its own, whoever sent it.

Guarantees: nothing here raises on a malformed datagram (it is ignored); the responder
thread never dies of input and ``stop()`` ends it within one poll interval.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("squall.discovery")

DEFAULT_PORT = 6628  # one above Nimbus's 6627
DEFAULT_CLUSTER = "squall"
MAX_DATAGRAM = 1024
VERSION = 1
POLL_S = 0.2


@dataclass(frozen=True)
class Found:
    """A Nimbus that answered: its control-plane address and its cluster."""

    host: str
    port: int
    cluster: str
    http_port: int = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


# -- messages ------------------------------------------------------------------------------


def canonical(msg: dict[str, Any]) -> bytes:
    """The bytes a MAC covers: the message without ``mac``, keys sorted, no spaces."""
    body = {k: v for k, v in msg.items() if k != "mac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign(msg: dict[str, Any], key: bytes | None) -> bytes:
    """The datagram for ``msg``, with its MAC when there is a key."""
    if key:
        msg = {**msg, "mac": hmac.new(key, canonical(msg), hashlib.sha256).hexdigest()}
    return json.dumps(msg, sort_keys=True, separators=(",", ":")).encode()


def verify(msg: dict[str, Any], key: bytes | None) -> bool:
    """True when there is no key, or when ``msg`` carries the right MAC for it."""
    if not key:
        return True
    mac = msg.get("mac")
    if not isinstance(mac, str):
        return False
    return hmac.compare_digest(mac, hmac.new(key, canonical(msg), hashlib.sha256).hexdigest())


def parse(datagram: bytes, kind: str) -> dict[str, Any] | None:
    """The message in ``datagram`` if it is a well-formed ``kind`` message, else None."""
    if len(datagram) > MAX_DATAGRAM:
        return None
    try:
        msg = json.loads(datagram.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(msg, dict) or msg.get("squall") != kind or msg.get("v") != VERSION:
        return None
    if not isinstance(msg.get("cluster"), str) or not isinstance(msg.get("nonce"), str):
        return None
    if kind == "nimbus":
        port, http_port, host = msg.get("port"), msg.get("http_port", 0), msg.get("host", "")
        if (
            not isinstance(host, str)
            or not all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p < 65536 for p in (port, http_port))
            or port == 0
        ):
            return None
    return msg


def make_request(cluster: str, nonce: str, key: bytes | None = None) -> bytes:
    return sign({"squall": "discover", "v": VERSION, "cluster": cluster, "nonce": nonce}, key)


def make_reply(request: dict[str, Any], host: str, port: int, http_port: int, key: bytes | None = None) -> bytes:
    return sign(
        {
            "squall": "nimbus",
            "v": VERSION,
            "cluster": request["cluster"],
            "nonce": request["nonce"],
            "host": host,
            "port": port,
            "http_port": http_port,
        },
        key,
    )


def accept_reply(datagram: bytes, source_ip: str, cluster: str, nonce: str, key: bytes | None = None) -> Found | None:
    """The Nimbus a reply names, if it answers *this* search for *this* cluster."""
    msg = parse(datagram, "nimbus")
    if msg is None or msg["cluster"] != cluster or msg["nonce"] != nonce or not verify(msg, key):
        return None
    return Found(
        host=msg["host"] or source_ip, port=msg["port"], cluster=msg["cluster"], http_port=msg.get("http_port", 0)
    )


# -- Nimbus's side -------------------------------------------------------------------------


class DiscoveryResponder:
    """A thread answering discovery requests for one cluster on a UDP port.

    ``advertise_host`` goes into replies ("" = let the client use the reply's source
    address, right when Nimbus binds every address).
    """

    def __init__(
        self,
        cluster: str,
        nimbus_port: int,
        port: int = DEFAULT_PORT,
        advertise_host: str = "",
        http_port: int = 0,
        key: bytes | None = None,
        bind: str = "0.0.0.0",
    ) -> None:
        self.cluster = cluster
        self.nimbus_port = nimbus_port
        self.advertise_host = advertise_host
        self.http_port = http_port
        self.key = key
        self.answered = 0
        self.ignored = 0
        self._stop = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Several Nimbuses on one machine (of different clusters) may all hear broadcasts.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.settimeout(POLL_S)
        try:
            self.sock.bind((bind, port))
        except OSError:
            self.sock.close()
            raise
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="squall-discovery", daemon=True)

    def start(self) -> DiscoveryResponder:
        self._thread.start()
        log.info("answering discovery for cluster %r on UDP %d", self.cluster, self.port)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * POLL_S + 1)
        self.sock.close()

    def answer(self, datagram: bytes) -> bytes | None:
        """The reply to one datagram, or None when it is not a request for this cluster."""
        msg = parse(datagram, "discover")
        if msg is None or msg["cluster"] != self.cluster or not verify(msg, self.key):
            return None
        return make_reply(msg, self.advertise_host, self.nimbus_port, self.http_port, self.key)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                datagram, peer = self.sock.recvfrom(MAX_DATAGRAM + 1)
            except TimeoutError:
                continue
            except OSError as exc:  # the socket was closed under us
                if not self._stop.is_set():
                    log.warning("discovery responder stopped: %s", exc)
                return
            reply = self.answer(datagram)
            if reply is None:
                self.ignored += 1
                continue
            try:
                self.sock.sendto(reply, peer)
                self.answered += 1
            except OSError as exc:  # an unreachable asker must not stop the responder
                log.debug("discovery reply to %s failed: %s", peer, exc)


# -- the supervisor's side -----------------------------------------------------------------


def broadcast_targets() -> list[str]:
    """Where to send a request: the limited broadcast and each IPv4 interface's broadcast."""
    targets = ["255.255.255.255"]
    try:
        import psutil

        for addrs in psutil.net_if_addrs().values():
            for a in addrs:
                if a.family == socket.AF_INET and a.broadcast and a.broadcast not in targets:
                    targets.append(a.broadcast)
    except (ImportError, OSError):
        pass
    return targets


def search(
    cluster: str = DEFAULT_CLUSTER,
    port: int = DEFAULT_PORT,
    wait_s: float = 1.0,
    key: bytes | None = None,
    targets: Iterable[str] | None = None,
) -> list[Found]:
    """One round: send a request to every target, gather answers for ``wait_s`` seconds.

    Returns each accepted Nimbus once, in the order they answered.
    """
    nonce = secrets.token_hex(16)
    request = make_request(cluster, nonce, key)
    found: list[Found] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind(("0.0.0.0", 0))
        for target in list(targets) if targets is not None else broadcast_targets():
            try:
                sock.sendto(request, (target, port))
            except OSError as exc:  # no route on this interface: try the others
                log.debug("discovery request to %s failed: %s", target, exc)
        deadline = time.monotonic() + wait_s
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                datagram, (source_ip, _port) = sock.recvfrom(MAX_DATAGRAM + 1)
            except TimeoutError:
                break
            hit = accept_reply(datagram, source_ip, cluster, nonce, key)
            if hit is not None and hit not in found:
                found.append(hit)
    return found


def find_nimbuses(
    cluster: str = DEFAULT_CLUSTER,
    port: int = DEFAULT_PORT,
    timeout_s: float | None = None,
    key: bytes | None = None,
    targets: Iterable[str] | None = None,
    round_s: float = 1.0,
) -> list[Found]:
    """Search round after round until some Nimbus of ``cluster`` answers; every one that
    answered in that round (all replicas of the cluster), in the order they answered
    ([] after ``timeout_s``). A board that boots before Nimbus keeps asking (the pause grows
    to 10 s). Whether they are replicas of one cluster or rival Nimbuses, the boards'
    fencing (terms) decides whose assignments count.
    """
    targets = list(targets) if targets is not None else None
    started = time.monotonic()
    pause = 0.0
    attempt = 0
    while True:
        attempt += 1
        found = search(cluster, port, round_s, key, targets)
        if found:
            if len(found) > 1:
                log.info(
                    "%d Nimbuses of cluster %r answered: %s", len(found), cluster, ", ".join(f.address for f in found)
                )
            return found
        if timeout_s is not None and time.monotonic() - started >= timeout_s:
            return []
        if attempt == 1 or attempt % 10 == 0:
            log.info("no Nimbus of cluster %r answered on UDP %d yet; still looking", cluster, port)
        pause = min(10.0, pause + 1.0)
        if timeout_s is not None:
            pause = min(pause, max(0.0, timeout_s - (time.monotonic() - started)))
        time.sleep(pause)


def local_address_towards(host: str) -> str:
    """The address of this machine's interface that routes to ``host`` (no packet is sent)."""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return "127.0.0.1"
    except ValueError:
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((host, 9))
            return sock.getsockname()[0]
        except OSError:
            return "127.0.0.1"
